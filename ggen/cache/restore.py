"""Restoring a stored entry into a workspace safely.

Manifests may come from a remote cache, so a restore writes and deletes only paths that the
task's output globs match. Every path of the manifest must be relative, free of ``..``,
``.git`` and ``.ggen`` and matched by the globs; nothing that stands in the way and would be
replaced or deleted (a file where a directory goes, a directory where a file goes, a symlinked
directory, which is never written through) may be anything but an output either; a symlink's
target must stay inside the workspace. All of it is checked, and every blob copied out and
verified, before anything is written. Then what the globs match is made exactly the manifest:
outputs it does not list (and empty directories) are removed.

Blobs are staged as ``.ggen-restore-*`` in the nearest existing directory on the way to their
destination (``.ggen-link-*`` next to it for symlinks), names registered before the files are
made so that any exception, a ``KeyboardInterrupt`` included, removes them; the output scan
never reports such names, so a file left by a crash is never stored, and the next restore of
the task removes it.
"""

from __future__ import annotations

import enum
import errno
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ggen.cache.digest import DigestMemo, hash_file
from ggen.cache.files import (
    Globs,
    OutputScan,
    is_output,
    is_staging_name,
    output_globs,
    scan_outputs,
)
from ggen.cache.layout import unlink
from ggen.cache.manifest import (
    CorruptEntry,
    Manifest,
    OutputEntry,
    UnsafeEntry,
    check_outputs,
    check_paths,
    entry_paths,
)

if TYPE_CHECKING:
    from ggen.cache.store import Store

# errors that mean the entry names something this filesystem cannot hold, not that the
# workspace cannot be written
_ENTRY_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL})


@dataclass(frozen=True)
class RestoreResult:
    """How many outputs a restore wrote, how many already matched on disk, and how many
    paths it removed (outputs the entry does not list)."""

    written: int
    unchanged: int
    removed: int = 0


class RestoreFailed(Exception):
    """A restore that could not write the workspace: the path concerned and why. ``damaged``
    when the entry is at fault (a name this filesystem refuses); it was then discarded."""

    def __init__(self, path: str, reason: str, *, damaged: bool) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason
        self.damaged = damaged


def restore_entry(
    store: Store,
    manifest: Manifest,
    ws_dir: Path,
    *,
    outputs: Sequence[str],
    memo: DigestMemo | None = None,
) -> RestoreResult:
    """Make what the task's ``outputs`` globs match in the workspace exactly the manifest:
    files already matching are left alone, written ones get the current time as mtime,
    outputs the manifest does not list are removed.

    Raises ``UnsafeEntry`` (nothing written) for a manifest naming a path that is not an
    output, or that would replace or delete something that is not one (see module doc),
    and ``CorruptEntry`` for a missing or corrupt blob (nothing replaced; the blob and the
    manifest are removed; the caller reports it). Any ``OSError`` becomes ``RestoreFailed``
    (the manifest is removed when a name it holds is at fault). ``memo`` spares re-reading
    unchanged outputs.
    """
    check_paths(manifest)
    try:
        check_outputs(manifest, outputs)
    except UnsafeEntry:
        store.discard(manifest.key, "", report=False)  # the exception tells the caller
        raise
    base = os.path.realpath(ws_dir)
    job = _Restoring(store, manifest, base, memo, doing=base)
    try:
        if not os.path.isdir(job.base):
            os.makedirs(job.base)
        scan = scan_outputs(job.base, outputs)
        job.check(output_globs(outputs))
        # first every blob is copied out and verified, then everything is put in place
        replace, chmods, unchanged = job.stage()
        removed = job.remove_unlisted(scan)
        job.put_in_place(replace, chmods)
        written, also_unchanged = job.place_links_and_dirs()
        written += len(replace) + len(chmods)
        unchanged += also_unchanged
        if removed or not set(scan.empty_dirs) <= set(manifest.dirs):
            removed += _remove_empty_dirs(job.at(job.base), outputs, manifest)
    except OSError as exc:
        raise _restore_failed(store, manifest.key, exc, job.doing) from None
    finally:
        _remove_staged(job.staged)  # gone already unless something failed
    return RestoreResult(written=written, unchanged=unchanged, removed=removed)


