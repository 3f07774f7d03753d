"""The make.toml loader: schema, workspace files, cross-references and cycles.

Owns ``load_make`` and ``find_make_file`` (re-exposed by ``ggen.make``): the known keys of every
table, the ``_Loader`` that turns the root make.toml and each workspace's own make.toml into the
frozen model of ``ggen.make``, workspace path resolution (inside the project root, symlinks
resolved), the checks that every referenced workspace and phase exists, and workspace dependency
cycle detection. Every problem becomes a ``ConfigError`` (``CycleError`` for a cycle).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ggen.errors import ConfigError, CycleError
from ggen.make.model import (
    MAKE_FILE,
    MAX_JOBS,
    MAX_RETRIES,
    ROOT_WORKSPACE,
    CacheConfig,
    ConfigWarning,
    Env,
    ExecutorConfig,
    ExecutorKind,
    Hooks,
    Make,
    PackageScripts,
    Phase,
    Project,
    Workspace,
)
from ggen.make.toml_lines import read_toml
from ggen.make.values import (
    SIZE_HINT,
    Table,
    check_name,
    format_number,
    join_key,
    listing,
    parse_env,
    phase_commands,
    phase_env_inputs,
    phase_globs,
    phase_timeout,
    phase_workspaces,
    quote_key,
    raise_error,
    size_bytes,
    sorted_env,
    suggest,
    type_name,
    typo_of,
    workspace_sources,
)

if TYPE_CHECKING:
    from ggen.make.discover import Found

_TOP_KEYS = ("project", "env", "cache", "executor", "workspace", "lifecycle", "hooks")
_WORKSPACE_FILE_KEYS = ("env", "lifecycle")
_PROJECT_KEYS = ("name", "version", "type", "description", "inputs", "workspaces", "strict")
_CACHE_KEYS = ("dir", "max_size", "remote", "remote_read_only", "remote_timeout")
_EXECUTOR_KEYS = ("kind", "scheduler", "jobs")
_WORKSPACE_KEYS = ("path", "depends_on", "description")
_PHASE_KEYS = (
    "description",
    "command",
    "commands",
    "workspaces",
    "parallel",
    "depends_on",
    "inputs",
    "outputs",
    "env",
    "env_inputs",
    "cache",
    "timeout",
    "retries",
    "watch",
    "port",
    "script",
)
_GLOBAL_HOOKS = ("before_all", "after_all", "on_error")
_PROJECT_HEADER = re.compile(r"^[ \t]*\[[ \t]*project[ \t]*\][ \t]*(?:#.*)?$", re.MULTILINE)

# Keys and tables that the old system's files carry and its loader ignored. Each is a warning
# ("ignored"), never a did-you-mean error, however close it is to a key ggen reads: `execution`
# is two edits from `executor`, `cache_key` starts like `cache`. Other unknown names are errors
# only when they are a likely typo of a known key (ggen.make.values.typo_of), else warnings too.
_OLD_TOP = frozenset(
    {
        "scripts",
        "execution",
        "state",
        "deps",
        "monitoring",
        "security",
        "performance",
        "pipelines",
        "quality_gates",
        "backup",
        "integrations",
        "config",
        "tasks",
        "phases",
        "environments",
    }
)
_OLD_PROJECT = frozenset({"author", "authors", "license", "repository", "homepage", "keywords"})
_OLD_CACHE = frozenset(
    {
        "enabled",
        "directory",
        "enable_caching",
        "cache_directory",
        "cache_ttl_seconds",
        "invalidate_on_change",
        "distributed_cache",
        "max_cache_size_mb",
    }
)
_OLD_WORKSPACE = frozenset({"framework", "runtime", "package_manager"})
_OLD_PHASE = frozenset(
    {
        "cache_key",
        "first_run_only",
        "requires_approval",
        "error_handling",
        "required",
        "requires",
        "coverage_threshold",
    }
)
_OLD_HOOKS = frozenset({"on_success", "on_init", "on_failure"})


def find_make_file(root: str | os.PathLike[str]) -> Path:
    """The root make.toml of the project that ``root`` (a directory) lies in.

    ``root`` and then each of its parents is searched for the nearest make.toml that has a
    ``[project]`` table, as git, cargo and pnpm find their root from any subdirectory: a
    workspace's own make.toml has none, so starting inside a workspace finds the project's.
    """
    root_path = Path(root)
    file = root_path / MAKE_FILE
    if os.path.isfile(file) and _has_project_table(file):
        return file
    display = os.path.normpath(file)
    if os.path.isfile(root_path):
        raise_error(
            os.path.normpath(root_path),
            None,
            "not a directory",
            "name the project directory (the one that holds make.toml), not a file",
        )
    if not os.path.isdir(root_path):
        raise_error(
            display, None, f"no such directory: {root_path}", "use -C DIR with a project directory"
        )
    if os.path.exists(file) and not os.path.isfile(file):
        raise_error(display, None, "not a regular file", "make.toml must be a file")
    parent = os.path.abspath(root_path)
    while (up := os.path.dirname(parent)) != parent:
        parent = up
        candidate = Path(parent, MAKE_FILE)
        if os.path.isfile(candidate) and _has_project_table(candidate):
            return candidate
    if os.path.isfile(file):
        return file  # no project anywhere above: loading it says that [project] is missing
    raise_error(
        display, None, "not found", "create make.toml or use -C DIR to name the project directory"
    )


def _has_project_table(file: Path) -> bool:
    """Whether ``file`` is a project's root make.toml: it has a ``[project]`` table.

    A file that cannot be read or parsed counts as one, so that loading it reports the problem
    instead of the search passing it by for a make.toml further up.
    """
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return True
    if _PROJECT_HEADER.search(text):
        return True
    if "project" not in text:
        return False
    import tomli

    try:
        return isinstance(tomli.loads(text).get("project"), dict)
    except tomli.TOMLDecodeError:
        return True


def load_make(start: str | os.PathLike[str]) -> Make:
    """Read, validate and snapshot the project that the directory ``start`` lies in.

    Reads the root make.toml and the make.toml of every workspace that has one, checks every key,
    type, path and cross-reference, and returns the immutable ``Make``. Any problem raises a
    ``ConfigError`` (``CycleError`` for a workspace dependency cycle) naming file, key and fix.
    """
    file = find_make_file(start)
    root_given = os.fspath(file.parent)
    display = os.path.normpath(file)
    try:
        doc = read_toml(os.fspath(file), display)
        return _Loader(root_given, os.path.realpath(root_given), display).load(doc)
    except ConfigError as err:
        _add_line(err)
        raise


def load_make_text(
    root: str | os.PathLike[str], text: str, own_files: Mapping[str, str] | None = None
) -> Make:
    """Validate ``text`` as the make.toml of the directory ``root`` without writing it, as
    ``load_make`` would read it there (``ggen init`` checks what it generates); ``own_files``
    gives workspaces' own make.toml texts by workspace directory, in place of the files."""
    root_given = os.fspath(root)
    display = os.path.normpath(os.path.join(root_given, MAKE_FILE))
    loader = _Loader(root_given, os.path.realpath(root_given), display)
    loader.pending = dict(own_files or {})
    return loader.load(_toml_text(text, display))


