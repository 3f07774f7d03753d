"""A checked, typed view of a run summary, shared by the HTML report and the trace.

A run summary (``.ggen/runs/<run-id>.json``) is plain JSON. ``read_run`` turns it into frozen
values with times made relative to the start of the run, so that every consumer places tasks on
the same clock. ``assign_lanes`` packs the tasks of each worker into lanes where no two tasks
overlap, and ``critical_path`` finds the chain of dependencies that bounded the wall time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ggen.errors import UsageError
from ggen.results import CacheStatus, Status

MAIN_WORKER = "main"


# The summary's ``status`` and ``cache`` values are those of the runner's own enums.
Outcome = Status
CacheUse = CacheStatus


@dataclass(frozen=True)
class TaskView:
    """One task of a run; ``start_ms``/``end_ms`` are offsets from the run start, or None."""

    id: str
    workspace: str
    phase: str
    key: str | None
    outcome: Outcome
    cache: CacheUse
    exit_code: int | None
    start_ms: int | None
    end_ms: int | None
    duration_ms: int
    cpu_ms: int
    max_rss_kb: int
    worker: str
    attempts: int
    deps: tuple[str, ...]
    log: str | None
    error: str | None

    @property
    def placed(self) -> bool:
        """True when the task has a place on the timeline (it started)."""
        return self.start_ms is not None and self.end_ms is not None


@dataclass(frozen=True)
class Totals:
    """The run's counters, as the summary states them (or counted from the tasks)."""

    tasks: int
    ran: int
    cached: int
    failed: int
    skipped: int
    interrupted: int
    hit_rate: float
    cpu_ms: int


@dataclass(frozen=True)
class RunView:
    """A whole run: its identity, its clock and its tasks in summary order."""

    run_id: str
    project: str
    command: tuple[str, ...]
    executor: str
    jobs: int
    started_ms: int
    wall_ms: int
    exit_code: int
    totals: Totals
    tasks: tuple[TaskView, ...]


@dataclass(frozen=True)
class Lane:
    """A row of the timeline: tasks of one worker that never overlap, in start order.

    ``number`` counts from 1 and is the trace's thread id; ``tasks`` are indexes into
    ``RunView.tasks``.
    """

    number: int
    name: str
    worker: str
    tasks: tuple[int, ...]


@dataclass(frozen=True)
class CriticalPath:
    """The chain of tasks that bounded the run, first to last (indexes into ``RunView.tasks``).

    ``busy_ms`` is the time spent inside those tasks, ``share`` that time over the wall time.
    """

    tasks: tuple[int, ...]
    busy_ms: int
    share: float


def _bad(where: str, message: str) -> UsageError:
    return UsageError(f"run summary: {where}: {message}")


def _int(raw: Mapping[str, Any], name: str, where: str, default: int | None = None) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if value is None and default is not None:
            return default
        raise _bad(where, f"{name!r} must be a number, not {value!r}")
    return int(value)


