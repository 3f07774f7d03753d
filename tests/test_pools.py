"""Executors: inline, and the loky pool that survives the death of its workers.

The crash table follows loky's own tests: a worker dies mid-call by SIGKILL, by SIGSEGV or by
``os._exit(3)``; only that call fails, naming the signal or the exit code, while the calls that
were running beside it (and died with the pool) are run again and return their real results.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import psutil
import pytest
from procs import wait_for

from ggen.make import ExecutorKind, Hooks, Make, Project
from ggen.runner.pools import InlineExecutor, ResilientExecutor, WorkerDied, make_executor

PATIENCE = 60.0  # seconds a call waits for the test, so that a failing test cannot hang


def _started(box: Path) -> int:
    return len(list(box.glob("started.*")))


def _wait(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def innocent(box: str, n: int) -> tuple[int, int]:
    """Say it started; the first time, wait until the pool breaks under it (it is killed with
    the other workers); run again, return at once. Returns (n, this worker's pid)."""
    d = Path(box)
    first = not (d / f"started.{n}").exists()
    with open(d / f"runs.{n}", "a") as f:
        f.write(f"{os.getpid()}\n")
    (d / f"started.{n}").touch()
    if first:
        _wait(lambda: False)  # killed when the pool breaks, long before the end
    return n, os.getpid()


def crasher(box: str, how: str, others: int) -> int:
    """Wait until ``others`` innocents run, then die by ``how``."""
    d = Path(box)
    _wait(lambda: _started(d) >= others)
    if how == "SIGKILL":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "SIGSEGV":
        os.kill(os.getpid(), signal.SIGSEGV)
    else:
        os._exit(3)
    return -1


def pid_after_file(box: str, name: str) -> int:
    """Say which worker runs this, wait for the test's go, return the worker's pid."""
    Path(box, f"{name}.pid").write_text(str(os.getpid()))
    _wait(Path(box, f"{name}.go").exists)
    return os.getpid()


def loky_factory(jobs: int) -> functools.partial[object]:
    from loky import ProcessPoolExecutor

    return functools.partial(ProcessPoolExecutor, max_workers=jobs)


@pytest.fixture
def box(tmp_path: Path) -> Path:
    d = tmp_path / "box"
    d.mkdir()
    return d


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[ResilientExecutor]:
    executor = ResilientExecutor(loky_factory(4), str(tmp_path / "pids"))  # type: ignore[arg-type]
    yield executor
    executor.shutdown(wait=True)


def test_inline_executor_runs_at_once_and_keeps_exceptions() -> None:
    ex = InlineExecutor()
    assert ex.submit(pow, 2, 5).result() == 32
    failed = ex.submit(int, "x")
    assert failed.done() and isinstance(failed.exception(), ValueError)
    ex.shutdown()
    with pytest.raises(RuntimeError):
        ex.submit(pow, 2, 5)


def test_resilient_pool_returns_results_and_exceptions(pool: ResilientExecutor) -> None:
    futures = [pool.submit(pow, 2, n) for n in range(6)]
    assert [f.result(timeout=60) for f in futures] == [1, 2, 4, 8, 16, 32]
    with pytest.raises(ValueError):
        pool.submit(int, "x").result(timeout=60)
    assert pool.rebuilds == 0


@pytest.mark.parametrize(
    ("how", "exit_code", "named"),
    [
        ("SIGKILL", -9, "killed by SIGKILL"),
        ("SIGSEGV", -11, "killed by SIGSEGV"),
        ("exit3", 3, "exit code 3"),
    ],
)
def test_crash_table_only_the_call_whose_worker_died_fails(
    pool: ResilientExecutor, box: Path, how: str, exit_code: int, named: str
) -> None:
    innocents = [pool.submit(innocent, str(box), n) for n in range(3)]
    doomed = pool.submit(crasher, str(box), how, 3)
    with pytest.raises(WorkerDied) as died:
        doomed.result(timeout=60)
    assert died.value.exit_code == exit_code
    assert named in str(died.value) and str(died.value.pid) in str(died.value)
    results = [f.result(timeout=60) for f in innocents]
    assert [n for n, _ in results] == [0, 1, 2]
    for n, pid in results:
        runs = (box / f"runs.{n}").read_text().split()
        assert len(runs) == 2 and runs[1] == str(pid)  # run again, on a new worker
        assert runs[0] != str(died.value.pid)
    assert pool.rebuilds == 1
    # the new pool goes on working
    assert pool.submit(pow, 3, 2).result(timeout=60) == 9


def children() -> set[int]:
    return {c.pid for c in psutil.Process().children()}


def loky_workers(pids: set[int]) -> list[psutil.Process]:
    """The running loky workers among ``pids``."""
    found = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and "popen_loky" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_a_worker_dying_idle_fails_no_call(pool: ResilientExecutor, box: Path) -> None:
    before = children()
    busy = pool.submit(pid_after_file, str(box), "busy")
    wait_for((box / "busy.pid").exists, 60)
    busy_pid = int((box / "busy.pid").read_text())
    idle = next(p for p in loky_workers(children() - before) if p.pid != busy_pid)
    (box / "busy.pid").unlink()
    idle.kill()
    # the busy call dies with the pool, not by its doing: it starts again on a new worker
    wait_for((box / "busy.pid").exists, 60, "the call to start again")
    (box / "busy.go").touch()
    assert busy.result(timeout=60) == int((box / "busy.pid").read_text()) != busy_pid
    assert pool.rebuilds == 1


def test_after_interrupt_nothing_is_resubmitted(pool: ResilientExecutor, box: Path) -> None:
    a = pool.submit(pid_after_file, str(box), "a")
    b = pool.submit(pid_after_file, str(box), "b")
    wait_for(lambda: (box / "a.pid").exists() and (box / "b.pid").exists(), 60)
    pool.interrupt()
    os.kill(int((box / "a.pid").read_text()), signal.SIGKILL)
    with pytest.raises(WorkerDied):
        a.result(timeout=60)
    with pytest.raises(BrokenProcessPool):  # died with the pool, and not started again
        b.result(timeout=60)


def test_interrupt_cancels_calls_not_started(tmp_path: Path, box: Path) -> None:
    pool = ResilientExecutor(loky_factory(1), str(tmp_path / "pids"))  # type: ignore[arg-type]
    try:
        first = pool.submit(pid_after_file, str(box), "first")
        queued: list[Future[int]] = [pool.submit(pow, 2, n) for n in range(30)]
        wait_for((box / "first.pid").exists, 60)
        pool.interrupt()
        (box / "first.go").touch()
        assert first.result(timeout=60) > 0
        outcomes: list[int | None] = []
        for f in queued:
            try:
                outcomes.append(f.result(timeout=60))
            except CancelledError:
                outcomes.append(None)
        assert None in outcomes  # those still waiting in the queue were dropped
    finally:
        pool.shutdown(wait=True)


def test_submit_after_shutdown_is_refused(pool: ResilientExecutor) -> None:
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit(pow, 2, 2)


def test_make_executor_wraps_loky_and_uses_the_control_dir(tmp_path: Path) -> None:
    make = Make(
        root=str(tmp_path), project=Project("p"), workspaces=(), lifecycle=(), hooks=Hooks()
    )
    inline = make_executor(ExecutorKind.INLINE, make, 2)
    assert isinstance(inline, InlineExecutor)
    loky = make_executor(ExecutorKind.LOKY, make, 2)
    try:
        assert isinstance(loky, ResilientExecutor)
        assert loky.submit(os.getpid).result(timeout=60) != os.getpid()
        assert (tmp_path / ".ggen" / "control" / "workers").is_dir()
    finally:
        loky.shutdown(wait=True)


def test_cancel_keeps_a_queued_call_from_starting_and_leaves_a_started_one(
    tmp_path: Path, box: Path
) -> None:
    """A call waiting behind a busy worker, even one already in loky's own call queue, is
    cancelled for good; the call a worker started is not."""
    pool = ResilientExecutor(loky_factory(1), str(tmp_path / "pids"), workers=1)  # type: ignore[arg-type]
    try:
        first = pool.submit(pid_after_file, str(box), "first")
        second = pool.submit(pid_after_file, str(box), "second")
        third = pool.submit(pid_after_file, str(box), "third")
        wait_for((box / "first.pid").exists, 60)
        assert pool.cancel(first) is False
        assert pool.cancel(second) is True
        assert second.cancelled()
        (box / "first.go").touch()
        (box / "third.go").touch()
        assert first.result(timeout=60) > 0
        assert third.result(timeout=60) > 0
        assert not (box / "second.pid").exists()  # it never ran
        assert pool.cancel(third) is False  # over
        assert pool.queue_ahead() == pool.capacity() == 1
    finally:
        (box / "second.go").touch()
        pool.shutdown(wait=True)
    assert not list((tmp_path / "pids").iterdir())  # no pid or claim file left
