"""Which files are a task's inputs, and which are its outputs.

Patterns are gitignore-style globs, anchored at the workspace directory (``package.json``
means the workspace's own ``package.json``, not one at any depth):

- ``*`` and ``?`` match within one path component, ``[abc]`` is a character class, ``\\``
  escapes; ``**`` as a whole component matches any number of directories (``src/**``,
  ``**/*.py``, ``a/**/b``);
- a pattern that names a directory covers everything under it (``dist`` = ``dist/**``); a
  trailing ``/`` matches directories only;
- ``!pattern`` excludes what earlier patterns included (the last matching pattern decides);
- ``//path`` starts from the project root instead of the workspace (inputs only); such files
  are keyed ``//path`` while workspace files are keyed by their workspace-relative path;
- a component ``..`` is never valid (``check_pattern`` says so; such a pattern matches nothing).

Inputs: without ``inputs``, a task's inputs are every file under its workspace that git would
not ignore (outside a git work tree: every file). With ``inputs``, glob patterns select among
those same files, so ignored files (``__pycache__``, ``node_modules``) never enter a key by
accident, while a pattern without wildcards that names an existing file selects it even when
git ignores it. Always left out: files matching the task's ``outputs``, anything under a
``.ggen`` or ``.git`` directory, directories themselves, and symlinks that do not lead to a
regular file. A symlink to a regular file counts as that file (its target's contents enter the
key, wherever it points). Workspaces nested inside another one are not excluded from it. Git
submodules and nested repositories are not entered.

Outputs (``scan_outputs``): the files, symlinks and empty directories the ``outputs`` globs
match, symlinked directories not entered; names a restore stages files under
(``.ggen-restore-*``, ``.ggen-link-*``) are never outputs, so one left by a crash is never
stored.

``InputIndex`` lists the project's files once (one ``git ls-files`` at the root) and answers
the queries of every task of a run from that list.
"""

from __future__ import annotations

import bisect
import functools
import os
import stat
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ggen.globs import (
    ROOT_PREFIX,
    Globs,
    cached_globs,
    check_pattern,
    output_globs,
    split_patterns,
)

# the pattern names are re-exported: callers that select files find them here too
__all__ = [
    "ALWAYS_EXCLUDED",
    "ROOT_PREFIX",
    "STAGING_PREFIXES",
    "Globs",
    "InputIndex",
    "OutputScan",
    "check_pattern",
    "is_output",
    "is_staging_name",
    "output_files",
    "output_globs",
    "scan_outputs",
    "split_patterns",
    "task_inputs",
]

ALWAYS_EXCLUDED = frozenset({".git", ".ggen"})


def _excluded(rel: str) -> bool:
    return any(part in ALWAYS_EXCLUDED for part in rel.split("/"))


