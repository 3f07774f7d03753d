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

Restoring is careful about paths, since manifests may come from a remote cache: a restore
writes and deletes only paths that the task's output globs match. Every path of the manifest
must be relative, free of ``..``, ``.git`` and ``.ggen`` and matched by the globs; nothing that
stands in the way and would be replaced or deleted (a file where a directory goes, a directory
where a file goes, a symlinked directory, which is never written through) may be anything
but an output either; a symlink's target must stay inside the workspace. All of it is checked,
and every blob copied out and verified, before anything is written. Then what the globs match
is made exactly the manifest: outputs it does not list (and empty directories) are removed.

Blobs are staged as ``.ggen-restore-*`` in the nearest existing directory on the way to their
destination (``.ggen-link-*`` next to it for symlinks), names registered before the files are
made so that any exception, a ``KeyboardInterrupt`` included, removes them; the output scan
never reports such names, so a file left by a crash is never stored, and the next restore of
the task removes it.

With a signing key (``ggen.cache.signing``) every manifest is written in its signed envelope
and checked on every lookup, and blobs are checked against the SHA-256 their manifest gives
while they are copied out: a cache directory others can write to cannot forge an entry.

The manifest format and its pure checks live in ``ggen.cache.manifest``; ``Manifest``, its
entries, ``CorruptEntry``, ``UnsafeEntry`` and the path checks are re-exported from here.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from ggen.cache.files import Globs, is_output, is_staging_name, output_globs, scan_outputs
from ggen.cache.manifest import HEX_DIGEST, entry_paths
from ggen.cache.manifest import MANIFEST_VERSION as MANIFEST_VERSION
from ggen.cache.manifest import CorruptEntry as CorruptEntry
from ggen.cache.manifest import Manifest as Manifest
from ggen.cache.manifest import OutputEntry as OutputEntry
from ggen.cache.manifest import SymlinkEntry as SymlinkEntry
from ggen.cache.manifest import UnsafeEntry as UnsafeEntry
from ggen.cache.manifest import check_outputs as check_outputs
from ggen.cache.manifest import check_paths as check_paths
from ggen.cache.manifest import check_symlink_target as check_symlink_target

COPY_CHUNK = 1024 * 1024
# errors that mean the entry names something this filesystem cannot hold, not that the
# workspace cannot be written
_ENTRY_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL})
STALE_TMP_NS = 3600 * 1_000_000_000  # a temp file this old was left by a dead process
AUTO_PRUNE_LOW_WATER = 0.9  # automatic eviction frees down to this share of max_size