@dataclass
class _Restoring:
    """One restore under way: the temp files staged so far (removed on any error) and the
    path being worked on, which an ``OSError`` is reported against."""

    store: Store
    manifest: Manifest
    base: str
    memo: DigestMemo | None
    staged: list[str] = field(default_factory=list)  # listed before they are made
    doing: str = ""

    def at(self, rel_or_path: str) -> str:
        """The absolute path of ``rel_or_path`` under the workspace, now the one worked on."""
        self.doing = os.path.join(self.base, rel_or_path)
        return self.doing

    def check(self, globs: Globs) -> None:
        """Refuse (``UnsafeEntry``) a manifest path that would write through or over
        something that is not an output; nothing is written yet."""
        m = self.manifest
        for path in [o.path for o in m.outputs] + [s.path for s in m.symlinks]:
            self.at(path)
            _check_on_disk(self.base, path, globs, directory=False)
        for path in m.dirs:
            self.at(path)
            _check_on_disk(self.base, path, globs, directory=True)

    def stage(self) -> tuple[list[tuple[str, str]], list[tuple[str, int]], int]:
        """Copy out (verified) every blob whose file differs: the (temp file, destination)
        pairs, the (destination, mode) of files with the right contents but the wrong
        permissions, and how many files already match."""
        replace: list[tuple[str, str]] = []
        chmods: list[tuple[str, int]] = []
        unchanged = 0
        for entry in self.manifest.outputs:
            dest = self.at(entry.path)
            state = _file_state(dest, entry, self.memo)
            if state is _FileState.SAME:
                unchanged += 1
            elif state is _FileState.MODE_ONLY:
                chmods.append((dest, entry.mode))
            else:
                stage_dir = _nearest_dir(self.base, entry.path)
                tmp = _stage(self.store, entry, stage_dir, self.manifest.key, self.staged)
                replace.append((tmp, dest))
        return replace, chmods, unchanged

    def remove_unlisted(self, scan: OutputScan) -> int:
        """Remove staging leftovers and outputs the manifest does not list; how many."""
        m = self.manifest
        listed = {o.path for o in m.outputs} | {s.path for s in m.symlinks}
        removed = 0
        for rel in (*scan.staged, *(p for p in scan.files + scan.special if p not in listed)):
            removed += _remove(self.at(rel))
        return removed

    def put_in_place(self, replace: list[tuple[str, str]], chmods: list[tuple[str, int]]) -> None:
        for dest, mode in chmods:
            self.doing = dest
            os.chmod(dest, mode)
        for tmp, dest in replace:
            self.doing = dest
            _make_dirs(os.path.dirname(dest))
            _replace(tmp, dest)

    def place_links_and_dirs(self) -> tuple[int, int]:
        """Make the symlinks and empty directories: (how many written, how many were there)."""
        written = unchanged = 0
        for link in self.manifest.symlinks:
            if _place_symlink(self.at(link.path), link.target, self.staged):
                written += 1
            else:
                unchanged += 1
        for rel in self.manifest.dirs:
            path = self.at(rel)
            if os.path.isdir(path):
                unchanged += 1
            else:
                _make_dirs(path)
                written += 1
        return written, unchanged


def _restore_failed(store: Store, key: str, exc: OSError, doing: str) -> RestoreFailed:
    """The ``RestoreFailed`` for an ``exc`` met while writing ``doing``; the manifest is
    removed when the error says a name it holds cannot exist here."""
    damaged = exc.errno in _ENTRY_ERRNOS
    if damaged:
        store.discard(key, "", report=False)
    path = doing  # a temp file's name would tell the user nothing
    if isinstance(exc.filename, str) and exc.filename and not is_staging_name(exc.filename):
        path = exc.filename
    return RestoreFailed(path, exc.strerror or str(exc), damaged=damaged)


def _stage(store: Store, entry: OutputEntry, directory: str, key: str, staged: list[str]) -> str:
    """Copy a blob into a new temp file in ``directory`` (verified); its path. The path is
    added to ``staged`` before the file is made."""
    while True:
        tmp = _new_staging_name(directory, ".ggen-restore-", staged)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            break
        except FileExistsError:
            staged.remove(tmp)  # not ours: never to be removed
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in store.blob_chunks(entry.digest, entry.sha256):
                out.write(chunk)
            os.fchmod(out.fileno(), entry.mode)
    except CorruptEntry as exc:
        unlink(tmp)
        store.discard(key, str(exc), report=False)  # the exception tells the caller
        raise
    return tmp


class _FileState(enum.Enum):
    SAME = "same"
    MODE_ONLY = "mode only"
    DIFFERENT = "different"


