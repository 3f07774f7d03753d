"""File digests (xxh3-128) and the stat memo that spares re-reading unchanged files.

A digest is the 32-hex-char xxh3-128 of a file's bytes. ``DigestMemo`` remembers, per absolute
path, the digest together with the stat data it was taken under (size, mtime_ns, ctime_ns,
inode) and the moment of recording (the clock read before the file was opened). A later lookup
returns the memoised digest without reading the file when all four stat fields are equal and
the entry is trusted; otherwise the file is read again.

What the memo trusts, and so what it can and cannot see (as git's "racy git" documentation
says for its index):

- A change is seen when it changes the size, the inode (a file replaced by rename, as editors
  and ``ggen`` itself write), mtime or ctime. Every ``write(2)``, ``truncate`` and rename onto
  the path does. ctime cannot be set by any program, so a rewrite that puts the old mtime back
  (``cp -p``, ``rsync -t``, ``touch -d``) is still seen.
- The racy-clock-tick rule (``is_trusted``): the kernel stamps files from a clock that lags
  the real time by up to one tick, so a file modified in the same tick as it was hashed, and
  again later in that tick, could keep its stat data. An entry is therefore trusted only if the
  file's mtime and ctime were older than the recording moment by more than the timestamp
  granularity: 50 ms on local Linux filesystems (5x the coarsest tick), 2 s where timestamps
  come in whole milliseconds (FAT: 2 s, HFS+: 1 s). A racy entry is hashed again on every
  lookup until it is old enough to be recorded as trusted.
- Writes through a shared, writable ``mmap`` change no stat field except at the first write to
  each clean page (Linux updates mtime and ctime only then); a process that keeps a page
  mapped can change its bytes again and again with size, mtime, ctime and inode unchanged. The
  memo sees those only because it never records a digest while any process has the file open
  for writing or mapped writable: before hashing, it asks for a read lease (``F_SETLEASE``),
  which Linux refuses while such an opening exists, and such a file is read again on every
  lookup. A writer that opens the file after the digest was recorded changes mtime and ctime
  at its first write, which the stat comparison sees.
- It cannot see: a writer it could not ask about (no lease where ggen does not own the file
  and lacks CAP_LEASE, on network filesystems, and on systems other than Linux: there the
  digest is recorded as if no writer were there); writes made by another machine to a shared
  filesystem; writes to the block device under the filesystem; a clock set back so that a
  later change carries the same timestamps; and, on a network filesystem whose server clock
  lags the local clock, a file modified within one server tick of being hashed. ``--force``
  runs every task whatever the memo says.

Large files are hashed through ``mmap`` under a read lease: the lease makes any process that
wants to truncate or write the file wait until the hash is done, so the mapping cannot shrink
under us (which would kill the process with SIGBUS). Where a lease cannot be had (another
process has the file open for writing, not the owner, network filesystem, not Linux), a plain
read loop is used.

The memo file is orjson; paths that are not valid UTF-8 (any name the filesystem allows) are
kept in it in the ``fsnames.portable`` form.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import xxhash

from ggen.atomic import write_bytes_atomic
from ggen.cache.fsnames import MARK, portable, unportable

if sys.platform == "linux":
    import fcntl

MEMO_VERSION = 1
READ_CHUNK = 512 * 1024  # fits the L2 cache: copy and hash both stay in cache
MMAP_MIN_SIZE = 4 * 1024 * 1024  # below this, mapping costs more than copying
FINE_MARGIN_NS = 50_000_000  # 5x the coarsest Linux clock tick (HZ=100)
COARSE_MARGIN_NS = 2_000_000_000  # FAT's 2 s timestamps
DEFAULT_MAX_ENTRIES = 200_000


def hash_bytes(data: bytes) -> str:
    """The xxh3-128 hexdigest (32 hex chars) of ``data``: the digest of a blob held in memory."""
    return xxhash.xxh3_128_hexdigest(data)


def hash_file(path: Path) -> str:
    """The xxh3-128 hexdigest of a file's contents, streamed (large files via a leased mmap)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return hash_fd(fd)[0]
    finally:
        os.close(fd)


