"""Blobs in the local store: written whole through ``tmp/`` and renamed into place, read back
in chunks checked against their digest (and, with a signing key, their SHA-256).

A blob already present is touched instead of written again, which keeps it alive against a
concurrent prune (see ``ggen.cache.maintenance``).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import xxhash

from ggen.cache.digest import hash_fd
from ggen.cache.layout import blob_path, touch, unlink
from ggen.cache.manifest import CorruptEntry

COPY_CHUNK = 1024 * 1024


def put_bytes(root: Path, digest: str, data: bytes) -> int:
    """Store ``data`` as the blob ``digest`` unless present (then touched); the bytes added."""
    dest = blob_path(root, digest)
    if touch(dest):
        return 0
    tmp = tmp_file(root)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        install(tmp, dest)
    finally:
        unlink(tmp)
    return len(data)


def put_file(root: Path, path: Path) -> tuple[str, int, int]:
    """(digest, size, bytes added to the store) of a file stored as a blob."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        digest, size = hash_fd(fd)
    finally:
        os.close(fd)
    if touch(blob_path(root, digest)):
        return digest, size, 0
    tmp = tmp_file(root)
    try:
        digest, size = _copy_hashed(path, tmp)  # the file may have changed since it was hashed
        install(tmp, blob_path(root, digest))
    finally:
        unlink(tmp)
    return digest, size, size


def put_log_file(root: Path, path: Path) -> tuple[str, int, int]:
    """(digest, bytes added, size) of a log file stored as a blob in one pass: copied while
    hashed, never mapped or held whole, since a log may be far larger than a run should
    take in memory (and is rarely in the store already)."""
    tmp = tmp_file(root)
    try:
        digest, size = _copy_hashed(path, tmp)
        if touch(blob_path(root, digest)):
            return digest, 0, size
        install(tmp, blob_path(root, digest))
    finally:
        unlink(tmp)
    return digest, size, size


def _copy_hashed(path: Path, tmp: str) -> tuple[str, int]:
    """Copy ``path`` to ``tmp`` in chunks, hashing what is copied: (digest, size)."""
    hasher = xxhash.xxh3_128()
    size = 0
    with open(path, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(COPY_CHUNK):
            hasher.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def open_blob(root: Path, digest: str) -> Iterator[bytes]:
    """The blob's contents in chunks, checked against its digest at the end
    (``CorruptEntry`` when missing or wrong)."""
    path = blob_path(root, digest)
    # not following links, and not blocking on a fifo: only a regular file is a blob
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise CorruptEntry(f"blob {digest} is missing") from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # the store's fault, not the workspace's
            raise CorruptEntry(f"blob {digest} cannot be read ({exc.strerror})") from None
        unlink(path)
        raise CorruptEntry(f"blob {digest} is a symlink (removed)") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        unlink(path)
        raise CorruptEntry(f"blob {digest} is not a regular file")
    hasher = xxhash.xxh3_128()
    with open(fd, "rb") as f:
        while chunk := f.read(COPY_CHUNK):
            hasher.update(chunk)
            yield chunk
    if hasher.hexdigest() != digest:
        unlink(path)
        raise CorruptEntry(f"blob {digest} is corrupt (removed)")


def sha256_checked(root: Path, digest: str, sha256: str | None) -> Iterator[bytes]:
    """The blob's contents in chunks (``open_blob``), checked against the SHA-256 its signed
    manifest gives (xxh3 is not collision-resistant): a blob that differs is removed and
    ``CorruptEntry`` raised once it has been read."""
    if sha256 is None:
        raise CorruptEntry(f"blob {digest} has no SHA-256 in its signed manifest")
    import hashlib

    hasher = hashlib.sha256()
    for chunk in open_blob(root, digest):
        hasher.update(chunk)
        yield chunk
    if hasher.hexdigest() != sha256:
        unlink(blob_path(root, digest))
        raise CorruptEntry(
            f"blob {digest} does not match the SHA-256 its signed manifest gives (removed)"
        )


def tmp_file(root: Path) -> str:
    """A new empty file in the store's ``tmp/`` (made if missing), to be renamed into place."""
    tmp_dir = root / "tmp"
    try:
        fd, path = tempfile.mkstemp(dir=tmp_dir)
    except FileNotFoundError:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=tmp_dir)
    os.close(fd)
    os.chmod(path, 0o644)
    return path


def install(tmp: str, dest: Path) -> None:
    """Rename a finished temp file into place (creating the fan-out directory)."""
    try:
        os.replace(tmp, dest)
    except FileNotFoundError:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
