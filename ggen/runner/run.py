"""One ``ggen run``, as a pipeline: plan -> (for each task) decide -> execute -> record -> report.

``Session`` is the scheduler's ``TaskRunner``: it computes each task's key when the task becomes
ready (after its dependencies ran or were restored, so inputs that are their outputs are hashed
as they will be read), restores cache hits in this process, sends misses to the pool, and stores
the outputs of tasks that succeeded. The pool is made only when the first task has to run, so a
fully cached run never starts one.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ggen.atomic import write_chunks_atomic
from ggen.cache.keys import Recipe, task_recipe
from ggen.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TASK_FAILED, InternalError, WriteError
from ggen.make import ExecutorKind, Make, Phase
from ggen.names import task_file_stem
from ggen.runner.console import Console, OutputMode
from ggen.runner.dispatch import ClusterThreads, Dispatcher, pool_needed
from ggen.runner.execute import ExecOptions
from ggen.runner.plan import Plan, Task, build_plan
from ggen.runner.results import CacheStatus, Status, TaskResult
from ggen.runner.schedule import Limits, schedule
from ggen.runner.state import (
    build_summary,
    ggen_dir,
    new_run_id,
    record_state,
    root_state_path,
    write_summary,
)
from ggen.task_env import env_inputs_values

if TYPE_CHECKING:
    from ggen.cache.digest import DigestMemo
    from ggen.cache.files import InputIndex
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
    trace_path: str | None = None
    remote_cache: str | None = None
    remote_read_only: bool = False
    no_wait: bool = False


@dataclass(frozen=True)
class RunOutcome:
    """What a run ended with."""

    exit_code: int
    summary: dict[str, Any]
    results: tuple[TaskResult, ...] = field(default=())


def resolve_cache_dir(make: Make, cli_dir: str | None) -> Path:
    """--cache-dir, then GGEN_CACHE_DIR, then ``[cache] dir`` (relative to the root), then the
    user cache directory."""
    chosen = cli_dir or os.environ.get("GGEN_CACHE_DIR") or make.cache.dir
    if chosen:
        return Path(make.root, os.path.expanduser(chosen))
    from ggen.cache.store import default_cache_dir

    return default_cache_dir()


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
    """Decides, runs and stores the tasks of one run (the scheduler's TaskRunner)."""

    def __init__(
        self,
        make: Make,
        options: RunOptions,
        console: Console,
        limits: Limits,
        store: Store | None,
        remote: RemoteCache | None,
        memo: DigestMemo,
    ) -> None:
        self.make = make
        self.options = options
        self.console = console
        self.limits = limits
        self.store = store
        self.remote = remote
        self.memo = memo
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
        self.recipes: dict[str, Recipe] = {}
        self.keys: dict[str, str] = {}
        self._index: InputIndex | None = None
        self.dispatch = Dispatcher(
            make,
            options.executor or make.executor.kind,
            limits,
            self.exec_options,
            console.warn,
            scheduler=options.scheduler or make.executor.scheduler,
            started=lambda task_id, log: console.started(task_id, log=log),
        )

    # decide -------------------------------------------------------------------------------
    def _phase(self, task: Task) -> Phase:
        phase = self.make.phase_for(task.workspace, task.phase)
        if phase is None:
            raise InternalError(f"task {task.id} has no phase")
        return phase

    def caching(self, phase: Phase) -> bool:
        return self.store is not None and phase.cache and not self.options.no_cache

    def index(self) -> InputIndex:
        if self._index is None:
            from ggen.cache.files import InputIndex

            self._index = InputIndex(self.root, warn=self.console.warn)
        return self._index

    def recipe(self, task: Task) -> Recipe:
        """The key recipe of a ready task: its inputs are hashed now, when they are final."""
        upstream = ((d, self.keys[d]) for d in task.key_deps if d in self.keys)
        recipe = task_recipe(
            self.make, task.workspace, task.phase, upstream, self.index(), self.memo
        )
        self.recipes[task.id] = recipe
        self.keys[task.id] = recipe.key()
        return recipe

    def prepare(self, task: Task) -> TaskResult | None:
        """Compute the key; on a cache hit restore the outputs and the log and answer cached.
        A script phase on a workspace without that script answers no-script."""
        phase = self._phase(task)
        self.recipe(task)
        key = self.keys[task.id]
        if phase.script is not None:
            nothing = self._without_script(task, phase, key)
            if nothing is not None:
                return nothing
        if not self.caching(phase) or self.options.force or self.store is None:
            return None
        started = time.time()
        t0 = time.monotonic()
        source = CacheStatus.HIT
        manifest = self.store.lookup(key)
        if manifest is None and self.remote is not None:
            from ggen.cache.remote import fetch_into_store

            if fetch_into_store(self.remote, self.store, key):
                manifest = self.store.lookup(key)
                source = CacheStatus.REMOTE_HIT
        if manifest is None:
            return None
        from ggen.cache.store import CorruptEntry, RestoreFailed, UnsafeEntry

        ws = self.make.workspace(task.workspace)
        ws_dir = self.root / (ws.path if ws else ".")
        log_path = self._log_path(task)
        # whatever goes wrong restoring one task's entry only makes that task run
        try:
            restored = self.store.restore(manifest, ws_dir, outputs=phase.outputs, memo=self.memo)
            if not self._same_file(log_path, manifest.log_digest):
                write_chunks_atomic(log_path, self.store.log_chunks(manifest))
        except UnsafeEntry as exc:
            self.console.warn(f"{task.id}: cache entry {key} refused ({exc}); running it")
            return None
        except CorruptEntry as exc:
            self.console.warn(f"{task.id}: cache entry {key} is damaged ({exc}); running it")
            return None
        except RestoreFailed as exc:
            removed = f"cache entry {key} removed; " if exc.damaged else ""
            self.console.warn(f"{task.id}: {exc} ({removed}running it)")
            return None
        except OSError as exc:  # writing the replayed log
            where = exc.filename or log_path
            self.console.warn(f"{task.id}: cannot write {where}: {exc.strerror}; running it")
            return None
        if (restored.written or restored.removed) and self._index is not None:
            self._index.mark_changed(ws.path if ws else ".")
        log_rel = os.path.relpath(log_path, self.root)
        return TaskResult(
            task_id=task.id,
            workspace=task.workspace,
            phase=task.phase,
            status=Status.CACHED,
            cache=source,
            key=key,
            exit_code=manifest.exit_code,
            started_ms=int(started * 1000),
            finished_ms=int(time.time() * 1000),
            duration_ms=int((time.monotonic() - t0) * 1000),
            worker="main",
            log=log_rel,
            deps=task.deps,
        )

    def _without_script(self, task: Task, phase: Phase, key: str) -> TaskResult | None:
        """The no-script result of a script task whose workspace has no such script."""
        from ggen.scripts import has_nothing_to_do

        ws = self.make.workspace(task.workspace)
        if ws is None or not has_nothing_to_do(self.make, ws, phase):
            return None
        now = int(time.time() * 1000)
        return TaskResult(
            task_id=task.id,
            workspace=task.workspace,
            phase=task.phase,
            status=Status.NO_SCRIPT,
            key=key,
            started_ms=now,
            finished_ms=now,
            error=f'no "{phase.script}" script in {ws.path}/package.json',
            deps=task.deps,
        )

    def _log_path(self, task: Task) -> Path:
        stem = task_file_stem(task.workspace, task.phase)
        return Path(self.exec_options.logs_dir) / f"{stem}.log"

    def _same_file(self, path: Path, digest: str) -> bool:
        """Whether ``path`` already holds the blob ``digest`` (a replayed log, usually)."""
        try:
            return self.memo.digest(path).digest == digest
        except OSError:
            return False

    # execute: ggen.runner.dispatch -------------------------------------------------------
    def submit(self, task: Task, *, alone: bool = False) -> Future[TaskResult]:
        return self.dispatch.submit(task, alone=alone)

    def retry(self, task: Task, future: Future[TaskResult]) -> Future[TaskResult] | None:
        return self.dispatch.retry(task, future)

    def failed_to_run(self, task: Task, error: BaseException) -> TaskResult:
        return self.dispatch.failed_to_run(task, error).evolve(key=self.keys.get(task.id))

    def interrupt(self, hard: bool) -> None:
        self.dispatch.interrupt(hard)

    def queue_ahead(self) -> int:
        return self.dispatch.queue_ahead()

    def cancel(self, future: Future[TaskResult]) -> bool:
        return self.dispatch.cancel(future)

    def complete(self, task: Task, result: TaskResult) -> TaskResult:
        """Store the outputs and log of a task that succeeded."""
        phase = self._phase(task)
        ws = self.make.workspace(task.workspace)
        if self._index is not None:
            self._index.mark_changed(ws.path if ws else ".")
        key = self.keys.get(task.id)
        cache = CacheStatus.MISS if self.caching(phase) else CacheStatus.OFF
        # starts lost with a dead worker count among the attempts
        attempts = result.attempts + self.dispatch.deaths(task.id)
        result = result.evolve(key=key, cache=cache, attempts=attempts)
        if result.status is Status.OK and cache is CacheStatus.MISS and self.store and key:
            if self._inputs_changed(task):
                return result
            log = self.root / result.log if result.log else b""  # copied in chunks
            manifest = self.store.save(
                key,
                workspace=task.workspace,
                phase=task.phase,
                ws_dir=self.root / (ws.path if ws else "."),
                outputs=phase.outputs,
                log=log,
                exit_code=result.exit_code or 0,
                duration_ms=result.duration_ms,
            )
            if manifest is not None and self.remote is not None:
                from ggen.cache.remote import push_from_store

                push_from_store(self.remote, self.store, key)
        return result

    def _inputs_changed(self, task: Task) -> bool:
        """Whether the task's inputs changed while it ran (then its outputs may come from
        other contents than those its key names, and are not stored): say which, if so."""
        from ggen.cache.keys import changed_inputs

        recipe = self.recipes.get(task.id)
        if recipe is None:
            return False
        changed = changed_inputs(recipe, self.make, task.workspace, self.index(), self.memo)
        if changed:
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            self.console.warn(
                f"{task.id}: {changed[0]}{more} while the task ran; its outputs are not cached"
                " (if the task writes that file itself, declare it in its outputs)"
            )
        return bool(changed)

    def close(self) -> None:
        """Shut the pool down (its workers finish what they run), clear the stop flag."""
        self.dispatch.close()
        if self.remote is not None:
            self.remote.close()
        self.memo.save()


def open_store(make: Make, options: RunOptions, warn: Callable[[str], None]) -> Store | None:
    """The local store, unless --no-cache."""
    if options.no_cache:
        return None
    from ggen.cache.signing import signing_key_from_env
    from ggen.cache.store import Store

    return Store(
        resolve_cache_dir(make, options.cache_dir),
        max_size=make.cache.max_size,
        warn=warn,
        signing_key=signing_key_from_env(),
    )


def open_remote(make: Make, options: RunOptions, warn: Callable[[str], None]) -> RemoteCache | None:
    """The remote cache: --remote-cache, else GGEN_REMOTE_CACHE, else ``[cache] remote``."""
    if options.no_cache or not (
        options.remote_cache is not None or os.environ.get("GGEN_REMOTE_CACHE") or make.cache.remote
    ):
        return None
    from ggen.cache.remote import RemoteCache

    return RemoteCache.from_env(
        options.remote_cache,
        options.remote_read_only or make.cache.remote_read_only,
        warn,
        config_url=make.cache.remote,
        config_deadline=make.cache.remote_timeout,
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(make: Make, options: RunOptions, console: Console) -> RunOutcome:
    """Plan and run ``options.phases``; record state and the summary; return the outcome."""
    plan = build_plan(make, options.phases, options.workspaces)
    limits = resolve_limits(make, options, plan)
    from ggen.runner.lock import project_lock

    with project_lock(make, wait=not options.no_wait, notify=console.warn):
        return _run_locked(make, options, console, plan, limits)


def _run_locked(
    make: Make, options: RunOptions, console: Console, plan: Plan, limits: Limits
) -> RunOutcome:
    from ggen.cache.digest import DigestMemo

    run_id = new_run_id()
    started = time.time()
    memo = DigestMemo(ggen_dir(make) / "digests.json")
    store = open_store(make, options, console.warn)
    remote = open_remote(make, options, console.warn)
    session = Session(make, options, console, limits, store, remote, memo)
    all_run = options.no_cache or options.force or not root_state_path(make).exists()
    if pool_needed(plan.tasks, limits, all_run=all_run):
        session.dispatch.prestart()
    console.begin(len(plan.tasks))
    interrupted = False
    results: dict[str, TaskResult] = {}
    # SIGTERM and SIGHUP stop a run as Ctrl-C does: running commands get TERM, then KILL
    # (unless ignored when ggen started: ``nohup ggen run`` must outlive its terminal)
    previous = {
        sig: signal.signal(sig, _raise_interrupt)
        for sig in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        try:
            outcome = schedule(
                plan.tasks,
                session,
                limits,
                keep_going=options.keep_going,
                on_result=console.finished,
            )
            results = dict(outcome.results)
            interrupted = outcome.interrupted
            failed = any(r.status in (Status.FAILED, Status.TIMEOUT) for r in results.values())
            if plan.on_error and failed and not interrupted:
                more = schedule(
                    plan.on_error, session, limits, keep_going=True, on_result=console.finished
                )
                results.update(more.results)
                interrupted = more.interrupted
        finally:
            session.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    finished = time.time()
    ordered = tuple(results[t.id] for t in (*plan.tasks, *plan.on_error) if t.id in results)
    if interrupted:
        code = EXIT_INTERRUPTED
    elif all(r.status.succeeded for r in ordered if r.task_id in {t.id for t in plan.tasks}):
        code = EXIT_OK
    else:
        code = EXIT_TASK_FAILED
    kind = options.executor or make.executor.kind
    summary = build_summary(
        make,
        run_id,
        options.phases,
        ordered,
        executor=kind.value,
        jobs=limits.cap(),
        started_ms=int(started * 1000),
        finished_ms=int(finished * 1000),
        exit_code=code,
    )
    write_summary(make, summary, Path(options.summary_path) if options.summary_path else None)
    recipes = {tid: r.to_json() for tid, r in session.recipes.items()}
    record_state(make, run_id, summary, ordered, recipes, console.warn)
    if options.trace_path:
        from ggen.report.trace import write_trace

        write_trace(summary, Path(options.trace_path))
    return RunOutcome(code, summary, ordered)