def hash_fd(fd: int) -> tuple[str, int]:
    """The hexdigest and byte count of the whole file open on ``fd`` (read from its start)."""
    with contextlib.suppress(OSError):
        os.lseek(fd, 0, os.SEEK_SET)
    size = os.fstat(fd).st_size
    if size >= MMAP_MIN_SIZE:
        mapped = _hash_mapped(fd)
        if mapped is not None:
            return mapped
    return _hash_read(fd, size)


def _hash_read(fd: int, size: int) -> tuple[str, int]:
    if size < READ_CHUNK:
        data = os.read(fd, size + 1)
        if len(data) <= size:  # the common case: the whole file in one read
            rest = os.read(fd, 1) if len(data) == size else b""
            if not rest:
                return xxhash.xxh3_128_hexdigest(data), len(data)
            data += rest
        hasher = xxhash.xxh3_128(data)
        total = len(data)
    else:
        hasher = xxhash.xxh3_128()
        total = 0
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    while True:
        n = os.readv(fd, [buf])
        if not n:
            return hasher.hexdigest(), total
        hasher.update(view[:n] if n < READ_CHUNK else buf)
        total += n


def _hash_mapped(fd: int) -> tuple[str, int] | None:
    """Hash through mmap while holding a read lease; None when no lease can be had."""
    if sys.platform != "linux":
        return None
    try:
        # A lease break is signalled; SIGURG is ignored by default, SIGIO would kill us.
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size  # stable from here on: writers wait for the lease
        if size == 0:
            return xxhash.xxh3_128_hexdigest(b""), 0
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
            return xxhash.xxh3_128_hexdigest(mapped), size
    finally:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)


def has_writers(fd: int) -> bool | None:
    """Whether some process has the file open on ``fd`` open for writing or mapped writable
    (then its bytes may change with no stat field changing); None when this cannot be told.

    Asks for a read lease: Linux refuses one (EAGAIN) exactly while such an opening exists.
    Other refusals (not the owner, a filesystem without leases) say nothing. A lease granted
    is kept until ``fd`` is closed (one system call less per file hashed): meanwhile a process
    that opens the file for writing waits, as it does for ``_hash_mapped``.
    """
    if sys.platform != "linux":
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)  # a lease break must not kill us
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except BlockingIOError:
        return True
    except OSError:
        return None
    return False


@dataclass(frozen=True)
class FileDigest:
    """A file's content digest, its size in bytes and whether its owner may execute it."""

    digest: str
    size: int
    executable: bool


Entry = list[object]
"""A memo entry as stored: [size, mtime_ns, ctime_ns, inode, recorded_ns, digest].

Kept as the decoded JSON list and checked when used, which makes loading 20,000 entries cheap.
"""


def racy_margin_ns(mtime_ns: int, ctime_ns: int) -> int:
    """The timestamp granularity to allow for: 2 s on coarse filesystems, else 50 ms."""
    if mtime_ns % 1_000_000 == 0 and ctime_ns % 1_000_000 == 0:
        return COARSE_MARGIN_NS
    return FINE_MARGIN_NS


def is_trusted(mtime_ns: int, ctime_ns: int, recorded_ns: int) -> bool:
    """Whether a digest recorded at ``recorded_ns`` may stand in for reading a file whose stat
    data are unchanged (whether it is not racy).

    The clock read before the file was hashed must be later than both its mtime and its ctime
    by more than the timestamp granularity: then any later modification carries a newer
    timestamp, and the stat comparison catches it.
    """
    newest = max(mtime_ns, ctime_ns)
    return newest + racy_margin_ns(mtime_ns, ctime_ns) < recorded_ns


def _memoised(entry: Entry | None, st: os.stat_result) -> str | None:
    """The entry's digest when it describes the file ``st`` describes and is trusted."""
    if entry is None or len(entry) != 6:
        return None
    size, mtime_ns, ctime_ns, inode, recorded_ns, digest = entry
    if (
        size == st.st_size
        and mtime_ns == st.st_mtime_ns
        and ctime_ns == st.st_ctime_ns
        and inode == st.st_ino
        and type(recorded_ns) is int
        and type(digest) is str
        and len(digest) == 32
        and is_trusted(st.st_mtime_ns, st.st_ctime_ns, recorded_ns)
    ):
        return digest
    return None