def default_cache_dir() -> Path:
    """The per-user cache directory (``~/.cache/ggen`` on Linux)."""
    return Path(platformdirs.user_cache_dir("ggen", appauthor=False))


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
        signing_key: bytes | None = None,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.max_size = max_size
        self._warn = warn or _stderr_warning
        self._signing_key = signing_key
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
        """Whether the blob is present as a regular file (its contents are checked when
        read)."""
        return _is_regular(self.blob_path(digest))

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

    def _put_log_file(self, path: Path) -> tuple[str, int, int]:
        """(digest, bytes added, size) of a log file stored as a blob in one pass: copied while
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
                return digest, 0, size
            self._install(tmp, self.blob_path(digest))
        finally:
            _unlink(tmp)
        return digest, size, size

    def _open_blob(self, digest: str) -> Iterator[bytes]:
        """The blob's contents in chunks, checked against its digest at the end
        (``CorruptEntry`` when missing or wrong)."""
        path = self.blob_path(digest)
        # not following links, and not blocking on a fifo: only a regular file is a blob
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise CorruptEntry(f"blob {digest} is missing") from None
        except OSError as exc:
            if exc.errno != errno.ELOOP:  # the store's fault, not the workspace's
                raise CorruptEntry(f"blob {digest} cannot be read ({exc.strerror})") from None
            _unlink(path)
            raise CorruptEntry(f"blob {digest} is a symlink (removed)") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            _unlink(path)
            raise CorruptEntry(f"blob {digest} is not a regular file")
        hasher = xxhash.xxh3_128()
        with open(fd, "rb") as f:
            while chunk := f.read(COPY_CHUNK):
                hasher.update(chunk)
                yield chunk
        if hasher.hexdigest() != digest:
            _unlink(path)
            raise CorruptEntry(f"blob {digest} is corrupt (removed)")

    def _blob_chunks(self, digest: str, sha256: str | None) -> Iterator[bytes]:
        """The blob's contents in chunks (``_open_blob``); with a signing key, also checked
        against the SHA-256 its signed manifest gives (xxh3 is not collision-resistant): a blob
        that differs is removed and ``CorruptEntry`` raised once it has been read."""
        if self._signing_key is None:
            return self._open_blob(digest)
        return self._sha256_checked(digest, sha256)

    def _sha256_checked(self, digest: str, sha256: str | None) -> Iterator[bytes]:
        if sha256 is None:
            raise CorruptEntry(f"blob {digest} has no SHA-256 in its signed manifest")
        import hashlib

        hasher = hashlib.sha256()
        for chunk in self._open_blob(digest):
            hasher.update(chunk)
            yield chunk
        if hasher.hexdigest() != sha256:
            _unlink(self.blob_path(digest))
            raise CorruptEntry(
                f"blob {digest} does not match the SHA-256 its signed manifest gives (removed)"
            )

    # ---- manifests -------------------------------------------------------------------------

    def manifest_bytes(self, key: str) -> bytes | None:
        """The stored manifest of ``key`` as bytes out of its envelope, or None (for the remote
        cache). With a signing key, an entry that fails the check is None too: it must not be
        published signed."""
        try:
            data = self.manifest_path(key).read_bytes()
        except FileNotFoundError:
            return None
        if self._signing_key is None:
            return data
        from ggen.cache.signing import SignatureError, open_signed

        try:
            return open_signed(self._signing_key, key, data)
        except SignatureError:
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
        if self._signing_key is not None:
            from ggen.cache.signing import seal_manifest

            data = seal_manifest(self._signing_key, key, data)
        tmp = self._tmp_file()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            now = time.time_ns()  # explicit, fine-grained recency (file times tick coarsely)
            os.utime(tmp, ns=(now, now))
            self._install(tmp, self.manifest_path(key))
        finally:
            _unlink(tmp)

    def lookup(self, key: str, *, read_only: bool = False) -> Manifest | None:
        """The manifest stored for ``key``, or None. A corrupt one is reported, removed and
        counts as absent. A hit becomes the most recently used entry. ``read_only`` (``ggen
        explain``) changes nothing in the store: no recency, a corrupt entry is only absent."""
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
            if not read_only:
                self._discard(key, str(exc))
            return None
        if self._signing_key is not None and not self._signed(key, data, manifest):
            return None
        if read_only:
            return manifest
        now = time.time_ns()
        with contextlib.suppress(OSError):
            os.utime(path, ns=(now, now))
        return manifest

    def _signed(self, key: str, data: bytes, manifest: Manifest) -> bool:
        """Whether a local entry passes the signing key's check; a warning when it does not
        (the entry is left for the task's own save to replace)."""
        from ggen.cache.signing import SignatureError, check_attested, open_signed

        assert self._signing_key is not None
        try:
            open_signed(self._signing_key, key, data)
            check_attested(manifest)
        except SignatureError as exc:
            self._warn(f"cache entry {key} refused: {exc}")
            return False
        return True

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
        scan = scan_outputs(base, outputs)
        if scan.special:
            raise UnsafeEntry(f"output {scan.special[0]!r} is a fifo, socket or device")
        for rel in scan.files:
            path = base / rel
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                links.append(SymlinkEntry(rel, _relative_target(base, rel, os.readlink(path))))
                continue
            digest, size, new_bytes = self._put_file(path)
            files.append(OutputEntry(rel, digest, size, stat.S_IMODE(st.st_mode) & 0o777))
            added += new_bytes
        if isinstance(log, bytes):
            log_digest, log_size = hash_bytes(log), len(log)
            added += self._put_bytes(log_digest, log)
        else:
            log_digest, new_bytes, log_size = self._put_log_file(log)
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
            log_size=log_size,
            dirs=scan.empty_dirs,
        )
        if self._signing_key is not None:
            manifest = _with_sha256(manifest, base, log)
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
        self,
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
            self._discard(manifest.key, "", report=False)  # the exception tells the caller
            raise
        base = os.path.realpath(ws_dir)
        globs = output_globs(outputs)
        staged: list[str] = []  # temp files, listed before they are made: removed on any error
        doing = base
        try:
            if not os.path.isdir(base):
                os.makedirs(base)
            scan = scan_outputs(base, outputs)
            for path in [o.path for o in manifest.outputs] + [s.path for s in manifest.symlinks]:
                doing = os.path.join(base, path)
                _check_on_disk(base, path, globs, directory=False)
            for path in manifest.dirs:
                doing = os.path.join(base, path)
                _check_on_disk(base, path, globs, directory=True)
            listed = {o.path for o in manifest.outputs} | {s.path for s in manifest.symlinks}
            replace: list[tuple[str, str]] = []  # (temp file, destination)
            chmods: list[tuple[str, int]] = []  # right contents, wrong permissions
            unchanged = 0
            # first every blob is copied out and verified, then everything is put in place
            for entry in manifest.outputs:
                dest = doing = os.path.join(base, entry.path)
                state = _file_state(dest, entry, memo)
                if state is _FileState.SAME:
                    unchanged += 1
                elif state is _FileState.MODE_ONLY:
                    chmods.append((dest, entry.mode))
                else:
                    stage_dir = _nearest_dir(base, entry.path)
                    replace.append((self._stage(entry, stage_dir, manifest.key, staged), dest))
            removed = 0
            for rel in (*scan.staged, *(p for p in scan.files + scan.special if p not in listed)):
                doing = os.path.join(base, rel)
                removed += _remove(doing)
            for dest, mode in chmods:
                doing = dest
                os.chmod(dest, mode)
            for tmp, dest in replace:
                doing = dest
                _make_dirs(os.path.dirname(dest))
                _replace(tmp, dest)
            written = len(replace) + len(chmods)
            for link in manifest.symlinks:
                doing = os.path.join(base, link.path)
                if _place_symlink(doing, link.target, staged):
                    written += 1
                else:
                    unchanged += 1
            for rel in manifest.dirs:
                doing = os.path.join(base, rel)
                if os.path.isdir(doing):
                    unchanged += 1
                else:
                    _make_dirs(doing)
                    written += 1
            if removed or not set(scan.empty_dirs) <= set(manifest.dirs):
                doing = base
                removed += _remove_empty_dirs(base, outputs, manifest)
        except OSError as exc:
            raise self._restore_failed(manifest.key, exc, doing) from None
        finally:
            _remove_staged(staged)  # gone already unless something failed
        return RestoreResult(written=written, unchanged=unchanged, removed=removed)

    def _restore_failed(self, key: str, exc: OSError, doing: str) -> RestoreFailed:
        """The ``RestoreFailed`` for an ``exc`` met while writing ``doing``; the manifest is
        removed when the error says a name it holds cannot exist here."""
        damaged = exc.errno in _ENTRY_ERRNOS
        if damaged:
            self._discard(key, "", report=False)
        path = doing  # a temp file's name would tell the user nothing
        if isinstance(exc.filename, str) and exc.filename and not is_staging_name(exc.filename):
            path = exc.filename
        return RestoreFailed(path, exc.strerror or str(exc), damaged=damaged)

    def _stage(self, entry: OutputEntry, directory: str, key: str, staged: list[str]) -> str:
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
                for chunk in self._blob_chunks(entry.digest, entry.sha256):
                    out.write(chunk)
                os.fchmod(out.fileno(), entry.mode)
        except CorruptEntry as exc:
            _unlink(tmp)
            self._discard(key, str(exc), report=False)  # the exception tells the caller
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
            yield from self._blob_chunks(manifest.log_digest, manifest.log_sha256)
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
        sound, and report anything in the store's layout that is not a regular file (a
        symlink, a directory, a fifo: never followed). With ``repair``, remove what is bad
        (those, blobs, and the manifests that need them)."""
        problems: list[Problem] = []
        removed = 0
        for top in (self.root / "blobs", self.root / "manifests"):
            for path, what in _not_regular(top):
                problems.append(Problem(ProblemKind.NOT_A_FILE, path, what))
                if repair and _remove_any(path):
                    removed += 1
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
            _unlink(staged[-1])
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


def _with_sha256(manifest: Manifest, base: Path, log: bytes | Path) -> Manifest:
    """The manifest with the SHA-256 of the log and of each output file, for signing. Outputs
    are hashed where the task wrote them, not in the store, where a blob that only shares
    their xxh3 digest could already stand."""
    import hashlib

    from ggen.cache.signing import sha256_file

    outputs = tuple(
        dataclasses.replace(o, sha256=sha256_file(base / o.path)) for o in manifest.outputs
    )
    log_sha256 = hashlib.sha256(log).hexdigest() if isinstance(log, bytes) else sha256_file(log)
    return dataclasses.replace(manifest, outputs=outputs, log_sha256=log_sha256)


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


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _touch(path: Path) -> bool:
    """Refresh an existing file's mtime (a concurrent prune then spares it); False if absent
    or not a regular file (a symlink is then replaced, never followed)."""
    now = time.time_ns()  # explicit: file times tick coarsely, behind the clock
    if not _is_regular(path):
        return False
    try:
        os.utime(path, ns=(now, now), follow_symlinks=False)
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
        if group.is_symlink():
            continue  # never followed (``verify`` reports it)
        try:
            entries = list(os.scandir(group.path))
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    yield entry.path, entry.stat(follow_symlinks=False)


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
