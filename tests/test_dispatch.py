"""The scheduler and the dispatcher against every executor: one contract suite.

The same tests run ``schedule`` with a real ``Dispatcher`` on the inline executor, on loky and
on a real Dask cluster (one per module), with real commands on a small project: ordering,
fail-fast, keep-going, the hold-back of exclusive phases and of a lone task, retries after a
failing command and after a dead worker, and the interrupt. No test leaves a process behind
(``conftest.no_child_left_behind``)."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from types import FrameType

import pytest
from dask_cluster import DaskCluster, dask_cluster
from monorepo import write_tree

from ggen.make import ExecutorKind, Make, load_make
from ggen.runner.dispatch import Dispatcher, pool_needed
from ggen.runner.execute import ExecOptions
from ggen.runner.plan import Task, build_plan
from ggen.runner.results import Status, TaskResult
from ggen.runner.schedule import Limits, Outcome, schedule

KINDS = (ExecutorKind.INLINE, ExecutorKind.LOKY, ExecutorKind.DASK)

# each command appends "start WS" and "end WS" (with its shell's parent pid) to one file;
# appends of a short line are atomic, so the file orders what ran when
MAKE_TOML = """
[project]
name = "contract"

[lifecycle.build]
command = '''
echo "start $GGEN_WORKSPACE $PPID" >> "$GGEN_PROJECT_ROOT/events"
{body}
echo "end $GGEN_WORKSPACE" >> "$GGEN_PROJECT_ROOT/events"
'''
depends_on = [{deps}]
parallel = {parallel}
retries = {retries}
cache = false
"""


@pytest.fixture(scope="module", autouse=True)  # up before a test counts its processes
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    with dask_cluster(tmp_path_factory.mktemp("dask")) as c:
        yield c


class Runner:
    """The scheduler's TaskRunner: nothing cached, everything dispatched for real."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatch = dispatcher

    def prepare(self, task: Task) -> TaskResult | None:
        return None

    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        return self.dispatch.submit(task, alone=alone)

    def complete(self, task: Task, result: TaskResult) -> TaskResult:
        return result.evolve(attempts=result.attempts + self.dispatch.deaths(task.id))

    def failed_to_run(self, task: Task, error: BaseException) -> TaskResult:
        return self.dispatch.failed_to_run(task, error)

    def retry(self, task: Task, future: Future[TaskResult]) -> Future[TaskResult] | None:
        return self.dispatch.retry(task, future)

    def interrupt(self, hard: bool) -> None:
        self.dispatch.interrupt(hard)

    def queue_ahead(self) -> int:
        return self.dispatch.queue_ahead()

    def cancel(self, future: Future[TaskResult]) -> bool:
        return self.dispatch.cancel(future)


class Project:
    """A project of workspaces w0..w{n-1} with one ``build`` phase, and a way to run it."""

    def __init__(
        self,
        root: Path,
        kind: ExecutorKind,
        scheduler: str | None,
        n: int,
        body: str = "sleep 0.2",
        *,
        deps: str = "",
        chain: bool = False,
        parallel: bool = True,
        retries: int = 0,
    ) -> None:
        toml = MAKE_TOML.format(
            body=body, deps=deps, parallel=str(parallel).lower(), retries=retries
        )
        for i in range(n):
            toml += f'[workspace.w{i}]\npath = "w{i}"\n'
            if chain and 0 < i < n - 1:  # w0 <- w1 <- ... <- w{n-2}; the last stands alone
                toml += f'depends_on = ["w{i - 1}"]\n'

        self.root = write_tree(root, {"make.toml": toml, **{f"w{i}/.keep": "" for i in range(n)}})
        self.kind, self.scheduler = kind, scheduler
        self.make: Make = load_make(str(self.root))
        self.warnings: list[str] = []

    def run(self, jobs: int, *, keep_going: bool = False, parallel: bool = True) -> Outcome:
        plan = build_plan(self.make, ("build",), ())
        control = self.root / ".ggen/control"
        control.mkdir(parents=True, exist_ok=True)
        options = ExecOptions(logs_dir=str(self.root / ".ggen/logs"), control_dir=str(control))
        limits = Limits(jobs=jobs, parallel=parallel)
        dispatcher = Dispatcher(
            self.make, self.kind, limits, options, self.warnings.append, scheduler=self.scheduler
        )
        try:
            return schedule(plan.tasks, Runner(dispatcher), limits, keep_going=keep_going)
        finally:
            dispatcher.close()

    def events(self) -> list[tuple[str, str, int]]:
        """(start|end, workspace, parent pid of the command or 0) in the order they happened."""
        path = self.root / "events"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(w[0], w[1], int(w[2]) if len(w) > 2 else 0) for w in map(str.split, lines)]

    def intervals(self) -> dict[str, tuple[int, int]]:
        """Each workspace's (start, end) positions in the events."""
        spans: dict[str, list[int]] = {}
        for i, (what, ws, _) in enumerate(self.events()):
            spans.setdefault(ws, [i, -1])[1 if what == "end" else 0] = i
        return {ws: (s, e) for ws, (s, e) in spans.items()}