def _file_state(dest: str, entry: OutputEntry, memo: DigestMemo | None) -> _FileState:
    """How the file at ``dest`` compares with the manifest's entry."""
    try:
        st = os.lstat(dest)
    except OSError:
        return _FileState.DIFFERENT
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
        return _FileState.DIFFERENT
    if memo is not None and not _utf8(dest):
        memo = None  # the memo is saved as JSON, which cannot hold such a name
    try:
        digest = memo.digest(Path(dest)).digest if memo is not None else hash_file(Path(dest))
    except OSError:
        return _FileState.DIFFERENT
    if digest != entry.digest:
        return _FileState.DIFFERENT
    if stat.S_IMODE(st.st_mode) & 0o777 != entry.mode:
        return _FileState.MODE_ONLY
    return _FileState.SAME


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_on_disk(base: str, rel: str, globs: Globs, *, directory: bool) -> None:
    """Refuse (``UnsafeEntry``) to put ``rel`` (a directory if ``directory``) in place when
    that would replace or delete something that is not an output: a file, symlink or other
    non-directory on the way to it (symlinked directories are never written through), or, for
    a file, a directory holding anything that is not an output."""
    parts = rel.split("/")
    current = base
    for i, part in enumerate(parts):
        current = os.path.join(current, part)
        here = "/".join(parts[: i + 1])
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        last = i == len(parts) - 1
        if stat.S_ISDIR(st.st_mode):
            if last and not directory:
                _check_tree(current, here, globs)
            continue
        if not last and not is_output(here, globs):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a file"
            raise UnsafeEntry(f"path {rel!r} would replace {here!r}, {kind} that is not an output")
        return


def _check_tree(top: str, rel_top: str, globs: Globs) -> None:
    """Refuse to delete the directory ``top`` if anything in it is not an output."""
    stack = [(top, rel_top)]
    while stack:
        path, rel = stack.pop()
        with os.scandir(path) as entries:
            listed = list(entries)
        for entry in listed:
            child = f"{rel}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, child))
            elif not is_output(child, globs):
                raise UnsafeEntry(
                    f"path {rel_top!r} would replace a directory holding {child!r}, "
                    "which is not an output"
                )


def _nearest_dir(base: str, rel: str) -> str:
    """The deepest existing real directory on the way to ``rel``: where its blob is staged
    (on the destination's file system, without making any directory before every blob is
    verified)."""
    current = base
    for part in rel.split("/")[:-1]:
        candidate = os.path.join(current, part)
        try:
            if not stat.S_ISDIR(os.lstat(candidate).st_mode):
                break
        except FileNotFoundError:
            break
        current = candidate
    return current


def _new_staging_name(directory: str, prefix: str, staged: list[str]) -> str:
    """A fresh temp name in ``directory``, added to ``staged`` before the caller makes it."""
    name = os.path.join(directory, f"{prefix}{os.urandom(8).hex()}")
    staged.append(name)
    return name


def _remove_staged(staged: list[str]) -> None:
    """Remove every staged temp file. A second interrupt while doing so (Ctrl-C pressed
    again) is held back until they are all gone, then raised."""
    pending: BaseException | None = None
    while staged:
        try:
            unlink(staged[-1])
            staged.pop()
        except BaseException as exc:  # held, re-raised below
            pending = exc
    if pending is not None:
        raise pending


def _remove(path: str) -> int:
    """Delete a file, symlink or special file; 1 if it was there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return 1


def _remove_empty_dirs(base: str, outputs: Sequence[str], manifest: Manifest) -> int:
    """Remove the empty directories the globs match that the manifest neither lists nor needs
    (deepest first, again while removing one empties its parent); how many were removed."""
    keep = set(manifest.dirs)
    for path in entry_paths(manifest):
        parts = path.split("/")
        keep.update("/".join(parts[:i]) for i in range(1, len(parts)))
    removed = 0
    while True:
        extra = [d for d in scan_outputs(base, outputs).empty_dirs if d not in keep]
        if not extra:
            return removed
        for rel in sorted(extra, reverse=True):
            os.rmdir(os.path.join(base, rel))
            removed += 1


def _make_dirs(path: str) -> None:
    """Create a directory and its parents, replacing files that stand in the way."""
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        parent = os.path.dirname(path)
        _make_dirs(parent)
        if not os.path.isdir(path):
            unlink(path)
            os.mkdir(path)


def _replace(tmp: str, dest: str) -> None:
    """Rename ``tmp`` over ``dest``, first removing a directory standing there."""
    try:
        os.replace(tmp, dest)
    except (IsADirectoryError, OSError) as exc:
        if not (isinstance(exc, IsADirectoryError) or exc.errno == errno.ENOTEMPTY):
            raise
        shutil.rmtree(dest)
        os.replace(tmp, dest)


def _place_symlink(dest: str, target: str, staged: list[str]) -> bool:
    """Make ``dest`` a symlink to ``target``; False when it already was one."""
    try:
        if os.readlink(dest) == target:
            return False
    except OSError:
        pass
    parent = os.path.dirname(dest)
    _make_dirs(parent)
    tmp = _new_staging_name(parent, ".ggen-link-", staged)
    os.symlink(target, tmp)
    _replace(tmp, dest)
    return True