def _opt_int(raw: Mapping[str, Any], name: str, where: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(where, f"{name!r} must be a number or null, not {value!r}")
    return int(value)


def _opt_str(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    return None if value is None else str(value)


def _enum_value(kind: type[Outcome] | type[CacheUse], value: object, where: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise _bad(where, f"unknown value {value!r} (expected one of {allowed})") from None


def _read_task(raw: object, index: int, run_start: int, wall_ms: int) -> TaskView:
    where = f"tasks[{index}]"
    if not isinstance(raw, Mapping):
        raise _bad(where, "each task must be an object")
    task_id = raw.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise _bad(where, "a task needs a non-empty string 'id'")
    where = f"task {task_id!r}"
    workspace, _, phase = task_id.rpartition(":")
    outcome: Outcome = _enum_value(Outcome, raw.get("status"), where)
    cache: CacheUse = _enum_value(CacheUse, raw.get("cache") or "off", where)
    duration = max(0, _int(raw, "duration_ms", where, 0))
    started = _opt_int(raw, "started_ms", where)
    finished = _opt_int(raw, "finished_ms", where)
    start: int | None = None
    end: int | None = None
    if started is not None:
        # Clamp into the run's window so that a task never sticks out of the timeline.
        start = min(max(0, started - run_start), wall_ms)
        end = finished - run_start if finished is not None else start + duration
        end = min(max(start, end), wall_ms)
    deps = raw.get("deps") or ()
    if not isinstance(deps, Sequence) or isinstance(deps, str):
        raise _bad(where, "'deps' must be a list of task ids")
    worker = raw.get("worker")
    return TaskView(
        id=task_id,
        workspace=str(raw.get("workspace") or workspace or task_id),
        phase=str(raw.get("phase") or phase),
        key=_opt_str(raw, "key"),
        outcome=outcome,
        cache=cache,
        exit_code=_opt_int(raw, "exit_code", where),
        start_ms=start,
        end_ms=end,
        duration_ms=duration,
        cpu_ms=max(0, _int(raw, "cpu_ms", where, 0)),
        max_rss_kb=max(0, _int(raw, "max_rss_kb", where, 0)),
        worker=MAIN_WORKER if worker is None or worker == "" else str(worker),
        attempts=_int(raw, "attempts", where, 1),
        deps=tuple(str(dep) for dep in deps),
        log=_opt_str(raw, "log"),
        error=_opt_str(raw, "error"),
    )


def _count_totals(tasks: Sequence[TaskView]) -> Totals:
    def count(*outcomes: Outcome) -> int:
        return sum(1 for task in tasks if task.outcome in outcomes)

    cached = count(Outcome.CACHED)
    ran = count(Outcome.OK, Outcome.FAILED, Outcome.TIMEOUT)
    return Totals(
        tasks=len(tasks),
        ran=ran,
        cached=cached,
        failed=count(Outcome.FAILED, Outcome.TIMEOUT),
        skipped=count(Outcome.SKIPPED),
        interrupted=count(Outcome.INTERRUPTED),
        hit_rate=cached / (ran + cached) if ran + cached else 0.0,
        cpu_ms=sum(task.cpu_ms for task in tasks),
    )


def _read_totals(raw: object, tasks: Sequence[TaskView]) -> Totals:
    counted = _count_totals(tasks)
    if not isinstance(raw, Mapping):
        return counted
    hit_rate = raw.get("hit_rate", counted.hit_rate)
    if isinstance(hit_rate, bool) or not isinstance(hit_rate, (int, float)):
        raise _bad("totals", f"'hit_rate' must be a number, not {hit_rate!r}")
    return Totals(
        tasks=_int(raw, "tasks", "totals", counted.tasks),
        ran=_int(raw, "ran", "totals", counted.ran),
        cached=_int(raw, "cached", "totals", counted.cached),
        failed=_int(raw, "failed", "totals", counted.failed),
        skipped=_int(raw, "skipped", "totals", counted.skipped),
        interrupted=_int(raw, "interrupted", "totals", counted.interrupted),
        hit_rate=float(hit_rate),
        cpu_ms=_int(raw, "cpu_ms", "totals", counted.cpu_ms),
    )


def _wall_ms(summary: Mapping[str, Any], tasks: Sequence[object]) -> int:
    wall = _opt_int(summary, "wall_ms", "run")
    if wall is not None and wall > 0:
        return wall
    started = _opt_int(summary, "started_ms", "run")
    finished = _opt_int(summary, "finished_ms", "run")
    if started is not None and finished is not None and finished > started:
        return finished - started
    ends = [
        _opt_int(task, "finished_ms", "run") or 0 for task in tasks if isinstance(task, Mapping)
    ]
    return max(0, max(ends, default=0) - (started or 0))


def read_run(summary: Mapping[str, Any]) -> RunView:
    """Check a run summary and return it as typed values on the run's own clock.

    Raises ``UsageError`` naming the offending field, so that a damaged or foreign JSON file
    gives a one-line message instead of a traceback deep inside the report.
    """
    if not isinstance(summary, Mapping):
        raise _bad("run", "a run summary must be a JSON object")
    raw_tasks = summary.get("tasks", [])
    if not isinstance(raw_tasks, Sequence) or isinstance(raw_tasks, str):
        raise _bad("run", "'tasks' must be a list")
    wall = _wall_ms(summary, raw_tasks)
    started = _opt_int(summary, "started_ms", "run")
    if started is None:
        starts = [t.get("started_ms") for t in raw_tasks if isinstance(t, Mapping)]
        started = min((int(s) for s in starts if isinstance(s, (int, float))), default=0)
    tasks = tuple(_read_task(raw, i, started, wall) for i, raw in enumerate(raw_tasks))
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise _bad(f"task {task.id!r}", "the id appears more than once")
        seen.add(task.id)
    command = summary.get("command") or ()
    return RunView(
        run_id=str(summary.get("run_id") or ""),
        project=str(summary.get("project") or ""),
        command=(command,) if isinstance(command, str) else tuple(str(c) for c in command),
        executor=str(summary.get("executor") or ""),
        jobs=_int(summary, "jobs", "run", 0),
        started_ms=started,
        wall_ms=wall,
        exit_code=_int(summary, "exit_code", "run", 0),
        totals=_read_totals(summary.get("totals"), tasks),
        tasks=tasks,
    )


def lane_name(worker: str) -> str:
    """The label shown for a worker's lane: ``main``, ``worker 4242`` or the label itself."""
    return f"worker {worker}" if worker.isdigit() else worker


def assign_lanes(run: RunView) -> tuple[Lane, ...]:
    """Pack the started tasks into lanes: one per worker, more only where tasks overlap.

    A worker runs one task at a time, so normally each worker gets exactly one lane. Tasks
    that share a label yet overlap (restores done on threads of the main process, or a reused
    pid) go to a second lane of the same worker rather than being drawn on top of each other.
    Lanes of the main process come first, then workers in the order they started work.
    """
    by_worker: dict[str, list[int]] = {}
    for index, task in enumerate(run.tasks):
        if task.placed:
            by_worker.setdefault(task.worker, []).append(index)

    def first_start(worker: str) -> tuple[int, int, str]:
        starts = [run.tasks[i].start_ms or 0 for i in by_worker[worker]]
        return (0 if worker == MAIN_WORKER else 1, min(starts), worker)

    lanes: list[Lane] = []
    for worker in sorted(by_worker, key=first_start):
        indexes = sorted(
            by_worker[worker],
            key=lambda i: (run.tasks[i].start_ms or 0, run.tasks[i].end_ms or 0, i),
        )
        rows: list[list[int]] = []
        row_ends: list[int] = []
        for index in indexes:
            task = run.tasks[index]
            start, end = task.start_ms or 0, task.end_ms or 0
            for row, row_end in enumerate(row_ends):
                if row_end <= start:
                    rows[row].append(index)
                    row_ends[row] = end
                    break
            else:
                rows.append([index])
                row_ends.append(end)
        base = lane_name(worker)
        for row, members in enumerate(rows):
            name = base if row == 0 else f"{base} ({row + 1})"
            lanes.append(Lane(len(lanes) + 1, name, worker, tuple(members)))
    return tuple(lanes)


def critical_path(run: RunView) -> CriticalPath:
    """Walk back from the last task to finish, each time to the dependency that finished last.

    That chain is what the wall time waited on: speeding up any other task would not have made
    the run shorter. Tasks that never started are not part of it.
    """
    index_of = {task.id: i for i, task in enumerate(run.tasks)}
    placed = [i for i, task in enumerate(run.tasks) if task.placed]
    if not placed:
        return CriticalPath((), 0, 0.0)

    def finish(i: int) -> tuple[int, int]:
        task = run.tasks[i]
        return (task.end_ms or 0, task.start_ms or 0)

    chain = [max(placed, key=finish)]
    seen = set(chain)
    while True:
        deps = [
            index_of[dep]
            for dep in run.tasks[chain[-1]].deps
            if dep in index_of and run.tasks[index_of[dep]].placed and index_of[dep] not in seen
        ]
        if not deps:
            break
        chain.append(max(deps, key=finish))
        seen.add(chain[-1])
    chain.reverse()
    busy = sum((run.tasks[i].end_ms or 0) - (run.tasks[i].start_ms or 0) for i in chain)
    share = min(1.0, busy / run.wall_ms) if run.wall_ms > 0 else 0.0
    return CriticalPath(tuple(chain), busy, share)