# the cases that need a worker process to lose or to interrupt: inline has none (it runs
# the command in ggen's own process, which takes the interrupt itself)
POOLS = [k for k in KINDS if k is not ExecutorKind.INLINE]
over_pools = pytest.mark.parametrize("kind", POOLS, ids=[k.value for k in POOLS])


@pytest.fixture(params=KINDS, ids=[k.value for k in KINDS])
def kind(request: pytest.FixtureRequest) -> ExecutorKind:
    kind: ExecutorKind = request.param
    return kind


@pytest.fixture
def scheduler(kind: ExecutorKind, request: pytest.FixtureRequest) -> str | None:
    if kind is not ExecutorKind.DASK:
        return None
    c: DaskCluster = request.getfixturevalue("cluster")
    return c.address


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _statuses(outcome: Outcome) -> dict[str, Status]:
    return {tid: r.status for tid, r in outcome.results.items()}


def test_dependencies_finish_before_their_dependents_start(
    tmp_path: Path, kind: ExecutorKind, scheduler: str | None
) -> None:
    p = Project(tmp_path / "p", kind, scheduler, 4, deps='"^build"', chain=True)
    outcome = p.run(jobs=2)
    assert set(_statuses(outcome).values()) == {Status.OK}
    spans = p.intervals()
    assert spans["w0"][1] < spans["w1"][0] and spans["w1"][1] < spans["w2"][0]
    assert all(r.exit_code == 0 for r in outcome.results.values())


def test_fail_fast_starts_nothing_after_a_failure(
    tmp_path: Path, kind: ExecutorKind, scheduler: str | None
) -> None:
    body = '[ "$GGEN_WORKSPACE" = w0 ] && exit 3; sleep 0.1'
    p = Project(tmp_path / "p", kind, scheduler, 3, body)
    outcome = p.run(jobs=1)
    assert _statuses(outcome) == {
        "w0:build": Status.FAILED,
        "w1:build": Status.SKIPPED,
        "w2:build": Status.SKIPPED,
    }
    assert outcome.results["w1:build"].error == "not started: an earlier task failed"
    assert [ws for what, ws, _ in p.events() if what == "start"] == ["w0"]


def test_keep_going_runs_what_does_not_depend_on_the_failure(
    tmp_path: Path, kind: ExecutorKind, scheduler: str | None
) -> None:
    body = '[ "$GGEN_WORKSPACE" = w0 ] && exit 3; sleep 0.1'
    p = Project(tmp_path / "p", kind, scheduler, 3, body)
    outcome = p.run(jobs=2, keep_going=True)
    assert _statuses(outcome) == {
        "w0:build": Status.FAILED,
        "w1:build": Status.OK,
        "w2:build": Status.OK,
    }
    assert outcome.results["w0:build"].exit_code == 3
    assert sorted(ws for what, ws, _ in p.events() if what == "end") == ["w1", "w2"]


def test_an_exclusive_phase_runs_one_task_at_a_time(
    tmp_path: Path, kind: ExecutorKind, scheduler: str | None
) -> None:
    p = Project(tmp_path / "p", kind, scheduler, 3, "sleep 0.3", parallel=False)
    outcome = p.run(jobs=3)
    assert set(_statuses(outcome).values()) == {Status.OK}
    spans = sorted(p.intervals().values())
    assert len(spans) == 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end < start, p.events()


def test_a_parallel_phase_overlaps_and_a_lone_task_runs_here(
    tmp_path: Path, kind: ExecutorKind, scheduler: str | None
) -> None:
    """The hold-back: with one task to run, loky runs it in this process (no pool); with two,
    they run at once on the pool's workers. Dask always runs on the cluster."""
    lone = Project(tmp_path / "lone", kind, scheduler, 1, "sleep 0.1")
    assert set(_statuses(lone.run(jobs=2)).values()) == {Status.OK}
    ((_, _, parent),) = [e for e in lone.events() if e[0] == "start"]
    assert (parent == os.getpid()) is (kind is not ExecutorKind.DASK)
    two = Project(tmp_path / "two", kind, scheduler, 2, "sleep 1")
    assert set(_statuses(two.run(jobs=2)).values()) == {Status.OK}
    spans = sorted(two.intervals().values())
    overlapped = spans[0][1] > spans[1][0]
    assert overlapped is (kind is not ExecutorKind.INLINE)
    parents = {parent for what, _, parent in two.events() if what == "start"}
    assert (os.getpid() in parents) is (kind is ExecutorKind.INLINE)


def test_a_failing_command_is_retried(
    tmp_path: Path, kind: ExecutorKind, scheduler: str | None
) -> None:
    body = "[ -e failed.once ] || { touch failed.once; exit 5; }"
    p = Project(tmp_path / "p", kind, scheduler, 2, body, retries=1)
    outcome = p.run(jobs=2)
    assert set(_statuses(outcome).values()) == {Status.OK}
    assert {r.attempts for r in outcome.results.values()} == {2}
    assert [e[0] for e in p.events()].count("start") == 4


