"""Workspaces found in a package manager's manifests, for ``[project] workspaces``.

A monorepo already says what its packages are and how they depend on each other: in
``pnpm-workspace.yaml`` and each ``package.json``, in a Cargo ``[workspace]``, in a uv
``[tool.uv.workspace]``. ``discover`` reads those files so make.toml need not repeat them:

- npm / yarn: the root ``package.json`` ``workspaces`` (an array of globs, or
  ``{"packages": [...]}``); pnpm: ``pnpm-workspace.yaml`` ``packages`` (``!glob`` excludes).
  Each matched directory holding a ``package.json`` is a package named by its ``name``; its
  dependencies are the other packages named in ``dependencies``, ``devDependencies``,
  ``peerDependencies`` or ``optionalDependencies``, whatever the version spec
  (``workspace:*`` included). The root package is the project root, not a workspace.
- Cargo: ``[workspace] members`` globs less ``exclude`` (a directory and everything below it),
  plus the root itself when it is a ``[package]``, plus, as Cargo does, every path dependency
  inside the root. A crate depends on the members it names as path dependencies (in
  ``[dependencies]``, ``[dev-dependencies]``, ``[build-dependencies]`` and their
  ``[target.X]`` variants) or as ``x = { workspace = true }`` where the root's
  ``[workspace.dependencies]`` gives ``x`` a path to a member.
- uv: ``[tool.uv.workspace] members`` less ``exclude``, plus the root when it has a
  ``[project]``. A member depends on the members it lists (``[project] dependencies``,
  optional dependencies, dependency groups) that ``[tool.uv.sources]`` (its own, else the
  root's) marks ``{ workspace = true }``.

Globs are gitignore-style (``ggen.cache.files.Globs``) and match directories; ``node_modules``,
``.git``, ``.ggen``, ``target`` and ``.venv`` are never searched. Every problem (unreadable or
malformed manifest, a package without a name, two packages with one name) is a ``ConfigError``
naming the manifest. Reading YAML imports PyYAML, and TOML the make.toml reader, on first use.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn

from ggen.errors import ConfigError

if TYPE_CHECKING:
    from ggen.globs import Globs


class Source(enum.Enum):
    """A package manager whose workspace manifests ggen reads."""

    NPM = "npm"
    YARN = "yarn"
    PNPM = "pnpm"
    CARGO = "cargo"
    UV = "uv"


ROOT_FILES: Mapping[Source, str] = MappingProxyType(
    {
        Source.NPM: "package.json",
        Source.YARN: "package.json",
        Source.PNPM: "pnpm-workspace.yaml",
        Source.CARGO: "Cargo.toml",
        Source.UV: "pyproject.toml",
    }
)
"""The root file that declares each source's workspace."""

SKIPPED_DIRS = frozenset({"node_modules", ".git", ".ggen", "target", ".venv"})
_JS_DEPENDENCY_FIELDS = (
    "dependencies",
    "devDependencies",
    "peerDependencies",
    "optionalDependencies",
)
_CARGO_DEPENDENCY_TABLES = (
    "dependencies",
    "dev-dependencies",
    "build-dependencies",
    "dev_dependencies",
    "build_dependencies",
)
_BRACES = re.compile(r"\{([^{}]*)\}")
_WILDCARD = re.compile(r"[*?\[\\]")
_PEP508_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


@dataclass(frozen=True)
class Found:
    """One package found by discovery."""

    name: str  # as its manifest writes it: "@scope/ui", "my-crate", "my-lib"
    path: str  # posix, relative to the project root ("." for the root itself)
    depends_on: tuple[str, ...]  # names of other found packages, sorted
    source: str  # the root file that made it a workspace: "pnpm-workspace.yaml"
    manifest: str  # its own manifest, relative to the root: "packages/ui/package.json"


def discover(root: str, sources: Sequence[Source]) -> tuple[Found, ...]:
    """Every package that the workspace manifests of ``sources`` declare under ``root``.

    ``root`` is the project directory as given (messages name files below it); the sources are
    read in the order given, each package sorted by path. A directory or a name found twice
    (by two sources, or by one) is an error naming both manifests.
    """
    found: list[Found] = []
    js_read = False
    for source in dict.fromkeys(sources):
        if source in (Source.NPM, Source.YARN):
            if js_read:  # npm and yarn read the same package.json
                continue
            js_read = True
            found += _js(root, ROOT_FILES[source], _package_json_patterns(root))
        elif source is Source.PNPM:
            found += _js(root, ROOT_FILES[source], _pnpm_patterns(root))
        elif source is Source.CARGO:
            found += _cargo(root)
        else:
            found += _uv(root)
    _check_unique(root, found)
    return tuple(found)


