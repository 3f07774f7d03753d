"""One ``ggen run``, as a pipeline: plan -> lock -> schedule -> summarize -> record.

``run`` threads one step into the next; each step is a function of its own. Scheduling hands
the plan to the scheduler with a ``Session`` as its ``TaskRunner``: when a task becomes ready
(after its dependencies ran or were restored, so inputs that are their outputs are hashed as
they will be read) ``TaskCaching`` decides it (``ggen.runner.decide``) and restores a fresh
one in this process; the session sends the others to the pool, and the outputs of those that
succeed are stored off the dispatch thread (``ggen.cache.cache``). The pool is made only when
the first task has to run, so a fully cached run never starts one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ggen.cache.keys import Recipe
from ggen.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TASK_FAILED, WriteError
from ggen.make import ExecutorKind, Make, Phase
from ggen.runner.caching import CachingOptions, TaskCaching
from ggen.runner.console import Console, OutputMode
from ggen.runner.execute import ExecOptions, kill_group, run_in_worker
from ggen.runner.plan import Plan, Task, build_plan
from ggen.runner.results import Status, TaskResult
from ggen.runner.schedule import Limits, schedule
from ggen.runner.state import ggen_dir, new_run_id, record_state, write_summary
from ggen.runner.summary import RunSummary, RunTotals
from ggen.task_env import env_inputs_values

if TYPE_CHECKING:
    from ggen.cache.cache import Cache
    from ggen.cache.remote import RemoteCache
    from ggen.cache.store import Store
    from ggen.runner.control import Watchdog


@dataclass(frozen=True)
class RunOptions:
    """Everything ``ggen run`` takes from the command line."""

    phases: tuple[str, ...]
    workspaces: tuple[str, ...] = ()
    parallel: bool = False
    jobs: int | None = None
    keep_going: bool = False
    force: bool = False
    no_cache: bool = False
    cache_dir: str | None = None
    executor: ExecutorKind | None = None
    scheduler: str | None = None
    timeout: float | None = None
    grace: float = 5.0
    output: OutputMode = OutputMode.AUTO
    summary_path: str | None = None
    remote_cache: str | None = None
    remote_read_only: bool = False
    no_wait: bool = False


@dataclass(frozen=True)
class RunOutcome:
    """What a run ended with."""

    exit_code: int
    summary: RunSummary
    results: tuple[TaskResult, ...] = field(default=())


def resolve_cache_dir(make: Make, cli_dir: str | None) -> Path:
    """--cache-dir, then GGEN_CACHE_DIR, then ``[cache] dir`` (relative to the root), then the
    user cache directory."""
    from ggen.settings import CommandLine, resolve_settings

    return resolve_settings(make, CommandLine(cache_dir=cli_dir)).cache_dir


def resolve_limits(make: Make, options: RunOptions, plan: Plan) -> Limits:
    """-j N or --parallel make every phase parallel; otherwise only ``parallel = true`` ones.

    Without -j or ``[executor] jobs``, a parallel run takes as many tasks at once as there are
    CPUs here, or on Dask as there are threads in the cluster (known once connected)."""
    cpus = os.cpu_count() or 1
    jobs = options.jobs or make.executor.jobs or cpus
    parallel = options.parallel or (options.jobs or 0) > 1
    if not parallel and not plan.wants_parallel():
        return Limits(jobs=1, parallel=parallel)
    limits = Limits(jobs=max(1, jobs), parallel=parallel)
    kind = options.executor or make.executor.kind
    if kind is ExecutorKind.DASK and not (options.jobs or make.executor.jobs):
        limits = dataclasses.replace(limits, capacity=_ClusterThreads())
    return limits


class _ClusterThreads:
    """The thread count of the Dask cluster a run's executor is connected to (0 before)."""

    def __init__(self) -> None:
        self.threads = 0

    def __call__(self) -> int:
        return self.threads


