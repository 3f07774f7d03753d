"""The contract between the dispatcher and the executors that run tasks: ``TaskExecutor``.

Three executors keep it: inline (this process, ``pools.InlineExecutor``), loky
(``pools.ResilientExecutor``) and Dask (``dask_pool.DaskExecutor``). Each takes a ``TaskCall``
and returns a future of the task's ``TaskResult``; each reports a worker that died running a
task the same way, by ending its future with ``WorkerDied``; and ``ggen.runner.dispatch`` applies
the one retry policy (``may_start_again``) to all of them.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from ggen.runner.execute import ExecOptions, describe_exit_code
from ggen.runner.results import TaskResult


@dataclass(frozen=True)
class TaskCall:
    """One start of a task: what an executor needs to run it.

    ``deaths`` counts the starts of the task already lost with a dead worker in this run: an
    executor that restarts tasks by itself (Dask) stops at the same count as the dispatcher.
    """

    workspace: str
    phase: str
    options: ExecOptions
    deaths: int = 0


def may_start_again(deaths: int, retries: int) -> bool:
    """The retry policy for dead workers: a task whose worker died ``deaths`` times starts
    again while its phase's ``retries`` allow (``retries = 0``: the first death fails it)."""
    return deaths <= retries


class WorkerDied(Exception):
    """The worker running a task died before the task returned (every executor says so).

    ``pid`` and ``exit_code`` name a local worker process (loky), ``address`` a Dask worker;
    ``starts`` is how many starts of the task were lost with dead workers before the executor
    gave up (more than one when the executor restarted it by itself).
    """

    def __init__(
        self,
        pid: int | None,
        exit_code: int | None = None,
        *,
        address: str | None = None,
        starts: int = 1,
    ) -> None:
        self.pid = pid
        self.exit_code = exit_code
        self.address = address
        self.starts = starts
        super().__init__(pid, exit_code)

    @property
    def worker(self) -> str:
        """The worker as a task's result names it: its pid or its address."""
        if self.address is not None:
            return self.address
        return str(self.pid) if self.pid is not None else "unknown"

    def __str__(self) -> str:
        if self.address is not None:
            return f"worker {self.address} died running it"
        if self.pid is None:
            return "worker processes died repeatedly while running it (cause unknown)"
        how = describe_exit_code(self.exit_code) if self.exit_code is not None else "exit unknown"
        return f"worker process {self.pid} died running it: {how}"


class TaskExecutor(Protocol):
    """What the dispatcher needs from an executor."""

    @property
    def rebuilds(self) -> int:
        """How many times the executor replaced its workers after one died (0: never)."""

    def submit_task(self, call: TaskCall) -> Future[TaskResult]:
        """Start ``call``; the future ends with the task's result, or ``WorkerDied``."""

    def capacity(self) -> int:
        """How many tasks the executor runs at once now (0: it cannot tell)."""

    def queue_ahead(self) -> int:
        """How many tasks may wait at the executor beyond ``capacity`` (0: submit no more
        than it runs), so that a worker finds its next task there the moment it is free."""

    def cancel(self, future: Future[TaskResult]) -> bool:
        """Make sure the task of ``future`` never starts: True if so (the future ends
        cancelled), False if it has started (or may have: it runs to its end)."""

    def interrupt(self) -> None:
        """The run is being interrupted: start nothing again, drop what has not started."""

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for the tasks in flight (unless ``cancel_futures``), then release the workers."""