def sources_present(root: str) -> tuple[Source, ...]:
    """The sources whose workspace the root declares, for ``workspaces = "auto"``.

    pnpm when ``pnpm-workspace.yaml`` exists (pnpm then ignores ``package.json``
    ``workspaces``), else yarn or npm when ``package.json`` has ``workspaces`` (yarn when there
    is a ``yarn.lock`` or ``packageManager`` names yarn); Cargo when ``Cargo.toml`` has a
    ``[workspace]``; uv when ``pyproject.toml`` has ``[tool.uv.workspace]``.
    """
    found: list[Source] = []
    if os.path.isfile(os.path.join(root, ROOT_FILES[Source.PNPM])):
        found.append(Source.PNPM)
    elif os.path.isfile(os.path.join(root, "package.json")):
        pkg = _read_json(root, "package.json")
        if "workspaces" in pkg:
            manager = pkg.get("packageManager")
            yarn = os.path.isfile(os.path.join(root, "yarn.lock")) or (
                isinstance(manager, str) and manager.startswith("yarn@")
            )
            found.append(Source.YARN if yarn else Source.NPM)
    cargo = os.path.isfile(os.path.join(root, "Cargo.toml"))
    if cargo and "workspace" in _read_toml(root, "Cargo.toml"):
        found.append(Source.CARGO)
    if os.path.isfile(os.path.join(root, "pyproject.toml")):
        tool = _read_toml(root, "pyproject.toml").get("tool")
        uv = tool.get("uv") if isinstance(tool, dict) else None
        if isinstance(uv, dict) and "workspace" in uv:
            found.append(Source.UV)
    return tuple(found)


# -- npm, yarn and pnpm -----------------------------------------------------------------------


def _package_json_patterns(root: str) -> list[str]:
    pkg = _read_json(root, "package.json")
    value = pkg.get("workspaces")
    key = "workspaces"
    if isinstance(value, dict):
        value, key = value.get("packages"), "workspaces.packages"
    if value is None:
        _fail(
            root,
            "package.json",
            key,
            "no workspaces declared",
            'add "workspaces": ["packages/*"] or remove the source from [project] workspaces',
        )
    return _strings(root, "package.json", key, value)


def _pnpm_patterns(root: str) -> list[str]:
    doc = _read_yaml(root, "pnpm-workspace.yaml")
    value = doc.get("packages") if isinstance(doc, dict) else None
    if value is None:
        _fail(
            root,
            "pnpm-workspace.yaml",
            "packages",
            "no packages declared",
            'add packages: ["packages/*"] or remove "pnpm" from [project] workspaces',
        )
    return _strings(root, "pnpm-workspace.yaml", "packages", value)


def _js(root: str, declared_in: str, patterns: Sequence[str]) -> list[Found]:
    includes = [p for p in patterns if not p.startswith("!")]
    manifests = {
        d: _read_json(root, _in(d, "package.json"))
        for d in _member_dirs(root, includes, "package.json", patterns)
        if d != "."
    }
    names = {
        d: _package_name(root, _in(d, "package.json"), pkg.get("name"))
        for d, pkg in manifests.items()
    }
    known = set(names.values())
    found = []
    for d, pkg in manifests.items():
        deps: set[str] = set()
        for field in _JS_DEPENDENCY_FIELDS:
            table = pkg.get(field)
            if isinstance(table, dict):
                deps.update(n for n in table if n in known and n != names[d])
        found.append(Found(names[d], d, tuple(sorted(deps)), declared_in, _in(d, "package.json")))
    return found


# -- Cargo ------------------------------------------------------------------------------------


