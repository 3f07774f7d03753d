"""The cache's one face: the local store and, when configured, the remote, behind one object.

``Cache`` owns the three things a run asks of the cache: where an entry is (``find`` for a run,
which brings a remote entry into the local store; ``peek`` for ``ggen explain``, which reads and
writes nothing but asks the remote with a HEAD), restoring an entry into a workspace, and
saving a task's outputs. The remote never touches the store: entries move between the two here,
blobs first and the manifest last, so neither side ever holds a manifest whose blobs are
missing.

Saving (hashing and copying outputs, then uploading) happens on a small pool of I/O threads, off
the thread that dispatches tasks: a task's dependents start as soon as its outputs are on disk.
``wait`` (called by ``close``) returns once every save is done; the run calls it before it
records, so a finished run's entries are all stored.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ggen.cache.digest import DigestMemo
    from ggen.cache.manifest import Manifest
    from ggen.cache.remote import RemoteCache
    from ggen.cache.store import RestoreResult, Store


IO_THREADS = 2  # saves are disk-bound and uploads are bounded by the remote's own pool


class Location(enum.Enum):
    """Where a task's entry was found."""

    LOCAL = "local"
    REMOTE = "remote"


@dataclass(frozen=True)
class Entry:
    """An entry found for a key: where, and its manifest (None when only known to exist, as a
    HEAD on the remote tells)."""

    location: Location
    manifest: Manifest | None = None


@dataclass(frozen=True)
class SaveRequest:
    """What ``Cache.save`` stores: a task's outputs under ``ws_dir`` and its log file."""

    key: str
    workspace: str
    phase: str
    ws_dir: Path
    outputs: Sequence[str]
    log: Path | None
    exit_code: int
    duration_ms: int


