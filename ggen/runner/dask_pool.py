"""The dask executor: the same scheduler loop, with tasks running on an existing Dask cluster.

``ggen run --executor dask --scheduler tcp://HOST:8786`` (or ``GGEN_DASK_SCHEDULER``, or
``[executor] kind = "dask"`` and ``scheduler = ...`` in make.toml) connects a Dask ``Client``;
``DaskExecutor`` submits each task with it and hands the scheduler loop ordinary
``concurrent.futures`` futures. Install the extra with ``pip install 'ggen[dask]'``.

What the workers need:

- ggen installed (the same version), with the tools the phases call (sh, compilers...);
- the project at the same absolute path, on a filesystem shared with the machine running
  ``ggen run``: workers write the outputs, logs and control files there, and the scheduling side
  hashes those outputs, caches them and feeds them to the next tasks.

The snapshot (the loaded make.toml) travels once: it is the result of a small task that every
ggen task takes as an argument, so each worker fetches it once, from a peer, when it first runs
a task of this run, and keeps it in memory until the run ends; should every copy be lost, the
scheduler computes it again. No process-global state is set on the workers, so runs of several
projects can share a cluster.

A worker that dies (killed, out of memory) fails only the task it was running, with an error
naming the worker, and a phase's ``retries`` say how many such deaths the task may survive.
Each start of a task is written down in a ledger next to its control file
(``.ggen/control/<task>.dask``), which is what tells a task that was running on a dead worker
from one that was only queued there:

- Dask reruns a task whose worker died until ``distributed.scheduler.allowed-failures`` workers
  (default 3) have died with it assigned. A rerun that finds more earlier starts in the ledger
  than the phase's retries ends the task as failed at once instead of running it again.
- When the cluster gives up first (``allowed-failures`` below the phase's retries, or 0), the
  error comes back as ``KilledWorker``: ggen submits the task again if it never started (it was
  queued on the dead workers) or while the phase's retries allow another start.

So with ``retries = 0`` the first death fails the task, on any cluster. ``retries=`` on each
submission is also the phase's retries, for an exception raised by ggen's own code on a worker
(a command's failure is retried inside the task, as with loky). With several threads per worker,
every task running on a worker that dies counts the death. A command that a dead worker left
running is stopped (TERM, then KILL) when its task ends, or starts again, on the same host; the
control file names its process group and the task's environment proves it is still the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import glob
import inspect
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from typing import Any, TypeVar

from ggen.errors import InternalError, UsageError
from ggen.make import Make
from ggen.names import task_file_stem
from ggen.runner.control import control_path, remove_file, stop_stale, task_identity
from ggen.runner.execute import ExecOptions, TaskSpec, execute, run_in_worker, task_spec
from ggen.runner.results import CacheStatus, Status, TaskResult

T = TypeVar("T")

CONNECT_TIMEOUT = 5.0  # seconds to reach the scheduler before giving up
CLOSE_TIMEOUT = 10.0
MAX_REQUEUES = 5  # times a task lost with a dead worker before it started is sent again
INSTALL_HINT = "pip install 'ggen[dask]'"
SCHEDULER_HINT = (
    "give one with --scheduler tcp://HOST:8786, the GGEN_DASK_SCHEDULER environment variable "
    'or scheduler = "tcp://HOST:8786" under [executor] in make.toml'
)


def dask_executor(make: Make, scheduler: str | None, jobs: int) -> DaskExecutor:
    """Connect to the Dask scheduler at ``scheduler`` and return an executor running there.

    ``jobs`` stays the scheduler loop's cap on tasks in flight; how many run at once is up to
    the cluster's threads. A missing address or a missing Dask is a usage error (exit 2), an
    unreachable scheduler an infrastructure error (exit 3) after ``CONNECT_TIMEOUT`` seconds.
    """
    del jobs
    if not scheduler or not scheduler.strip():
        raise UsageError(f"--executor dask needs the address of a Dask scheduler: {SCHEDULER_HINT}")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(f"--executor dask needs Dask: {INSTALL_HINT}") from None
    return DaskExecutor(connect(scheduler.strip()), make)


def connect(address: str) -> Any:
    """A ``distributed.Client`` connected to ``address``, or a ggen error saying why not.

    The address is probed first with a bare connection, so an unreachable scheduler never
    leaves a half-started client (and its event-loop thread) behind.
    """
    import distributed
    import distributed.comm.core

    client_class: Any = distributed.Client
    dask_connect: Any = distributed.comm.core.connect

    async def probe() -> None:
        comm = await dask_connect(address, timeout=CONNECT_TIMEOUT)
        await comm.close()

    try:
        asyncio.run(probe())
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--scheduler: {address}: {exc}") from None
    except OSError as exc:
        raise InternalError(
            f"cannot reach the Dask scheduler at {address} ({exc}); is it running?"
        ) from None
    try:
        return client_class(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError) as exc:
        gc.collect()  # closes the client that failed to start while its loop still runs
        raise InternalError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None


# on the workers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    """One start of a task on a worker, as written in the task's ledger."""

    started_ms: int
    worker: str


