"""The local store's directory layout and the careful file operations every part of it uses.

Blobs live at ``blobs/ab/abcdef...`` and manifests at ``manifests/12/1234....json`` under the
store root (see ``ggen.cache.store``). Nothing here follows a symlink the store did not make.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from ggen.cache.manifest import HEX_DIGEST


def blob_path(root: Path, digest: str) -> Path:
    """Where the blob with this digest lives under the store ``root`` (whether or not it
    exists)."""
    if not HEX_DIGEST.fullmatch(digest):
        raise ValueError(f"not a digest: {digest!r}")
    return root / "blobs" / digest[:2] / digest


def manifest_path(root: Path, key: str) -> Path:
    """Where the manifest of this key lives under the store ``root`` (whether or not it
    exists)."""
    if not HEX_DIGEST.fullmatch(key):
        raise ValueError(f"not a cache key: {key!r}")
    return root / "manifests" / key[:2] / f"{key}.json"


def is_regular(path: Path) -> bool:
    """Whether ``path`` is a regular file (not following a symlink)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def touch(path: Path) -> bool:
    """Refresh an existing file's mtime (a concurrent prune then spares it); False if absent
    or not a regular file (a symlink is then replaced, never followed)."""
    now = time.time_ns()  # explicit: file times tick coarsely, behind the clock
    if not is_regular(path):
        return False
    try:
        os.utime(path, ns=(now, now), follow_symlinks=False)
    except FileNotFoundError:
        return False
    except OSError:
        return path.exists()  # present but read-only store: still usable
    return True


def unlink(path: str | os.PathLike[str]) -> bool:
    """Remove a file; False if it was not there or could not be removed."""
    if not path:
        return False
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def files_in(top: Path) -> Iterator[tuple[str, os.stat_result]]:
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