@over_pools
def test_a_task_whose_worker_died_starts_again_while_retries_allow(
    tmp_path: Path, kind: ExecutorKind
) -> None:
    if kind is ExecutorKind.DASK:  # a cluster of its own: its nannies start new workers
        with dask_cluster(tmp_path / "cluster") as own:
            _dead_workers(tmp_path, kind, own.address)
    else:
        _dead_workers(tmp_path, kind, None)


def _dead_workers(tmp_path: Path, kind: ExecutorKind, scheduler: str | None) -> None:
    # w0 kills its worker on its first start; w1 on every start once w0 is done (so that
    # each death is one task's own); w2 never
    body = """
case $GGEN_WORKSPACE in
  w0) [ -e died.once ] || { touch died.once; kill -9 $PPID; sleep 5; }
      touch "$GGEN_PROJECT_ROOT/w0.done" ;;
  w1) until [ -e "$GGEN_PROJECT_ROOT/w0.done" ]; do sleep 0.02; done
      kill -9 $PPID; sleep 5 ;;
esac
sleep 0.2
"""
    p = Project(tmp_path / "p", kind, scheduler, 3, body, retries=1)
    outcome = p.run(jobs=2, keep_going=True)
    assert _statuses(outcome) == {
        "w0:build": Status.OK,
        "w1:build": Status.FAILED,
        "w2:build": Status.OK,
    }
    w0, w1 = outcome.results["w0:build"], outcome.results["w1:build"]
    assert w0.attempts == 2
    assert w1.attempts == 2
    assert w1.error is not None
    assert w1.error.startswith(f"worker {'process ' if kind is ExecutorKind.LOKY else ''}")
    assert w1.error.endswith("(after 2 attempts, every one on a worker that died)")
    assert "died running it" in w1.error
    log = (p.root / ".ggen/logs/w1.build.log").read_text()
    assert log.count("(after 2 attempts, every one on a worker that died)") == 1
    assert "starting it again (attempt 2 of 2)" in log


@over_pools
def test_an_interrupt_stops_running_tasks_and_starts_no_other(
    tmp_path: Path, kind: ExecutorKind, scheduler: str | None
) -> None:
    p = Project(tmp_path / "p", kind, scheduler, 4, "sleep 30")
    control = p.root / ".ggen/control"

    def interrupt_when_started() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # both commands started, and their workers said so in the control files
            started = sum(1 for e in p.events() if e[0] == "start")
            if started >= 2 and len(list(control.glob("*.pid"))) >= 2:
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    # as ``ggen run`` does: SIGTERM stops a run as Ctrl-C does
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        threading.Thread(target=interrupt_when_started, daemon=True).start()
        began = time.monotonic()
        outcome = p.run(jobs=2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert outcome.interrupted
    assert time.monotonic() - began < 25  # nobody waited for the sleeps
    statuses = _statuses(outcome)
    assert sorted(statuses.values(), key=lambda s: s.value) == [
        Status.INTERRUPTED,
        Status.INTERRUPTED,
        Status.SKIPPED,
        Status.SKIPPED,
    ]
    assert not [e for e in p.events() if e[0] == "end"]


def _tasks(n: int, parallel: bool | None) -> tuple[Task, ...]:
    return tuple(Task(f"w{i}:build", f"w{i}", "build", (), parallel=parallel) for i in range(n))


@pytest.mark.parametrize(
    ("n", "parallel", "limits", "all_run", "needed"),
    [
        (4, None, Limits(jobs=2, parallel=True), True, True),  # -j2: every phase parallel
        (4, True, Limits(jobs=2), True, True),  # parallel = true phases
        (4, None, Limits(jobs=2), True, False),  # one at a time: each runs alone, here
        (4, True, Limits(jobs=1, parallel=True), True, False),  # -j1
        (1, True, Limits(jobs=4, parallel=True), True, False),  # a lone task
        (4, True, Limits(jobs=4, parallel=True), False, False),  # the cache may answer
    ],
)
def test_the_pool_is_started_ahead_only_when_the_run_will_need_it(
    n: int, parallel: bool | None, limits: Limits, all_run: bool, needed: bool
) -> None:
    assert pool_needed(_tasks(n, parallel), limits, all_run=all_run) is needed


def test_a_pool_started_ahead_runs_even_a_lone_task(tmp_path: Path) -> None:
    """Once ``prestart`` began a pool, a lone task goes to it (never into this process while
    the pool starts on another thread)."""
    p = Project(tmp_path / "p", ExecutorKind.LOKY, None, 1, "sleep 0.1")
    control = p.root / ".ggen/control"
    control.mkdir(parents=True)
    options = ExecOptions(logs_dir=str(p.root / ".ggen/logs"), control_dir=str(control))
    limits = Limits(jobs=2, parallel=True)
    dispatcher = Dispatcher(p.make, ExecutorKind.LOKY, limits, options, p.warnings.append)
    dispatcher.prestart()
    try:
        plan = build_plan(p.make, ("build",), ())
        outcome = schedule(plan.tasks, Runner(dispatcher), limits)
    finally:
        dispatcher.close()
    assert outcome.results["w0:build"].status is Status.OK
    ((_, _, parent),) = [e for e in p.events() if e[0] == "start"]
    assert parent != os.getpid()
