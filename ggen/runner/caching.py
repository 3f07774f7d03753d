"""The cache side of a run: decide each task as it becomes ready, restore the fresh ones, and
store the outputs of those that succeeded.

``TaskCaching`` holds what deciding needs across a run (the keys of the tasks decided so far,
their recipes, the input index and the digest memo) and the run's ``Cache``. The scheduler's
runner (``Session``) asks it ``prepare`` before starting a task and ``complete`` after; the
rest of the run (dispatch, retries, interrupts) is the runner's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ggen.atomic import write_chunks_atomic
from ggen.cache.cache import Location, SaveRequest
from ggen.cache.keys import Reason, Recipe, changed_inputs
from ggen.errors import InternalError
from ggen.names import task_file_stem
from ggen.runner.decide import Decision, Policy, Verdict, decide
from ggen.runner.results import CacheStatus, Status, TaskResult

if TYPE_CHECKING:
    from ggen.cache.cache import Cache
    from ggen.cache.digest import DigestMemo
    from ggen.cache.files import InputIndex
    from ggen.cache.manifest import Manifest
    from ggen.make import Make, Phase
    from ggen.runner.plan import Task


@dataclass(frozen=True)
class CachingOptions:
    """What the command line says about the cache: --force, --no-cache."""

    force: bool = False
    no_cache: bool = False


class TaskCaching:
    """Decides, restores and saves the tasks of one run."""

    def __init__(
        self,
        make: Make,
        cache: Cache | None,
        memo: DigestMemo,
        logs_dir: Path,
        warn: Callable[[str], None],
        options: CachingOptions = CachingOptions(),
    ) -> None:
        self.make = make
        self.cache = cache
        self.memo = memo
        self.logs_dir = logs_dir
        self.warn = warn
        self.options = options
        self.root = Path(make.root)
        self.recipes: dict[str, Recipe] = {}
        self.keys: dict[str, str] = {}
        self._index: InputIndex | None = None
        # a store inside the project may be among a task's inputs: its files must not change
        # while a task is hashed, so saves are waited for before deciding (keys as before)
        self._store_inside = cache is not None and Path(
            os.path.realpath(cache.store.root)
        ).is_relative_to(os.path.realpath(self.root))

    def phase(self, task: Task) -> Phase:
        phase = self.make.phase_for(task.workspace, task.phase)
        if phase is None:
            raise InternalError(f"task {task.id} has no phase")
        return phase

    def caching(self, phase: Phase) -> bool:
        return self.cache is not None and phase.cache and not self.options.no_cache

    def index(self) -> InputIndex:
        if self._index is None:
            from ggen.cache.files import InputIndex

            self._index = InputIndex(self.root, warn=self.warn)
        return self._index

    def log_path(self, task: Task) -> Path:
        return self.logs_dir / f"{task_file_stem(task.workspace, task.phase)}.log"

    def decide(self, task: Task) -> Decision:
        """Decide a ready task (its inputs are hashed now, when they are final) and keep its
        key and recipe for its dependents and the record."""
        if self._store_inside and self.cache is not None:
            self.cache.wait()
        policy = Policy(caching=self.caching(self.phase(task)), force=self.options.force)
        locate = self.cache.find if self.cache is not None else _nowhere
        decision = decide(self.make, task, self.keys, self.index(), self.memo, policy, locate)
        self.recipes[task.id] = decision.recipe
        self.keys[task.id] = decision.key
        return decision

    def prepare(self, task: Task) -> TaskResult | None:
        """Decide the task; restore a fresh one (its outputs and log) and answer cached, or
        answer no-script. None: the task must run."""
        decision = self.decide(task)
        if decision.verdict is Verdict.NO_SCRIPT:
            return _no_script(task, decision)
        if not decision.fresh or decision.entry is None or decision.entry.manifest is None:
            return None
        started = time.time()
        t0 = time.monotonic()
        if not self._restore(task, decision.key, decision.entry.manifest):
            return None
        remote = decision.entry.location is Location.REMOTE
        return TaskResult(
            task_id=task.id,
            workspace=task.workspace,
            phase=task.phase,
            status=Status.CACHED,
            cache=CacheStatus.REMOTE_HIT if remote else CacheStatus.HIT,
            key=decision.key,
            exit_code=decision.entry.manifest.exit_code,
            started_ms=int(started * 1000),
            finished_ms=int(time.time() * 1000),
            duration_ms=int((time.monotonic() - t0) * 1000),
            worker="main",
            log=os.path.relpath(self.log_path(task), self.root),
            deps=task.deps,
        )

    def _restore(self, task: Task, key: str, manifest: Manifest) -> bool:
        """Restore the entry's outputs and log; whatever goes wrong only makes the task run
        (with a warning saying why)."""
        from ggen.cache.manifest import CorruptEntry, UnsafeEntry
        from ggen.cache.store import RestoreFailed

        assert self.cache is not None
        ws = self.make.workspace(task.workspace)
        ws_dir = self.root / (ws.path if ws else ".")
        log_path = self.log_path(task)
        try:
            restored = self.cache.restore(manifest, ws_dir, self.phase(task).outputs, self.memo)
            if not self._same_file(log_path, manifest.log_digest):
                write_chunks_atomic(log_path, self.cache.log_chunks(manifest))
        except UnsafeEntry as exc:
            self.warn(f"{task.id}: cache entry {key} refused ({exc}); running it")
            return False
        except CorruptEntry as exc:
            self.warn(f"{task.id}: cache entry {key} is damaged ({exc}); running it")
            return False
        except RestoreFailed as exc:
            removed = f"cache entry {key} removed; " if exc.damaged else ""
            self.warn(f"{task.id}: {exc} ({removed}running it)")
            return False
        except OSError as exc:  # writing the replayed log
            where = exc.filename or log_path
            self.warn(f"{task.id}: cannot write {where}: {exc.strerror}; running it")
            return False
        if (restored.written or restored.removed) and self._index is not None:
            self._index.mark_changed(ws.path if ws else ".")
        return True

    def _same_file(self, path: Path, digest: str) -> bool:
        """Whether ``path`` already holds the blob ``digest`` (a replayed log, usually)."""
        try:
            return self.memo.digest(path).digest == digest
        except OSError:
            return False

    def complete(self, task: Task, result: TaskResult) -> TaskResult:
        """Give a finished task's result its key and cache status; have the outputs and log
        of one that succeeded stored (on the cache's I/O threads: its dependents may start
        now, the outputs are on disk)."""
        phase = self.phase(task)
        ws = self.make.workspace(task.workspace)
        if self._index is not None:
            self._index.mark_changed(ws.path if ws else ".")
        key = self.keys.get(task.id)
        cache = CacheStatus.MISS if self.caching(phase) else CacheStatus.OFF
        result = result.evolve(key=key, cache=cache)
        if result.status is Status.OK and cache is CacheStatus.MISS and self.cache and key:
            if self._inputs_changed(task):
                return result
            request = SaveRequest(
                key,
                workspace=task.workspace,
                phase=task.phase,
                ws_dir=self.root / (ws.path if ws else "."),
                outputs=phase.outputs,
                log=self.root / result.log if result.log else None,
                exit_code=result.exit_code or 0,
                duration_ms=result.duration_ms,
            )
            self.cache.save(request)
        return result

    def _inputs_changed(self, task: Task) -> bool:
        """Whether the task's inputs changed while it ran (then its outputs may come from
        other contents than those its key names, and are not stored): say which, if so."""
        recipe = self.recipes.get(task.id)
        if recipe is None:
            return False
        changed = changed_inputs(recipe, self.make, task.workspace, self.index(), self.memo)
        if changed:
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            self.warn(
                f"{task.id}: {changed[0]}{more} while the task ran; its outputs are not cached"
                " (if the task writes that file itself, declare it in its outputs)"
            )
        return bool(changed)

    def interrupt(self) -> None:
        """The run is being stopped: uploads stop too (nothing waits on a slow remote)."""
        if self.cache is not None:
            self.cache.abort()

    def close(self) -> None:
        """Wait for the saves, close the cache, keep the digest memo for the next run."""
        try:
            if self.cache is not None:
                self.cache.close()
        finally:
            self.memo.save()


def _nowhere(key: str) -> None:
    return None


def _no_script(task: Task, decision: Decision) -> TaskResult:
    """The no-script result of a script task whose workspace has no such script."""
    why = decision.reasons[0]
    now = int(time.time() * 1000)
    return TaskResult(
        task_id=task.id,
        workspace=task.workspace,
        phase=task.phase,
        status=Status.NO_SCRIPT,
        key=decision.key,
        started_ms=now,
        finished_ms=now,
        error=f'no "{why.subject}" script in {why.detail}'
        if why.reason is Reason.NO_SCRIPT
        else why.reason.value,
        deps=task.deps,
    )
