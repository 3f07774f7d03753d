"""Executors the scheduler runs tasks on: inline (this process), loky (default) and dask.

Every one is a ``concurrent.futures.Executor``; each worker receives the project snapshot once,
through its initializer. Heavy imports (loky, dask) happen only when a pool is made, so a
fully cached run never pays for them.

The loky pool is wrapped in a ``ResilientExecutor``, so that a worker process that dies (killed,
segfault, ``os._exit``) fails only the call it was running. When one worker dies, loky fails
*every* call in flight with the same ``TerminatedWorkerError`` and kills the other workers, and
it does not say which worker ran which call. So each call, wrapped by ``_tracked``, writes its
worker's pid to a file when it starts; when the pool breaks, loky calls the futures' callbacks
before it kills the surviving workers, and at that moment the dead worker is the only one that
is gone. Its call fails with ``WorkerDied`` (naming the signal or exit code: the executors'
common way to say so, ``ggen.runner.executor``); the pool is
replaced and the other calls are submitted again, so their futures end with their real results.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ggen.make import ExecutorKind, Make
from ggen.runner.execute import init_worker, run_in_worker, set_snapshot
from ggen.runner.executor import TaskCall, TaskExecutor, WorkerDied
from ggen.runner.results import TaskResult
from ggen.runner.state import ggen_dir

T = TypeVar("T")

MAX_BREAKS = 3  # pool breaks a call may witness, without being found the cause, before it fails


class InlineExecutor(Executor):
    """Runs each call at once in the calling thread: ``kind = "inline"``, and a run's lone
    task when no pool has been started (see ``Dispatcher.submit``)."""

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

    # TaskExecutor -------------------------------------------------------------------------
    rebuilds = 0  # no worker to lose

    def submit_task(self, call: TaskCall) -> Future[TaskResult]:
        return self.submit(run_in_worker, call.workspace, call.phase, call.options)

    def capacity(self) -> int:
        return 1

    def queue_ahead(self) -> int:
        return 0

    def cancel(self, future: Future[TaskResult]) -> bool:
        return False  # over when submit returns

    def interrupt(self) -> None:
        """Nothing to drop: a call here is over when ``submit`` returns."""


def _up() -> int:
    """A call that returns once a worker runs it."""
    return os.getpid()


def warm_up(executor: TaskExecutor, workers: int) -> None:
    """Start the workers of a process pool now; return when they answer."""
    if isinstance(executor, ResilientExecutor):
        for future in [executor.submit(_up) for _ in range(workers)]:
            future.result()


class _NotRun:
    """What a call answers instead of running when it was cancelled before it started."""


def _claim(path: str) -> bool:
    """Create ``path`` if nobody did: the worker starting a call and ``cancel`` both claim the
    call's claim file, and only the first one to do so has its way."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def _tracked(
    pid_file: str, fn: Callable[..., T], args: tuple[Any, ...], kwargs: Any
) -> T | _NotRun:
    """Runs in the worker: claim the call (unless ``cancel`` did), then write this worker's pid
    to ``pid_file`` for the call's duration."""
    if not _claim(f"{pid_file}.claim"):
        return _NotRun()
    tmp = f"{pid_file}.tmp"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, pid_file)
    try:
        return fn(*args, **kwargs)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pid_file)


@dataclass(eq=False)
class _Call:
    """One submitted call until its outer future is settled (mutable: it may be resubmitted)."""

    seq: int
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outer: Future[Any] = field(default_factory=Future)
    generation: int = -1  # the pool it was last submitted to
    inner: Future[Any] | None = None
    breaks: int = 0
    cancelled: bool = False  # claimed by ``cancel`` before a worker started it
    started: bool = False  # a worker of a pool that broke since had started it