class Cache:
    """The local store and the optional remote, for one run or one ``explain``."""

    def __init__(self, store: Store, remote: RemoteCache | None = None) -> None:
        self.store = store
        self.remote = remote
        self._io: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()
        self._saving = threading.Lock()

    # finding --------------------------------------------------------------------------------
    def find(self, key: str) -> Entry | None:
        """The entry of ``key`` for a run: the local one (now the most recently used), else
        the remote one, copied into the local store first; None on a miss."""
        manifest = self.store.lookup(key)
        if manifest is not None:
            return Entry(Location.LOCAL, manifest)
        if self.remote is not None and self.fetch(key):
            manifest = self.store.lookup(key)
            if manifest is not None:
                return Entry(Location.REMOTE, manifest)
        return None

    def peek(self, key: str) -> Entry | None:
        """Where ``key``'s entry is, changing nothing anywhere: the local store is only read,
        the remote only asked (HEAD)."""
        manifest = self.store.lookup(key, read_only=True)
        if manifest is not None:
            return Entry(Location.LOCAL, manifest)
        if self.remote is not None and self.remote.has_manifest(key):
            return Entry(Location.REMOTE)
        return None

    # restoring ------------------------------------------------------------------------------
    def restore(
        self, manifest: Manifest, ws_dir: Path, outputs: Sequence[str], memo: DigestMemo
    ) -> RestoreResult:
        """Make the workspace's outputs those of ``manifest`` (``Store.restore``: confined to
        ``outputs``; raises ``UnsafeEntry``, ``CorruptEntry`` or ``RestoreFailed``)."""
        return self.store.restore(manifest, ws_dir, outputs=outputs, memo=memo)

    def log_chunks(self, manifest: Manifest) -> Iterator[bytes]:
        """The log the entry's task wrote, in chunks (it may be large)."""
        return self.store.log_chunks(manifest)

    # saving ---------------------------------------------------------------------------------
    def save(self, request: SaveRequest) -> None:
        """Store the outputs and log, then upload the entry, on an I/O thread."""
        with self._lock:
            if self._io is None:
                self._io = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="ggen-cache-io")
            self._pending.append(self._io.submit(self._save, request))

    def _save(self, request: SaveRequest) -> None:
        # one save at a time: a save that prunes must not take the blobs of another one
        # whose manifest is not written yet; uploads (below) overlap freely
        with self._saving:
            manifest = self._store_save(request)
        if manifest is not None and self.remote is not None:
            self.push(request.key)

    def _store_save(self, request: SaveRequest) -> Manifest | None:
        return self.store.save(
            request.key,
            workspace=request.workspace,
            phase=request.phase,
            ws_dir=request.ws_dir,
            outputs=request.outputs,
            log=request.log if request.log is not None else b"",  # copied in chunks
            exit_code=request.exit_code,
            duration_ms=request.duration_ms,
        )

    def wait(self) -> None:
        """Return once every save asked so far is done; an error of one is raised here."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def abort(self) -> None:
        """An interrupted run: stop the remote transfers now and start none (saves to the local
        store still finish, so ``wait`` stays short)."""
        if self.remote is not None:
            self.remote.abort()

    def close(self) -> None:
        """Wait for the saves, stop the I/O threads, close the remote's connections."""
        try:
            self.wait()
        finally:
            if self._io is not None:
                self._io.shutdown(wait=True)
                self._io = None
            if self.remote is not None:
                self.remote.close()

    # moving entries between the remote and the store ----------------------------------------
    def fetch(self, key: str) -> bool:
        """Copy the entry ``key`` (manifest, output blobs, log blob) from the remote into the
        store. Blobs come first, each verified and renamed into place (through the store's
        ``tmp/`` directory, which pruning cleans after a crash); the manifest is stored last
        and only if every blob arrived. True on a remote hit now present locally."""
        from ggen.cache.manifest import CorruptEntry

        remote = self.remote
        if remote is None or remote.disabled:
            return False
        data = remote.get_manifest(key)
        if data is None:
            return False
        blobs = _entry_blobs(remote, key, data)
        if blobs is None:
            return False
        store = self.store
        missing = [(d, store.blob_path(d)) for d in blobs if not store.has_blob(d)]
        if not remote.download_many(missing, tmp_dir=store.root / "tmp", sizes=blobs):
            return False
        try:
            store.put_manifest_bytes(key, data)
        except CorruptEntry as exc:
            remote.warn(f"refused manifest {key}: {exc}")
            return False
        return True

    def push(self, key: str) -> bool:
        """Copy the entry ``key`` from the store to the remote: blobs first, then the manifest,
        so a reader never finds a manifest whose blobs are missing. False in read-only mode,
        once the remote is disabled, or when the local entry is absent or unusable."""
        remote = self.remote
        if remote is None or remote.read_only or remote.disabled:
            return False
        data = self.store.manifest_bytes(key)
        if data is None:
            return False
        blobs = _entry_blobs(remote, key, data)
        if blobs is None:
            return False
        if not remote.upload_many([(d, self.store.blob_path(d)) for d in blobs]):
            return False
        return remote.put_manifest(key, data)


def _entry_blobs(remote: RemoteCache, key: str, data: bytes) -> dict[str, int | None] | None:
    """The blobs a manifest needs with their declared sizes (sorted by digest), or None (with
    a warning) if it is unusable.

    Parsing is the local store's own validation, path-safety rules included; under a signing
    key the manifest must also give each blob's SHA-256.
    """
    from ggen.cache.manifest import CorruptEntry, Manifest
    from ggen.cache.signing import SignatureError, check_attested

    try:
        manifest = Manifest.from_bytes(data, envelope=False)
        if remote.signing_key is not None:
            check_attested(manifest)
    except (CorruptEntry, SignatureError) as exc:
        remote.warn(f"refused manifest {key}: {exc}")
        return None
    if manifest.key != key:
        remote.warn(f"refused manifest {key}: it is the entry of {manifest.key}")
        return None
    return dict(sorted(manifest.blob_sizes().items()))
