"""Which workspaces a command is about: ``--filter`` selectors, ``--affected``, and the
workspace ggen was started in.

The rules are pure functions over a ``WorkspaceGraph`` (names, paths, dependencies) and the sets
of changed files that git reported; ``resolve_selection`` at the end is the one place that asks
git (through ``ggen.gitfiles``). The result narrows which workspaces' tasks are requested; the
planner still adds the tasks they depend on.

Selector syntax, in the spirit of pnpm and turbo (``!`` excludes; several filters union, then
exclusions subtract; only exclusions start from every workspace)::

    NAME, @scope/*        a name, or a glob over names (* and ? also match "/")
    ./DIR, ../DIR, .      workspaces at or below the directories a glob matches, relative to the
    {DIR}                 current directory (braces: the same, for a path without "./")
    //DIR                 the same, relative to the project root
    [REF]                 workspaces with files changed since git REF (committed, staged,
                          unstaged, untracked); after a name or directory: both must hold;
    [A...B]               the files B committed since it forked from A (git's three-dot diff)
    X...   X^...          X and what it depends on (^: without X itself)
    ...X   ...^X          X and what depends on it (^: without X itself)
"""

from __future__ import annotations

import enum
import fnmatch
import os
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from ggen.errors import UsageError
from ggen.make import MAKE_FILE, ROOT_WORKSPACE, Make

