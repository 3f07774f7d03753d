"""Which traced file accesses a task did not declare, and the glob that would declare each. Pure.

A task's file events (``audit_trace``) are judged against what ggen keys and restores:

- a file READ is fine when it is one of the task's inputs (as ``ggen run`` lists them for its
  key, ``[project] inputs`` included), matches its own outputs or the outputs of a task it
  depends on, or was written by the task itself before it read it; a file another task
  makes, without this one depending on it, is reported with that task (``made_by``): the fix
  is a dependency, not an input;
- a file WRITTEN (created, written, truncated, renamed or deleted) is fine when it matches the
  task's own outputs.

Left out, never reported: calls that failed (an open that finds no file is a probe: compilers
and interpreters try many names; a failed write wrote nothing), directories, anything under a
``.git`` or ``.ggen`` directory, files git ignores (reads only: no ``inputs`` glob can select
them), reads outside the project (the toolchain: no ``inputs`` glob can name them), and the
system and tool directories of ``LeftOut`` (writes outside the project land there or are
reported). Everything else is a ``Finding`` with the pattern that would cover it: an
``inputs`` glob in make.toml's syntax (``src/**``, ``//tsconfig.base.json``,
``//libs/shared/src/**``) for a read, an ``outputs`` glob for a write inside the workspace.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ggen.cache.files import ALWAYS_EXCLUDED, ROOT_PREFIX, Globs
from ggen.runner.audit_trace import Access, FileEvent

SYSTEM_DIRS = (
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/tmp",
    "/var/tmp",
)


@dataclass(frozen=True)
class LeftOut:
    """Directories whose files are never reported: the system's, the temp dir, the Python
    interpreter's prefixes, every directory on PATH, and the dot-directories and dot-files of
    the home directory (``~/.cache``, ``~/.npm``, ``~/.gitconfig``: tools' own state)."""

    dirs: tuple[str, ...]
    home: str | None = None

    def covers(self, path: str) -> bool:
        """Whether the absolute ``path`` lies in one of the left-out places."""
        if self.home and path.startswith(self.home.rstrip("/") + "/."):
            return True
        return any(_within(path, d) for d in self.dirs)

    def inside(self, root: str) -> LeftOut:
        """The places that count inside the project at ``root``: those within it (a ``.venv``
        that is the interpreter's prefix, ``node_modules/.bin`` on PATH), not those holding
        it (a project under /tmp or the home directory is still judged)."""
        return LeftOut(tuple(d for d in self.dirs if _within(d, root) and d != root), None)


def left_out(environ: Mapping[str, str] = os.environ) -> LeftOut:
    """The ``LeftOut`` of this machine and environment."""
    dirs = [*SYSTEM_DIRS, tempfile.gettempdir(), sys.prefix, sys.base_prefix, sys.exec_prefix]
    dirs.extend(p for p in environ.get("PATH", "").split(os.pathsep) if p.startswith("/"))
    normal = sorted({os.path.normpath(d) for d in dirs if d and d != "/"})
    home = environ.get("HOME")
    return LeftOut(tuple(normal), os.path.normpath(home) if home and home != "/" else None)


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


@dataclass(frozen=True)
class TaskFiles:
    """What one task declares, as ``ggen audit`` judges it (paths relative to the root)."""

    workspace_path: str  # "" for the project root
    inputs: frozenset[str]  # the files of its key, as ``ggen run`` lists them
    outputs: tuple[str, ...]  # its output globs (workspace-relative)
    upstream_outputs: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (workspace path, globs)


@dataclass(frozen=True)
class ProjectView:
    """The project as the rules see it."""

    root: str  # absolute
    workspaces: tuple[tuple[str, str], ...]  # (name, path relative to the root; "" = root)
    left_out: LeftOut
    real_root: str | None = None  # the root with symlinks resolved, when it differs
    # every task's outputs: (task id, workspace path, globs), to name who makes a file
    outputs: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def relative(self, path: str) -> str | None:
        """``path`` relative to the root ("" for the root itself), or None outside it."""
        for root in (self.root, self.real_root):
            if root and _within(path, root):
                return path[len(root) :].lstrip("/")
        return None

    def maker(self, rel: str) -> str | None:
        """The id of a task whose outputs match the root-relative ``rel``, if any."""
        for tid, ws, globs in self.outputs:
            if _matches(globs, ws, rel):
                return tid
        return None

    def owner(self, rel: str) -> tuple[str, str] | None:
        """The innermost workspace (name, path) holding the root-relative ``rel``."""
        best: tuple[str, str] | None = None
        for name, ws in self.workspaces:
            if (not ws or _within(rel, ws)) and (best is None or len(ws) > len(best[1])):
                best = (name, ws)
        return best


@dataclass(frozen=True)
class Finding:
    """A file a task read or wrote without declaring it."""

    path: str  # relative to the project root, or absolute when outside it
    access: Access
    glob: str | None  # the inputs (read) or outputs (write) pattern that would cover it
    workspace: str | None = None  # the workspace that holds the file, if any
    outside: bool = False  # outside the project
    made_by: str | None = None  # read: the task (not a dependency) whose output it is


def classify(
    events: Iterable[FileEvent],
    task: TaskFiles,
    project: ProjectView,
    *,
    ignored: Callable[[str], bool] = lambda rel: False,
    is_dir: Callable[[str], bool] = lambda path: False,
) -> tuple[Finding, ...]:
    """The undeclared reads and writes among ``events`` (in trace order), each once, sorted.

    ``ignored(rel)`` says whether git ignores a root-relative file; ``is_dir(path)`` whether
    an absolute path is a directory (a plain ``open`` of a directory is no read of a file).
    """
    inside_left_out = project.left_out.inside(project.root)
    written: set[str] = set()
    found: dict[tuple[str, Access], Finding] = {}
    for event in events:
        if not event.ok or event.directory:
            continue
        rel = project.relative(event.path)
        key = (event.path if rel is None else rel, event.access)
        if key in found:
            continue
        if rel is None:
            if (
                event.access is Access.WRITE
                and not project.left_out.covers(event.path)
                and not is_dir(event.path)
            ):
                found[key] = Finding(event.path, Access.WRITE, None, None, outside=True)
            continue
        if not rel or _excluded(rel) or inside_left_out.covers(event.path):
            continue
        if event.access is Access.WRITE:
            written.add(rel)
            if not _matches(task.outputs, task.workspace_path, rel) and not is_dir(event.path):
                owner = project.owner(rel)
                found[key] = Finding(
                    rel,
                    Access.WRITE,
                    output_glob(rel, task.workspace_path, task.inputs),
                    _name(owner),
                )
            continue
        if (
            rel in task.inputs
            or rel in written
            or _matches(task.outputs, task.workspace_path, rel)
            or any(_matches(globs, ws, rel) for ws, globs in task.upstream_outputs)
            or is_dir(event.path)
        ):
            continue
        owner = project.owner(rel)
        maker = project.maker(rel)
        if maker is not None:
            # another task makes it: the fix is a dependency on that task (its output may be
            # one git ignores, that no inputs glob would select)
            found[key] = Finding(rel, Access.READ, None, _name(owner), made_by=maker)
            continue
        if ignored(rel):
            continue
        found[key] = Finding(
            rel, Access.READ, input_glob(rel, task.workspace_path, owner), _name(owner)
        )
    return tuple(sorted(found.values(), key=lambda f: (f.outside, f.path, f.access.value)))


def _name(owner: tuple[str, str] | None) -> str | None:
    return owner[0] if owner else None


def _excluded(rel: str) -> bool:
    return any(part in ALWAYS_EXCLUDED for part in rel.split("/"))


@functools.lru_cache(maxsize=256)
def _output_globs(patterns: tuple[str, ...]) -> Globs:
    return Globs(p for p in patterns if not p.lstrip("!").startswith(ROOT_PREFIX))


def _matches(patterns: Sequence[str], ws: str, rel: str) -> bool:
    """Whether the root-relative ``rel`` matches output ``patterns`` of workspace ``ws``."""
    if not patterns:
        return False
    if ws:
        if not rel.startswith(ws + "/"):
            return False
        rel = rel[len(ws) + 1 :]
    return _output_globs(tuple(patterns)).match(rel)


_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def escape_glob(path: str) -> str:
    """``path`` as a pattern matching exactly it: wildcards escaped, a leading ``!`` too."""
    escaped = _GLOB_SPECIAL.sub(r"\\\1", path)
    return "\\" + escaped if escaped.startswith("!") else escaped


def _cover(rel_to_base: str) -> str:
    """A file at the top of its base by name; one deeper by its top directory (``src/**``)."""
    head, sep, _ = rel_to_base.partition("/")
    return escape_glob(head) + "/**" if sep else escape_glob(rel_to_base)


def input_glob(rel: str, task_ws: str, owner: tuple[str, str] | None) -> str:
    """The ``inputs`` pattern of a task in workspace ``task_ws`` that covers file ``rel``.

    Inside a workspace, the file's top directory there (``src/**``), or the file itself at the
    workspace's top; elsewhere (the root's own files, ``config/``, ``tools/``) the file itself.
    Relative to the task's workspace when the file is inside it, else from the root (``//``).
    """
    anchor = owner[1] if owner is not None else ""
    if anchor:
        pattern = escape_glob(anchor) + "/" + _cover(rel[len(anchor) + 1 :])
    else:
        pattern = escape_glob(rel)
    if not task_ws:
        return pattern
    if anchor and _within(anchor, task_ws):
        return pattern[len(escape_glob(task_ws)) + 1 :]
    return ROOT_PREFIX + pattern


def output_glob(rel: str, task_ws: str, inputs: Iterable[str] = ()) -> str | None:
    """The ``outputs`` pattern covering a file the task wrote, when it is in its workspace
    (outputs cannot name files elsewhere): its top directory there (``coverage/**``), or a
    deeper one when that would also take in some of the task's ``inputs`` (root-relative),
    since outputs are left out of the inputs: ``src/pkg/__pycache__/**``, not ``src/**``."""
    if task_ws and not rel.startswith(task_ws + "/"):
        return None
    within = rel[len(task_ws) + 1 :] if task_ws else rel
    prefix = task_ws + "/" if task_ws else ""
    own_inputs = [i[len(prefix) :] for i in inputs if i.startswith(prefix)]
    parts = within.split("/")
    for depth in range(1, len(parts)):
        pattern = "/".join(escape_glob(p) for p in parts[:depth]) + "/**"
        dir_prefix = "/".join(parts[:depth]) + "/"
        if not any(i.startswith(dir_prefix) for i in own_inputs):
            return pattern
    return escape_glob(within)


def suggestions(findings: Iterable[Finding]) -> tuple[list[str], list[str]]:
    """The distinct ``inputs`` and ``outputs`` patterns of ``findings``, in order."""
    inputs = [f.glob for f in findings if f.access is Access.READ and f.glob]
    outputs = [f.glob for f in findings if f.access is Access.WRITE and f.glob]
    return list(dict.fromkeys(inputs)), list(dict.fromkeys(outputs))
