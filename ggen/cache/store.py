"""The local content-addressed store: outputs and logs as blobs, plus one manifest per key.

Layout under the store root::

    blobs/ab/abcdef...          file contents, named by their xxh3-128 digest
    manifests/12/1234....json   one orjson manifest per task key
    tmp/                        files being written

Every file is written in ``tmp/`` and renamed into place, and a manifest only after all the
blobs it names, so a reader (another ggen process included) never sees a partial entry.
Nothing is fsync'ed: a file cut short by a crash is caught by its digest (blobs) or its syntax
(manifests), reported, removed and treated as a miss. A manifest's mtime is its recency for
LRU eviction; a lookup refreshes it.

Races between processes end as misses, never crashes: a prune that deletes a blob a restore is
about to read makes the restore raise ``CorruptEntry``. A prune spares blobs touched after it
began, and saving touches a blob it finds already present, which keeps a concurrent save's
blobs alive.

Restoring is careful about paths, since manifests may come from a remote cache: every path must
be relative, free of ``..``, ``.git`` and ``.ggen``, must not lead through an existing symlink
to outside the workspace, and a symlink's target must stay inside the workspace. All of it is
checked before anything is written. Files on disk matching the outputs but absent from the
manifest are left alone.

The manifest format and its pure checks live in ``ggen.cache.manifest``; ``Manifest``, its
entries, ``CorruptEntry``, ``UnsafeEntry`` and the path checks are re-exported from here.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import shutil
import stat
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import xxhash

from ggen.cache.digest import DigestMemo, hash_bytes, hash_fd, hash_file
from ggen.cache.files import output_files
from ggen.cache.manifest import HEX_DIGEST
from ggen.cache.manifest import MANIFEST_VERSION as MANIFEST_VERSION
from ggen.cache.manifest import CorruptEntry as CorruptEntry
from ggen.cache.manifest import Manifest as Manifest
from ggen.cache.manifest import OutputEntry as OutputEntry
from ggen.cache.manifest import SymlinkEntry as SymlinkEntry
from ggen.cache.manifest import UnsafeEntry as UnsafeEntry
from ggen.cache.manifest import check_paths as check_paths
from ggen.cache.manifest import check_symlink_target as check_symlink_target

COPY_CHUNK = 1024 * 1024
STALE_TMP_NS = 3600 * 1_000_000_000  # a temp file this old was left by a dead process
AUTO_PRUNE_LOW_WATER = 0.9  # automatic eviction frees down to this share of max_size


def default_cache_dir() -> Path:
    """The per-user cache directory (``~/.cache/ggen`` on Linux)."""
    return Path(platformdirs.user_cache_dir("ggen", appauthor=False))


@dataclass(frozen=True)
class RestoreResult:
    """How many outputs a restore wrote and how many already matched on disk."""

    written: int
    unchanged: int


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


def _stderr_warning(message: str) -> None:
    print(f"ggen: warning: {message}", file=sys.stderr)


class Store:
    """A content-addressed store of task results under one directory (see module doc)."""

    def __init__(
        self,
        root: Path,
        *,
        max_size: int | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.max_size = max_size
        self._warn = warn or _stderr_warning
        self._size_estimate: int | None = None
        self._failed_errnos: set[int | None] = set()

    # ---- paths -----------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        if not HEX_DIGEST.fullmatch(digest):
            raise ValueError(f"not a digest: {digest!r}")
        return self.root / "blobs" / digest[:2] / digest

    def manifest_path(self, key: str) -> Path:
        """Where the manifest of this key lives (whether or not it exists)."""
        if not HEX_DIGEST.fullmatch(key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / "manifests" / key[:2] / f"{key}.json"

    # ---- blobs -----------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """Whether the blob is present (its contents are checked when read)."""
        return self.blob_path(digest).is_file()

    def put_blob_bytes(self, data: bytes) -> str:
        """Store ``data`` as a blob (no-op if present); its digest."""
        digest = hash_bytes(data)
        self._put_bytes(digest, data)
        return digest

    def put_blob_file(self, path: Path) -> str:
        """Store a file's contents as a blob (no-op if present); the digest of what was
        stored."""
        return self._put_file(path)[0]

    def _put_bytes(self, digest: str, data: bytes) -> int:
        dest = self.blob_path(digest)
        if _touch(dest):
            return 0
        tmp = self._tmp_file()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            self._install(tmp, dest)
        finally:
            _unlink(tmp)
        return len(data)

    def _put_file(self, path: Path) -> tuple[str, int, int]:
        """(digest, size, bytes added to the store) of a file stored as a blob."""
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            digest, size = hash_fd(fd)
        finally:
            os.close(fd)
        if _touch(self.blob_path(digest)):
            return digest, size, 0
        tmp = self._tmp_file()
        try:
            hasher = xxhash.xxh3_128()
            size = 0
            with open(path, "rb") as src, open(tmp, "wb") as out:
                while chunk := src.read(COPY_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = hasher.hexdigest()  # the file may have changed since it was hashed
            self._install(tmp, self.blob_path(digest))
        finally:
            _unlink(tmp)
        return digest, size, size

    def _put_log_file(self, path: Path) -> tuple[str, int]:
        """(digest, bytes added) of a log file stored as a blob in one pass: copied while
        hashed, never mapped or held whole, since a log may be far larger than a run should
        take in memory (and is rarely in the store already)."""
        tmp = self._tmp_file()
        try:
            hasher = xxhash.xxh3_128()
            size = 0
            with open(path, "rb") as src, open(tmp, "wb") as out:
                while chunk := src.read(COPY_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = hasher.hexdigest()
            if _touch(self.blob_path(digest)):
                return digest, 0
            self._install(tmp, self.blob_path(digest))
        finally:
            _unlink(tmp)
        return digest, size

    def _open_blob(self, digest: str) -> Iterator[bytes]:
        """The blob's contents in chunks, checked against its digest at the end
        (``CorruptEntry`` when missing or wrong)."""
        path = self.blob_path(digest)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise CorruptEntry(f"blob {digest} is missing") from None
        hasher = xxhash.xxh3_128()
        with f:
            while chunk := f.read(COPY_CHUNK):
                hasher.update(chunk)
                yield chunk
        if hasher.hexdigest() != digest:
            _unlink(path)
            raise CorruptEntry(f"blob {digest} is corrupt (removed)")

    # ---- manifests -------------------------------------------------------------------------

    def manifest_bytes(self, key: str) -> bytes | None:
        """The stored manifest of ``key`` as raw bytes, or None (for the remote cache)."""
        try:
            return self.manifest_path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put_manifest_bytes(self, key: str, data: bytes, *, require_blobs: bool = True) -> None:
        """Store a manifest received as bytes, after validating it (``CorruptEntry`` when it is
        malformed, names another key, or — with ``require_blobs`` — names an absent blob)."""
        manifest = Manifest.from_bytes(data)
        if manifest.key != key:
            raise CorruptEntry(f"manifest of {manifest.key} offered as {key}")
        if require_blobs:
            missing = sorted(d for d in manifest.digests() if not self.has_blob(d))
            if missing:
                raise CorruptEntry(f"manifest {key} names absent blobs: {', '.join(missing)}")
        self._write_manifest(key, data)

    def _write_manifest(self, key: str, data: bytes) -> None:
        tmp = self._tmp_file()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            now = time.time_ns()  # explicit, fine-grained recency (file times tick coarsely)
            os.utime(tmp, ns=(now, now))
            self._install(tmp, self.manifest_path(key))
        finally:
            _unlink(tmp)

    def lookup(self, key: str) -> Manifest | None:
        """The manifest stored for ``key``, or None. A corrupt one is reported, removed and
        counts as absent. A hit becomes the most recently used entry."""
        path = self.manifest_path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn(f"cannot read cache entry {key}: {exc.strerror or exc}")
            return None
        try:
            manifest = Manifest.from_bytes(data)
            if manifest.key != key:
                raise CorruptEntry(f"it holds the entry of {manifest.key}")
        except CorruptEntry as exc:
            self._discard(key, str(exc))
            return None
        now = time.time_ns()
        with contextlib.suppress(OSError):
            os.utime(path, ns=(now, now))
        return manifest

    def _discard(self, key: str, reason: str, *, report: bool = True) -> None:
        if report:
            self._warn(f"cache entry {key} is corrupt ({reason}); removed")
        _unlink(self.manifest_path(key))

    # ---- save ------------------------------------------------------------------------------

    def save(
        self,
        key: str,
        *,
        workspace: str,
        phase: str,
        ws_dir: Path,
        outputs: Sequence[str],
        log: bytes | Path,
        exit_code: int,
        duration_ms: int,
    ) -> Manifest | None:
        """Store a task's outputs (files matching ``outputs`` under ``ws_dir``) and log (its
        bytes, or the file holding it, copied in chunks) under ``key``. Returns the manifest,
        or None after one warning when the store cannot be written (disk full, read-only) or
        the outputs cannot be cached."""
        try:
            manifest, added = self._save(
                key, workspace, phase, ws_dir, outputs, log, exit_code, duration_ms
            )
        except UnsafeEntry as exc:
            self._warn(f"{workspace}:{phase} not cached: {exc}")
            return None
        except OSError as exc:
            if exc.errno not in self._failed_errnos:
                self._failed_errnos.add(exc.errno)
                self._warn(
                    f"cannot save {workspace}:{phase} in the cache at {self.root}: "
                    f"{exc.strerror or exc}"
                )
            return None
        if self.max_size is not None:
            self._after_growth(added)
        return manifest

    def _save(
        self,
        key: str,
        workspace: str,
        phase: str,
        ws_dir: Path,
        outputs: Sequence[str],
        log: bytes | Path,
        exit_code: int,
        duration_ms: int,
    ) -> tuple[Manifest, int]:
        base = Path(os.path.abspath(ws_dir))
        files: list[OutputEntry] = []
        links: list[SymlinkEntry] = []
        added = 0
        for rel in output_files(base, outputs):
            path = base / rel
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                links.append(SymlinkEntry(rel, _relative_target(base, rel, os.readlink(path))))
                continue
            digest, size, new_bytes = self._put_file(path)
            files.append(OutputEntry(rel, digest, size, stat.S_IMODE(st.st_mode) & 0o777))
            added += new_bytes
        if isinstance(log, bytes):
            log_digest = hash_bytes(log)
            added += self._put_bytes(log_digest, log)
        else:
            log_digest, new_bytes = self._put_log_file(log)
            added += new_bytes
        manifest = Manifest(
            key=key,
            workspace=workspace,
            phase=phase,
            outputs=tuple(files),
            symlinks=tuple(links),
            exit_code=exit_code,
            log_digest=log_digest,
            duration_ms=max(0, duration_ms),
            created_ms=time.time_ns() // 1_000_000,
        )
        check_paths(manifest)
        data = manifest.to_bytes()
        self._write_manifest(key, data)
        return manifest, added + len(data)

    def _after_growth(self, added: int) -> None:
        """Keep the size estimate; prune when it passes ``max_size``."""
        assert self.max_size is not None
        if self._size_estimate is None:
            self._size_estimate = self.stats().total_bytes
        else:
            self._size_estimate += added
        if self._size_estimate > self.max_size:
            target = int(self.max_size * AUTO_PRUNE_LOW_WATER)
            try:
                self._size_estimate = self._prune(target)[1]
            except OSError as exc:
                self._warn(f"cannot prune the cache at {self.root}: {exc.strerror or exc}")

    # ---- restore ---------------------------------------------------------------------------

    def restore(
        self, manifest: Manifest, ws_dir: Path, *, memo: DigestMemo | None = None
    ) -> RestoreResult:
        """Make the workspace's outputs match the manifest; files already matching are left
        alone, written ones get the current time as mtime.

        Raises ``UnsafeEntry`` (nothing written) for paths that would leave the workspace and
        ``CorruptEntry`` for a missing or corrupt blob (nothing replaced; the blob and the
        manifest are removed; the caller reports it). ``memo`` spares re-reading unchanged
        outputs. Other ``OSError``s (an unwritable workspace) propagate.
        """
        check_paths(manifest)
        base = os.path.realpath(ws_dir)
        for path in [o.path for o in manifest.outputs] + [s.path for s in manifest.symlinks]:
            _check_on_disk(base, path)
        staged: list[tuple[str, str]] = []  # (temp file, destination)
        chmods: list[tuple[str, int]] = []  # right contents, wrong permissions
        unchanged = 0
        try:
            # first every blob is copied out and verified, then everything is put in place
            for entry in manifest.outputs:
                dest = os.path.join(base, entry.path)
                state = _file_state(dest, entry, memo)
                if state is _FileState.SAME:
                    unchanged += 1
                elif state is _FileState.MODE_ONLY:
                    chmods.append((dest, entry.mode))
                else:
                    staged.append((self._stage(entry, dest, manifest.key), dest))
            for dest, mode in chmods:
                os.chmod(dest, mode)
            for tmp, dest in staged:
                _replace(tmp, dest)
            written = len(staged) + len(chmods)
            for link in manifest.symlinks:
                if _place_symlink(os.path.join(base, link.path), link.target):
                    written += 1
                else:
                    unchanged += 1
        finally:
            for tmp, _ in staged:
                _unlink(tmp)  # gone already unless something failed
        return RestoreResult(written=written, unchanged=unchanged)

    def _stage(self, entry: OutputEntry, dest: str, key: str) -> str:
        """Copy a blob next to its destination (verified); the temp file's path."""
        parent = os.path.dirname(dest)
        _make_dirs(parent)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".ggen-restore-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self._open_blob(entry.digest):
                    out.write(chunk)
                os.fchmod(out.fileno(), entry.mode)
        except CorruptEntry as exc:
            _unlink(tmp)
            self._discard(key, str(exc), report=False)  # the exception tells the caller
            raise
        except BaseException:
            _unlink(tmp)
            raise
        return tmp

    def read_log(self, manifest: Manifest) -> bytes:
        """The task's captured log, checked against its digest (``CorruptEntry`` when missing
        or corrupt; the blob and the manifest are then removed)."""
        return b"".join(self.log_chunks(manifest))

    def log_chunks(self, manifest: Manifest) -> Iterator[bytes]:
        """The task's captured log in chunks, as ``read_log`` (checked at the end), for logs
        too large to hold at once."""
        try:
            yield from self._open_blob(manifest.log_digest)
        except CorruptEntry as exc:
            self._discard(manifest.key, str(exc), report=False)
            raise

    # ---- maintenance -----------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Count the entries and blobs and the bytes they take."""
        entries = blobs = total = 0
        for _, st in _files_in(self.root / "manifests"):
            entries += 1
            total += st.st_size
        for _, st in _files_in(self.root / "blobs"):
            blobs += 1
            total += st.st_size
        return StoreStats(entries=entries, blobs=blobs, total_bytes=total)

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Re-hash every blob and parse every manifest, checking its blobs are present and
        sound. With ``repair``, remove what is bad (blobs and the manifests that need them)."""
        problems: list[Problem] = []
        removed = 0
        good: set[str] = set()
        blobs = 0
        for path, _ in _files_in(self.root / "blobs"):
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
            if repair and _unlink(path):
                removed += 1
        entries = 0
        for path, _ in _files_in(self.root / "manifests"):
            entries += 1
            problem = self._check_manifest(path, good)
            if problem is not None:
                problems.append(problem)
                if repair and _unlink(path):
                    removed += 1
        return VerifyReport(entries, blobs, tuple(problems), removed)

    def _check_manifest(self, path: str, good_blobs: set[str]) -> Problem | None:
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

    def prune(self, max_size: int | None = None) -> int:
        """Evict least recently used entries until the store fits ``max_size`` (default: the
        store's own bound; none: evict nothing), then remove blobs no entry needs and stale
        temp files. Returns the bytes freed."""
        bound = max_size if max_size is not None else self.max_size
        freed, remaining = self._prune(bound)
        self._size_estimate = remaining
        return freed

    def _prune(self, bound: int | None) -> tuple[int, int]:
        """(bytes freed, bytes remaining)."""
        started = time.time_ns()
        manifests = self._scan_manifests()
        blob_sizes = {os.path.basename(p): st for p, st in _files_in(self.root / "blobs")}
        refs: Counter[str] = Counter()
        for _, _, digests in manifests:
            refs.update(digests)
        total = sum(size for _, size, _ in manifests) + sum(
            st.st_size for st in blob_sizes.values()
        )
        freed = 0
        if bound is not None:
            for path, size, digests in manifests:  # oldest first
                if total <= bound:
                    break
                _unlink(path)
                total -= size
                freed += size
                for digest in digests:
                    refs[digest] -= 1
                    if refs[digest] == 0 and digest in blob_sizes:
                        total -= blob_sizes[digest].st_size  # deleted below
        # manifests written while we worked protect their blobs too
        seen = {path for path, _, _ in manifests}
        for path, _, digests in self._scan_manifests():
            if path not in seen:
                refs.update(digests)
        for name, st in blob_sizes.items():
            if refs[name] > 0 or st.st_mtime_ns >= started:
                continue
            if _unlink(str(self.blob_path(name)) if HEX_DIGEST.fullmatch(name) else ""):
                freed += st.st_size
        for path, st in _files_in(self.root / "tmp"):
            if st.st_mtime_ns < started - STALE_TMP_NS:
                _unlink(path)
        return freed, self.stats().total_bytes

    def _scan_manifests(self) -> list[tuple[str, int, set[str]]]:
        """(path, size, blob digests) of every manifest, least recently used first. Unreadable
        manifests need no blobs, and are evicted first."""
        found: list[tuple[int, str, int, set[str]]] = []
        for path, st in _files_in(self.root / "manifests"):
            try:
                digests = Manifest.from_bytes(Path(path).read_bytes()).digests()
            except (OSError, CorruptEntry):
                digests, recency = set(), -1
            else:
                recency = st.st_mtime_ns
            found.append((recency, path, st.st_size, digests))
        found.sort(key=lambda item: (item[0], item[1]))
        return [(path, size, digests) for _, path, size, digests in found]

    def clear(self) -> None:
        """Remove every entry, blob and temp file."""
        for name in ("manifests", "blobs", "tmp"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        self._size_estimate = 0

    # ---- helpers ---------------------------------------------------------------------------

    def _tmp_file(self) -> str:
        tmp_dir = self.root / "tmp"
        try:
            fd, path = tempfile.mkstemp(dir=tmp_dir)
        except FileNotFoundError:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(dir=tmp_dir)
        os.close(fd)
        os.chmod(path, 0o644)
        return path

    def _install(self, tmp: str, dest: Path) -> None:
        """Rename a finished temp file into place (creating the fan-out directory)."""
        try:
            os.replace(tmp, dest)
        except FileNotFoundError:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)


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
    try:
        digest = memo.digest(Path(dest)).digest if memo is not None else hash_file(Path(dest))
    except OSError:
        return _FileState.DIFFERENT
    if digest != entry.digest:
        return _FileState.DIFFERENT
    if stat.S_IMODE(st.st_mode) & 0o777 != entry.mode:
        return _FileState.MODE_ONLY
    return _FileState.SAME


def _check_on_disk(base: str, rel: str) -> None:
    """Refuse a path whose existing parent directories lead, through a symlink, outside
    ``base`` (the workspace's real path)."""
    parts = rel.split("/")
    current = base
    for part in parts[:-1]:
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            real = os.path.realpath(current)
            if real != base and not real.startswith(base + os.sep):
                raise UnsafeEntry(f"path {rel!r} leads through a symlink out of the workspace")
            current = real


def _make_dirs(path: str) -> None:
    """Create a directory and its parents, replacing files that stand in the way."""
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        parent = os.path.dirname(path)
        _make_dirs(parent)
        if not os.path.isdir(path):
            _unlink(path)
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


def _place_symlink(dest: str, target: str) -> bool:
    """Make ``dest`` a symlink to ``target``; False when it already was one."""
    try:
        if os.readlink(dest) == target:
            return False
    except OSError:
        pass
    parent = os.path.dirname(dest)
    _make_dirs(parent)
    tmp = os.path.join(parent, f".ggen-link-{os.getpid()}-{time.time_ns()}")
    os.symlink(target, tmp)
    try:
        _replace(tmp, dest)
    except BaseException:
        _unlink(tmp)
        raise
    return True


def _relative_target(base: Path, rel: str, target: str) -> str:
    """A symlink's target as stored: relative; an absolute target inside the workspace is
    rewritten relative to the link. Targets leading out raise ``UnsafeEntry``."""
    if os.path.isabs(target):
        inside = os.path.relpath(target, base)
        if inside == ".." or inside.startswith("../"):
            raise UnsafeEntry(f"output symlink {rel!r} points outside the workspace")
        target = os.path.relpath(os.path.join(base, inside), base / os.path.dirname(rel))
    check_symlink_target(rel, target)
    return target


def _touch(path: Path) -> bool:
    """Refresh an existing file's mtime (a concurrent prune then spares it); False if absent."""
    now = time.time_ns()  # explicit: file times tick coarsely, behind the clock
    try:
        os.utime(path, ns=(now, now))
    except FileNotFoundError:
        return False
    except OSError:
        return path.exists()  # present but read-only store: still usable
    return True


def _unlink(path: str | os.PathLike[str]) -> bool:
    if not path:
        return False
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def _files_in(top: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(path, lstat) of the regular files one fan-out level below ``top``."""
    try:
        groups = list(os.scandir(top))
    except OSError:
        return
    for group in groups:
        if group.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                yield group.path, group.stat(follow_symlinks=False)
            continue
        try:
            entries = list(os.scandir(group.path))
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    yield entry.path, entry.stat(follow_symlinks=False)
