"""The ready-queue loop: runs a plan's tasks on any ``concurrent.futures.Executor``.

The scheduler decides nothing about caching and never hashes: before submitting a task it asks
the ``TaskRunner`` to ``prepare`` it (which may answer with a finished, cached result), and after
a task ran it hands the result to ``complete`` (which may store outputs). It only owns ordering:
dependencies, the concurrency limit, ``parallel = false`` phases, fail-fast or keep-going, and
what happens to the tasks left when something failed or the user interrupted.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Protocol

from ggen.errors import GgenError
from ggen.runner.plan import Task
from ggen.runner.results import Status, TaskResult


class TaskRunner(Protocol):
    """What the scheduler needs from the rest of ggen."""

    def prepare(self, task: Task) -> TaskResult | None:
        """A finished result if the task needs no execution (cache hit), else None."""

    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        """Start the task on the executor; ``alone`` if it is the only task to run now, with
        none running (the runner may then run it without starting a pool)."""

    def complete(self, task: Task, result: TaskResult) -> TaskResult:
        """Called in the scheduling process with the outcome of a task that was submitted."""

    def failed_to_run(self, task: Task, error: BaseException) -> TaskResult:
        """The outcome of a task whose future raised (the machinery failed, not the task)."""

    def retry(self, task: Task, future: Future[TaskResult]) -> Future[TaskResult] | None:
        """A new start of a submitted task whose future raised, if it may have one (its worker
        died and its phase's retries allow another start), else None."""

    def interrupt(self, hard: bool) -> None:
        """Stop every running task: TERM then KILL after the grace period, or KILL if hard."""

    def queue_ahead(self) -> int:
        """How many tasks may be submitted beyond the concurrency limit, to wait at the
        executor: a worker that finishes one starts the next without waiting for this loop."""

    def cancel(self, future: Future[TaskResult]) -> bool:
        """Keep a submitted task from starting if it has not: True if it never will."""


@dataclass(frozen=True)
class Limits:
    """How many tasks may run at once."""

    jobs: int = 1  # the overall cap
    parallel: bool = False  # --parallel / -j: every phase may run several tasks at once
    # the cap once the executor exists, replacing ``jobs`` (a Dask cluster's threads; 0 until
    # it is known)
    capacity: Callable[[], int] | None = None

    def cap(self) -> int:
        """The cap now: what ``capacity`` says once it knows, else ``jobs``."""
        known = self.capacity() if self.capacity is not None else 0
        return known if known > 0 else self.jobs


def _heights(tasks: Sequence[Task]) -> dict[str, int]:
    """Length of the longest chain of dependents below each task: run long chains first."""
    height: dict[str, int] = {}
    users: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for d in t.deps:
            if d in users:
                users[d].append(t.id)
    for t in reversed(tasks):  # tasks are in topological order
        height[t.id] = 1 + max((height[u] for u in users[t.id]), default=0)
    return height


@dataclass(frozen=True)
class Outcome:
    """Every task's result by id, and whether the user interrupted the run."""

    results: dict[str, TaskResult]
    interrupted: bool = False


def schedule(
    tasks: Sequence[Task],
    runner: TaskRunner,
    limits: Limits,
    *,
    keep_going: bool = False,
    on_result: Callable[[TaskResult], None] = lambda r: None,
) -> Outcome:
    """Run ``tasks`` (in topological order) and return every task's result.

    A KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the caller) stops scheduling,
    asks the runner to stop the running tasks, waits for them and marks them interrupted; a
    second one while waiting kills them at once. Tasks never started are marked skipped; those
    started are marked interrupted unless they succeeded first. A ``GgenError`` from ``submit``
    (no executor can be made or reached) stops the running tasks the same way and is raised.
    """
    by_id = {t.id: t for t in tasks}
    order = {t.id: i for i, t in enumerate(tasks)}
    height = _heights(tasks)
    waiting = {t.id: sum(1 for d in t.deps if d in by_id) for t in tasks}
    dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for d in t.deps:
            if d in dependents:
                dependents[d].append(t.id)
    ready: list[tuple[int, int, str]] = []
    for t in tasks:
        if waiting[t.id] == 0:
            heapq.heappush(ready, (-height[t.id], order[t.id], t.id))

    results: dict[str, TaskResult] = {}
    running: dict[Future[TaskResult], Task] = {}
    submitted: set[str] = set()
    busy_exclusive: set[str] = set()
    serial_running = 0
    stopping = False
    interrupted = False

    def skip_dependents(tid: str, reason: str) -> None:
        todo = list(dependents[tid])
        while todo:
            cur = todo.pop()
            if cur in results:
                continue
            t = by_id[cur]
            results[cur] = TaskResult(
                cur, t.workspace, t.phase, Status.SKIPPED, error=reason, deps=t.deps
            )
            on_result(results[cur])
            todo.extend(dependents[cur])

    def finish(task: Task, result: TaskResult) -> None:
        nonlocal stopping
        results[task.id] = result
        on_result(result)
        if result.status.succeeded:
            for u in dependents[task.id]:
                waiting[u] -= 1
                if waiting[u] == 0 and u not in results:
                    heapq.heappush(ready, (-height[u], order[u], u))
        else:
            if not keep_going:
                stopping = True
            skip_dependents(task.id, f"{task.id} {result.status.value}")

    def may_start(task: Task) -> bool:
        if task.exclusive and task.phase in busy_exclusive:
            return False
        serial = not limits.parallel and task.parallel is not True
        return not (serial and serial_running > 0)

    def take_slot(task: Task) -> None:
        """The task takes a slot (it is about to be submitted)."""
        nonlocal serial_running
        if task.exclusive:
            busy_exclusive.add(task.phase)
        if not limits.parallel and task.parallel is not True:
            serial_running += 1

    def free_slot(task: Task) -> None:
        nonlocal serial_running
        busy_exclusive.discard(task.phase)
        if not limits.parallel and task.parallel is not True:
            serial_running -= 1

    def start(task: Task, alone: bool = False) -> bool:
        """Submit a task holding a slot; True if it is already over (its slot free again)."""
        submitted.add(task.id)
        try:
            future = runner.submit(task, alone=alone)
        except GgenError:
            submitted.discard(task.id)
            free_slot(task)
            raise  # no executor to run anything on: a usage or infrastructure error
        except Exception as exc:
            free_slot(task)
            finish(task, runner.failed_to_run(task, exc))
            return True
        if future.done():
            # executors running in this process finish during submit; no slot is held
            free_slot(task)
            finish(task, _collect(runner, task, future, interrupted))
            return True
        running[future] = task
        return False

    def room() -> int:
        """Tasks that may be submitted and not over: the cap, and those waiting ahead."""
        return limits.cap() + runner.queue_ahead()

    def launch() -> None:
        """Prepare ready tasks in order while slots are free: finish those the cache answers,
        submit the others. When nothing runs, the first task to execute is held back until a
        second one is found or none is left: if it is alone, the runner may run it without
        starting a pool."""
        held: Task | None = None
        while True:
            deferred: list[tuple[int, int, str]] = []
            # both are read at each turn: they grow once the executor exists
            while ready and len(running) + (held is not None) < room() and not stopping:
                item = heapq.heappop(ready)
                task = by_id[item[2]]
                if not may_start(task):
                    deferred.append(item)
                    continue
                cached = runner.prepare(task)
                if cached is not None:
                    finish(task, cached)
                    continue
                take_slot(task)
                if held is None and not running:
                    held = task
                    continue
                if held is not None:
                    start(held)
                    held = None
                start(task)
            for item in deferred:
                heapq.heappush(ready, item)
            if held is None:
                return
            over = start(held, alone=True)
            held = None
            if not over:
                return

    def reap(done: set[Future[TaskResult]]) -> None:
        for future in sorted(done, key=lambda f: order[running[f].id]):
            task = running.pop(future)
            if task.id not in results and not interrupted:
                again = runner.retry(task, future)
                if again is not None:
                    running[again] = task  # it keeps its slot
                    continue
            free_slot(task)
            if task.id not in results:
                finish(task, _collect(runner, task, future, interrupted))

    def withdraw() -> None:
        """After a failure that stops the run, or an interrupt: the tasks submitted ahead, beyond
        the cap, that no worker started never will (they end as not started). Those within the
        cap run as they would without queueing ahead."""
        for future, task in reversed(list(running.items())):  # the last submitted first
            if len(running) <= limits.cap():
                return
            if runner.cancel(future):
                del running[future]
                submitted.discard(task.id)
                free_slot(task)

    try:
        launch()
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            reap(done)
            if stopping:
                withdraw()
            launch()
    except GgenError:
        # the run cannot go on: stop what runs, then let the error end it (with its exit code)
        stopping = True
        runner.interrupt(hard=False)
        _drain(running, reap, runner)
        raise
    except KeyboardInterrupt:
        interrupted = stopping = True
        try:
            withdraw()  # first: the workers that stop take none of them
            runner.interrupt(hard=False)
        except KeyboardInterrupt:  # a second Ctrl-C right away
            runner.interrupt(hard=True)
        _drain(running, reap, runner)
        # a task caught between its submission and its result by the interrupt
        for t in tasks:
            if t.id in submitted and t.id not in results:
                results[t.id] = TaskResult(
                    t.id, t.workspace, t.phase, Status.INTERRUPTED, error="interrupted", deps=t.deps
                )
                on_result(results[t.id])
        _mark_rest(tasks, results, on_result, "not started: interrupted")
        return Outcome(results, interrupted=True)
    _mark_rest(tasks, results, on_result, "not started: an earlier task failed")
    return Outcome(results)


def _drain(
    running: dict[Future[TaskResult], Task],
    reap: Callable[[set[Future[TaskResult]]], None],
    runner: TaskRunner,
) -> None:
    """Wait for the running tasks to end after an interrupt; a second one kills them."""
    while running:
        try:
            done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            reap(done)
        except KeyboardInterrupt:
            runner.interrupt(hard=True)


def _collect(
    runner: TaskRunner, task: Task, future: Future[TaskResult], interrupted: bool
) -> TaskResult:
    try:
        result = future.result()
    except Exception as exc:
        failed = runner.failed_to_run(task, exc)
        if interrupted:
            # the machinery gave way under the interrupt (a pool stopped, a call cancelled)
            failed = failed.evolve(status=Status.INTERRUPTED, error=f"interrupted ({failed.error})")
        return failed
    if interrupted and result.status not in (Status.OK, Status.INTERRUPTED):
        result = result.evolve(status=Status.INTERRUPTED, error=f"interrupted ({result.error})")
    result = result.evolve(deps=task.deps)
    return runner.complete(task, result)


def _mark_rest(
    tasks: Sequence[Task],
    results: dict[str, TaskResult],
    on_result: Callable[[TaskResult], None],
    reason: str,
) -> None:
    for t in tasks:
        if t.id not in results:
            results[t.id] = TaskResult(
                t.id, t.workspace, t.phase, Status.SKIPPED, error=reason, deps=t.deps
            )
            on_result(results[t.id])
