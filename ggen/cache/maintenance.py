"""Looking after the local store as a whole: its size (``stats``), its health (``verify``),
eviction (``prune``) and emptying it (``clear``).

Races with other processes end as misses, never crashes: a prune spares blobs touched after it
began (saving touches a blob it finds already present, which keeps a concurrent save's blobs
alive) and the blobs of manifests written while it worked.
"""

from __future__ import annotations

import enum
import os
import shutil
import stat
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ggen.cache.digest import hash_file
from ggen.cache.layout import blob_path, files_in, unlink
from ggen.cache.manifest import HEX_DIGEST, CorruptEntry, Manifest

STALE_TMP_NS = 3600 * 1_000_000_000  # a temp file this old was left by a dead process


@dataclass(frozen=True)
class StoreStats:
    """Number of manifests (entries), number of blobs, and the bytes both take."""

    entries: int
    blobs: int
    total_bytes: int


class ProblemKind(enum.Enum):
    """What ``verify`` can find wrong."""

    CORRUPT_BLOB = "corrupt blob"
    BAD_MANIFEST = "bad manifest"
    MISSING_BLOB = "missing blob"
    NOT_A_FILE = "not a regular file"


@dataclass(frozen=True)
class Problem:
    """One finding of ``verify``: its kind, the file concerned and the detail."""

    kind: ProblemKind
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.path}: {self.detail}"


@dataclass(frozen=True)
class VerifyReport:
    """The result of ``verify``: what was checked, what was wrong, what was removed."""

    entries: int
    blobs: int
    problems: tuple[Problem, ...]
    removed: int

    @property
    def ok(self) -> bool:
        return not self.problems


def stats(root: Path) -> StoreStats:
    """Count the entries and blobs and the bytes they take."""
    entries = blobs = total = 0
    for _, st in files_in(root / "manifests"):
        entries += 1
        total += st.st_size
    for _, st in files_in(root / "blobs"):
        blobs += 1
        total += st.st_size
    return StoreStats(entries=entries, blobs=blobs, total_bytes=total)


def verify(root: Path, *, repair: bool = False) -> VerifyReport:
    """Re-hash every blob and parse every manifest, checking its blobs are present and
    sound, and report anything in the store's layout that is not a regular file (a
    symlink, a directory, a fifo: never followed). With ``repair``, remove what is bad
    (those, blobs, and the manifests that need them)."""
    problems: list[Problem] = []
    removed = 0
    for top in (root / "blobs", root / "manifests"):
        for path, what in _not_regular(top):
            problems.append(Problem(ProblemKind.NOT_A_FILE, path, what))
            if repair and _remove_any(path):
                removed += 1
    good: set[str] = set()
    blobs = 0
    for path, _ in files_in(root / "blobs"):
        blobs += 1
        name = os.path.basename(path)
        try:
            actual = hash_file(Path(path))
        except OSError as exc:
            actual = f"unreadable ({exc.strerror})"
        if actual == name and HEX_DIGEST.fullmatch(name):
            good.add(name)
            continue
        problems.append(Problem(ProblemKind.CORRUPT_BLOB, path, f"contents hash to {actual}"))
        if repair and unlink(path):
            removed += 1
    entries = 0
    for path, _ in files_in(root / "manifests"):
        entries += 1
        problem = _check_manifest(path, good)
        if problem is not None:
            problems.append(problem)
            if repair and unlink(path):
                removed += 1
    return VerifyReport(entries, blobs, tuple(problems), removed)


def _check_manifest(path: str, good_blobs: set[str]) -> Problem | None:
    try:
        manifest = Manifest.from_bytes(Path(path).read_bytes())
    except (OSError, CorruptEntry) as exc:
        return Problem(ProblemKind.BAD_MANIFEST, path, str(exc))
    if os.path.basename(path) != f"{manifest.key}.json":
        return Problem(ProblemKind.BAD_MANIFEST, path, f"holds the entry of {manifest.key}")
    missing = sorted(manifest.digests() - good_blobs)
    if missing:
        return Problem(ProblemKind.MISSING_BLOB, path, ", ".join(missing))
    return None


def prune(root: Path, bound: int | None) -> tuple[int, int]:
    """Evict least recently used entries until the store fits ``bound`` (None: evict
    nothing), then remove blobs no entry needs and stale temp files; (bytes freed, bytes
    remaining)."""
    started = time.time_ns()
    manifests = _scan_manifests(root)
    blob_sizes = {os.path.basename(p): st for p, st in files_in(root / "blobs")}
    refs: Counter[str] = Counter()
    for _, _, digests in manifests:
        refs.update(digests)
    total = sum(size for _, size, _ in manifests) + sum(st.st_size for st in blob_sizes.values())
    freed = 0
    if bound is not None:
        for path, size, digests in manifests:  # oldest first
            if total <= bound:
                break
            unlink(path)
            total -= size
            freed += size
            for digest in digests:
                refs[digest] -= 1
                if refs[digest] == 0 and digest in blob_sizes:
                    total -= blob_sizes[digest].st_size  # deleted below
    # manifests written while we worked protect their blobs too
    seen = {path for path, _, _ in manifests}
    for path, _, digests in _scan_manifests(root):
        if path not in seen:
            refs.update(digests)
    for name, st in blob_sizes.items():
        if refs[name] > 0 or st.st_mtime_ns >= started:
            continue
        if unlink(str(blob_path(root, name)) if HEX_DIGEST.fullmatch(name) else ""):
            freed += st.st_size
    for path, st in files_in(root / "tmp"):
        if st.st_mtime_ns < started - STALE_TMP_NS:
            unlink(path)
    return freed, stats(root).total_bytes


def _scan_manifests(root: Path) -> list[tuple[str, int, set[str]]]:
    """(path, size, blob digests) of every manifest, least recently used first. Unreadable
    manifests need no blobs, and are evicted first."""
    found: list[tuple[int, str, int, set[str]]] = []
    for path, st in files_in(root / "manifests"):
        try:
            digests = Manifest.from_bytes(Path(path).read_bytes()).digests()
        except (OSError, CorruptEntry):
            digests, recency = set(), -1
        else:
            recency = st.st_mtime_ns
        found.append((recency, path, st.st_size, digests))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(path, size, digests) for _, path, size, digests in found]


def clear(root: Path) -> None:
    """Remove every entry, blob and temp file."""
    for name in ("manifests", "blobs", "tmp"):
        shutil.rmtree(root / name, ignore_errors=True)


def _not_regular(top: Path) -> Iterator[tuple[str, str]]:
    """(path, what it is) of everything in a fan-out layout (``top/ab/name``) that is neither a
    regular file nor a real fan-out directory."""
    try:
        groups = list(os.scandir(top))
    except OSError:
        return
    for group in groups:
        if group.is_symlink() or not (
            group.is_dir(follow_symlinks=False) or group.is_file(follow_symlinks=False)
        ):
            yield group.path, _what(group.path)
            continue
        if not group.is_dir(follow_symlinks=False):
            continue
        try:
            entries = list(os.scandir(group.path))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                yield entry.path, _what(entry.path)


def _what(path: str) -> str:
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return f"a symlink to {os.readlink(path)}"
    if stat.S_ISDIR(st.st_mode):
        return "a directory"
    if stat.S_ISFIFO(st.st_mode):
        return "a fifo"
    return "a special file"


def _remove_any(path: str) -> bool:
    """Remove a file, symlink or directory tree (a symlink itself, never what it points to)."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError:
        return False
    return True
