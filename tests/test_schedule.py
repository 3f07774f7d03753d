"""The scheduler with a fake runner on threads: ordering, limits, failures. Nothing spawned."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from ggen.errors import UsageError
from ggen.make import Hooks, Make, Phase, Project, Workspace
from ggen.runner.plan import Task, build_plan
from ggen.runner.results import CacheStatus, Status, TaskResult
from ggen.runner.schedule import Limits, schedule


class FakeRunner:
    """Runs each task as a short sleep on a thread pool, recording order and concurrency."""

    def __init__(
        self,
        fail: set[str] = frozenset(),
        cached: set[str] = frozenset(),  # type: ignore[assignment]
        crash: set[str] = frozenset(),
        delay: float = 0.02,
    ) -> None:  # type: ignore[assignment]
        self.fail, self.cached, self.crash, self.delay = fail, cached, crash, delay
        self.pool = ThreadPoolExecutor(8)
        self.lock = threading.Lock()
        self.active: set[str] = set()
        self.max_active = 0
        self.started: list[str] = []
        self.overlaps: list[tuple[str, str]] = []
        self.completed: list[str] = []

    def prepare(self, task: Task) -> TaskResult | None:
        if task.id in self.cached:
            return TaskResult(
                task.id, task.workspace, task.phase, Status.CACHED, cache=CacheStatus.HIT
            )
        return None

    def _work(self, task: Task) -> TaskResult:
        with self.lock:
            for other in self.active:
                self.overlaps.append((other, task.id))
            self.active.add(task.id)
            self.started.append(task.id)
            self.max_active = max(self.max_active, len(self.active))
        time.sleep(self.delay)
        with self.lock:
            self.active.discard(task.id)
        if task.id in self.crash:
            raise RuntimeError("worker died")
        status = Status.FAILED if task.id in self.fail else Status.OK
        return TaskResult(
            task.id,
            task.workspace,
            task.phase,
            status,
            exit_code=1 if status is Status.FAILED else 0,
        )

    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        return self.pool.submit(self._work, task)

    def complete(self, task: Task, result: TaskResult) -> TaskResult:
        self.completed.append(task.id)
        return result

    def failed_to_run(self, task: Task, error: BaseException) -> TaskResult:
        return TaskResult(task.id, task.workspace, task.phase, Status.FAILED, error=str(error))

    def retry(self, task: Task, future: Future[TaskResult]) -> Future[TaskResult] | None:
        return None

    def interrupt(self, hard: bool) -> None:
        pass

    def queue_ahead(self) -> int:
        return 0

    def cancel(self, future: Future[TaskResult]) -> bool:
        return future.cancel()


def project(n: int = 4, phases: tuple[Phase, ...] | None = None, chain: bool = False) -> Make:
    ws = [
        Workspace(f"w{i}", f"w{i}", depends_on=(f"w{i - 1}",) if chain and i else ())
        for i in range(n)
    ]
    phases = phases or (Phase("build", ("true",), depends_on=("^build",)), Phase("test", ("true",)))
    return Make(
        root="/tmp/p", project=Project("p"), workspaces=tuple(ws), lifecycle=phases, hooks=Hooks()
    )


def test_dependencies_complete_before_dependents_start() -> None:
    plan = build_plan(project(4, chain=True), ["build", "test"])
    runner = FakeRunner()
    out = schedule(plan.tasks, runner, Limits(jobs=4, parallel=True))
    assert all(r.status is Status.OK for r in out.results.values())
    for t in plan.tasks:
        for d in t.deps:
            assert runner.completed.index(d) < runner.started.index(t.id)


def test_jobs_limit_is_respected_and_used() -> None:
    plan = build_plan(project(8), ["build"])
    runner = FakeRunner(delay=0.05)
    schedule(plan.tasks, runner, Limits(jobs=3, parallel=True))
    assert runner.max_active == 3


def test_serial_without_parallel_flag() -> None:
    plan = build_plan(project(4), ["build"])
    runner = FakeRunner()
    schedule(plan.tasks, runner, Limits(jobs=4, parallel=False))
    assert runner.max_active == 1


def test_phase_parallel_true_runs_in_parallel_without_flag() -> None:
    make = project(4, phases=(Phase("build", ("true",), parallel=True),))
    plan = build_plan(make, ["build"])
    runner = FakeRunner(delay=0.05)
    schedule(plan.tasks, runner, Limits(jobs=4, parallel=False))
    assert runner.max_active == 4


def test_parallel_false_phase_never_overlaps_itself() -> None:
    make = project(
        4, phases=(Phase("deploy", ("true",), parallel=False), Phase("build", ("true",)))
    )
    plan = build_plan(make, ["deploy", "build"])
    runner = FakeRunner(delay=0.03)
    schedule(plan.tasks, runner, Limits(jobs=4, parallel=True))
    deploy_overlaps = [
        (a, b) for a, b in runner.overlaps if a.endswith(":deploy") and b.endswith(":deploy")
    ]
    assert deploy_overlaps == []
    assert runner.max_active >= 2  # builds still overlapped with deploys


class HoldingRunner(FakeRunner):
    """Records whether each task was submitted ``alone``; ``inline`` tasks finish during
    submit, as they do on an executor running in this process."""

    def __init__(self, inline: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.inline = inline
        self.alone: dict[str, bool] = {}

    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        self.alone[task.id] = alone
        if self.inline:
            done: Future[TaskResult] = Future()
            done.set_result(self._work(task))
            return done
        return super().submit(task)


def test_a_lone_task_to_run_is_held_back_and_submitted_alone() -> None:
    plan = build_plan(project(4), ["build"])
    cached = {"w0:build", "w1:build", "w3:build"}
    runner = HoldingRunner(cached=cached)
    out = schedule(plan.tasks, runner, Limits(jobs=4, parallel=True))
    assert runner.alone == {"w2:build": True}
    assert out.results["w2:build"].status is Status.OK


def test_two_tasks_to_run_are_both_submitted_to_the_pool() -> None:
    plan = build_plan(project(4), ["build"])
    runner = HoldingRunner(cached={"w1:build", "w2:build"}, delay=0.05)
    schedule(plan.tasks, runner, Limits(jobs=4, parallel=True))
    assert runner.alone == {"w0:build": False, "w3:build": False}
    assert runner.max_active == 2


def test_one_task_at_a_time_each_runs_alone() -> None:
    plan = build_plan(project(3), ["build"])
    runner = HoldingRunner()
    schedule(plan.tasks, runner, Limits(jobs=1))
    assert runner.alone == {f"w{i}:build": True for i in range(3)}


def test_after_a_task_run_here_the_next_one_is_held_back_again() -> None:
    """A task that finished during submit holds no slot: the next task found to run is alone
    again, and its dependents are launched in the same pass."""
    plan = build_plan(project(3, chain=True), ["build"])
    runner = HoldingRunner(inline=True)
    out = schedule(plan.tasks, runner, Limits(jobs=4, parallel=True))
    assert runner.alone == {"w0:build": True, "w1:build": True, "w2:build": True}
    assert runner.started == ["w0:build", "w1:build", "w2:build"]
    assert {r.status for r in out.results.values()} == {Status.OK}


class RetryingRunner(FakeRunner):
    """``dies`` tasks lose their first start (the future raises); ``retry`` starts them again
    while ``allowed`` says so, as the dispatcher does after a dead worker."""

    def __init__(self, dies: set[str], allowed: bool) -> None:
        super().__init__(delay=0.05)
        self.dies, self.allowed = set(dies), allowed
        self.retried: list[str] = []
        self.failed: list[str] = []

    def _work(self, task: Task) -> TaskResult:
        result = super()._work(task)
        if task.id in self.dies:
            self.dies.discard(task.id)
            raise RuntimeError("worker died")
        return result.evolve(attempts=1 + self.retried.count(task.id))

    def retry(self, task: Task, future: Future[TaskResult]) -> Future[TaskResult] | None:
        if not self.allowed or future.exception() is None:
            return None
        self.retried.append(task.id)
        return self.pool.submit(self._work, task)

    def failed_to_run(self, task: Task, error: BaseException) -> TaskResult:
        self.failed.append(task.id)
        return super().failed_to_run(task, error)


def test_a_retried_task_keeps_its_slot_and_ends_with_its_new_result() -> None:
    plan = build_plan(project(4), ["build"])
    runner = RetryingRunner(dies={"w0:build"}, allowed=True)
    out = schedule(plan.tasks, runner, Limits(jobs=2, parallel=True))
    assert runner.retried == ["w0:build"]
    assert runner.failed == []
    assert out.results["w0:build"].status is Status.OK
    assert out.results["w0:build"].attempts == 2
    assert runner.completed.count("w0:build") == 1
    assert runner.max_active == 2  # the new start took no extra slot
    assert {r.status for r in out.results.values()} == {Status.OK}


def test_a_task_not_retried_fails_and_fail_fast_stops_the_run() -> None:
    plan = build_plan(project(4), ["build"])
    runner = RetryingRunner(dies={"w0:build"}, allowed=False)
    out = schedule(plan.tasks, runner, Limits(jobs=1))
    assert runner.failed == ["w0:build"]
    assert out.results["w0:build"].status is Status.FAILED
    assert out.results["w0:build"].error == "worker died"
    assert runner.started == ["w0:build"]
    assert {out.results[f"w{i}:build"].status for i in (1, 2, 3)} == {Status.SKIPPED}


class QueueingRunner(FakeRunner):
    """An executor of ``jobs`` threads that takes ``ahead`` more tasks in its queue; tasks in
    ``quick`` take 0.05 s."""

    def __init__(self, jobs: int, ahead: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.pool = ThreadPoolExecutor(jobs)
        self.ahead = ahead
        self.max_in_flight = 0
        self.withdrawn: list[str] = []
        self.futures: dict[Future[TaskResult], str] = {}
        self.quick: set[str] = set()

    def _work(self, task: Task) -> TaskResult:
        if task.id not in self.quick:
            return super()._work(task)
        time.sleep(0.05)
        with self.lock:
            self.started.append(task.id)
        status = Status.FAILED if task.id in self.fail else Status.OK
        return TaskResult(task.id, task.workspace, task.phase, status, exit_code=1)

    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        future = super().submit(task)
        self.futures[future] = task.id
        in_flight = sum(1 for f in self.futures if not f.done())
        self.max_in_flight = max(self.max_in_flight, in_flight)
        return future

    def queue_ahead(self) -> int:
        return self.ahead

    def cancel(self, future: Future[TaskResult]) -> bool:
        if future.cancel():
            self.withdrawn.append(self.futures[future])
            return True
        return False


def test_tasks_wait_at_the_executor_ahead_of_its_workers() -> None:
    plan = build_plan(project(8), ["build"])
    runner = QueueingRunner(jobs=2, ahead=2, delay=0.05)
    out = schedule(plan.tasks, runner, Limits(jobs=2, parallel=True))
    assert {r.status for r in out.results.values()} == {Status.OK}
    assert runner.max_active == 2  # two run at once, as -j2 says
    assert runner.max_in_flight == 4  # and two more wait for them


def test_after_a_failure_the_tasks_waiting_ahead_never_start() -> None:
    """w0 fails first; its thread takes the next task in the queue (w2) before the loop
    hears of it, as a pool's free worker does; w3, still waiting, never starts."""
    plan = build_plan(project(6), ["build"])
    runner = QueueingRunner(jobs=2, ahead=2, fail={"w0:build"}, delay=0.5)
    runner.quick = {"w0:build"}
    out = schedule(plan.tasks, runner, Limits(jobs=2, parallel=True))
    assert out.results["w0:build"].status is Status.FAILED
    assert runner.withdrawn == ["w3:build"]
    assert sorted(runner.started) == ["w0:build", "w1:build", "w2:build"]
    for tid in ("w3:build", "w4:build", "w5:build"):
        assert out.results[tid].status is Status.SKIPPED
        assert out.results[tid].error == "not started: an earlier task failed"
    # those that had started ran to their end
    assert out.results["w1:build"].status is Status.OK
    assert out.results["w2:build"].status is Status.OK