def ledger_path(options: ExecOptions, workspace: str, phase: str) -> str:
    """Where the starts of (workspace, phase) on Dask workers are written down."""
    return os.path.join(options.control_dir, task_file_stem(workspace, phase) + ".dask")


def read_ledger(path: str) -> list[Start]:
    """The starts written in ``path``, oldest first; none if it does not exist."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    starts = []
    for line in lines:
        ms, _, worker = line.partition(" ")
        with contextlib.suppress(ValueError):
            starts.append(Start(int(ms), worker))
    return starts


def _write_ledger(path: str, starts: list[Start]) -> None:
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w") as f:
        f.writelines(f"{s.started_ms} {s.worker}\n" for s in starts)
    os.replace(tmp, path)


def _project_root(spec: TaskSpec) -> str:
    """The project root a task's commands carry in their environment."""
    return dict(spec.env)["GGEN_PROJECT_ROOT"]


def hold_snapshot(make: Make) -> Make:
    """The task whose result is the snapshot, replicated to every worker when ggen connects."""
    return make


def run_on_dask(make: Make, workspace: str, phase: str, options: ExecOptions) -> TaskResult:
    """What a Dask worker runs for one task: ``run_in_worker`` with the snapshot passed in.

    A start is written in the task's ledger first; finding more earlier starts than the phase
    allows retries means workers died running it that many times, so it fails without running.
    """
    from distributed import get_worker

    address = str(get_worker().address)
    if not os.path.isdir(make.root):
        raise InternalError(
            f"worker {address} does not see the project at {make.root}: Dask workers need it "
            "at the same path, on a filesystem shared with the machine running ggen"
        )
    spec = task_spec(make, workspace, phase, options)
    ledger = ledger_path(options, workspace, phase)
    starts = read_ledger(ledger)
    if len(starts) > spec.retries:
        # the ledger stays until the client has this verdict: should this worker die before
        # it is delivered, the next start must still find the count
        last = starts[-1]
        return worker_died(
            spec, options, last.worker, last.started_ms, len(starts), keep_ledger=True
        )
    if starts:  # the worker of the last start died, maybe while writing the control file
        _remove_control_tmp(control_path(options.control_dir, workspace, phase))
    _write_ledger(ledger, [*starts, Start(int(time.time() * 1000), address)])
    try:
        result = execute(spec, options)
    finally:
        remove_file(ledger)  # not reached when the worker dies, which is the point
    return result.evolve(worker=address)