def _recorded_ns(entry: Entry) -> int:
    value = entry[4] if len(entry) == 6 else 0
    return value if type(value) is int else 0


class DigestMemo:
    """File digests memoised on stat data, persisted as an orjson file.

    ``files_read`` counts the files actually read (a no-op run should read none). Saving
    merges this process's changes into whatever the file holds by then and replaces it
    atomically, so concurrent ggen processes never leave it half-written (where two save at
    once, the later one's view of the entries it did not touch wins).
    """

    def __init__(self, path: Path | None, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries
        self.files_read = 0
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = _load(path) if path is not None else {}
        self._changed: dict[str, Entry | None] = {}  # None: forget this path
        self._used: set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def digest(self, path: str | Path) -> FileDigest:
        """The digest of the file at ``path`` (symlinks followed), read only when needed.

        Raises OSError when the file cannot be stat'ed or read (missing, a directory...).
        """
        key = path if type(path) is str and path.startswith("/") else os.path.abspath(path)
        try:
            st = os.stat(key)
        except OSError:
            self._forget(key)
            raise
        self._used.add(key)
        memoised = _memoised(self._entries.get(key), st)
        if memoised is not None:
            return FileDigest(memoised, st.st_size, bool(st.st_mode & stat.S_IXUSR))
        recorded_ns = time.time_ns()  # before the read: see is_trusted
        fd = os.open(key, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            writers = has_writers(fd)
            digest, size = hash_fd(fd)
        finally:
            os.close(fd)
        with self._lock:
            self.files_read += 1
            # a file someone may write without changing its stat data is never memoised
            if size == st.st_size and not writers:
                entry: Entry = [
                    size,
                    st.st_mtime_ns,
                    st.st_ctime_ns,
                    st.st_ino,
                    recorded_ns,
                    digest,
                ]
                self._entries[key] = entry
                self._changed[key] = entry
            else:  # being written, or changed while being read: remember nothing
                self._forget_locked(key)
        return FileDigest(digest, size, bool(st.st_mode & stat.S_IXUSR))

    def _forget(self, key: str) -> None:
        with self._lock:
            self._forget_locked(key)

    def _forget_locked(self, key: str) -> None:
        if self._entries.pop(key, None) is not None or key in self._changed:
            self._changed[key] = None

    def save(self) -> None:
        """Write the memo back (atomically) if this process changed anything; never raises
        for a memo that cannot be written, since the memo is only an optimisation."""
        if self.path is None or not self._changed:
            return
        with self._lock:
            merged = _load(self.path)
            for key, entry in self._changed.items():
                if entry is None:
                    merged.pop(key, None)
                else:
                    merged[key] = entry
            merged = self._bounded(merged)
            entries = {portable(k): e for k, e in merged.items()}
            payload = {"version": MEMO_VERSION, "entries": entries}
            try:
                write_bytes_atomic(self.path, orjson.dumps(payload))
            except OSError:
                return
            self._entries = merged
            self._changed = {}

    def _bounded(self, entries: dict[str, Entry]) -> dict[str, Entry]:
        """At most ``max_entries``: those used by this process first, then the newest others."""
        if len(entries) <= self.max_entries:
            return entries
        kept = {k: e for k, e in entries.items() if k in self._used}
        others = sorted(
            ((k, e) for k, e in entries.items() if k not in self._used),
            key=lambda item: _recorded_ns(item[1]),
            reverse=True,
        )
        for key, entry in others[: max(0, self.max_entries - len(kept))]:
            kept[key] = entry
        return kept


def _load(path: Path) -> dict[str, Entry]:
    """The entries of a memo file; an unreadable or malformed file counts as empty (entries
    are checked one by one when used)."""
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(raw, dict) or raw.get("version") != MEMO_VERSION:
        return {}
    entries = raw.get("entries")
    if not isinstance(entries, dict):
        return {}
    loaded: dict[str, Entry] = {}
    for k, v in entries.items():
        if type(v) is list:
            if k.startswith(MARK):
                try:
                    k = unportable(k)
                except ValueError:
                    continue
            loaded[k] = v
    return loaded
