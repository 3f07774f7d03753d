"""One ``ggen run`` at a time per project: a lock on the project's ``.ggen/``.

A second run waits, saying so once, or with ``--no-wait`` fails at once. The lock is an OS-level
file lock, so it is released when its holder dies, even by ``kill -9``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ggen.errors import LockBusyError
from ggen.make import Make
from ggen.runner.state import ggen_dir


@contextmanager
def project_lock(make: Make, *, wait: bool, notify: Callable[[str], None]) -> Iterator[None]:
    """Hold the project's run lock for the duration of the block."""
    from filelock import FileLock, Timeout

    path = ggen_dir(make) / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise LockBusyError(
                f"another ggen run holds {path} (wait for it, or run without --no-wait)"
            ) from None
        notify(f"another ggen run is using this project; waiting for it to finish ({path})")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