def _is_file(path: str) -> bool:
    """A regular file, or a symlink leading to one."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode)


class InputIndex:
    """The project's candidate input files, listed once, answering per-task queries.

    Inside a git work tree the list is ``git ls-files -co --exclude-standard`` at the project
    root (tracked plus untracked-but-not-ignored files); elsewhere, a walk of every file.
    """

    def __init__(self, root: Path, *, warn: Callable[[str], None] | None = None) -> None:
        self.root = Path(os.path.abspath(root))
        self._root_str = str(self.root).rstrip("/")
        # regular files seen by a walk: no need to stat them again to know what they are
        self._is_file: dict[str, bool] = {}
        listed = _git_files(self.root, warn)
        self.uses_git = listed is not None
        if listed is None:
            listed = self._walk("")
        self._paths = _clean(listed)
        self._root_results: dict[tuple[str, ...], list[str]] = {}
        self._changed: set[str] = set()
        self._warn = warn

    def mark_changed(self, ws_path: str) -> None:
        """Files under ``ws_path`` may have appeared or gone (a task ran there, a restore
        wrote there): list that directory again before the next query that reaches it.

        The listing is taken when the first task of a run asks, before any task ran; without
        this, files an earlier task of the same run created would be missing from the keys of
        later tasks, and the next run, seeing them, would compute other keys."""
        self._changed.add("" if ws_path in ("", ".") else ws_path.strip("/"))

    def _refresh(self, prefix: str) -> None:
        """Re-list the changed directories that overlap ``prefix``."""
        stale = [d for d in self._changed if _overlaps(d, prefix)]
        for d in stale:
            self._changed.discard(d)
            self._is_file = {k: v for k, v in self._is_file.items() if not _overlaps(d, k)}
            self._root_results.clear()
            if d == "":
                listed = _git_files(self.root, None) if self.uses_git else None
                self._paths = _clean(listed if listed is not None else self._walk(""))
            else:
                listed = _git_files(self.root, None, d) if self.uses_git else None
                if listed is None:
                    listed = self._walk(d)
                # everything below d sorts between "d/" and "d0" ("0" follows "/")
                lo = bisect.bisect_left(self._paths, d + "/")
                hi = bisect.bisect_left(self._paths, d + "0")
                self._paths[lo:hi] = _clean(p for p in listed if p.startswith(d + "/"))

    def __len__(self) -> int:
        return len(self._paths)

    def _walk(self, rel: str) -> list[str]:
        """Walk the directory ``rel`` (root-relative), noting which entries are regular files."""
        regular: set[str] = set()
        listed = list(_walk(f"{self._root_str}/{rel}" if rel else self._root_str, rel, regular))
        self._is_file.update(dict.fromkeys(regular, True))
        return listed

    def under(self, prefix: str) -> list[str]:
        """Listed root-relative paths equal to ``prefix`` or below it ("" for all)."""
        if self._changed:
            self._refresh(prefix)
        if not prefix:
            return self._paths
        paths = self._paths
        out: list[str] = []
        exact = bisect.bisect_left(paths, prefix)
        if exact < len(paths) and paths[exact] == prefix:
            out.append(prefix)
        start = prefix + "/"
        lo = bisect.bisect_left(paths, start)
        hi = bisect.bisect_left(paths, prefix + "0")  # "0" is the character after "/"
        out.extend(paths[lo:hi])
        return out

    def is_file(self, rel: str) -> bool:
        """Whether the root-relative ``rel`` is (now) a regular file or a symlink to one."""
        known = self._is_file.get(rel)
        if known is None:
            known = self._is_file[rel] = _is_file(os.path.join(self.root, rel))
        return known

    def task_inputs(
        self, ws_path: str, inputs: Sequence[str] | None, outputs: Sequence[str]
    ) -> list[tuple[str, str]]:
        """Sorted (key path, absolute path) pairs of a task's input files (see module doc)."""
        ws = "" if ws_path in ("", ".") else ws_path.strip("/")
        ws_prefix = ws + "/" if ws else ""
        out_globs = output_globs(outputs)
        found: dict[str, str] = {}  # root-relative path -> key

        def keep(rel: str) -> bool:
            if not rel.startswith(ws_prefix):
                return True
            return not (out_globs and out_globs.match(rel[len(ws_prefix) :]))

        if inputs is None:
            for rel in self.under(ws):
                if keep(rel) and self.is_file(rel):
                    found[rel] = rel[len(ws_prefix) :]
        else:
            ws_patterns, root_patterns = split_patterns(inputs)
            for rel in self._select(cached_globs(tuple(ws_patterns)), ws):
                if keep(rel):
                    found[rel] = rel[len(ws_prefix) :]
            if root_patterns:
                key = tuple(root_patterns)
                selected = self._root_results.get(key)
                if selected is None:
                    selected = self._select(cached_globs(key), "")
                    self._root_results[key] = selected
                for rel in selected:
                    if rel not in found and keep(rel):
                        found[rel] = ROOT_PREFIX + rel
        root = self._root_str
        pairs = [(key, f"{root}/{rel}") for rel, key in found.items()]
        pairs.sort()
        return pairs

    def _select(self, globs: Globs, base: str) -> list[str]:
        """Root-relative files under ``base`` selected by ``globs`` (relative to ``base``)."""
        if not globs:
            return []
        base_prefix = base + "/" if base else ""
        candidates: set[str] = set()
        for prefix in globs.prefixes():
            candidates.update(self.under(base_prefix + prefix if prefix else base))
        for literal in globs.literals():
            rel = base_prefix + literal
            if not _excluded(rel) and self.is_file(rel):
                candidates.add(rel)
        return [
            rel for rel in candidates if globs.match(rel[len(base_prefix) :]) and self.is_file(rel)
        ]


def task_inputs(
    root: Path,
    ws_path: str,
    inputs: Sequence[str] | None,
    outputs: Sequence[str],
    index: InputIndex | None = None,
) -> list[tuple[str, str]]:
    """Sorted (key path, absolute path) pairs of the input files of one task.

    ``ws_path`` is the workspace's path relative to ``root`` ("." for the root). Pass an
    ``InputIndex`` built once per run when asking for many tasks; without one, the project is
    listed for this call alone.
    """
    if index is None:
        index = InputIndex(root)
    return index.task_inputs(ws_path, inputs, outputs)


STAGING_PREFIXES = (".ggen-restore-", ".ggen-link-")


def is_staging_name(rel: str) -> bool:
    """Whether the last component of ``rel`` is a name a restore stages files under
    (``.ggen-restore-*``, ``.ggen-link-*``): such files are never outputs."""
    return rel.rsplit("/", 1)[-1].startswith(STAGING_PREFIXES)