class Session:
    """Runs the tasks of one run (the scheduler's TaskRunner): deciding, restoring and storing
    are ``TaskCaching``'s; starting, retrying and stopping tasks are this class's."""

    def __init__(
        self,
        make: Make,
        options: RunOptions,
        console: Console,
        limits: Limits,
        caching: TaskCaching,
    ) -> None:
        self.make = make
        self.options = options
        self.console = console
        self.limits = limits
        self.caching = caching
        self.root = Path(make.root)
        gdir = ggen_dir(make)
        self.exec_options = ExecOptions(
            logs_dir=str(gdir / "logs"),
            control_dir=str(gdir / "control"),
            timeout=options.timeout,
            grace=options.grace,
            environ=env_inputs_values(make),  # tasks get the values their keys were made from
        )
        try:
            Path(self.exec_options.control_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(self.exec_options.control_dir, exc) from exc
        self._executor: Executor | None = None
        self._inline: Executor | None = None  # runs lone tasks in this process (submit)
        self._watchdog: Watchdog | None = None
        self._swept = False
        self._remaining = 0
        self._lock = threading.Lock()
        self._deaths: dict[str, int] = {}  # task id -> starts lost with a dead worker, retried

    @property
    def keys(self) -> dict[str, str]:
        return self.caching.keys

    def _phase(self, task: Task) -> Phase:
        return self.caching.phase(task)

    def _log_path(self, task: Task) -> Path:
        return self.caching.log_path(task)

    def prepare(self, task: Task) -> TaskResult | None:
        """Decide the task: restored (cached), no-script, or None when it must run."""
        return self.caching.prepare(task)

    def complete(self, task: Task, result: TaskResult) -> TaskResult:
        """Count the starts lost with a dead worker among the attempts; have the outputs of a
        task that succeeded stored."""
        attempts = result.attempts + self._deaths.get(task.id, 0)
        return self.caching.complete(task, result.evolve(attempts=attempts))

    # execute ------------------------------------------------------------------------------
    def executor(self) -> Executor:
        if self._executor is None:
            from ggen.runner.pools import make_executor

            kind = self._kind()
            scheduler = self.options.scheduler or self.make.executor.scheduler
            self._executor = make_executor(kind, self.make, self.limits.jobs, scheduler)
            cluster = self.limits.capacity
            if isinstance(cluster, _ClusterThreads):
                cluster.threads = int(getattr(self._executor, "threads", lambda: 0)())
        return self._executor

    def _kind(self) -> ExecutorKind:
        return self.options.executor or self.make.executor.kind

    def _in_process(self, alone: bool) -> Executor | None:
        """The executor running in this process that ``submit`` should use, if any.

        A lone task (nothing else to run or running) is run here rather than on a process
        pool that does not exist yet: starting one (importing loky, starting its workers)
        costs more than most single tasks. Commands run here are watched by a ``Watchdog``."""
        kind = self._kind()
        if kind is not ExecutorKind.INLINE and not (
            alone and kind is ExecutorKind.LOKY and self._executor is None
        ):
            return None
        if self._watchdog is None:
            from ggen.runner.control import Watchdog
            from ggen.runner.lock import held_lock_fd

            self._watchdog = Watchdog(
                self.exec_options.control_dir,
                self.make.root,
                self.options.grace,
                keep_fd=held_lock_fd(),
            )
        if kind is ExecutorKind.INLINE:
            return self.executor()
        if self._inline is None:
            from ggen.runner.pools import InlineExecutor

            self._inline = InlineExecutor(self.make)
        return self._inline

    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        """Start ``task``: on the pool, or in this process when it is ``alone`` (the only task
        to run now, none running) and no pool has been started. Before the first task, stop
        what a killed run left."""
        if not self._swept:
            from ggen.runner.control import sweep

            self._swept = True
            left = sweep(self.exec_options.control_dir, self.make.root, self.options.grace)
            if left:
                self.console.warn(f"stopped {left} command(s) left running by a killed run")
        log = self._log_path(task)
        try:
            log.unlink()  # the last run's log, which must not pass for this run's output
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise WriteError(log, exc) from exc
        self.console.started(task.id, log=str(log))
        executor = self._in_process(alone) or self.executor()
        return executor.submit(run_in_worker, task.workspace, task.phase, self.exec_options)

    def retry(self, task: Task, future: Future[TaskResult]) -> Future[TaskResult] | None:
        """Start again a task whose worker process died running it, while its phase's
        ``retries`` allow: the dead worker's command is stopped first, the log kept."""
        from ggen.runner.pools import WorkerDied

        if future.cancelled() or not isinstance(future.exception(), WorkerDied):
            return None
        retries = self._phase(task).retries
        deaths = self._deaths.get(task.id, 0) + 1
        if deaths > retries:
            return None
        self._deaths[task.id] = deaths
        self._stop_dead_workers_command(task, wait=True)
        note = f"{future.exception()}; starting it again (attempt {deaths + 1} of {retries + 1})"
        log = self._log_path(task)
        with contextlib.suppress(OSError), open(log, "ab") as f:
            f.write(f"\n[ggen] {note}\n".encode())
        self.console.warn(f"{task.id}: {note}")
        options = dataclasses.replace(self.exec_options, append_log=True)
        return self.executor().submit(run_in_worker, task.workspace, task.phase, options)

    def _stop_dead_workers_command(self, task: Task, *, wait: bool) -> None:
        """Stop the command a dead worker left running for ``task`` (TERM, then KILL)."""
        from ggen.runner.control import control_path, stop_stale, task_identity

        control = control_path(self.exec_options.control_dir, task.workspace, task.phase)
        identity = task_identity(self.make.root, task.workspace, task.phase)
        if wait:  # a new start of the task will write the same control file
            stop_stale(control, identity, self.options.grace)
        else:
            threading.Thread(
                target=stop_stale, args=(control, identity, self.options.grace)
            ).start()

    def _stop_strays(self) -> None:
        """After a pool broke: stop the commands of this project still running. A worker killed
        with a broken pool while it was starting a command leaves that command unrecorded,
        so neither the worker nor the control files can stop it; its environment names it."""
        from ggen.runner.control import stop_in_background, stray_groups

        strays = stray_groups(self.make.root)
        if strays:
            self.console.warn(f"stopped {len(strays)} command(s) left by dead workers")
        for thread in [stop_in_background(pgid, self.options.grace) for pgid in strays]:
            thread.join()

    def failed_to_run(self, task: Task, error: BaseException) -> TaskResult:
        """The failed result of a task whose future raised: its worker process died (the
        command it left running is stopped too), or ggen's own machinery failed."""
        from ggen.runner.pools import WorkerDied

        worker = "main"
        attempts = 0
        if isinstance(error, WorkerDied):
            text = str(error)
            worker = str(error.pid or "unknown")
            attempts = self._deaths.get(task.id, 0) + 1
            if attempts > 1:
                text += f" (after {attempts} attempts, every one on a worker that died)"
            self._stop_dead_workers_command(task, wait=False)
        elif isinstance(error, WriteError):  # its log or control file
            text = str(error)  # cannot write PATH: reason
        else:
            text = f"the worker failed: {type(error).__name__}: {error}".strip()
        log = self._log_path(task)
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
            key=self.keys.get(task.id),
            error=text,
            deps=task.deps,
            finished_ms=int(time.time() * 1000),
            worker=worker,
            attempts=attempts,
            log=log_rel,
        )

    def interrupt(self, hard: bool) -> None:
        """Stop every running command's process group: TERM, then KILL after the grace period
        (KILL at once if ``hard``). Workers start no new command, the pool resubmits nothing."""
        from ggen.runner.control import request_stop, running_groups

        control = self.exec_options.control_dir
        request_stop(control)  # first: a command starting from now on sees it (control.py)
        self.caching.interrupt()
        stop_pool = getattr(self._executor, "interrupt", None)
        if callable(stop_pool):
            stop_pool()
        for pgid in running_groups(control):
            if hard:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            else:
                # not a daemon: ggen does not exit before the KILL that ends the grace period
                threading.Thread(target=kill_group, args=(pgid, self.options.grace)).start()

    def close(self) -> None:
        """Shut the pool down (its workers finish what they run), clear the stop flag."""
        from ggen.runner.control import clear_stop

        if self._executor is not None:
            self._executor.shutdown(wait=True)
            if getattr(self._executor, "rebuilds", 0):
                self._stop_strays()
            self._executor = None
        if self._inline is not None:
            self._inline.shutdown(wait=True)
            self._inline = None
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None
        clear_stop(self.exec_options.control_dir)
        self.caching.close()


