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

A worker that dies (killed, out of memory) fails only the task it was running: its future ends
with ``WorkerDied`` naming the worker, as with every executor, and the dispatcher's one retry
policy (``ggen.runner.executor.may_start_again``) says whether it starts again.
Each start of a task is written down in a ledger next to its control file
(``.ggen/control/<task>.dask``), which is what tells a task that was running on a dead worker
from one that was only queued there:

- Dask reruns a task whose worker died until ``distributed.scheduler.allowed-failures`` workers
  (default 3) have died with it assigned. A rerun that finds, in the ledger and in the starts
  the dispatcher already counted, more deaths than the policy allows does not run: it answers
  with the count, which ends its future with ``WorkerDied``.
- When the cluster gives up first (``allowed-failures`` below the phase's retries, or 0), the
  error comes back as ``KilledWorker``: ggen submits the task again if it never started (it was
  queued on the dead workers), and otherwise ends its future with ``WorkerDied``.

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
from ggen.runner.control import control_path, remove_file
from ggen.runner.execute import ExecOptions, TaskSpec, execute, task_spec
from ggen.runner.executor import TaskCall, WorkerDied, may_start_again
from ggen.runner.results import TaskResult

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


def hold_snapshot(make: Make) -> Make:
    """The task whose result is the snapshot, replicated to every worker when ggen connects."""
    return make


@dataclass(frozen=True)
class LostStarts:
    """A worker's answer instead of running a task whose earlier starts died with workers
    more often than the retry policy allows; the client turns it into ``WorkerDied``."""

    worker: str  # the worker of the last start
    starts: int  # starts of this submission lost with dead workers


def run_on_dask(make: Make, call: TaskCall) -> TaskResult | LostStarts:
    """What a Dask worker runs for one task: ``execute`` with the snapshot passed in.

    A start is written in the task's ledger first; when the starts found there (each one's
    worker died) and those the dispatcher counted before are more than the retry policy
    allows, the task does not run and the count is answered instead.
    """
    from distributed import get_worker

    address = str(get_worker().address)
    if not os.path.isdir(make.root):
        raise InternalError(
            f"worker {address} does not see the project at {make.root}: Dask workers need it "
            "at the same path, on a filesystem shared with the machine running ggen"
        )
    options = call.options
    spec = task_spec(make, call.workspace, call.phase, options)
    ledger = ledger_path(options, call.workspace, call.phase)
    starts = read_ledger(ledger)
    if starts and not may_start_again(call.deaths + len(starts), spec.retries):
        # the ledger stays until the client has this verdict: should this worker die before
        # it is delivered, the next start must still find the count
        return LostStarts(starts[-1].worker, len(starts))
    if starts:  # the worker of the last start died, maybe while writing the control file
        _remove_control_tmp(control_path(options.control_dir, call.workspace, call.phase))
    _write_ledger(ledger, [*starts, Start(int(time.time() * 1000), address)])
    try:
        result = execute(spec, options)
    finally:
        remove_file(ledger)  # not reached when the worker dies, which is the point
    return result.evolve(worker=address)


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
    call: TaskCall
    number: int  # of the submission, in this executor
    attempt: int = 0  # submissions to the cluster so far, less one
    requeues: int = 0  # submissions lost with a dead worker before the task started


class DaskExecutor(Executor):
    """A ``concurrent.futures.Executor`` running ggen tasks on a Dask cluster.

    ``submit_task(call)`` runs the task on a worker (as ``run_on_dask``, which takes the
    snapshot as an argument instead of from a process slot) and returns a future of its
    ``TaskResult``; ``submit`` runs any other callable as it is.

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

    rebuilds = 0  # the cluster replaces its workers itself

    def capacity(self) -> int:
        """How many tasks the cluster runs at once: its workers' threads, now."""
        return sum(int(n) for n in self._client.nthreads().values())

    def queue_ahead(self) -> int:
        return 0  # the Dask scheduler queues and places tasks itself

    def cancel(self, future: Future[TaskResult]) -> bool:
        return False  # submit no more than the cluster runs, so nothing waits to be cancelled

    def interrupt(self) -> None:
        """The run is being interrupted: submit no task again after a worker's death. (Tasks
        that have not started yet see the stop flag in the control directory and end at once.)
        """
        self._stopping = True

    def _number(self) -> int:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit after shutdown")
            self._submitted += 1
            return self._submitted

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on the cluster; the future holds its result."""
        number = self._number()
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()  # it is the cluster's now: no cancel()
        call = functools.partial(fn, *args, **kwargs)
        task = self._client.submit(call, key=f"ggen-call-{self._token}-{number}", pure=False)
        self._follow(task, lambda outcome: self._settle(future, outcome), future)
        return future

    def submit_task(self, call: TaskCall) -> Future[TaskResult]:
        """Run one start of a task on the cluster; the future holds its result."""
        number = self._number()
        future: Future[TaskResult] = Future()
        future.set_running_or_notify_cancel()
        try:
            spec = task_spec(self._make, call.workspace, call.phase, call.options)
        except InternalError as exc:  # from submit, a ggen error means "no executor"
            future.set_exception(exc)
            return future
        # a stale one from an aborted run; the starts lost before this one are in ``call``
        remove_file(ledger_path(call.options, call.workspace, call.phase))
        self._launch(_Pending(future, spec, call, number))
        return future

    def _launch(self, pending: _Pending) -> None:
        spec = pending.spec
        key = f"ggen-{spec.task_id}-{self._token}-{pending.number}-{pending.attempt}"
        try:
            task = self._client.submit(
                run_on_dask,
                self._snapshot,
                pending.call,
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
        elif isinstance(outcome, LostStarts):
            self._settle(pending.future, self._died(pending, outcome.worker, outcome.starts))
        elif isinstance(outcome, KilledWorker):
            # the cluster gave up: allowed-failures + 1 workers died while this task was
            # assigned to them, but only the ledger knows whether it had started on them
            starts = read_ledger(self._ledger(pending))
            if not starts and not self._stopping and pending.requeues < MAX_REQUEUES:
                pending.requeues += 1  # queued on workers that died; not its doing
                pending.attempt += 1
                self._launch(pending)
                return
            last = getattr(getattr(outcome, "last_worker", None), "address", None)
            # the ledger names the worker it last started on; Dask's last worker may be one
            # where it only waited in the queue
            worker = starts[-1].worker if starts else (last or "unknown worker")
            self._settle(pending.future, self._died(pending, worker, max(1, len(starts))))
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
        return ledger_path(pending.call.options, pending.spec.workspace, pending.spec.phase)

    def _died(self, pending: _Pending, worker: str, starts: int) -> WorkerDied:
        """The task is over on this cluster: its ledger goes, and what its dead worker left
        of writing the control file (the dispatcher stops the command that file names)."""
        remove_file(self._ledger(pending))
        options = pending.call.options
        _remove_control_tmp(
            control_path(options.control_dir, pending.spec.workspace, pending.spec.phase)
        )
        return WorkerDied(None, address=worker, starts=starts)

    def _settle(self, future: Future[Any], outcome: Any) -> None:
        with self._lock:
            self._pending.discard(future)
            if future.done():  # already ended by shutdown
                return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

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