def test_fail_fast_skips_the_rest_and_dependents() -> None:
    plan = build_plan(project(4, chain=True), ["build"])
    runner = FakeRunner(fail={"w1:build"})
    out = schedule(plan.tasks, runner, Limits(jobs=1, parallel=True))
    assert out.results["w0:build"].status is Status.OK
    assert out.results["w1:build"].status is Status.FAILED
    assert out.results["w2:build"].status is Status.SKIPPED
    assert out.results["w3:build"].status is Status.SKIPPED
    assert "w2:build" not in runner.started


def test_keep_going_runs_what_does_not_depend_on_failure() -> None:
    plan = build_plan(project(4), ["build", "test"])
    runner = FakeRunner(fail={"w0:build"})
    out = schedule(plan.tasks, runner, Limits(jobs=2, parallel=True), keep_going=True)
    assert out.results["w0:test"].status is Status.SKIPPED
    assert "w0:build" in (out.results["w0:test"].error or "")
    for i in (1, 2, 3):
        assert out.results[f"w{i}:test"].status is Status.OK


def test_cached_tasks_are_not_submitted() -> None:
    plan = build_plan(project(3, chain=True), ["build"])
    runner = FakeRunner(cached={"w0:build", "w1:build"})
    out = schedule(plan.tasks, runner, Limits(jobs=2, parallel=True))
    assert runner.started == ["w2:build"]
    assert out.results["w0:build"].status is Status.CACHED