def open_store(make: Make, options: RunOptions, warn: Callable[[str], None]) -> Store | None:
    """The local store, unless --no-cache."""
    if options.no_cache:
        return None
    from ggen.cache.store import Store
    from ggen.settings import CommandLine, resolve_settings

    settings = resolve_settings(make, CommandLine(cache_dir=options.cache_dir))
    return Store(
        settings.cache_dir,
        max_size=make.cache.max_size,
        warn=warn,
        signing_key=settings.signing_key,
    )


def open_remote(make: Make, options: RunOptions, warn: Callable[[str], None]) -> RemoteCache | None:
    """The remote cache: --remote-cache, else GGEN_REMOTE_CACHE, else ``[cache] remote``."""
    from ggen.settings import CommandLine, resolve_settings

    cli = CommandLine(remote_cache=options.remote_cache, remote_read_only=options.remote_read_only)
    settings = resolve_settings(make, cli)
    if options.no_cache or settings.remote_url is None:
        return None
    from ggen.cache.remote import RemoteCache

    return RemoteCache.from_env(
        settings.remote_url,
        settings.remote_read_only,
        warn,
        config_deadline=make.cache.remote_timeout,
    )


def open_cache(make: Make, options: RunOptions, warn: Callable[[str], None]) -> Cache | None:
    """The run's cache (the local store and the remote, if any), unless --no-cache."""
    store = open_store(make, options, warn)
    if store is None:
        return None
    from ggen.cache.cache import Cache

    return Cache(store, open_remote(make, options, warn))