LOCKFILES = frozenset(
    {"package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "yarn.lock", "Cargo.lock"}
    | {"uv.lock", "bun.lockb", "bun.lock"}
)
"""Lockfiles outside every workspace: a change to one affects every workspace."""
ROOT_MANIFESTS = frozenset(
    {MAKE_FILE, "package.json", "pnpm-workspace.yaml", "Cargo.toml", "pyproject.toml"}
)
"""Files at the project root that say what the workspaces are and share: a change to one
affects every workspace (discovery reads them; root dependencies reach every package)."""

_NAME_GLOB_CHARS = frozenset("*?")
_IGNORED_PARTS = frozenset({".git", ".ggen"})


class Closure(enum.Enum):
    """Whether a selector adds the dependencies (or dependents) of what it matches."""

    NONE = "none"
    WITH_SELF = "with-self"  # X... / ...X
    WITHOUT_SELF = "without-self"  # X^... / ...^X


@dataclass(frozen=True)
class Selector:
    """One parsed ``--filter`` value."""

    text: str  # as written, for messages
    exclude: bool = False
    name: str | None = None  # a name or a name glob
    literal: bool = False  # ``name`` is exact even with glob characters (``-w``)
    directory: str | None = None  # root-relative posix glob; "" is the root itself
    ref: str | None = None  # a git revision
    dependencies: Closure = Closure.NONE
    dependents: Closure = Closure.NONE


@dataclass(frozen=True)
class WorkspaceGraph:
    """The workspaces of a project: name -> path (posix, root-relative) and dependencies."""

    paths: Mapping[str, str]
    deps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, make: Make) -> WorkspaceGraph:
        """The declared workspaces of ``make`` (dependencies on undeclared ones dropped)."""
        paths = {w.name: w.path for w in make.workspaces}
        deps = {w.name: tuple(d for d in w.depends_on if d in paths) for w in make.workspaces}
        return cls(paths, deps)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.paths)

    def dependencies(self, start: Iterable[str]) -> frozenset[str]:
        """Everything the workspaces ``start`` depend on, transitively (not ``start``)."""
        return _reach(start, lambda n: self.deps.get(n, ()))

    def dependents(self, start: Iterable[str]) -> frozenset[str]:
        """Every workspace that depends on one of ``start``, transitively (not ``start``)."""
        users: dict[str, list[str]] = {}
        for name, deps in self.deps.items():
            for d in deps:
                users.setdefault(d, []).append(name)
        return _reach(start, lambda n: users.get(n, ()))

    @cached_property
    def _by_path(self) -> Mapping[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for name, path in self.paths.items():
            out.setdefault("" if path == "." else path, []).append(name)
        return {k: tuple(v) for k, v in out.items()}

    def holders(self, path: str) -> tuple[str, ...]:
        """Every workspace whose directory holds ``path`` (root-relative), deepest first; a
        declared project root workspace (path ``.``) holds everything."""
        found: list[str] = []
        cur = path
        while cur:
            found.extend(self._by_path.get(cur, ()))
            cur = posixpath.dirname(cur)
        found.extend(self._by_path.get("", ()))
        return tuple(found)

    def owner(self, path: str) -> str | None:
        """The deepest workspace (not the project root) whose directory holds ``path``."""
        inner = [n for n in self.holders(path) if self.paths[n] not in (".", "")]
        return inner[0] if inner else None


def _reach(start: Iterable[str], step: Callable[[str], Iterable[str]]) -> frozenset[str]:
    first = list(start)
    seen: set[str] = set()
    todo = [n for s in first for n in step(s)]
    while todo:
        cur = todo.pop()
        if cur not in seen:
            seen.add(cur)
            todo.extend(step(cur))
    return frozenset(seen)


def _at_or_below(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


# -- parsing --------------------------------------------------------------------------------


def parse_filter(text: str, cwd: str = "") -> Selector:
    """Parse one ``--filter`` value; ``cwd`` is the current directory relative to the project
    root (posix, "" at the root), against which ``./DIR`` selectors are resolved."""
    s = text.strip()
    exclude = s.startswith("!")
    if exclude:
        s = s[1:]
    dependents = Closure.NONE
    if s.startswith("..."):
        s = s[3:]
        dependents = Closure.WITH_SELF
        if s.startswith("^"):
            s, dependents = s[1:], Closure.WITHOUT_SELF
    dependencies = Closure.NONE
    if s.endswith("..."):
        s = s[:-3]
        dependencies = Closure.WITH_SELF
        if s.endswith("^"):
            s, dependencies = s[:-1], Closure.WITHOUT_SELF
    ref: str | None = None
    if s.endswith("]") and "[" in s:
        at = s.rindex("[")
        ref, s = s[at + 1 : -1].strip(), s[:at]
        if not ref:
            raise UsageError(f'--filter "{text}": empty git revision "[]"')
    name: str | None = None
    directory: str | None = None
    if s.startswith("{") and s.endswith("}"):
        directory = _directory(text, s[1:-1], cwd)
    elif _is_dir(s):
        directory = _directory(text, s, cwd)
    elif s:
        name = s
    elif ref is None:
        raise UsageError(
            f'--filter "{text}": selects nothing (write a name, a ./directory or a [git-ref])'
        )
    return Selector(
        text=text,
        exclude=exclude,
        name=name,
        directory=directory,
        ref=ref,
        dependencies=dependencies,
        dependents=dependents,
    )


def _is_dir(s: str) -> bool:
    return s in (".", "..") or s.startswith(("./", "../", "//"))


def _directory(text: str, written: str, cwd: str) -> str:
    """The root-relative posix glob of a directory selector."""
    joined = written[2:] if written.startswith("//") else posixpath.join(cwd, written)
    norm = posixpath.normpath(joined) if joined else "."
    if norm == ".." or norm.startswith("../") or norm.startswith("/"):
        raise UsageError(
            f'--filter "{text}": {written} is outside the project root '
            "(directories are relative to the current directory; //DIR starts at the root)"
        )
    return "" if norm == "." else norm


# -- evaluation -----------------------------------------------------------------------------


def affected_by(
    graph: WorkspaceGraph, files: Iterable[str], project_inputs: Sequence[str] = ()
) -> frozenset[str]:
    """The workspaces a change to ``files`` (root-relative posix paths) affects.

    A file affects every workspace whose directory holds it, its own make.toml included: with
    nested workspaces, the outer one as well as the inner one (an outer workspace's files are
    every file below it, unless its ``inputs`` say otherwise), and a declared project root
    workspace (``.``) is affected by every file. A file outside every other workspace affects
    every workspace when it is a ``[project] inputs`` file, a lockfile or one of the
    ``ROOT_MANIFESTS`` at the root. Anything under ``.git`` or ``.ggen`` is git's or ggen's own.
    """
    from ggen.globs import Globs

    inputs = Globs(project_inputs) if project_inputs else None
    out: set[str] = set()
    for f in files:
        if _IGNORED_PARTS.intersection(f.split("/")):
            continue
        if inputs is not None and inputs.match(f):
            return graph.names
        if graph.owner(f) is None and (f in ROOT_MANIFESTS or posixpath.basename(f) in LOCKFILES):
            return graph.names
        out.update(graph.holders(f))
    return frozenset(out)


def matches(
    graph: WorkspaceGraph, sel: Selector, changed: Mapping[str, frozenset[str]]
) -> frozenset[str]:
    """The workspaces ``sel`` selects (ignoring its ``!``); ``changed`` maps each git revision
    of the selectors to the workspaces affected since it (``affected_by``)."""
    core = set(graph.names)
    if sel.name is not None:
        core &= _named(graph, sel)
    if sel.directory is not None:
        core &= _under(graph, sel.directory)
    if sel.ref is not None:
        core &= changed[sel.ref]
    out: set[str] = set()
    if Closure.WITHOUT_SELF not in (sel.dependencies, sel.dependents):
        out |= core
    if sel.dependencies is not Closure.NONE:
        out |= graph.dependencies(core)
    if sel.dependents is not Closure.NONE:
        out |= graph.dependents(core)
    return frozenset(out)


def _named(graph: WorkspaceGraph, sel: Selector) -> frozenset[str]:
    assert sel.name is not None
    if sel.literal or not _NAME_GLOB_CHARS.intersection(sel.name):
        return frozenset({sel.name}) & graph.names
    return frozenset(n for n in graph.names if fnmatch.fnmatchcase(n, sel.name))


def _under(graph: WorkspaceGraph, directory: str) -> frozenset[str]:
    if not directory:
        return graph.names
    from ggen.globs import Globs

    globs = Globs([directory])  # a pattern naming a directory covers everything below it
    return frozenset(n for n, p in graph.paths.items() if p not in (".", "") and globs.match(p))


def select(
    graph: WorkspaceGraph,
    selectors: Sequence[Selector],
    changed: Mapping[str, frozenset[str]] | None = None,
) -> frozenset[str]:
    """The union of what the including selectors select (every workspace when there are only
    exclusions), minus what the excluding ones select."""
    changed = changed or {}
    includes = [s for s in selectors if not s.exclude]
    chosen: set[str] = set()
    if includes:
        for s in includes:
            chosen |= matches(graph, s, changed)
    else:
        chosen = set(graph.names)
    for s in selectors:
        if s.exclude:
            chosen -= matches(graph, s, changed)
    return frozenset(chosen)


def check_names(graph: WorkspaceGraph, selectors: Sequence[Selector]) -> None:
    """Refuse a selector that names (without a glob) a workspace that does not exist."""
    for s in selectors:
        if s.name is None or s.name in graph.paths or s.name == ROOT_WORKSPACE:
            continue
        if not s.literal and _NAME_GLOB_CHARS.intersection(s.name):
            continue
        import difflib

        known = sorted(graph.paths)
        close = difflib.get_close_matches(s.name, known, n=1)
        hint = f', did you mean "{close[0]}"?' if close else ""
        if s.name.strip("/") in graph.paths.values():
            hint = f" (a directory? write ./{s.name.strip('/')})"
        option = f"-w {s.text}" if s.literal else f'--filter "{s.text}"'
        raise UsageError(
            f'{option}: unknown workspace "{s.name}"{hint}'
            f" (workspaces: {', '.join(known) or 'none'})"
        )


def workspace_at(graph: WorkspaceGraph, cwd: str) -> str | None:
    """The workspace whose directory holds ``cwd`` (root-relative; the deepest when nested), or
    None at the root or in a directory of no workspace."""
    return graph.owner(cwd) if cwd else None


def has_tasks(make: Make, phases: Sequence[str], workspaces: Iterable[str]) -> bool:
    """Whether one of ``phases`` runs on one of ``workspaces`` (the planner's rule: a root phase
    runs on its ``workspaces`` list or every workspace, else on the workspaces declaring it).
    An unknown phase counts as having tasks, so that planning reports it."""
    chosen = set(workspaces)
    for name in phases:
        root = make.phase(name)
        if root is not None:
            targets = root.workspaces if root.workspaces is not None else make.default_workspaces()
        elif name in make.phase_names():
            targets = tuple(w.name for w in make.workspaces if w.own_phase(name) is not None)
        else:
            return True
        if chosen.intersection(targets):
            return True
    return False


# -- the command line -----------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What a command runs on: ``workspaces`` (None: every one) and the line that says so."""

    workspaces: tuple[str, ...] | None
    note: str | None = None

    @property
    def empty(self) -> bool:
        return self.workspaces == ()


def resolve_selection(
    make: Make,
    cwd: str,
    *,
    filters: Sequence[str] = (),
    workspaces: Sequence[str] = (),
    affected: bool = False,
    all_: bool = False,
    scope: bool = True,
    env: Mapping[str, str] | None = None,
) -> Selection:
    """The workspaces a command runs on, from its options and the directory it started in.

    ``cwd`` is an absolute path. Without ``--filter``/``--affected``, ``-w`` names are checked
    and pass through; without any of them (nor ``--all``) and when ``scope`` is true, a start
    inside a workspace's directory selects that workspace. ``--affected`` is the filter
    ``...[BASE]``. ``-w`` names join the filters' union as exact names.
    """
    graph = WorkspaceGraph.of(make)
    rel = _relative(make.root, cwd)
    if not filters and not affected:
        if workspaces:
            check_names(graph, [Selector(text=w, name=w, literal=True) for w in workspaces])
            return Selection(tuple(workspaces))
        if all_ or not scope or rel is None:
            return Selection(None)
        here = workspace_at(graph, rel)
        if here is None:
            return Selection(None)
        return Selection((here,), f"in workspace {here} (use --all for every workspace)")
    from ggen.gitfiles import affected_base, changed_files

    selectors = [parse_filter(f, rel or "") for f in filters]
    selectors += [Selector(text=w, name=w, literal=True) for w in workspaces]
    check_names(graph, selectors)
    env = os.environ if env is None else env
    changed: dict[str, frozenset[str]] = {}
    base_note = ""
    if affected:
        base = affected_base(make.root, env)
        selectors.append(Selector(text="--affected", ref=base.commit, dependents=Closure.WITH_SELF))
        base_note = f" (since {base.commit[:10]}: {base.source})"
    for s in selectors:
        if s.ref is not None and s.ref not in changed:
            files = changed_files(make.root, s.ref)
            changed[s.ref] = affected_by(graph, files, make.project.inputs)
    chosen = select(graph, selectors, changed)
    order = dict.fromkeys((*graph.paths, ROOT_WORKSPACE))
    names = tuple(n for n in order if n in chosen or n in workspaces)
    what = " ".join([*(f"--filter {f}" for f in filters), *(["--affected"] if affected else [])])
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    total = len(graph.paths)
    if names:
        note = f"{what}{base_note}: {len(names)} of {total} workspaces: {shown}"
    else:
        note = f"{what}{base_note}: no workspace selected"
    return Selection(names, note)


def _relative(root: str, cwd: str) -> str | None:
    """``cwd`` relative to ``root`` as a posix path ("" for the root), None when outside."""
    rel = os.path.relpath(os.path.realpath(cwd), os.path.realpath(root))
    if rel == os.curdir:
        return ""
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return rel.replace(os.sep, "/")
