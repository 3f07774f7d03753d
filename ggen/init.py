"""``ggen init``: a make.toml for a repository that does not have one yet.

The repository already says most of what make.toml needs: its package manager's manifests name
the workspaces (``[project] workspaces = "auto"`` reads them at every load, see
``ggen.make.discover``), its package.json files hold the scripts (``script = "NAME"`` phases, see
``ggen.scripts``), and a ``turbo.json`` describes the tasks. ``gather`` reads those facts;
``plan_from_turbo`` and ``plan_from_scripts`` turn them into phases; ``render`` writes the
TOML text. Everything but ``gather`` is pure, so each rule is tested on plain values.

From ``turbo.json`` (turbo 2 ``tasks``, turbo 1 ``pipeline``), each task ``NAME`` becomes
``[lifecycle.NAME]`` with ``script = "NAME"``:

- ``dependsOn``: ``^build`` and ``build`` keep their meaning; turbo 1's ``$VAR`` entries become
  ``env_inputs``; ``pkg#task`` (one package's task) has no equivalent;
- ``outputs`` and ``inputs`` are globs relative to the package, ``!`` excluding, as in ggen;
  ``$TURBO_ROOT$/x`` becomes ``//x``; ``$TURBO_DEFAULT$`` ("every file git would not ignore")
  is ggen's default when alone (``inputs`` left unset) and ``**`` among other patterns (ggen's
  inputs select among the files git would not ignore);
- ``env`` and the top-level ``globalEnv`` become ``env_inputs`` (every phase gets the global
  ones); names with wildcards or ``!`` have no equivalent;
- ``cache: false`` becomes ``cache = false``, ``persistent: true`` becomes ``watch = true``;
- the top-level ``globalDependencies`` become ``[project] inputs``;
- ``//#task`` (a task of the root package only) becomes a phase with ``workspaces = ["."]``
  unless a task of the same name exists for every package;
- a task name holding ``:`` (``test:unit``) becomes the phase ``test-unit`` running that
  script, as phase names cannot hold ``:``;
- a package-level turbo.json (``extends: ["//"]``) becomes that workspace's own make.toml
  (``package_phases``).

What has no equivalent (``outputLogs``, ``interactive``, ``passThroughEnv``, ``ui``,
``pkg#task``, ...) is returned as ``Unmapped`` entries: printed by the command and written as
comments at the top of the file, never dropped silently. ``$schema`` only points editors at
turbo's schema and is left out.

Without turbo.json, the phases are the package scripts that at least half of the workspaces
have (``script_phases`` documents the heuristic).
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ggen.errors import ConfigError
from ggen.make import MAKE_FILE
from ggen.make.discover import Found, Source, discover, sources_present

TURBO_FILES = ("turbo.json", "turbo.jsonc")
TURBO_DEFAULT = "$TURBO_DEFAULT$"
TURBO_ROOT = "$TURBO_ROOT$/"
TURBO_EXTENDS = "$TURBO_EXTENDS$"
ROOT_TASK = "//#"

# npm runs these itself around install, publish and version, or ggen runs them around their
# main script (preX / postX): none of them is a phase of its own.
_NPM_LIFECYCLE = frozenset(
    {
        "install",
        "preinstall",
        "postinstall",
        "prepare",
        "prepublish",
        "prepublishOnly",
        "publish",
        "postpublish",
        "prepack",
        "postpack",
        "preversion",
        "version",
        "postversion",
        "dependencies",
    }
)
# Scripts that usually start something that does not exit: a dev server, a watcher.
_LONG_RUNNING = frozenset({"dev", "start", "serve", "watch", "preview"})
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Top-level turbo.json keys with no make.toml equivalent, and why.
_TOP_UNMAPPED = {
    "globalPassThroughEnv": "ggen passes the whole environment to tasks; nothing to do",
    "globalDotEnv": "no equivalent: list the .env files in [project] inputs if they matter",
    "ui": "no equivalent: ggen shows progress on a terminal, grouped output elsewhere",
    "daemon": "no equivalent: ggen has no daemon",
    "envMode": "no equivalent: ggen passes the whole environment to tasks",
    "remoteCache": "no equivalent here: see [cache] remote (an HTTP cache)",
    "cacheDir": "no equivalent here: see [cache] dir",
    "concurrency": "no equivalent here: see [executor] jobs",
    "dangerouslyDisablePackageManagerCheck": "no equivalent: ggen does not start a package manager",
    "noUpdateNotifier": "no equivalent: ggen has no update notifier",
    "futureFlags": "no equivalent",
    "boundaries": "no equivalent: ggen does not check package boundaries",
    "tags": "no equivalent",
    "extends": "no equivalent at the root",
}
# Task keys with no make.toml equivalent, and why.
_TASK_UNMAPPED = {
    "outputLogs": "no equivalent: ggen prints each task's log (--output grouped|stream|quiet)",
    "outputMode": "no equivalent: ggen prints each task's log (--output grouped|stream|quiet)",
    "interactive": "no equivalent: ggen tasks do not read the terminal",
    "interruptible": "no equivalent: ggen stops watch phases on Ctrl-C",
    "passThroughEnv": "ggen passes the whole environment to tasks; nothing to do",
    "dotEnv": "no equivalent: list the .env files in inputs if they matter",
    "with": "no equivalent: run the sibling phase in the same `ggen run`",
}


class PhaseOrigin(enum.Enum):
    """Where the generated phases come from."""

    TURBO = "turbo.json"
    SCRIPTS = "package scripts"
    NONE = "no turbo.json and no shared package scripts"


@dataclass(frozen=True)
class Unmapped:
    """Something the repository says that the generated make.toml cannot say."""

    where: str  # "turbo.json: tasks.build.outputLogs"
    why: str


@dataclass(frozen=True)
class PhaseSpec:
    """One ``[lifecycle.NAME]`` table to write."""

    name: str
    script: str
    depends_on: tuple[str, ...] = ()
    inputs: tuple[str, ...] | None = None
    outputs: tuple[str, ...] = ()
    env_inputs: tuple[str, ...] = ()
    cache: bool = True
    watch: bool = False
    workspaces: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Facts:
    """What ``gather`` read from a repository."""

    name: str
    sources: tuple[Source, ...]
    workspaces: tuple[Found, ...]
    turbo_file: str | None  # "turbo.json" when there is one
    turbo: Mapping[str, Any] | None
    # package-level turbo.json files: (workspace directory, file name, parsed document)
    package_turbo: tuple[tuple[str, str, Mapping[str, Any]], ...] = ()
    scripts: tuple[tuple[str, ...], ...] = ()  # script names of each workspace (or the root)


@dataclass(frozen=True)
class Plan:
    """The make.toml to write, and what could not go in it."""

    name: str
    sources: tuple[Source, ...]
    origin: PhaseOrigin
    phases: tuple[PhaseSpec, ...]
    project_inputs: tuple[str, ...] = ()
    unmapped: tuple[Unmapped, ...] = field(default_factory=tuple)
    # the phases of workspaces' own make.toml: (workspace directory, turbo file, phases)
    workspace_phases: tuple[tuple[str, str, tuple[PhaseSpec, ...]], ...] = ()


# -- reading the repository -------------------------------------------------------------------


def gather(root: str) -> Facts:
    """Read the facts ``ggen init`` needs from the repository at ``root``.

    A malformed manifest or turbo.json is a ``ConfigError`` naming the file.
    """
    sources = sources_present(root)
    found = discover(root, sources) if sources else ()
    turbo_file = next((f for f in TURBO_FILES if os.path.isfile(os.path.join(root, f))), None)
    turbo = _read_turbo(root, turbo_file) if turbo_file else None
    package_turbo = []
    for w in found:
        here = [f for f in TURBO_FILES if os.path.isfile(os.path.join(root, w.path, f))]
        if w.path != "." and here:
            package_turbo.append((w.path, here[0], _read_turbo(root, f"{w.path}/{here[0]}")))
    paths = [w.path for w in found] or ["."]
    scripts = tuple(_script_names(root, p) for p in paths)
    return Facts(
        name=_project_name(root),
        sources=sources,
        workspaces=found,
        turbo_file=turbo_file,
        turbo=turbo,
        package_turbo=tuple(package_turbo),
        scripts=tuple(s for s in scripts if s is not None),
    )


def _project_name(root: str) -> str:
    """The root manifest's name (package.json, Cargo.toml, pyproject.toml), else the
    directory's."""
    pkg = _json_file(root, "package.json")
    if isinstance(pkg, dict) and _usable_name(pkg.get("name")):
        return str(pkg["name"])
    for file, table in (("Cargo.toml", "package"), ("pyproject.toml", "project")):
        path = os.path.join(root, file)
        if os.path.isfile(path):
            import tomli

            try:
                with open(path, "rb") as fh:
                    doc = tomli.load(fh)
            except (OSError, tomli.TOMLDecodeError):
                continue
            section = doc.get(table)
            if isinstance(section, dict) and _usable_name(section.get("name")):
                return str(section["name"])
    return os.path.basename(os.path.abspath(root)) or "project"


