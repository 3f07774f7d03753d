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

The parts live in their own modules: restoring an entry into a workspace safely in
``ggen.cache.restore``, looking after the whole store (stats, verify, prune, clear) in
``ggen.cache.maintenance``, writing and reading blobs in ``ggen.cache.blobs``, the directory
layout and file operations in ``ggen.cache.layout``.
``Store`` is the one face over them; its results and errors are re-exported from here.

With a signing key (``ggen.cache.signing``) every manifest is written in its signed envelope
and checked on every lookup, and blobs are checked against the SHA-256 their manifest gives
while they are copied out: a cache directory others can write to cannot forge an entry.

The manifest format and its pure checks live in ``ggen.cache.manifest``; ``Manifest``, its
entries, ``CorruptEntry``, ``UnsafeEntry`` and the path checks are re-exported from here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ggen.cache import blobs
from ggen.cache.digest import DigestMemo, hash_bytes
from ggen.cache.files import scan_outputs
from ggen.cache.layout import blob_path, is_regular, manifest_path, unlink
from ggen.cache.manifest import MANIFEST_VERSION as MANIFEST_VERSION
from ggen.cache.manifest import CorruptEntry as CorruptEntry
from ggen.cache.manifest import Manifest as Manifest
from ggen.cache.manifest import OutputEntry as OutputEntry
from ggen.cache.manifest import SymlinkEntry as SymlinkEntry
from ggen.cache.manifest import UnsafeEntry as UnsafeEntry
from ggen.cache.manifest import check_outputs as check_outputs
from ggen.cache.manifest import check_paths as check_paths
from ggen.cache.manifest import check_symlink_target as check_symlink_target
from ggen.cache.restore import RestoreFailed as RestoreFailed
from ggen.cache.restore import RestoreResult as RestoreResult
from ggen.cache.restore import restore_entry

AUTO_PRUNE_LOW_WATER = 0.9  # automatic eviction frees down to this share of max_size


if TYPE_CHECKING:
    from ggen.cache.maintenance import Problem as Problem
    from ggen.cache.maintenance import ProblemKind as ProblemKind
    from ggen.cache.maintenance import StoreStats as StoreStats
    from ggen.cache.maintenance import VerifyReport as VerifyReport

# verify, prune, clear and stats are not on a run's path: their module (and what it
# imports) loads on first use; its names stay importable from here
_MAINTENANCE_NAMES = frozenset({"Problem", "ProblemKind", "StoreStats", "VerifyReport"})


def __getattr__(name: str) -> object:
    if name in _MAINTENANCE_NAMES:
        from ggen.cache import maintenance

        return getattr(maintenance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_cache_dir() -> Path:
    """The per-user cache directory (``~/.cache/ggen`` on Linux)."""
    import platformdirs  # only without [cache] dir or GGEN_CACHE_DIR

    return Path(platformdirs.user_cache_dir("ggen", appauthor=False))


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
        return blob_path(self.root, digest)

    def manifest_path(self, key: str) -> Path:
        """Where the manifest of this key lives (whether or not it exists)."""
        return manifest_path(self.root, key)

    # ---- blobs -----------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """Whether the blob is present as a regular file (its contents are checked when
        read)."""
        return is_regular(self.blob_path(digest))

    def put_blob_bytes(self, data: bytes) -> str:
        """Store ``data`` as a blob (no-op if present); its digest."""
        digest = hash_bytes(data)
        blobs.put_bytes(self.root, digest, data)
        return digest

    def put_blob_file(self, path: Path) -> str:
        """Store a file's contents as a blob (no-op if present); the digest of what was
        stored."""
        return blobs.put_file(self.root, path)[0]

    def blob_chunks(self, digest: str, sha256: str | None) -> Iterator[bytes]:
        """The blob's contents in chunks, checked against its digest at the end; with a
        signing key, also against the SHA-256 its signed manifest gives (``ggen.cache.blobs``).
        ``CorruptEntry`` when missing or wrong (a wrong blob is removed)."""
        if self._signing_key is None:
            return blobs.open_blob(self.root, digest)
        return blobs.sha256_checked(self.root, digest, sha256)

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
        tmp = blobs.tmp_file(self.root)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            now = time.time_ns()  # explicit, fine-grained recency (file times tick coarsely)
            os.utime(tmp, ns=(now, now))
            blobs.install(tmp, self.manifest_path(key))
        finally:
            unlink(tmp)

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
                self.discard(key, str(exc))
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

    def discard(self, key: str, reason: str, *, report: bool = True) -> None:
        """Remove the manifest of ``key`` (its blobs go at the next prune), saying why unless
        the caller reports it."""
        if report:
            self._warn(f"cache entry {key} is corrupt ({reason}); removed")
        unlink(self.manifest_path(key))

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
            digest, size, new_bytes = blobs.put_file(self.root, path)
            files.append(OutputEntry(rel, digest, size, stat.S_IMODE(st.st_mode) & 0o777))
            added += new_bytes
        if isinstance(log, bytes):
            log_digest, log_size = hash_bytes(log), len(log)
            added += blobs.put_bytes(self.root, log_digest, log)
        else:
            log_digest, new_bytes, log_size = blobs.put_log_file(self.root, log)
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
                from ggen.cache import maintenance

                self._size_estimate = maintenance.prune(self.root, target)[1]
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
        """Make what the task's ``outputs`` globs match in the workspace exactly the manifest
        (``ggen.cache.restore.restore_entry``: the checks, the errors it raises)."""
        return restore_entry(self, manifest, ws_dir, outputs=outputs, memo=memo)

    def read_log(self, manifest: Manifest) -> bytes:
        """The task's captured log, checked against its digest (``CorruptEntry`` when missing
        or corrupt; the blob and the manifest are then removed)."""
        return b"".join(self.log_chunks(manifest))

    def log_chunks(self, manifest: Manifest) -> Iterator[bytes]:
        """The task's captured log in chunks, as ``read_log`` (checked at the end), for logs
        too large to hold at once."""
        try:
            yield from self.blob_chunks(manifest.log_digest, manifest.log_sha256)
        except CorruptEntry as exc:
            self.discard(manifest.key, str(exc), report=False)
            raise

    # ---- maintenance -----------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Count the entries and blobs and the bytes they take."""
        from ggen.cache import maintenance

        return maintenance.stats(self.root)

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Check every blob and manifest; with ``repair``, remove what is bad
        (``ggen.cache.maintenance.verify``)."""
        from ggen.cache import maintenance

        return maintenance.verify(self.root, repair=repair)

    def prune(self, max_size: int | None = None) -> int:
        """Evict least recently used entries until the store fits ``max_size`` (default: the
        store's own bound; none: evict nothing), then remove blobs no entry needs and stale
        temp files. Returns the bytes freed."""
        bound = max_size if max_size is not None else self.max_size
        from ggen.cache import maintenance

        freed, remaining = maintenance.prune(self.root, bound)
        self._size_estimate = remaining
        return freed

    def clear(self) -> None:
        """Remove every entry, blob and temp file."""
        from ggen.cache import maintenance

        maintenance.clear(self.root)
        self._size_estimate = 0


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