def is_output(rel: str, globs: Globs) -> bool:
    """Whether the workspace-relative ``rel`` belongs to a task with these output globs:
    matched, and not inside ``.git`` or ``.ggen``. A restore may replace or delete only such
    paths."""
    return globs.match(rel) and not _excluded(rel)


@dataclass(frozen=True)
class OutputScan:
    """What a task's output globs match on disk (workspace-relative, sorted).

    ``files``: regular files and symlinks (symlinked directories are not entered);
    ``empty_dirs``: matched directories holding nothing at all; ``special``: fifos, sockets
    and devices; ``staged``: files a restore staged and never finished with (a crash)."""

    files: tuple[str, ...]
    empty_dirs: tuple[str, ...]
    special: tuple[str, ...]
    staged: tuple[str, ...]


def scan_outputs(ws_dir: Path | str, outputs: Sequence[str]) -> OutputScan:
    """Everything under ``ws_dir`` that ``outputs`` match (see ``OutputScan``)."""
    globs = output_globs(outputs)
    found: dict[str, set[str]] = {"files": set(), "dirs": set(), "special": set(), "staged": set()}
    if not globs:
        return OutputScan((), (), (), ())
    base = os.path.abspath(ws_dir)
    for prefix in _scan_prefixes(tuple(outputs)):
        start = os.path.join(base, prefix) if prefix else base
        try:
            st = os.lstat(start)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            _scan_dir(start, prefix, globs, found)
        elif globs.match(prefix):
            regular = stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)
            found[_kind(prefix, regular)].add(prefix)
    return OutputScan(*(tuple(sorted(found[k])) for k in ("files", "dirs", "special", "staged")))


@functools.lru_cache(maxsize=256)
def _scan_prefixes(outputs: tuple[str, ...]) -> tuple[str, ...]:
    """Where to look for what ``outputs`` match (asked once per hit: kept)."""
    return tuple(p for p in output_globs(outputs).prefixes() if not _excluded(p))


def _kind(rel: str, file_or_link: bool) -> str:
    if is_staging_name(rel):
        return "staged"
    return "files" if file_or_link else "special"


def _scan_dir(top: str, rel_top: str, globs: Globs, found: dict[str, set[str]]) -> None:
    stack = [(top, rel_top)]
    while stack:
        path, rel = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        if not entries and rel and globs.match(rel):
            found["dirs"].add(rel)
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in ALWAYS_EXCLUDED:
                        stack.append((entry.path, child))
                elif globs.match(child):
                    regular = entry.is_file(follow_symlinks=False) or entry.is_symlink()
                    found[_kind(child, regular)].add(child)
            except OSError:
                continue


def output_files(ws_dir: Path, outputs: Sequence[str]) -> list[str]:
    """Sorted workspace-relative paths of the existing files and symlinks matched by
    ``outputs`` (symlinked directories are reported as symlinks, not entered; files a restore
    staged are never reported)."""
    return list(scan_outputs(ws_dir, outputs).files)


def _walk(top: str, rel_top: str, regular: set[str] | None = None) -> Iterable[str]:
    """Relative paths of the files and symlinks below ``top``, without entering symlinked
    directories, ``.git`` or ``.ggen``; those of regular files are also added to ``regular``."""
    stack = [(top, rel_top)]
    while stack:
        path, rel = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in ALWAYS_EXCLUDED:
                        stack.append((entry.path, child))
                elif entry.is_file(follow_symlinks=False):
                    if regular is not None:
                        regular.add(child)
                    yield child
                elif entry.is_symlink():
                    yield child
            except OSError:
                continue


def _clean(listed: Iterable[str]) -> list[str]:
    return sorted({p for p in listed if p and not p.endswith("/") and not _excluded(p)})


def _overlaps(a: str, b: str) -> bool:
    """Whether the directories ``a`` and ``b`` (root-relative, "" = root) share files."""
    return not a or not b or a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _git_files(
    root: Path, warn: Callable[[str], None] | None, below: str | None = None
) -> list[str] | None:
    """Paths git would not ignore under ``root`` (or only ``below`` it), relative to ``root``;
    None outside a work tree."""
    try:
        done = subprocess.run(
            [
                "git",
                "ls-files",
                "-co",
                "--exclude-standard",
                "-z",
                *(["--", below] if below else []),
            ],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError:
        done = None
    if done is not None and done.returncode == 0:
        return os.fsdecode(done.stdout).split("\0")
    if warn is not None and _inside_git_dir(root):
        reason = "git not found" if done is None else os.fsdecode(done.stderr).strip()
        warn(f"cannot list files with git ({reason}); every file counts as an input")
    return None


def _inside_git_dir(root: Path) -> bool:
    return any((d / ".git").exists() for d in (root, *root.parents))
