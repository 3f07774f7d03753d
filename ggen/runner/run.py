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
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ggen.cache.keys import Recipe
from ggen.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TASK_FAILED, WriteError
from ggen.make import ExecutorKind, Make, Phase
from ggen.runner.caching import CachingOptions, TaskCaching
from ggen.runner.console import Console, OutputMode
from ggen.runner.dispatch import ClusterThreads, Dispatcher, pool_needed
from ggen.runner.execute import ExecOptions
from ggen.runner.plan import Plan, Task, build_plan
from ggen.runner.results import Status, TaskResult
from ggen.runner.schedule import Limits, schedule
from ggen.runner.state import ggen_dir, new_run_id, record_state, root_state_path, write_summary
from ggen.runner.summary import RunSummary, RunTotals
from ggen.task_env import env_inputs_values

if TYPE_CHECKING:
    from ggen.cache.cache import Cache
    from ggen.cache.remote import RemoteCache
    from ggen.cache.store import Store


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
        limits = dataclasses.replace(limits, capacity=ClusterThreads())
    return limits


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
        self.dispatch = Dispatcher(
            make,
            options.executor or make.executor.kind,
            limits,
            self.exec_options,
            console.warn,
            scheduler=options.scheduler or make.executor.scheduler,
            started=lambda task_id, log: console.started(task_id, log=log),
        )

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
        attempts = result.attempts + self.dispatch.deaths(task.id)
        return self.caching.complete(task, result.evolve(attempts=attempts))

    # execute: ggen.runner.dispatch -------------------------------------------------------
    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        return self.dispatch.submit(task, alone=alone)

    def retry(self, task: Task, future: Future[TaskResult]) -> Future[TaskResult] | None:
        return self.dispatch.retry(task, future)

    def failed_to_run(self, task: Task, error: BaseException) -> TaskResult:
        return self.dispatch.failed_to_run(task, error).evolve(key=self.keys.get(task.id))

    def queue_ahead(self) -> int:
        return self.dispatch.queue_ahead()

    def cancel(self, future: Future[TaskResult]) -> bool:
        return self.dispatch.cancel(future)

    def interrupt(self, hard: bool) -> None:
        """Stop every running command (``Dispatcher.interrupt``) and the cache's work."""
        self.dispatch.interrupt(hard, also=self.caching.interrupt)

    def close(self) -> None:
        """Shut the pool down (its workers finish what they run), clear the stop flag."""
        self.dispatch.close()
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
    all_run = options.no_cache or options.force or not root_state_path(make).exists()
    if pool_needed(plan.tasks, limits, all_run=all_run):
        session.dispatch.prestart()
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
