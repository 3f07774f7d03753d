"""Dispatch: the executor's lifecycle, starting tasks on it, dead workers, retries, interrupts.

``Dispatcher`` is the half of the scheduler's ``TaskRunner`` that runs things (``submit``,
``retry``, ``failed_to_run``, ``interrupt``); the run's ``Session`` keeps deciding and recording.
It talks to any ``TaskExecutor`` (``ggen.runner.executor``) the same way: every executor ends the
future of a task whose worker died with ``WorkerDied``, and ``retry`` applies the one policy
(``may_start_again``) to the deaths counted here.

The pool is made only when the first task has to run, so a fully cached run never starts one;
a lone task (nothing else to run or running) runs in this process while no pool exists. When a
run is known to need it (``pool_needed``), the pool starts in the background at once, while the
run plans and hashes, so that its workers are up when the first tasks are submitted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from ggen.errors import WriteError
from ggen.make import ExecutorKind, Make
from ggen.names import task_file_stem
from ggen.runner.execute import ExecOptions, kill_group
from ggen.runner.executor import TaskCall, TaskExecutor, WorkerDied, may_start_again
from ggen.runner.plan import Task
from ggen.runner.results import Status, TaskResult
from ggen.runner.schedule import Limits

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ggen.runner.control import Watchdog


class ClusterThreads:
    """The thread count of the cluster a run's executor is connected to (0 before): a run's
    ``Limits.capacity`` when the cluster, not -j, says how many tasks run at once."""

    def __init__(self) -> None:
        self.threads = 0

    def __call__(self) -> int:
        return self.threads


def pool_needed(tasks: Sequence[Task], limits: Limits, *, all_run: bool) -> bool:
    """Whether a run of ``tasks`` will start a pool, told cheaply before anything is hashed:
    when every task will run (``all_run``: no cache to answer, or none written here yet) and
    two of them may run at once. Otherwise the pool waits for a second task to run."""
    if not all_run or limits.cap() < 2 or len(tasks) < 2:
        return False
    return limits.parallel or sum(1 for t in tasks if t.parallel) >= 2


class Dispatcher:
    """Starts the tasks of one run on its executor and answers for what happens to them."""

    def __init__(
        self,
        make: Make,
        kind: ExecutorKind,
        limits: Limits,
        exec_options: ExecOptions,
        warn: Callable[[str], None],
        *,
        scheduler: str | None = None,
        started: Callable[[str, str], None] = lambda task_id, log: None,
    ) -> None:
        self.make = make
        self.kind = kind
        self.limits = limits
        self.exec_options = exec_options
        self.warn = warn
        self.scheduler = scheduler
        self.started = started
        self.root = Path(make.root)
        self._executor: TaskExecutor | None = None
        self._inline: TaskExecutor | None = None  # runs lone tasks in this process (submit)
        self._watchdog: Watchdog | None = None
        self._warming: threading.Thread | None = None  # starting the pool ahead (prestart)
        self._pool_lock = threading.Lock()
        self._swept = False
        self._deaths: dict[str, int] = {}  # task id -> starts lost with a dead worker, retried

    def deaths(self, task_id: str) -> int:
        """The starts of ``task_id`` lost with a dead worker and started again."""
        return self._deaths.get(task_id, 0)

    def log_path(self, task: Task) -> Path:
        stem = task_file_stem(task.workspace, task.phase)
        return Path(self.exec_options.logs_dir) / f"{stem}.log"

    # the executor -------------------------------------------------------------------------
    def executor(self) -> TaskExecutor:
        """The run's executor, made on first use."""
        with self._pool_lock:
            if self._executor is None:
                from ggen.runner.pools import make_executor

                control = self.exec_options.control_dir
                executor = make_executor(
                    self.kind, self.make, self.limits.jobs, self.scheduler, control
                )
                if isinstance(self.limits.capacity, ClusterThreads):
                    self.limits.capacity.threads = executor.capacity()
                self._executor = executor
            return self._executor

    def prestart(self) -> None:
        """Start the loky pool now, in the background, and its workers with it: the run will
        need it (``pool_needed``), and its workers start while the run plans and hashes."""
        if self.kind is not ExecutorKind.LOKY or self._warming is not None:
            return
        self._warming = threading.Thread(target=self._warm, name="ggen-pool-start", daemon=True)
        self._warming.start()

    def _warm(self) -> None:
        from ggen.runner.pools import warm_up

        with contextlib.suppress(Exception):  # the pool's errors show on its first real task
            warm_up(self.executor(), self.limits.jobs)

    def _in_process(self, alone: bool) -> TaskExecutor | None:
        """The executor running in this process that ``submit`` should use, if any.

        A lone task (nothing else to run or running) is run here rather than on a process
        pool that does not exist yet: starting one (importing loky, starting its workers)
        costs more than most single tasks. Commands run here are watched by a ``Watchdog``."""
        kind = self.kind
        if kind is not ExecutorKind.INLINE and not (
            alone and kind is ExecutorKind.LOKY and self._executor is None and self._warming is None
        ):
            return None
        if self._watchdog is None:
            from ggen.runner.control import Watchdog
            from ggen.runner.lock import held_lock_fd

            self._watchdog = Watchdog(
                self.exec_options.control_dir,
                self.make.root,
                self.exec_options.grace,
                keep_fd=held_lock_fd(),
            )
        if kind is ExecutorKind.INLINE:
            return self.executor()
        if self._inline is None:
            from ggen.runner.pools import InlineExecutor

            self._inline = InlineExecutor(self.make)
        return self._inline

    # starting tasks -----------------------------------------------------------------------
    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        """Start ``task``: on the pool, or in this process when it is ``alone`` (the only task
        to run now, none running) and no pool has been started. Before the first task, stop
        what a killed run left."""
        if not self._swept:
            from ggen.runner.control import sweep

            self._swept = True
            control = self.exec_options.control_dir
            left = sweep(control, self.make.root, self.exec_options.grace)
            if left:
                self.warn(f"stopped {left} command(s) left running by a killed run")
        log = self.log_path(task)
        try:
            log.unlink()  # the last run's log, which must not pass for this run's output
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise WriteError(log, exc) from exc
        self.started(task.id, str(log))
        executor = self._in_process(alone) or self.executor()
        return executor.submit_task(TaskCall(task.workspace, task.phase, self.exec_options))

    def retry(self, task: Task, future: Future[TaskResult]) -> Future[TaskResult] | None:
        """Start again a task whose worker died running it, while the retry policy allows for
        its phase's ``retries``: the dead worker's command is stopped first, the log kept."""
        if future.cancelled():
            return None
        died = future.exception()
        if not isinstance(died, WorkerDied):
            return None
        phase = self.make.phase_for(task.workspace, task.phase)
        deaths = self.deaths(task.id) + died.starts
        if phase is None or not may_start_again(deaths, phase.retries):
            return None
        self._deaths[task.id] = deaths
        self._stop_dead_workers_command(task, wait=True)
        total = phase.retries + 1
        note = f"{died}; starting it again (attempt {deaths + 1} of {total})"
        with contextlib.suppress(OSError), open(self.log_path(task), "ab") as f:
            f.write(f"\n[ggen] {note}\n".encode())
        self.warn(f"{task.id}: {note}")
        options = dataclasses.replace(self.exec_options, append_log=True)
        call = TaskCall(task.workspace, task.phase, options, deaths=deaths)
        return self.executor().submit_task(call)

    def failed_to_run(self, task: Task, error: BaseException) -> TaskResult:
        """The failed result of a task whose future raised: its worker died (the command it
        left running is stopped too), or ggen's own machinery failed."""
        worker = "main"
        attempts = 0
        if isinstance(error, WorkerDied):
            text = str(error)
            worker = error.worker
            attempts = self.deaths(task.id) + error.starts
            if attempts > 1:
                text += f" (after {attempts} attempts, every one on a worker that died)"
            self._stop_dead_workers_command(task, wait=False)
        elif isinstance(error, WriteError):  # its log or control file
            text = str(error)  # cannot write PATH: reason
        else:
            text = f"the worker failed: {type(error).__name__}: {error}".strip()
        log = self.log_path(task)
        log_rel = None
        if log.exists():
            with contextlib.suppress(OSError), open(log, "ab") as f:
                f.write(f"\n[ggen] {text}\n".encode())
                log_rel = os.path.relpath(log, self.root)
        return TaskResult(
            task.id,
            task.workspace,
            task.phase,
            Status.FAILED,
            error=text,
            deps=task.deps,
            finished_ms=int(time.time() * 1000),
            worker=worker,
            attempts=attempts,
            log=log_rel,
        )

    def _stop_dead_workers_command(self, task: Task, *, wait: bool) -> None:
        """Stop the command a dead worker left running for ``task`` (TERM, then KILL)."""
        from ggen.runner.control import control_path, stop_stale, task_identity

        control = control_path(self.exec_options.control_dir, task.workspace, task.phase)
        identity = task_identity(self.make.root, task.workspace, task.phase)
        grace = self.exec_options.grace
        if wait:  # a new start of the task will write the same control file
            stop_stale(control, identity, grace)
        else:
            threading.Thread(target=stop_stale, args=(control, identity, grace)).start()

    def _stop_strays(self) -> None:
        """After a pool broke: stop the commands of this project still running. A worker killed
        with a broken pool while it was starting a command leaves that command unrecorded,
        so neither the worker nor the control files can stop it; its environment names it."""
        from ggen.runner.control import stop_in_background, stray_groups

        strays = stray_groups(self.make.root)
        if strays:
            self.warn(f"stopped {len(strays)} command(s) left by dead workers")
        grace = self.exec_options.grace
        for thread in [stop_in_background(pgid, grace) for pgid in strays]:
            thread.join()

    def queue_ahead(self) -> int:
        """Tasks the executor may hold beyond what it runs (none before it exists)."""
        return self._executor.queue_ahead() if self._executor is not None else 0

    def cancel(self, future: Future[TaskResult]) -> bool:
        """Keep a task submitted ahead from starting, if no worker started it."""
        return self._executor.cancel(future) if self._executor is not None else False

    # stopping -----------------------------------------------------------------------------
    def interrupt(self, hard: bool, also: Callable[[], None] = lambda: None) -> None:
        """Stop every running command's process group: TERM, then KILL after the grace period
        (KILL at once if ``hard``). Workers start no new command, the pool resubmits nothing.
        ``also`` is called once the stop flag is up (the run's other work stops with it)."""
        from ggen.runner.control import request_stop, running_groups

        control = self.exec_options.control_dir
        request_stop(control)  # first: a command starting from now on sees it (control.py)
        also()
        if self._executor is not None:
            self._executor.interrupt()
        for pgid in running_groups(control):
            if hard:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            else:
                # not a daemon: ggen does not exit before the KILL that ends the grace period
                args = (pgid, self.exec_options.grace)
                threading.Thread(target=kill_group, args=args).start()

    def close(self) -> None:
        """Shut the pool down (its workers finish what they run), clear the stop flag."""
        from ggen.runner.control import clear_stop

        if self._warming is not None:
            self._warming.join()
            self._warming = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            if self._executor.rebuilds:
                self._stop_strays()
            self._executor = None
        if self._inline is not None:
            self._inline.shutdown(wait=True)
            self._inline = None
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None
        clear_stop(self.exec_options.control_dir)