@dataclass(frozen=True)
class Ran:
    """What scheduling a plan gave: the results in plan order, whether the run was
    interrupted, and the key recipe of every task decided (kept for ``ggen explain``)."""

    results: tuple[TaskResult, ...]
    interrupted: bool
    recipes: dict[str, Recipe]
    started_ms: int
    finished_ms: int
    run_id: str = field(default_factory=new_run_id)  # made at the start: ids sort by it


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(make: Make, options: RunOptions, console: Console) -> RunOutcome:
    """The pipeline: plan -> lock -> schedule -> summarize -> record."""
    plan, limits = plan_run(make, options)
    with lock(make, options, console):
        ran = schedule_run(make, options, console, plan, limits)
        summary = summarize(make, options, plan, limits, ran)
        record(make, options, summary, ran.recipes, console.warn)
    return RunOutcome(summary.exit_code, summary, summary.tasks)


def plan_run(make: Make, options: RunOptions) -> tuple[Plan, Limits]:
    """The tasks to run, and how many at once."""
    plan = build_plan(make, options.phases, options.workspaces)
    return plan, resolve_limits(make, options, plan)


def lock(
    make: Make, options: RunOptions, console: Console
) -> contextlib.AbstractContextManager[object]:
    """The project lock: one run at a time per project (waiting, unless --no-wait)."""
    from ggen.runner.lock import project_lock

    return project_lock(make, wait=not options.no_wait, notify=console.warn)


def schedule_run(
    make: Make, options: RunOptions, console: Console, plan: Plan, limits: Limits
) -> Ran:
    """Run the plan's tasks (then its ``on_error`` tasks if one failed); every cache save is
    done when this returns."""
    from ggen.cache.digest import DigestMemo

    run_id = new_run_id()
    started = time.time()
    memo = DigestMemo(ggen_dir(make) / "digests.json")
    caching = TaskCaching(
        make,
        open_cache(make, options, console.warn),
        memo,
        ggen_dir(make) / "logs",
        console.warn,
        CachingOptions(force=options.force, no_cache=options.no_cache),
    )
    session = Session(make, options, console, limits, caching)
    console.begin(len(plan.tasks))
    # SIGTERM and SIGHUP stop a run as Ctrl-C does: running commands get TERM, then KILL
    # (unless ignored when ggen started: ``nohup ggen run`` must outlive its terminal)
    previous = {
        sig: signal.signal(sig, _raise_interrupt)
        for sig in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        try:
            results, interrupted = _schedule_plan(plan, session, limits, options, console)
        finally:
            session.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    ordered = tuple(results[t.id] for t in (*plan.tasks, *plan.on_error) if t.id in results)
    finished = int(time.time() * 1000)
    return Ran(ordered, interrupted, caching.recipes, int(started * 1000), finished, run_id)


def _schedule_plan(
    plan: Plan, session: Session, limits: Limits, options: RunOptions, console: Console
) -> tuple[dict[str, TaskResult], bool]:
    outcome = schedule(
        plan.tasks, session, limits, keep_going=options.keep_going, on_result=console.finished
    )
    results = dict(outcome.results)
    interrupted = outcome.interrupted
    failed = any(r.status in (Status.FAILED, Status.TIMEOUT) for r in results.values())
    if plan.on_error and failed and not interrupted:
        more = schedule(plan.on_error, session, limits, keep_going=True, on_result=console.finished)
        results.update(more.results)
        interrupted = more.interrupted
    return results, interrupted


def exit_code(plan: Plan, ran: Ran) -> int:
    """Interrupted, else OK when every planned task (``on_error`` ones aside) succeeded."""
    if ran.interrupted:
        return EXIT_INTERRUPTED
    planned = {t.id for t in plan.tasks}
    if all(r.status.succeeded for r in ran.results if r.task_id in planned):
        return EXIT_OK
    return EXIT_TASK_FAILED


def summarize(make: Make, options: RunOptions, plan: Plan, limits: Limits, ran: Ran) -> RunSummary:
    """The run's summary."""
    kind = options.executor or make.executor.kind
    return RunSummary(
        run_id=ran.run_id,
        project=make.project.name,
        root=make.root,
        command=tuple(options.phases),
        executor=kind.value,
        jobs=limits.cap(),
        started_ms=ran.started_ms,
        finished_ms=ran.finished_ms,
        exit_code=exit_code(plan, ran),
        totals=RunTotals.of(ran.results),
        tasks=ran.results,
    )


def record(
    make: Make,
    options: RunOptions,
    summary: RunSummary,
    recipes: Mapping[str, Recipe],
    warn: Callable[[str], None],
) -> None:
    """Write the summary (.ggen/runs, --summary) and the state files. (The CLI writes the
    --trace file: rendering belongs to the report package.)"""
    document = summary.to_json()
    write_summary(make, document, Path(options.summary_path) if options.summary_path else None)
    as_json = {tid: r.to_json() for tid, r in recipes.items()}
    record_state(make, summary.run_id, document, summary.tasks, as_json, warn)
