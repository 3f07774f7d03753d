"""Executors the scheduler runs tasks on: inline (this process), loky (default) and dask.

Every one is a ``concurrent.futures.Executor``; each worker receives the project snapshot once,
through ``install_snapshot``. Heavy imports (loky, dask) happen only when a pool is made, so a
fully cached run never pays for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from ggen.make import ExecutorKind, Make
from ggen.runner.execute import install_snapshot, set_snapshot

T = TypeVar("T")


class InlineExecutor(Executor):
    """Runs each call at once in the calling thread; for ``-j1`` debugging and tests."""

    def __init__(self, make: Make | None = None) -> None:
        self._lock = threading.Lock()
        self._shutdown = False
        if make is not None:
            set_snapshot(make)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the caller reads it from the future, as with a pool
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True


def make_executor(
    kind: ExecutorKind, make: Make, jobs: int, scheduler: str | None = None
) -> Executor:
    """A fresh executor of ``kind`` with ``jobs`` workers, each holding ``make``."""
    if kind is ExecutorKind.INLINE:
        return InlineExecutor(make)
    if kind is ExecutorKind.DASK:
        from ggen.runner.dask_pool import dask_executor

        return dask_executor(make, scheduler, jobs)
    from loky import ProcessPoolExecutor

    executor: Executor = ProcessPoolExecutor(
        max_workers=jobs, initializer=install_snapshot, initargs=(make,)
    )
    return executor