def _toml_text(text: str, display: str) -> dict[str, object]:
    import tomli

    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=display) from None


def _add_line(err: ConfigError) -> None:
    """Give an error about a key (not about syntax) the line that writes that key."""
    if err.line is not None or not err.key or not err.file:
        return
    from ggen.make.toml_lines import key_line

    try:
        with open(err.file, encoding="utf-8-sig") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return
    err.line = key_line(text, err.key)


def _located(warnings: Sequence[ConfigWarning]) -> tuple[ConfigWarning, ...]:
    """The warnings with the line that writes each key (each file read once)."""
    from ggen.make.toml_lines import key_line

    texts: dict[str, str | None] = {}
    located = []
    for w in warnings:
        if w.file not in texts:
            try:
                with open(w.file, encoding="utf-8-sig") as fh:
                    texts[w.file] = fh.read()
            except (OSError, UnicodeDecodeError):
                texts[w.file] = None
        text = texts[w.file]
        line = key_line(text, w.key) if text is not None else None
        located.append(dataclasses.replace(w, line=line))
    order = {file: i for i, file in enumerate(texts)}
    return tuple(sorted(located, key=lambda w: (order[w.file], w.line or 0)))


def strict_error(warnings: Sequence[ConfigWarning], why: str) -> ConfigError:
    """The error that the warnings of a load become in strict mode (``why`` says who asked):
    it names the first one's file, line and key, and lists the others on lines of their own."""
    first, rest = warnings[0], warnings[1:]
    message = f"{first.message} (an error with {why})"
    if first.hint:
        message += f"; {first.hint}"
    for w in rest:
        where = w.file if w.line is None else f"{w.file}:{w.line}"
        message += f"\n  {where}: {w.key}: {w.message}"
    return ConfigError(message, file=first.file, key=first.key, line=first.line)