def test_machinery_failure_fails_only_that_task() -> None:
    plan = build_plan(project(3), ["build"])
    runner = FakeRunner(crash={"w1:build"})
    out = schedule(plan.tasks, runner, Limits(jobs=3, parallel=True), keep_going=True)
    assert out.results["w1:build"].status is Status.FAILED
    assert "worker died" in (out.results["w1:build"].error or "")
    assert out.results["w0:build"].status is Status.OK


def test_longest_chain_starts_first() -> None:
    # w0 <- w1 <- w2 is a chain; w3 is alone: w0 should be picked before w3
    ws = [
        Workspace("w3", "w3"),
        Workspace("w0", "w0"),
        Workspace("w1", "w1", depends_on=("w0",)),
        Workspace("w2", "w2", depends_on=("w1",)),
    ]
    make = Make(
        root="/tmp/p",
        project=Project("p"),
        workspaces=tuple(ws),
        lifecycle=(Phase("build", ("true",), depends_on=("^build",)),),
    )
    plan = build_plan(make, ["build"])
    runner = FakeRunner()
    schedule(plan.tasks, runner, Limits(jobs=1, parallel=True))
    assert runner.started[0] == "w0:build"


class InterruptingRunner(FakeRunner):
    """Ctrl-C arrives while ``w0:build`` and ``w1:build`` run (raised in the scheduling thread,
    as a signal would); they then fail as a TERM would make them fail."""

    def __init__(self, second_ctrl_c: bool = False) -> None:
        super().__init__(delay=0.0)
        self.second_ctrl_c = second_ctrl_c
        self.interrupts: list[bool] = []
        self.stopped = threading.Event()
        self.hard = threading.Event()

    def prepare(self, task: Task) -> TaskResult | None:
        if task.id == "w2:build":
            raise KeyboardInterrupt
        return None

    def _work(self, task: Task) -> TaskResult:
        with self.lock:
            self.started.append(task.id)
        assert self.stopped.wait(30)
        if self.second_ctrl_c and task.id == "w0:build":
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C while the first drains
            assert self.hard.wait(30)
        return TaskResult(task.id, task.workspace, task.phase, Status.FAILED, exit_code=-15)

    def interrupt(self, hard: bool) -> None:
        self.interrupts.append(hard)
        self.stopped.set()
        if hard:
            self.hard.set()