def _usable_name(name: object) -> bool:
    """Whether a manifest's name can be the project's (make.toml refuses NUL characters)."""
    return isinstance(name, str) and bool(name.strip()) and "\0" not in name


def _json_file(root: str, rel: str) -> object:
    try:
        with open(os.path.join(root, rel), encoding="utf-8-sig") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _script_names(root: str, rel: str) -> tuple[str, ...] | None:
    """The script names of the package.json in ``rel``, None if it has none."""
    pkg = _json_file(root, os.path.join(rel, "package.json"))
    if not isinstance(pkg, dict):
        return None
    scripts = pkg.get("scripts")
    if not isinstance(scripts, dict):
        return ()
    return tuple(k for k, v in scripts.items() if isinstance(v, str))


def _read_turbo(root: str, rel: str) -> dict[str, Any]:
    path = os.path.normpath(os.path.join(root, rel))
    try:
        with open(path, encoding="utf-8-sig") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        doc = json.loads(strip_jsonc(text))
    except ValueError as exc:
        raise ConfigError(
            f"not valid JSON: {exc}", file=path, hint="fix the file (turbo cannot read it)"
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError("expected a JSON object", file=path, hint="fix the file")
    return doc


def strip_jsonc(text: str) -> str:
    """``text`` without the ``//`` and ``/* */`` comments and trailing commas that turbo.json
    (JSON with comments) may hold; strings are left alone."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1  # a trailing comma
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


# -- turbo.json -> phases ---------------------------------------------------------------------


def plan_from_turbo(
    doc: Mapping[str, Any], file: str = "turbo.json"
) -> tuple[tuple[PhaseSpec, ...], tuple[str, ...], tuple[Unmapped, ...]]:
    """The phases, ``[project] inputs`` and unmapped items that a parsed turbo.json gives."""
    unmapped: list[Unmapped] = []

    def skip(where: str, why: str) -> None:
        unmapped.append(Unmapped(f"{file}: {where}", why))

    tasks_key = "tasks" if "tasks" in doc or "pipeline" not in doc else "pipeline"
    tasks = doc.get(tasks_key) or {}
    if not isinstance(tasks, dict):
        raise ConfigError(f"{tasks_key}: expected an object of task names", file=file)
    global_env: list[str] = []
    for i, name in enumerate(_str_list(doc.get("globalEnv"))):
        if _ENV_NAME.fullmatch(name):
            global_env.append(name)
        else:
            skip(f"globalEnv[{i}] {json.dumps(name)}", "no equivalent: env_inputs name variables")
    project_inputs = tuple(_root_glob(p) for p in _str_list(doc.get("globalDependencies")))
    for key in doc:
        if key in _TOP_UNMAPPED:
            skip(key, _TOP_UNMAPPED[key])
        elif key not in (tasks_key, "globalEnv", "globalDependencies", "$schema"):
            skip(key, "not a turbo.json key ggen knows")

    names: dict[str, str] = {}  # task name -> task key
    for key in tasks:
        if key.startswith(ROOT_TASK):
            continue
        if "#" in key:
            skip(f"{tasks_key}.{key}", "no equivalent: a task of one package (pkg#task)")
            continue
        names[key] = key
    for key in tasks:  # root-only tasks, unless a task of that name runs everywhere
        if key.startswith(ROOT_TASK) and key[len(ROOT_TASK) :] not in names:
            names[key[len(ROOT_TASK) :]] = key
        elif key.startswith(ROOT_TASK):
            skip(f"{tasks_key}.{key}", "no equivalent: a root task beside a task of every package")
    known = _phase_names(names, lambda task, why: skip(f"{tasks_key}.{names[task]}", why))

    phases = []
    for task_name, key in names.items():
        if task_name not in known:
            continue
        task = tasks[key]
        where = f"{tasks_key}.{key}"
        if not isinstance(task, dict):
            raise ConfigError(f"{where}: expected an object", file=file)
        phases.append(_phase(task_name, key, task, where, known, global_env, skip))
        if tasks_key == "pipeline" and "outputs" not in task and task.get("cache") is not False:
            skip(
                f"{where}.outputs",
                "absent: turbo before 1.7 cached dist/** and build/** then; declare them if so",
            )
    return tuple(phases), project_inputs, tuple(unmapped)


def package_phases(
    root_doc: Mapping[str, Any], doc: Mapping[str, Any], file: str
) -> tuple[tuple[PhaseSpec, ...], tuple[Unmapped, ...]]:
    """The phases of a package-level turbo.json (``extends: ["//"]``), for that workspace's
    make.toml, whose ``[lifecycle.X]`` replace the root's for the workspace.

    As turbo does, each task's keys override the root task's of the same name, and an array
    holding ``$TURBO_EXTENDS$`` adds to the root's array instead of replacing it; so each
    phase is written whole.
    """
    unmapped: list[Unmapped] = []

    def skip(where: str, why: str) -> None:
        unmapped.append(Unmapped(f"{file}: {where}", why))

    root_key = "tasks" if "tasks" in root_doc or "pipeline" not in root_doc else "pipeline"
    root_tasks = root_doc.get(root_key)
    root_tasks = root_tasks if isinstance(root_tasks, dict) else {}
    key = "tasks" if "tasks" in doc or "pipeline" not in doc else "pipeline"
    tasks = doc.get(key) or {}
    if not isinstance(tasks, dict):
        raise ConfigError(f"{key}: expected an object of task names", file=file)
    for k in doc:
        if k == "extends":
            if doc[k] != ["//"]:
                skip(k, 'no equivalent: only extends: ["//"] (the root turbo.json) is read')
        elif k != key and k != "$schema":
            skip(k, _TOP_UNMAPPED.get(k, "not a package turbo.json key ggen knows"))
    all_tasks = {t: t for t in root_tasks if "#" not in t}
    all_tasks.update({t: t for t in tasks if "#" not in t})
    known = _phase_names(all_tasks, lambda t, why: None)  # the root's listing says it already
    global_env = [n for n in _str_list(root_doc.get("globalEnv")) if _ENV_NAME.fullmatch(n)]
    phases = []
    for name, task in tasks.items():
        where = f"{key}.{name}"
        if "#" in name:
            skip(where, "no equivalent: a package turbo.json names its own tasks only")
            continue
        if not isinstance(task, dict):
            raise ConfigError(f"{where}: expected an object", file=file)
        if name not in known:
            continue
        base = root_tasks.get(name)
        merged = _extend(base if isinstance(base, dict) else {}, task)
        _phase(name, name, task, where, known, (), skip)  # lists what this file adds only
        phases.append(_phase(name, name, merged, where, known, global_env, lambda w, why: None))
    return tuple(phases), tuple(unmapped)


def _extend(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, turbo's way: ``$TURBO_EXTENDS$`` in an array keeps the base's
    entries (first) and adds the others."""
    merged = dict(base)
    for k, v in override.items():
        if isinstance(v, list) and TURBO_EXTENDS in v:
            old = base.get(k)
            merged[k] = [
                *(old if isinstance(old, list) else []),
                *(x for x in v if x != TURBO_EXTENDS),
            ]
        else:
            merged[k] = v
    return merged


def phase_name(task: str) -> str:
    """The phase for a task or script name: ggen's phase names cannot hold ``:`` (``test:unit``
    becomes ``test-unit``) nor start with ``^``."""
    return task.replace(":", "-").lstrip("^")


def _phase_names(tasks: Iterable[str], skip: Callable[[str, str], None]) -> dict[str, str]:
    """Task name -> phase name, for the tasks whose phase name is valid and unique; the others
    are passed to ``skip`` (task, why). A renamed task is noted too, as ``ggen run`` wants the
    phase's name."""
    tasks = list(tasks)
    taken: dict[str, str] = {}
    for t in tasks:
        if t == phase_name(t):
            taken[t] = t
    out: dict[str, str] = {}
    for t in tasks:
        name = phase_name(t)
        if not name.strip() or "\0" in name:  # nor is a blank script name a script ggen runs
            skip(t, "no equivalent: not a valid phase name")
        elif taken.setdefault(name, t) != t:
            skip(t, f'no equivalent: its phase name "{name}" is taken by "{taken[name]}"')
        else:
            out[t] = name
            if name != t:
                skip(t, f'renamed: the phase is "{name}" (phase names cannot hold ":" or "^")')
    return out


def _phase(
    task_name: str,
    key: str,
    task: Mapping[str, Any],
    where: str,
    known: Mapping[str, str],
    global_env: Sequence[str],
    skip: Callable[[str, str], None],
) -> PhaseSpec:
    depends: list[str] = []
    env = list(global_env)
    for i, dep in enumerate(_str_list(task.get("dependsOn"))):
        caret = "^" if dep.startswith("^") else ""
        if dep.startswith("$"):  # turbo 1: an environment variable the task depends on
            env.append(dep[1:])
        elif "#" in dep:
            skip(f"{where}.dependsOn[{i}] {json.dumps(dep)}", "no equivalent: pkg#task")
        elif dep[len(caret) :] not in known:
            skip(f"{where}.dependsOn[{i}] {json.dumps(dep)}", "names no task of turbo.json")
        else:
            depends.append(caret + known[dep[len(caret) :]])
    for i, var in enumerate(_str_list(task.get("env"))):
        if _ENV_NAME.fullmatch(var):
            env.append(var)
        else:
            skip(f"{where}.env[{i}] {json.dumps(var)}", "no equivalent: env_inputs name variables")
    globs = {k: _without_nul(_str_list(task.get(k)), f"{where}.{k}", skip) for k in _GLOB_KEYS}
    inputs = _inputs(globs["inputs"]) if "inputs" in task else None
    outputs = tuple(_package_glob(p) for p in globs["outputs"])
    for k in task:
        if k in _TASK_UNMAPPED:
            skip(f"{where}.{k}", _TASK_UNMAPPED[k])
        elif k not in ("dependsOn", "env", "inputs", "outputs", "cache", "persistent"):
            skip(f"{where}.{k}", "not a turbo.json task key ggen knows")
    return PhaseSpec(
        name=known[task_name],
        script=task_name,
        depends_on=tuple(dict.fromkeys(depends)),
        inputs=inputs,
        outputs=outputs,
        env_inputs=tuple(dict.fromkeys(env)),
        cache=task.get("cache") is not False,
        watch=task.get("persistent") is True,
        workspaces=(".",) if key.startswith(ROOT_TASK) else None,
    )


def _inputs(patterns: Sequence[str]) -> tuple[str, ...] | None:
    """turbo ``inputs`` as ggen ``inputs``: None when only ``$TURBO_DEFAULT$`` (ggen's default)."""
    if patterns == [TURBO_DEFAULT]:
        return None
    return tuple("**" if p == TURBO_DEFAULT else _package_glob(p) for p in patterns)


def _package_glob(pattern: str) -> str:
    neg = "!" if pattern.startswith("!") else ""
    body = pattern[len(neg) :]
    if body.startswith(TURBO_ROOT):
        return f"{neg}//{body[len(TURBO_ROOT) :]}"
    return f"{neg}{body.removeprefix('./')}"


def _root_glob(pattern: str) -> str:
    neg = "!" if pattern.startswith("!") else ""
    body = pattern[len(neg) :].removeprefix(TURBO_ROOT).removeprefix("./")
    return f"{neg}{body}"


_GLOB_KEYS = ("inputs", "outputs")


def _without_nul(values: list[str], where: str, skip: Callable[[str, str], None]) -> list[str]:
    """``values`` less those holding a NUL character (make.toml refuses them), each listed."""
    for i, v in enumerate(values):
        if "\0" in v:
            skip(f"{where}[{i}] {json.dumps(v)}", "no equivalent: a NUL character")
    return [v for v in values if "\0" not in v]


def _str_list(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# -- package scripts -> phases ----------------------------------------------------------------


def script_phases(
    scripts: Sequence[Sequence[str]], linked: bool
) -> tuple[tuple[PhaseSpec, ...], tuple[Unmapped, ...]]:
    """Phases for the scripts that at least half of the packages have (all of them for one).

    The heuristic, in the order of the first package that has each script:
    - npm's own lifecycle scripts (``prepare``, ``postinstall``, ...) and ``preX``/``postX`` of
      a script ``X`` are not phases (ggen runs ``preX``/``postX`` with ``X``);
    - ``build`` depends on ``^build`` when some workspace depends on another (``linked``): a
      package is built after the packages it uses;
    - ``test`` depends on ``build`` when there is a build phase (tests run the built code);
    - ``dev``, ``start``, ``serve``, ``watch`` and ``preview`` are long-running:
      ``watch = true``, never cached;
    - no outputs are guessed: each is listed, to be declared so that cache hits restore them.
    """
    count: dict[str, int] = {}
    for names in scripts:
        for n in dict.fromkeys(names):
            count[n] = count.get(n, 0) + 1
    all_names = {n for names in scripts for n in names}
    threshold = max(1, (len(scripts) + 1) // 2)
    chosen = [
        n
        for n, c in count.items()
        if c >= threshold and n not in _NPM_LIFECYCLE and not _is_hook(n, all_names)
    ]
    phases = []
    unmapped: list[Unmapped] = []
    phase_of = _phase_names(
        chosen, lambda n, why: unmapped.append(Unmapped(f"scripts.{_toml_key(n)}", why))
    )
    for n, name in phase_of.items():
        depends: tuple[str, ...] = ()
        if n == "build" and linked:
            depends = ("^build",)
        elif n == "test" and "build" in phase_of:
            depends = ("build",)
        long_running = n in _LONG_RUNNING
        phases.append(
            PhaseSpec(name, n, depends_on=depends, cache=not long_running, watch=long_running)
        )
        if not long_running:
            unmapped.append(
                Unmapped(
                    f"lifecycle.{_toml_key(name)}",
                    "no outputs declared: add outputs = [...] so that a cache hit restores them",
                )
            )
    return tuple(phases), tuple(unmapped)


def _is_hook(name: str, names: set[str]) -> bool:
    return any(name.startswith(p) and name[len(p) :] in names for p in ("pre", "post"))


# -- the plan and its text --------------------------------------------------------------------


def make_plan(facts: Facts) -> Plan:
    """The make.toml that ``facts`` call for: phases from turbo.json, else from scripts."""
    own: list[tuple[str, str, tuple[PhaseSpec, ...]]] = []
    if facts.turbo is not None:
        phases, inputs, unmapped = plan_from_turbo(facts.turbo, facts.turbo_file or TURBO_FILES[0])
        for rel, name, doc in facts.package_turbo:
            ws_phases, ws_unmapped = package_phases(facts.turbo, doc, f"{rel}/{name}")
            unmapped += ws_unmapped
            if ws_phases:
                own.append((rel, f"{rel}/{name}", ws_phases))
        origin = PhaseOrigin.TURBO
    else:
        linked = any(w.depends_on for w in facts.workspaces)
        phases, unmapped = script_phases(facts.scripts, linked)
        inputs = ()
        origin = PhaseOrigin.SCRIPTS if phases else PhaseOrigin.NONE
    return Plan(facts.name, facts.sources, origin, phases, inputs, unmapped, tuple(own))


def render(plan: Plan) -> str:
    """The TOML text of ``plan``: what was not carried over as comments at the top."""
    lines = [f"# Written by `ggen init` from {_from(plan)}."]
    if plan.origin is PhaseOrigin.NONE:
        lines = [f"# Written by `ggen init`: {_from(plan)}; add [lifecycle.NAME] phases."]
    if plan.unmapped:
        lines.append("# Not carried over as written:")
        lines += [f"#   {_comment(u.where)}: {_comment(u.why)}" for u in plan.unmapped]
    lines += ["", "[project]", f"name = {_toml_str(plan.name)}"]
    if plan.sources:
        found = ", ".join(s.value for s in plan.sources)
        lines.append(f'workspaces = "auto"  # found: {found}')
    if plan.project_inputs:
        lines.append(f"inputs = {_toml_list(plan.project_inputs)}")
    lines += _phase_lines(plan.phases)
    return "\n".join(lines) + "\n"


def render_files(plan: Plan) -> dict[str, str]:
    """Every file ``plan`` writes (path relative to the root -> text): the root make.toml, then
    the make.toml of each workspace that has a package-level turbo.json."""
    files = {MAKE_FILE: render(plan)}
    for rel, source, phases in plan.workspace_phases:
        files[f"{rel}/{MAKE_FILE}"] = render_workspace(phases, source)
    return files


def render_workspace(phases: Sequence[PhaseSpec], turbo_file: str) -> str:
    """The TOML text of a workspace's own make.toml (its phases replace the root's there)."""
    lines = [f"# Written by `ggen init` from {turbo_file}: these phases replace the root's here."]
    return "\n".join(lines + _phase_lines(phases)) + "\n"


def _phase_lines(phases: Sequence[PhaseSpec]) -> list[str]:
    lines: list[str] = []
    for p in phases:
        lines += ["", f"[lifecycle.{_toml_key(p.name)}]", f"script = {_toml_str(p.script)}"]
        if p.workspaces is not None:
            lines.append(f"workspaces = {_toml_list(p.workspaces)}")
        if p.depends_on:
            lines.append(f"depends_on = {_toml_list(p.depends_on)}")
        if p.inputs is not None:
            lines.append(f"inputs = {_toml_list(p.inputs)}")
        if p.outputs:
            lines.append(f"outputs = {_toml_list(p.outputs)}")
        if p.env_inputs:
            lines.append(f"env_inputs = {_toml_list(p.env_inputs)}")
        if not p.cache and not p.watch:
            lines.append("cache = false")
        if p.watch:
            lines.append("watch = true")
    return lines


def report(plan: Plan, workspaces: int, file: str) -> str:
    """What ``ggen init`` prints: sources, workspace count, phases, and what was not mapped."""
    sources = ", ".join(s.value for s in plan.sources) or "none (the root is the only workspace)"
    phases = ", ".join(p.name for p in plan.phases) or "none"
    lines = [
        f"workspace sources: {sources}",
        f"workspaces: {workspaces}",
        f"phases: none ({_from(plan)})"
        if plan.origin is PhaseOrigin.NONE
        else f"phases (from {_from(plan)}): {phases}",
    ]
    if plan.project_inputs:
        lines.append(f"project inputs: {', '.join(plan.project_inputs)}")
    if plan.unmapped:
        lines.append(f"not carried over as written ({len(plan.unmapped)}):")
        lines += [f"  {u.where}: {u.why}" for u in plan.unmapped]
    lines.append(file)
    return "\n".join(lines) + "\n"


def _from(plan: Plan) -> str:
    if plan.origin is PhaseOrigin.SCRIPTS:
        return "the package scripts most workspaces share"
    return str(plan.origin.value)


def _toml_str(value: str) -> str:
    # JSON's escapes are TOML's; TOML also wants DEL escaped
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _toml_str(name)


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def _comment(text: str) -> str:
    """``text`` on one comment line (TOML comments end at a newline)."""
    return "".join(" " if ord(c) < 32 or ord(c) == 0x7F else c for c in text)
