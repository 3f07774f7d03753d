"""One ``ggen run`` at a time per project: a lock on the project's ``.ggen/``.

A second run waits, saying once which process it waits for, or with ``--no-wait`` fails at
once. The lock is an OS-level file lock (``flock``), so it is released when its holder dies,
even by ``kill -9``; ``.ggen/run.owner`` only names the holder for that message.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ggen.atomic import write_text_atomic
from ggen.errors import LockBusyError
from ggen.make import Make
from ggen.runner.state import ggen_dir

LOCK_FILE = "run.lock"
OWNER_FILE = "run.owner"

_held: list[int] = []  # the descriptor of the lock this process holds, if any


def held_lock_fd() -> int | None:
    """The file descriptor of the project lock this process holds now, if any."""
    return _held[-1] if _held else None


@contextmanager
def project_lock(make: Make, *, wait: bool, notify: Callable[[str], None]) -> Iterator[None]:
    """Hold the project's run lock for the duration of the block."""
    import fcntl

    path = ggen_dir(make) / LOCK_FILE
    owner = path.with_name(OWNER_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(owner)
            if not wait:
                raise LockBusyError(
                    f"another ggen run{holder} holds {path} (wait for it, or run without --no-wait)"
                ) from None
            notify(f"another ggen run{holder} is using this project; waiting for it to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _held.append(fd)
        try:
            write_text_atomic(owner, f"{os.getpid()}\n")
            yield
        finally:
            _held.remove(fd)
            with contextlib.suppress(OSError):
                owner.unlink()
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(owner: Path) -> str:
    """`` (pid N)`` for the process holding the lock, if it said so."""
    try:
        return f" (pid {int(owner.read_text())})"
    except (OSError, ValueError):
        return ""