def worker_died(
    spec: TaskSpec,
    options: ExecOptions,
    worker: str,
    started_ms: int | None,
    attempts: int,
    *,
    background: bool = False,
    keep_ledger: bool = False,
) -> TaskResult:
    """The failed result of a task whose worker died running it (the last of ``attempts``).

    A command the dead worker left running on this host is stopped (TERM, then KILL), on a
    thread of its own if ``background`` (the client's event loop must not wait for it). The
    task's ledger is removed unless ``keep_ledger``.
    """
    error = f"worker died running this task: {worker}"
    if attempts > 1:
        error += f" (after {attempts} attempts, every one on a worker that died)"
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(spec.log_path), exist_ok=True)
        with open(spec.log_path, "ab") as log:
            log.write(f"\n[ggen] {error}\n".encode())
    # the task is over: its ledger goes, and so does its control file, after stopping the
    # command it names if that still runs on this host (its worker is gone)
    if not keep_ledger:
        remove_file(ledger_path(options, spec.workspace, spec.phase))
    control = control_path(options.control_dir, spec.workspace, spec.phase)
    identity = task_identity(_project_root(spec), spec.workspace, spec.phase)
    if background:
        threading.Thread(target=stop_stale, args=(control, identity, options.grace)).start()
    else:
        stop_stale(control, identity, options.grace)
    _remove_control_tmp(control)
    now = int(time.time() * 1000)
    return TaskResult(
        task_id=spec.task_id,
        workspace=spec.workspace,
        phase=spec.phase,
        status=Status.FAILED,
        cache=CacheStatus.MISS,
        started_ms=started_ms,
        finished_ms=now,
        duration_ms=max(0, now - started_ms) if started_ms is not None else 0,
        worker=worker,
        attempts=attempts,
        log=spec.log_rel,
        error=error,
    )


def _remove_control_tmp(control: str) -> None:
    """Remove what a dead worker left of writing ``control`` (its temp files)."""
    for name in glob.glob(glob.escape(control) + ".*.tmp"):
        remove_file(name)


# on the scheduling side -------------------------------------------------------------------
@dataclass
class _Pending:
    """A submitted task until its outcome is known (mutable: it counts submissions)."""

    future: Future[TaskResult]
    spec: TaskSpec
    options: ExecOptions
    attempt: int = 0  # submissions so far, less one
    requeues: int = 0  # submissions lost with a dead worker before the task started