class ResilientExecutor(Executor):
    """A process pool that survives the death of its workers (see the module docstring).

    ``factory`` makes a fresh pool (a loky ``ProcessPoolExecutor`` of ``workers`` processes);
    ``pid_dir`` is where the calls write their workers' pids. ``rebuilds`` counts the pools
    replaced so far.
    """

    def __init__(
        self,
        factory: Callable[[], Executor],
        pid_dir: str,
        *,
        max_breaks: int = MAX_BREAKS,
        workers: int = 0,
    ) -> None:
        self._factory = factory
        self._workers = workers
        self._dir = pid_dir
        self._max_breaks = max_breaks
        Path(pid_dir).mkdir(parents=True, exist_ok=True)
        for stale in Path(pid_dir).iterdir():
            with contextlib.suppress(OSError):
                stale.unlink()
        self._lock = threading.RLock()
        self._pool: Executor | None = None
        self._generation = 0
        self._calls: dict[int, _Call] = {}
        self._culprits: dict[int, dict[int, tuple[int, int | None]]] = {}  # gen -> seq -> death
        self._broken: queue.SimpleQueue[tuple[_Call, int] | None] = queue.SimpleQueue()
        self._recovery: threading.Thread | None = None
        self._seq = 0
        self._stopping = False
        self._shutdown = False
        self.rebuilds = 0

    # submitting ---------------------------------------------------------------------------
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            self._seq += 1
            call = _Call(self._seq, fn, args, kwargs)
            self._calls[call.seq] = call
        self._launch(call)
        return call.outer

    def submit_task(self, call: TaskCall) -> Future[TaskResult]:
        return self.submit(run_in_worker, call.workspace, call.phase, call.options)

    def capacity(self) -> int:
        return self._workers

    def queue_ahead(self) -> int:
        """One task waiting for each worker."""
        return self._workers

    def cancel(self, future: Future[Any]) -> bool:
        """Keep the call of ``future`` from starting, if no worker has started it yet."""
        with self._lock:
            call = next((c for c in self._calls.values() if c.outer is future), None)
        if call is None:
            return future.cancelled()
        if call.started:
            return False  # it ran when the pool broke: it runs again to its end
        if not _claim(self._pid_file(call) + ".claim"):
            return False  # a worker started it
        call.cancelled = True
        if call.inner is not None:
            call.inner.cancel()  # if still in the pool's own queue; else the worker skips it
        self._settle(call, CancelledError())
        return True

    def _pid_file(self, call: _Call) -> str:
        return os.path.join(self._dir, f"{call.seq}.pid")

    def _current(self) -> tuple[Executor, int]:
        with self._lock:
            if self._pool is None:
                self._pool = self._factory()
            return self._pool, self._generation

    def _launch(self, call: _Call) -> None:
        """Submit ``call`` to the current pool, replacing a pool found broken on the way."""
        for _ in range(self._max_breaks + 1):
            pool, generation = self._current()
            call.generation = generation
            try:
                inner = pool.submit(_tracked, self._pid_file(call), call.fn, call.args, call.kwargs)
            except BrokenProcessPool:
                self._replace(generation)
                continue
            except BaseException as exc:  # shut down, or the call cannot be sent
                self._settle(call, exc)
                return
            call.inner = inner
            inner.add_done_callback(functools.partial(self._on_done, call, generation, pool))
            return
        self._settle(call, WorkerDied(None, None))

    def _replace(self, generation: int) -> None:
        """Retire pool ``generation`` if it is still the current one (a later one is made on
        the next submission)."""
        with self._lock:
            if generation != self._generation or self._pool is None:
                return
            old, self._pool = self._pool, None
            self._generation += 1
            self.rebuilds += 1
        # the broken pool has killed its workers, or is about to: wait for that to be over
        old.shutdown(wait=True)

    # outcomes -----------------------------------------------------------------------------
    def _on_done(self, call: _Call, generation: int, pool: Executor, inner: Future[Any]) -> None:
        """Callback of an inner future; on a broken pool, loky's thread calls it before it
        kills the surviving workers, which is what ``_find_culprits`` relies on."""
        exc = None if inner.cancelled() else inner.exception()
        if not isinstance(exc, BrokenProcessPool):
            if inner.cancelled():
                self._settle(call, CancelledError())
            elif exc is not None:
                self._settle(call, exc)
            elif isinstance(inner.result(), _NotRun):
                self._settle(call, CancelledError())
            else:
                self._settle(call, None, inner.result())
            # only once settled: ``cancel`` must not claim a call that has ended
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._pid_file(call) + ".claim")
            return
        with self._lock:
            if generation not in self._culprits:
                self._culprits[generation] = self._find_culprits(generation, pool, exc)
            if self._recovery is None:
                self._recovery = threading.Thread(
                    target=self._recover, name="ggen-pool-recovery", daemon=True
                )
                self._recovery.start()
        self._broken.put((call, generation))

    def _find_culprits(
        self, generation: int, pool: Executor, error: BaseException
    ) -> dict[int, tuple[int, int | None]]:
        """Calls of pool ``generation`` whose worker is dead: seq -> (pid, exit code)."""
        processes: Mapping[int, Any] = dict(getattr(pool, "_processes", None) or {})
        with self._lock:
            calls = [c for c in self._calls.values() if c.generation == generation]
        found: dict[int, tuple[int, int | None]] = {}
        for call in calls:
            pid = _read_pid(self._pid_file(call))
            if pid is None:
                continue  # not started in a worker: it cannot be the cause
            dead, code = _death_of(pid, processes.get(pid))
            if dead:
                found[call.seq] = (pid, code)
        # without loky's handles, the codes listed in its message do when there is one death
        codes = [int(c) for c in re.findall(r"\((-?\d+)\)", str(error))]
        if len(found) == 1 and len(codes) == 1:
            ((seq, (pid, code)),) = found.items()
            if code is None:
                found[seq] = (pid, codes[0])
        return found

    def _recover(self) -> None:
        """The recovery thread: fail the culprits, replace the pool, resubmit the others."""
        while True:
            item = self._broken.get()
            if item is None:
                return
            call, generation = item
            self._replace(generation)
            with self._lock:
                culprits = self._culprits.get(generation, {})
                stopping = self._stopping or self._shutdown
            if call.seq in culprits:
                pid, code = culprits[call.seq]
                self._settle(call, WorkerDied(pid, code))
                continue
            if stopping:
                self._settle(call, BrokenProcessPool("the pool broke during the interrupt"))
                continue
            if call.cancelled:
                self._settle(call, CancelledError())
                continue
            call.breaks += 1
            if not culprits and call.breaks >= self._max_breaks:
                self._settle(call, WorkerDied(None, None))
                continue
            call.started = call.started or os.path.exists(self._pid_file(call) + ".claim")
            for stale in (self._pid_file(call), self._pid_file(call) + ".claim"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)  # its worker is dead; it says nothing now
            self._launch(call)

    def _settle(self, call: _Call, exc: BaseException | None, result: Any = None) -> None:
        with self._lock:
            if call.outer.done():
                return
            self._calls.pop(call.seq, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._pid_file(call))
        if call.outer.done():
            return
        if isinstance(exc, CancelledError):
            call.outer.cancel()
        elif exc is not None:
            call.outer.set_exception(exc)
        else:
            call.outer.set_result(result)

    # stopping -----------------------------------------------------------------------------
    def interrupt(self) -> None:
        """The run is being interrupted: resubmit nothing, cancel the calls not started."""
        with self._lock:
            self._stopping = True
            inners = [c.inner for c in self._calls.values() if c.inner is not None]
        for inner in inners:
            inner.cancel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for every call (resubmissions included) unless ``cancel_futures``, then shut
        the pool down and stop the recovery thread."""
        if cancel_futures:
            self.interrupt()
        if wait:
            with self._lock:
                outers = [c.outer for c in self._calls.values()]
            for outer in outers:
                with contextlib.suppress(BaseException):
                    outer.exception()
        with self._lock:
            self._shutdown = True
            pool, self._pool = self._pool, None
            recovery = self._recovery
        if pool is not None:
            pool.shutdown(wait=wait)
        self._broken.put(None)
        if recovery is not None and wait:
            recovery.join()


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _death_of(pid: int, process: Any) -> tuple[bool, int | None]:
    """(dead?, exit code) of worker ``pid``; ``process`` is loky's handle on it, if known.

    loky's handle reaps the worker and keeps its exit code; without it, a worker that is gone
    or a zombie is dead, with an unknown code.
    """
    if process is not None:
        with contextlib.suppress(Exception):
            code = process.exitcode
            return code is not None, code
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, None
    except psutil.NoSuchProcess:
        return True, None


def loky_pool(make: Make, jobs: int) -> Executor:
    """A plain loky pool of ``jobs`` workers, each initialised with the snapshot."""
    from loky import ProcessPoolExecutor

    executor: Executor = ProcessPoolExecutor(
        max_workers=jobs, initializer=init_worker, initargs=(make, os.getpid())
    )
    return executor


def make_executor(
    kind: ExecutorKind,
    make: Make,
    jobs: int,
    scheduler: str | None = None,
    control_dir: str | None = None,
) -> TaskExecutor:
    """A fresh executor of ``kind`` with ``jobs`` workers, each holding ``make``.

    ``control_dir`` (default ``.ggen/control``) is where the loky pool's calls say which worker
    runs them.
    """
    if kind is ExecutorKind.INLINE:
        return InlineExecutor(make)
    if kind is ExecutorKind.DASK:
        from ggen.runner.dask_pool import dask_executor

        return dask_executor(make, scheduler, jobs)
    pid_dir = os.path.join(control_dir or str(ggen_dir(make) / "control"), "workers")
    return ResilientExecutor(functools.partial(loky_pool, make, jobs), pid_dir, workers=jobs)