def _cargo(root: str) -> list[Found]:
    doc = _read_toml(root, "Cargo.toml")
    workspace = doc.get("workspace")
    if not isinstance(workspace, dict):
        _fail(
            root,
            "Cargo.toml",
            "workspace",
            "no [workspace] table",
            'add [workspace] with members = ["crates/*"] '
            'or remove "cargo" from [project] workspaces',
        )
    members = _strings(root, "Cargo.toml", "workspace.members", workspace.get("members", []))
    excluded = _globs(
        _strings(root, "Cargo.toml", "workspace.exclude", workspace.get("exclude", []))
    )
    shared = workspace.get("dependencies")
    shared_paths: dict[str, str] = {}
    if isinstance(shared, dict):
        for key, spec in shared.items():
            target = _dep_path(".", spec)
            if target is not None:
                shared_paths[key] = target

    dirs = [d for d in _member_dirs(root, members, "Cargo.toml") if not excluded.match(d)]
    docs: dict[str, dict[str, Any]] = {d: _read_toml(root, _in(d, "Cargo.toml")) for d in dirs}
    if "package" in doc:
        docs = {".": doc, **docs}
    # Cargo makes every path dependency inside the workspace a member: follow them.
    pending = list(docs)
    while pending:
        d = pending.pop()
        if d not in docs:
            if d == ".." or d.startswith("../") or excluded.match(d):
                continue
            if not os.path.isfile(os.path.join(root, _in(d, "Cargo.toml"))):
                continue
            docs[d] = _read_toml(root, _in(d, "Cargo.toml"))
        for key, spec in _cargo_deps(docs[d]):
            target = _cargo_target(d, key, spec, shared_paths)
            if target is not None and target not in docs:
                pending.append(target)

    names = {d: _cargo_name(root, d, member) for d, member in docs.items()}
    found = []
    for d in sorted(docs, key=_path_order):
        deps: set[str] = set()
        for key, spec in _cargo_deps(docs[d]):
            target = _cargo_target(d, key, spec, shared_paths)
            if target is not None and target in names and target != d:
                deps.add(names[target])
        found.append(Found(names[d], d, tuple(sorted(deps)), "Cargo.toml", _in(d, "Cargo.toml")))
    return found


def _cargo_deps(doc: Mapping[str, Any]) -> Iterator[tuple[str, object]]:
    """Every (key, spec) of a crate's dependency tables, target-specific ones included."""
    tables = [doc.get(t) for t in _CARGO_DEPENDENCY_TABLES]
    targets = doc.get("target")
    if isinstance(targets, dict):
        for target in targets.values():
            if isinstance(target, dict):
                tables += [target.get(t) for t in _CARGO_DEPENDENCY_TABLES]
    for table in tables:
        if isinstance(table, dict):
            yield from table.items()


def _cargo_target(d: str, key: str, spec: object, shared: Mapping[str, str]) -> str | None:
    """The directory a crate's dependency ``key`` points at: its own path, or the path the
    root's ``[workspace.dependencies]`` gives it when it says ``workspace = true``."""
    target = _dep_path(d, spec)
    if target is None and isinstance(spec, dict) and spec.get("workspace") is True:
        return shared.get(key)
    return target