class _Loader:
    """One load: the root's location and the file shown in messages."""

    def __init__(self, root_given: str, root_real: str, file: str) -> None:
        self.root_given = root_given
        self.root_real = root_real
        self.root_prefix = root_real if root_real.endswith(os.sep) else root_real + os.sep
        self.file = file
        # Real path (and whether it is a directory) of each relative path already walked, so
        # that workspaces sharing parents cost one lstat each.
        self.walked: dict[str, tuple[str, bool]] = {}
        self.read = [MAKE_FILE]  # every file the configuration comes from, root-relative
        self.warnings: list[ConfigWarning] = []  # what the files say that ggen ignores
        self.pending: dict[str, str] = {}  # workspace make.toml texts not written yet

    def load(self, doc: dict[str, object]) -> Make:
        top = Table(doc, self.file, "", self.warnings)
        top.check_keys(_TOP_KEYS, old=_OLD_TOP)
        project = self.project(top)
        env = parse_env(doc.get("env", {}), self.file, "env", self.warnings)
        cache = self.cache(top.sub("cache"))
        executor = self.executor(top.sub("executor"))
        lifecycle = self.lifecycle(top.sub("lifecycle"), self.file, MAKE_FILE)
        found = self.discover(top)
        workspaces = self.workspaces(top.sub("workspace"), env, found)

        phase_names = {p.name: p.source for p in lifecycle}
        for ws in workspaces:
            for p in ws.phases:
                phase_names.setdefault(p.name, p.source)
        hooks = self.hooks(top.sub("hooks"), phase_names)

        ws_names = [w.name for w in workspaces]
        known_ws = {*ws_names, ROOT_WORKSPACE}
        for ws in workspaces:
            key = f"{join_key('workspace', ws.name)}.depends_on"
            self.check_refs(self.file, key, ws.depends_on, known_ws, ws_names, "workspace")
        self.check_phase_refs(lifecycle, self.file, known_ws, ws_names, phase_names)
        for ws in workspaces:
            if ws.phases:
                own_file = self.own_file_display(ws.path)
                self.check_phase_refs(ws.phases, own_file, known_ws, ws_names, phase_names)
        self.check_cycles(workspaces)
        warnings = _located(self.warnings)
        if project.strict and warnings:
            raise strict_error(warnings, "[project] strict = true")

        return Make(
            root=self.root_real,
            project=project,
            env=sorted_env(env),
            cache=cache,
            executor=executor,
            workspaces=workspaces,
            lifecycle=lifecycle,
            hooks=hooks,
            file=self.file,
            config_files=tuple(dict.fromkeys(self.read)),
            warnings=warnings,
            packages=self.packages(workspaces, lifecycle),
        )

    def packages(
        self, workspaces: Sequence[Workspace], lifecycle: Sequence[Phase]
    ) -> tuple[PackageScripts, ...]:
        """The package.json scripts of every workspace, if some phase names a script."""
        names = {p.script for p in lifecycle if p.script is not None}
        for ws in workspaces:
            names.update(p.script for p in ws.phases if p.script is not None)
        if not names:
            return ()
        from ggen.make.scripts import read_packages, wanted_scripts

        paths = [".", *(w.path for w in workspaces)]
        return read_packages(self.root_real, self.root_given, paths, wanted_scripts(names))

    # -- simple tables ------------------------------------------------------------------------

    def project(self, top: Table) -> Project:
        table = top.sub("project")
        if table is None:
            raise_error(
                self.file,
                "project",
                "missing [project] table",
                'add [project] with name = "my-project"',
            )
        table.check_keys(_PROJECT_KEYS, old=_OLD_PROJECT)
        return Project(
            name=table.required_str("name", '"my-project"'),
            version=table.str_("version"),
            type=table.str_("type"),
            description=table.str_("description"),
            inputs=table.str_list("inputs") or (),
            strict=table.bool_("strict", False),
        )

    def cache(self, table: Table | None) -> CacheConfig:
        if table is None:
            return CacheConfig()
        table.check_keys(_CACHE_KEYS, old=_OLD_CACHE)
        directory = table.str_("dir")
        if directory == "":
            table.fail("dir", "must not be empty", "remove it to use the default cache directory")
        max_size = None
        if "max_size" in table.data:
            raw = table.data["max_size"]
            max_size = size_bytes(raw)
            if max_size is None:
                shown = json.dumps(raw) if isinstance(raw, str) else type_name(raw)
                table.fail("max_size", f"cannot read {shown} as a size", SIZE_HINT)
            if max_size <= 0:
                table.fail(
                    "max_size", f"must be positive, got {format_number(max_size)}", SIZE_HINT
                )
        remote = table.str_("remote")
        if remote is not None and not remote.startswith(("http://", "https://")):
            table.fail(
                "remote",
                f"not an HTTP URL: {json.dumps(remote)}",
                'write an http:// or https:// URL, e.g. "http://127.0.0.1:9090/ggen"',
            )
        return CacheConfig(
            dir=directory,
            max_size=max_size,
            remote=remote,
            remote_read_only=table.bool_("remote_read_only", False),
            remote_timeout=_remote_timeout(table),
        )

    def executor(self, table: Table | None) -> ExecutorConfig:
        if table is None:
            return ExecutorConfig()
        table.check_keys(_EXECUTOR_KEYS)
        kind = ExecutorKind.LOKY
        written = table.str_("kind")
        if written is not None:
            choices = [k.value for k in ExecutorKind]
            if written not in choices:
                close = suggest(written, choices)
                more = f', did you mean "{close}"?' if close else ""
                table.fail(
                    "kind",
                    f"unknown executor {json.dumps(written)}{more}",
                    f"expected one of: {', '.join(choices)}",
                )
            kind = ExecutorKind(written)
        return ExecutorConfig(
            kind=kind, scheduler=table.str_("scheduler"), jobs=table.int_("jobs", 1, MAX_JOBS)
        )

    def hooks(self, table: Table | None, phases: Mapping[str, str]) -> Hooks:
        if table is None:
            return Hooks()
        names = list(phases)
        found: dict[str, tuple[str, ...]] = {}
        before: list[tuple[str, tuple[str, ...]]] = []
        after: list[tuple[str, tuple[str, ...]]] = []
        known = [*_GLOBAL_HOOKS, *(f"{w}_{p}" for w in ("before", "after") for p in names)]
        for key in table.data:
            when, _, phase = key.partition("_")
            if key not in known:
                # a hook of no phase: an error if it looks like a typo of one, else ignored
                close = None if key in _OLD_HOOKS else typo_of(key, known)
                what = (
                    f'no phase named "{phase}"'
                    if when in ("before", "after") and phase
                    else "unknown key"
                )
                if close is not None:
                    table.fail(key, f'{what}, did you mean "{close}"?')
                table.warn(
                    key,
                    what,
                    f"hooks are {', '.join(_GLOBAL_HOOKS)}, before_PHASE and after_PHASE",
                )
                continue
            listed = table.str_list(key, single=True) or ()
            for i, hook in enumerate(listed):
                if hook not in phases and typo_of(hook, names) is None:  # as the old loader
                    table.warn(key, f'no phase "{hook}"', f"phases: {listing(names)}")
                    continue
                index = f"[{i}]" if isinstance(table.data[key], list) else ""
                self.check_ref(self.file, f"{table.key(key)}{index}", hook, phases, names, "phase")
            listed = tuple(h for h in listed if h in phases)
            if key in _GLOBAL_HOOKS:
                found[key] = listed
            else:
                (before if when == "before" else after).append((phase, listed))
        return Hooks(
            before_all=found.get("before_all", ()),
            after_all=found.get("after_all", ()),
            on_error=found.get("on_error", ()),
            before=tuple(before),
            after=tuple(after),
        )

    # -- phases -------------------------------------------------------------------------------

    def lifecycle(self, table: Table | None, file: str, source: str) -> tuple[Phase, ...]:
        if table is None:
            return ()
        return tuple(self.phase(name, value, file, source) for name, value in table.data.items())

    def phase(self, name: str, value: object, file: str, source: str) -> Phase:
        table = Table.of(value, file, join_key("lifecycle", name), self.warnings)
        if not name or name.startswith("^") or ":" in name:
            table.fail(
                None,
                "a phase name must not be empty, start with '^' or contain ':'",
                "rename the phase",
            )
        check_name(table, name, "phase")
        table.check_keys(_PHASE_KEYS, old=_OLD_PHASE)
        if isinstance(table.data.get("watch"), (str, list)):
            table.fail(
                "watch",
                f"expected a boolean, got {type_name(table.data['watch'])}",
                "watch = true marks a long-running phase (a dev server); files go in inputs",
            )
        commands, script = phase_commands(table)
        env = parse_env(table.data.get("env", {}), file, table.key("env"), self.warnings)
        return Phase(
            name=name,
            commands=commands,
            script=script,
            description=table.str_("description"),
            workspaces=phase_workspaces(table),
            parallel=table.opt_bool("parallel"),
            depends_on=table.str_list("depends_on") or (),
            inputs=phase_globs(table, "inputs"),
            outputs=phase_globs(table, "outputs") or (),
            env=sorted_env(env),
            env_inputs=phase_env_inputs(table),
            cache=table.bool_("cache", True),
            timeout=phase_timeout(table),
            retries=table.int_("retries", 0, MAX_RETRIES) or 0,
            watch=table.bool_("watch", False),
            port=table.int_("port", 1, 65535),
            source=source,
        )

    # -- workspaces ---------------------------------------------------------------------------

    def discover(self, top: Table) -> tuple[Found, ...]:
        """The workspaces that ``[project] workspaces`` says to read from the manifests."""
        project = top.sub("project")
        if project is None or "workspaces" not in project.data:
            return ()
        from ggen.make.discover import ROOT_FILES, discover

        sources = workspace_sources(project, self.root_given)
        # with "auto", a root manifest that declares no workspace yet may declare one later
        auto = project.data.get("workspaces") == "auto"
        roots = dict.fromkeys(ROOT_FILES.values() if auto else (ROOT_FILES[s] for s in sources))
        self.read += [r for r in roots if os.path.isfile(os.path.join(self.root_real, r))]
        found = discover(self.root_given, sources) if sources else ()
        self.read += [f.manifest for f in found]
        return found

    def workspaces(
        self, table: Table | None, root_env: Mapping[str, str], discovered: Sequence[Found] = ()
    ) -> tuple[Workspace, ...]:
        """The discovered workspaces (in discovery order), each with its ``[workspace.NAME]``
        table applied where one has its name, then the other tables in file order."""
        declared = dict(table.data) if table is not None else {}
        by_name = {f.name: f for f in discovered}
        entries = [(f.name, declared.get(f.name, {})) for f in discovered]
        entries += [(n, v) for n, v in declared.items() if n not in by_name]
        found: list[Workspace] = []
        by_dir: dict[str, str] = {}
        root_env_sorted = sorted_env(root_env)
        for name, value in entries:
            ws = Table.of(value, self.file, join_key("workspace", name), self.warnings)
            if not name:
                ws.fail(None, "a workspace name must not be empty", "name the workspace")
            check_name(ws, name, "workspace")
            ws.check_keys(_WORKSPACE_KEYS, old=_OLD_WORKSPACE)
            origin = by_name.get(name)
            depends_on = ws.str_list("depends_on")
            if depends_on is None:
                depends_on = origin.depends_on if origin else ()
            description = ws.str_("description")
            written = ws.str_("path")
            source = MAKE_FILE
            if origin is not None:
                source = f"{origin.source} + {MAKE_FILE}" if name in declared else origin.source
                written = origin.path if written is None else written
            if written is None:
                if name != ROOT_WORKSPACE:
                    ws.fail(
                        "path", "missing required key", f'add path = "dir/of/{name}" to [{ws.path}]'
                    )
                written = "."
            rel, real = self.resolve(ws, written)
            if name == ROOT_WORKSPACE and rel != ".":
                ws.fail("path", 'the workspace "." is the project root', 'write path = "."')
            other = by_dir.get(rel)
            if other is not None:
                ws.fail(
                    "path",
                    f'same directory as workspace "{other}": {rel}',
                    "give each workspace its own directory",
                )
            by_dir[rel] = name
            env: Env = root_env_sorted
            phases: tuple[Phase, ...] = ()
            if rel != "." and (
                rel in self.pending or os.path.isfile(os.path.join(real, MAKE_FILE))
            ):
                env, phases = self.own_file(rel, real, root_env)
            found.append(
                Workspace(
                    name=name,
                    path=rel,
                    depends_on=depends_on,
                    env=env,
                    phases=phases,
                    description=description,
                    source=source,
                )
            )
        return tuple(found)

    def own_file_display(self, rel: str) -> str:
        return os.path.normpath(os.path.join(self.root_given, rel, MAKE_FILE))

    def own_file(
        self, rel: str, real: str, root_env: Mapping[str, str]
    ) -> tuple[Env, tuple[Phase, ...]]:
        """A workspace's own make.toml: its [env] merged over the root's, and its phases."""
        display = self.own_file_display(rel)
        if rel in self.pending:
            doc = _toml_text(self.pending[rel], display)
        else:
            doc = read_toml(os.path.join(real, MAKE_FILE), display)
        self.read.append(f"{rel}/{MAKE_FILE}")
        top = Table(doc, display, "", self.warnings)
        top.check_keys(_WORKSPACE_FILE_KEYS, "a workspace make.toml (only [env] and [lifecycle])")
        env = dict(root_env)
        if "env" in doc:
            env.update(parse_env(doc["env"], display, "env", self.warnings))
        phases = self.lifecycle(top.sub("lifecycle"), display, f"{rel}/{MAKE_FILE}")
        return sorted_env(env), phases

    def resolve(self, ws: Table, written: str) -> tuple[str, str]:
        """The workspace directory as (posix path relative to the root, real absolute path).

        Symlinks are resolved; the result must be a directory inside the project root. Each
        component is lstat'ed once per load (shared parents are remembered).
        """
        key = ws.key("path")
        shown = json.dumps(written)
        if not written:
            raise_error(self.file, key, "must not be empty", 'use "." for the project root')
        if "\0" in written:
            raise_error(self.file, key, "contains a NUL character", "fix the path")
        if os.path.isabs(written):
            raise_error(
                self.file,
                key,
                f"{shown} is an absolute path",
                "write it relative to the project root",
            )
        parts = [p for p in written.split("/") if p and p != "."]
        if ".." in parts:
            # ".." after a symlink means the link's parent: let the OS decide, then check.
            real = os.path.realpath(os.path.join(self.root_real, written))
            self.check_inside(key, shown, real)
            if not os.path.exists(real):
                raise_error(
                    self.file,
                    key,
                    f"{shown} does not exist",
                    "create the directory or fix the path",
                )
            is_dir = os.path.isdir(real)
        else:
            real, is_dir = self.root_real, True
            rel = ""
            for part in parts:
                rel = f"{rel}/{part}" if rel else part
                known = self.walked.get(rel)
                if known is not None:
                    real, is_dir = known
                    continue
                real, is_dir = self.step(key, shown, real, part)
                self.walked[rel] = (real, is_dir)
            self.check_inside(key, shown, real)
        if not is_dir:
            raise_error(self.file, key, f"{shown} is not a directory", "point it at a directory")
        rel_path = "." if real == self.root_real else real[len(self.root_prefix) :]
        return rel_path.replace(os.sep, "/"), real

    def step(self, key: str, shown: str, parent: str, part: str) -> tuple[str, bool]:
        """One path component below ``parent``: its real path and whether it is a directory."""
        candidate = os.path.join(parent, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            raise_error(
                self.file,
                key,
                f"{shown} does not exist (no {candidate})",
                "create the directory or fix the path",
            )
        except OSError as exc:
            raise_error(
                self.file,
                key,
                f"cannot access {candidate}: {exc.strerror or exc}",
                "check the path and its permissions",
            )
        if stat.S_ISLNK(st.st_mode):
            real = os.path.realpath(candidate)
            if not os.path.exists(real):
                raise_error(
                    self.file,
                    key,
                    f"{shown} does not exist ({candidate} is a broken link)",
                    "create the directory or fix the link",
                )
            return real, os.path.isdir(real)
        return candidate, stat.S_ISDIR(st.st_mode)

    def check_inside(self, key: str, shown: str, real: str) -> None:
        if real != self.root_real and not real.startswith(self.root_prefix):
            raise_error(
                self.file,
                key,
                f"{shown} is outside the project root (it resolves to {real})",
                f"use a directory inside {self.root_real}",
            )

    # -- references ---------------------------------------------------------------------------

    @staticmethod
    def check_ref(
        file: str,
        key: str,
        name: str,
        known: Mapping[str, object] | set[str],
        ordered: Sequence[str],
        what: str,
    ) -> None:
        """Fail unless ``name`` is one of the ``known`` workspaces or phases."""
        if name in known:
            return
        close = suggest(name, ordered)
        more = f', did you mean "{close}"?' if close else ""
        declare = (
            f"[workspace.{quote_key(name)}]"
            if what == "workspace"
            else f"[lifecycle.{quote_key(name)}]"
        )
        hint = f"declare {declare} or fix the name"
        if close is None:
            hint += f"; {what}s: {listing(ordered)}"
        raise_error(file, key, f'unknown {what} "{name}"{more}', hint)

    def check_refs(
        self,
        file: str,
        key: str,
        names: Sequence[str],
        known: Mapping[str, object] | set[str],
        ordered: Sequence[str],
        what: str,
    ) -> None:
        for i, name in enumerate(names):
            self.check_ref(file, f"{key}[{i}]", name, known, ordered, what)

    def check_phase_refs(
        self,
        phases: Sequence[Phase],
        file: str,
        known_ws: set[str],
        ws_names: Sequence[str],
        phase_names: Mapping[str, str],
    ) -> None:
        ordered = list(phase_names)
        for phase in phases:
            key = join_key("lifecycle", phase.name)
            if phase.workspaces is not None:
                self.check_refs(
                    file,
                    f"{key}.workspaces",
                    phase.workspaces,
                    known_ws,
                    [*ws_names, ROOT_WORKSPACE],
                    "workspace",
                )
            for i, dep in enumerate(phase.depends_on):
                self.check_ref(
                    file,
                    f"{key}.depends_on[{i}]",
                    dep.removeprefix("^"),
                    phase_names,
                    ordered,
                    "phase",
                )

    def check_cycles(self, workspaces: Sequence[Workspace]) -> None:
        graph = {w.name: w.depends_on for w in workspaces}
        cycle = _find_cycle(graph)
        if cycle is not None:
            hint = "remove one of these depends_on entries"
            if any(w.source != MAKE_FILE for w in workspaces if w.name in cycle):
                hint = (
                    "remove one of these dependencies from the package manifests, or override "
                    "what they say with depends_on in a [workspace.NAME] table"
                )
            raise CycleError(
                "workspace cycle: " + " -> ".join(cycle),
                file=self.file,
                key=f"{join_key('workspace', cycle[0])}.depends_on",
                hint=hint,
            )


def _find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The first cycle of a directed graph, as a path that ends where it starts; else None.

    Iterative depth-first search in the graph's order, so long chains cannot hit the recursion
    limit and the reported cycle is always the same one.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in graph:
        if start in state:
            continue
        state[start] = 1
        path = [start]
        stack = [iter(graph.get(start, ()))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                state[path.pop()] = 2
                continue
            seen = state.get(nxt)
            if seen == 1:
                return [*path[path.index(nxt) :], nxt]
            if seen is None:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(graph.get(nxt, ())))
    return None


def _remote_timeout(table: Table) -> float | None:
    """``[cache] remote_timeout``: seconds, above 0 and at most a day, or None."""
    value = table.data.get("remote_timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        table.fail("remote_timeout", f"expected a number of seconds, got {type_name(value)}")
    if not 0 < value <= 86400:  # NaN fails this too
        table.fail(
            "remote_timeout",
            f"must be above 0 and at most 86400 seconds, got {format_number(value)}",
            "write e.g. remote_timeout = 120",
        )
    return float(value)