def test_ctrl_c_interrupts_the_running_and_skips_the_rest() -> None:
    plan = build_plan(project(4), ["build"])
    runner = InterruptingRunner()
    out = schedule(plan.tasks, runner, Limits(jobs=3, parallel=True))
    assert out.interrupted
    assert runner.interrupts == [False]
    assert {t: r.status for t, r in out.results.items()} == {
        "w0:build": Status.INTERRUPTED,
        "w1:build": Status.INTERRUPTED,
        "w2:build": Status.SKIPPED,
        "w3:build": Status.SKIPPED,
    }
    assert out.results["w0:build"].error == "interrupted (None)"
    assert out.results["w3:build"].error == "not started: interrupted"


def test_a_second_ctrl_c_while_draining_kills_hard() -> None:
    plan = build_plan(project(4), ["build"])
    runner = InterruptingRunner(second_ctrl_c=True)
    out = schedule(plan.tasks, runner, Limits(jobs=3, parallel=True))
    assert out.interrupted
    assert runner.interrupts == [False, True]
    assert out.results["w0:build"].status is Status.INTERRUPTED


class BrokenExecutorRunner(FakeRunner):
    """The second submission finds that no executor can be made."""

    def __init__(self) -> None:
        super().__init__(delay=0.05)
        self.submissions = 0
        self.interrupts: list[bool] = []

    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        self.submissions += 1
        if self.submissions == 2:
            raise UsageError("no scheduler address")
        return super().submit(task)

    def interrupt(self, hard: bool) -> None:
        self.interrupts.append(hard)


def test_a_ggen_error_from_submit_stops_the_run_and_is_raised() -> None:
    plan = build_plan(project(3), ["build"])
    runner = BrokenExecutorRunner()
    with pytest.raises(UsageError, match="no scheduler address"):
        schedule(plan.tasks, runner, Limits(jobs=3, parallel=True))
    assert runner.interrupts == [False]
    assert runner.started == ["w0:build"]
    # it was running when submit failed: the scheduler waited for it and recorded its result
    assert runner.completed == ["w0:build"]
    assert runner.active == set()