def _dep_path(base: str, spec: object) -> str | None:
    """The root-relative directory of a ``{ path = ... }`` dependency declared in ``base``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
        return None
    return os.path.normpath(os.path.join(base, spec["path"])).replace(os.sep, "/")


def _cargo_name(root: str, d: str, doc: Mapping[str, Any]) -> str:
    package = doc.get("package")
    name = package.get("name") if isinstance(package, dict) else None
    return _package_name(root, _in(d, "Cargo.toml"), name, "package.name")


# -- uv ---------------------------------------------------------------------------------------


def _uv(root: str) -> list[Found]:
    doc = _read_toml(root, "pyproject.toml")
    workspace = _dig(doc, "tool", "uv", "workspace")
    if not isinstance(workspace, dict):
        _fail(
            root,
            "pyproject.toml",
            "tool.uv.workspace",
            "no [tool.uv.workspace] table",
            'add [tool.uv.workspace] with members = ["packages/*"] '
            'or remove "uv" from [project] workspaces',
        )
    key = "tool.uv.workspace"
    members = _strings(root, "pyproject.toml", f"{key}.members", workspace.get("members", []))
    excluded = _globs(
        _strings(root, "pyproject.toml", f"{key}.exclude", workspace.get("exclude", []))
    )
    dirs = [d for d in _member_dirs(root, members, "pyproject.toml") if not excluded.match(d)]
    docs = {d: _read_toml(root, _in(d, "pyproject.toml")) for d in dirs if d != "."}
    if "project" in doc:
        docs = {".": doc, **docs}
    names = {
        d: _package_name(
            root, _in(d, "pyproject.toml"), _dig(member, "project", "name"), "project.name"
        )
        for d, member in docs.items()
    }
    by_normal = {_normal(n): n for n in names.values()}
    root_sources = _uv_sources(doc)
    found = []
    for d in sorted(docs, key=_path_order):
        sources = {**root_sources, **_uv_sources(docs[d])}
        deps = {
            by_normal[n]
            for n in _python_requirements(docs[d])
            if n in by_normal and by_normal[n] != names[d] and _workspace_source(sources.get(n))
        }
        found.append(
            Found(names[d], d, tuple(sorted(deps)), "pyproject.toml", _in(d, "pyproject.toml"))
        )
    return found


def _uv_sources(doc: Mapping[str, Any]) -> dict[str, object]:
    sources = _dig(doc, "tool", "uv", "sources")
    return {_normal(k): v for k, v in sources.items()} if isinstance(sources, dict) else {}


def _workspace_source(spec: object) -> bool:
    return isinstance(spec, dict) and spec.get("workspace") is True


def _python_requirements(doc: Mapping[str, Any]) -> set[str]:
    """The normalised names a pyproject requires: dependencies, extras and dependency groups."""
    lists: list[object] = [
        _dig(doc, "project", "dependencies"),
        _dig(doc, "tool", "uv", "dev-dependencies"),
    ]
    for table in (_dig(doc, "project", "optional-dependencies"), doc.get("dependency-groups")):
        if isinstance(table, dict):
            lists += table.values()
    names: set[str] = set()
    for listed in lists:
        if isinstance(listed, list):
            for requirement in listed:
                if isinstance(requirement, str):
                    match = _PEP508_NAME.match(requirement)
                    if match:
                        names.add(_normal(match.group(1)))
    return names


def _normal(name: str) -> str:
    """A Python package name normalised as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


# -- directories ------------------------------------------------------------------------------


def _member_dirs(
    root: str, includes: Sequence[str], manifest: str, ordered: Sequence[str] | None = None
) -> list[str]:
    """The directories (root-relative, sorted) matched by the globs that hold ``manifest``.

    ``ordered`` is the full list when ``!glob`` exclusions are mixed in (the last matching
    pattern decides); a glob matches a directory, not what lies below it, so each pattern is
    matched as ``PATTERN/manifest``.
    """
    patterns = ordered if ordered is not None else includes
    globs = _globs([_with_file(p, manifest) for p in patterns])
    found: set[str] = set()
    if globs.match(manifest) and os.path.isfile(os.path.join(root, manifest)):
        found.add(".")
    depths: dict[str, int | None] = {}
    for p in (x for i in includes for x in _expand_braces(i)):
        start, depth = _fixed_prefix(p)
        known = depths.get(start, 0)
        depths[start] = None if depth is None or known is None else max(depth, known)
    for start, depth in sorted(depths.items()):
        for d in _walk(root, start, depth):
            if globs.match(_in(d, manifest)) and os.path.isfile(os.path.join(root, d, manifest)):
                found.add(d)
    return sorted(found, key=_path_order)


def _walk(root: str, start: str, depth: int | None) -> Iterator[str]:
    """The directories below ``root/start`` down to ``depth`` levels (None: all), ``start``
    included unless it is the root, root-relative, without entering skipped directories or
    symlinks."""
    top = os.path.join(root, start) if start else root
    if not os.path.isdir(top):
        return
    if start:
        yield start
    if depth == 0:
        return
    for current, dirs, _files in os.walk(top):
        below = os.path.relpath(current, top)
        level = 0 if below == "." else below.count(os.sep) + 1  # of ``current`` below ``top``
        rel = os.path.relpath(current, root).replace(os.sep, "/")
        kept = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for d in kept:
            yield d if rel == "." else f"{rel}/{d}"
        dirs[:] = kept if depth is None or level + 1 < depth else []


def _fixed_prefix(pattern: str) -> tuple[str, int | None]:
    """The directory below which every match of ``pattern`` lies ("" for the whole tree), and
    how many levels below it a match lies (None: any number, for ``**``)."""
    parts = [p for p in pattern.strip("/").split("/") if p not in ("", ".")]
    fixed: list[str] = []
    for part in parts:
        if _WILDCARD.search(part):
            break
        fixed.append(part)
    rest = parts[len(fixed) :]
    return "/".join(fixed), None if "**" in rest else len(rest)