class DaskExecutor(Executor):
    """A ``concurrent.futures.Executor`` running ggen tasks on a Dask cluster.

    ``submit(run_in_worker, workspace, phase, options)`` runs the task on a worker (as
    ``run_on_dask``, which takes the snapshot as an argument instead of from a process slot)
    and returns a future of its ``TaskResult``; any other callable runs as it is.

    Each Dask future is followed by a coroutine on the client's event loop that always settles
    the returned future, whatever happens: a result lost with its worker and computed again,
    a ``KilledWorker``, a cancellation. (``Client.get_executor()`` leaves its future pending
    forever when the computation of a lost result fails, which is why it is not used here.)
    """

    def __init__(self, client: Any, make: Make) -> None:
        self._client = client
        self._make = make
        self._token = uuid.uuid4().hex[:8]
        self._snapshot = client.submit(
            hold_snapshot, make, key=f"ggen-snapshot-{self._token}", pure=False
        )
        # on every worker from the start: otherwise Dask places tasks next to the one copy
        # (data locality) and runs them one after another there while other workers idle
        client.replicate([self._snapshot])
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self._submitted = 0
        self._stopping = False
        self._closed = False

    @property
    def scheduler(self) -> str:
        """The address of the scheduler this executor submits to."""
        return str(self._client.scheduler.address)

    def threads(self) -> int:
        """How many tasks the cluster runs at once: its workers' threads, now."""
        return sum(int(n) for n in self._client.nthreads().values())

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on the cluster; the future holds its result."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit after shutdown")
            self._submitted += 1
            number = self._submitted
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()  # it is the cluster's now: no cancel()
        if fn is not run_in_worker:
            call = functools.partial(fn, *args, **kwargs)
            key = f"ggen-call-{self._token}-{number}"
            task = self._client.submit(call, key=key, pure=False)
            self._follow(task, lambda outcome: self._settle(future, outcome), future)
            return future
        workspace, phase, options = inspect.signature(fn).bind(*args, **kwargs).args
        try:
            spec = task_spec(self._make, workspace, phase, options)
        except InternalError as exc:  # from submit, a ggen error means "no executor"
            future.set_exception(exc)
            return future
        remove_file(ledger_path(options, workspace, phase))  # a stale one from an aborted run
        self._launch(_Pending(future, spec, options))
        return future

    def _launch(self, pending: _Pending) -> None:
        spec = pending.spec
        key = f"ggen-{spec.task_id}-{self._token}-{pending.attempt}"
        try:
            task = self._client.submit(
                run_on_dask,
                self._snapshot,
                spec.workspace,
                spec.phase,
                pending.options,
                key=key,
                retries=spec.retries,
                pure=False,
            )
        except Exception as exc:
            self._settle(pending.future, exc)
            return
        self._follow(task, lambda result: self._done(pending, result), pending.future)

    def _follow(self, task: Any, on_result: Callable[[Any], None], future: Future[Any]) -> None:
        """Call ``on_result`` with the task's result or exception, from the client's loop."""
        with self._lock:
            self._pending.add(future)

        async def follow() -> None:
            try:
                outcome = await self._client.gather(task, asynchronous=True)
            except BaseException as exc:  # every outcome must reach the future
                outcome = exc
            try:
                on_result(outcome)
            except BaseException as exc:
                self._settle(future, exc)

        self._client.loop.add_callback(follow)

    def _done(self, pending: _Pending, outcome: Any) -> None:
        """What to make of a submission's outcome (on the client's loop)."""
        from distributed import KilledWorker

        if isinstance(outcome, TaskResult):
            remove_file(self._ledger(pending))  # left by a worker that found it had died
            self._settle(pending.future, outcome)
        elif isinstance(outcome, KilledWorker):
            # the cluster gave up: allowed-failures + 1 workers died while this task was
            # assigned to them, but only the ledger knows whether it had started on them
            starts = len(read_ledger(self._ledger(pending)))
            if self._stopping:
                self._settle(pending.future, self._died(pending, None))
                return
            if starts == 0 and pending.requeues < MAX_REQUEUES:
                pending.requeues += 1  # queued on workers that died; not its doing
            elif 0 < starts <= pending.spec.retries:
                pass  # it ran there; the phase's retries allow another start
            else:
                last = getattr(getattr(outcome, "last_worker", None), "address", None)
                self._settle(pending.future, self._died(pending, last))
                return
            pending.attempt += 1
            self._launch(pending)
        elif isinstance(outcome, (CancelledError, asyncio.CancelledError)):
            self._settle(
                pending.future,
                InternalError(
                    f"the Dask scheduler at {self.scheduler} dropped this task "
                    "(lost connection or cluster shut down)"
                ),
            )
        else:
            self._settle(pending.future, outcome)

    def _ledger(self, pending: _Pending) -> str:
        return ledger_path(pending.options, pending.spec.workspace, pending.spec.phase)

    def _died(self, pending: _Pending, fallback: str | None) -> TaskResult:
        # the ledger names the worker it last started on; Dask's last worker may be one where
        # it only waited in the queue
        starts = read_ledger(self._ledger(pending))
        last = starts[-1] if starts else None
        return worker_died(
            pending.spec,
            pending.options,
            last.worker if last else (fallback or "unknown worker"),
            last.started_ms if last else None,
            max(1, len(starts)),
            background=True,
        )

    def _settle(self, future: Future[Any], outcome: Any) -> None:
        with self._lock:
            self._pending.discard(future)
            if future.done():  # already ended by shutdown
                return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def interrupt(self) -> None:
        """The run is being interrupted: submit no task again after a worker's death. (Tasks
        that have not started yet see the stop flag in the control directory and end at once.)
        """
        self._stopping = True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for (or drop) the tasks in flight, then close the client and its threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._pending)
        if wait and not cancel_futures:
            wait_for(pending)
        with contextlib.suppress(Exception):
            self._client.close(timeout=CLOSE_TIMEOUT)
        # what closing the client dropped ends here, so no caller waits forever
        for future in pending:
            if not future.done():
                with contextlib.suppress(Exception):
                    self._settle(future, InternalError("the Dask executor was shut down"))