def _with_file(pattern: str, manifest: str) -> str:
    negated = pattern.startswith("!")
    body = pattern.removeprefix("!").rstrip("/")
    while body.startswith("./"):
        body = body[2:]
    joined = manifest if body in ("", ".") else f"{body}/{manifest}"
    return ("!" if negated else "") + joined


def _globs(patterns: Iterable[str]) -> Globs:
    """Gitignore-style globs (as for ``inputs``), with ``{a,b}`` alternatives expanded."""
    from ggen.globs import Globs

    return Globs(x for p in patterns for x in _expand_braces(p))


def _expand_braces(pattern: str) -> list[str]:
    """``a/{b,c}/d`` as ``a/b/d`` and ``a/c/d`` (npm's and pnpm's globs allow it); nested
    groups too, innermost first. A group without a comma stays as written."""
    for group in _BRACES.finditer(pattern):
        if "," in group.group(1):
            head, tail = pattern[: group.start()], pattern[group.end() :]
            return [
                x for alt in group.group(1).split(",") for x in _expand_braces(head + alt + tail)
            ]
    return [pattern]


def _path_order(path: str) -> tuple[bool, str]:
    return (path != ".", path)


def _in(d: str, file: str) -> str:
    return file if d == "." else f"{d}/{file}"


# -- manifests --------------------------------------------------------------------------------


def _check_unique(root: str, found: Sequence[Found]) -> None:
    by_name: dict[str, Found] = {}
    by_dir: dict[str, Found] = {}
    for f in found:
        other = by_name.get(f.name)
        if other is not None:
            _fail(
                root,
                f.manifest,
                None,
                f'two packages named "{f.name}": {other.manifest} and {f.manifest}',
                "rename one of them",
            )
        other = by_dir.get(f.path)
        if other is not None:
            _fail(
                root,
                f.manifest,
                None,
                f"found by both {other.source} and {f.source}",
                "list only one of these sources in [project] workspaces",
            )
        by_name[f.name] = f
        by_dir[f.path] = f


def _package_name(root: str, manifest: str, name: object, key: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        _fail(
            root,
            manifest,
            key,
            "missing package name"
            if name is None
            else "the package name must be a non-empty string",
            "every workspace package needs a name: add one",
        )
    return name


def _strings(root: str, file: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail(
            root, file, key, "expected an array of strings", 'write a list such as ["packages/*"]'
        )
    return [str(v) for v in value]


def _dig(doc: Mapping[str, Any], *keys: str) -> Any:
    value: Any = doc
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _display(root: str, rel: str) -> str:
    return os.path.normpath(os.path.join(root, rel))


def _fail(root: str, rel: str, key: str | None, message: str, hint: str | None = None) -> NoReturn:
    raise ConfigError(message, file=_display(root, rel), key=key, hint=hint)


def _read_text(root: str, rel: str) -> str:
    try:
        with open(os.path.join(root, rel), encoding="utf-8-sig") as fh:
            return fh.read()
    except FileNotFoundError:
        _fail(
            root, rel, None, "not found", "create it or remove its source from [project] workspaces"
        )
    except UnicodeDecodeError:
        _fail(root, rel, None, "not valid UTF-8", "save it as UTF-8")
    except OSError as exc:
        _fail(
            root, rel, None, f"cannot read: {exc.strerror or exc}", "check the file's permissions"
        )


def _read_json(root: str, rel: str) -> dict[str, Any]:
    text = _read_text(root, rel)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            exc.msg,
            file=_display(root, rel),
            line=exc.lineno,
            column=exc.colno,
            hint="fix the JSON",
        ) from None
    if not isinstance(doc, dict):
        _fail(root, rel, None, "expected a JSON object", "write the manifest as { ... }")
    return dict(doc)


def _read_yaml(root: str, rel: str) -> object:
    import yaml

    text = _read_text(root, rel)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            str(problem),
            file=_display(root, rel),
            line=mark.line + 1 if mark is not None else None,
            column=mark.column + 1 if mark is not None else None,
            hint="fix the YAML",
        ) from None


def _read_toml(root: str, rel: str) -> dict[str, Any]:
    from ggen.make.toml_lines import read_toml as read

    if not os.path.isfile(os.path.join(root, rel)):
        _read_text(root, rel)  # the error names the file
    return read(os.path.join(root, rel), _display(root, rel))
