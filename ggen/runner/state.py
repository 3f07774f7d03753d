"""State files and run summaries: orjson, written atomically, bounded in size.

- ``.ggen/state.json`` at the project root: the last run, the list of recent runs, and an index
  of every task's last outcome (``tasks``), so that ``ggen status`` and the next run read one file.
- ``<workspace>/.ggen/state.json``: the old system's fields (``last_phase``, ``phase_history``,
  ``cache_keys``) and, per phase, key, status, exit code, cache hit or miss, wall and CPU time,
  peak RSS and a bounded history of durations. It is rewritten only when one of its tasks did
  something other than a cache hit on the key already recorded, so a no-op run over a thousand
  workspaces writes one file, not a thousand.
- ``.ggen/runs/<run-id>.json``: one summary per run (schema in the README), the most recent
  ``MAX_RUNS`` kept.
For the project root as a workspace (``.``), both sets of fields share the root file.

State is advisory: a state file that cannot be read, is not JSON, or is JSON of the wrong shape
(``{"phases": {"build": 5}}``) is ignored with a warning naming it, and the next run that
records anything there rewrites it whole. ``state_problem`` is the shape every reader relies on.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from ggen.atomic import write_bytes_atomic
from ggen.make import ROOT_WORKSPACE, Make
from ggen.runner.results import CacheStatus, Status, TaskResult

STATE_VERSION = 1
MAX_HISTORY = 50  # phase_history entries per workspace
MAX_DURATIONS = 20  # durations kept per phase
MAX_RUNS = 100  # run summaries kept under .ggen/runs
GGEN_DIR = ".ggen"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (see ``write_bytes_atomic``)."""
    write_bytes_atomic(
        path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    )


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when missing or unreadable (a state file is advisory)."""
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


Warn = Callable[[str], None]

_NONE = type(None)
_Check = Callable[[object], str | None]  # None, or where and what: ".a[2]: expected an int"


def _typed(*types: type) -> _Check:
    names = " or ".join("null" if t is _NONE else t.__name__ for t in types)

    def check(value: object) -> str | None:
        return None if isinstance(value, types) else f": expected {names}"

    return check


def _list_of(item: _Check) -> _Check:
    def check(value: object) -> str | None:
        if not isinstance(value, list):
            return ": expected a list"
        for i, element in enumerate(value):
            problem = item(element)
            if problem:
                return f"[{i}]{problem}"
        return None

    return check


def _dict_of(item: _Check) -> _Check:
    def check(value: object) -> str | None:
        if not isinstance(value, dict):
            return ": expected an object"
        for name, element in value.items():
            problem = item(element)
            if problem:
                return f".{name}{problem}"
        return None

    return check


def _fields(**fields: _Check) -> _Check:
    """An object whose listed fields, where present, pass their checks (others are kept)."""

    def check(value: object) -> str | None:
        if not isinstance(value, dict):
            return ": expected an object"
        for name, field_check in fields.items():
            if name in value:
                problem = field_check(value[name])
                if problem:
                    return f".{name}{problem}"
        return None

    return check


_STR, _INT = _typed(str), _typed(int)
_OPT_STR, _OPT_INT = _typed(str, _NONE), _typed(int, _NONE)
_STATE = _fields(
    version=_INT,
    project=_STR,
    workspace=_STR,
    last_phase=_STR,
    # root: the last run, recent runs, every task's last outcome
    last_run=_fields(
        run_id=_STR,
        exit_code=_INT,
        command=_list_of(_STR),
        started_ms=_INT,
        wall_ms=_INT,
        totals=_typed(dict),
    ),
    runs=_list_of(_STR),
    tasks=_dict_of(
        _fields(
            key=_OPT_STR,
            status=_STR,
            cache=_STR,
            exit_code=_OPT_INT,
            finished_ms=_OPT_INT,
            duration_ms=_INT,
        )
    ),
    # per workspace (the root's own fields too)
    recipes=_dict_of(_typed(dict)),
    phase_history=_list_of(
        _fields(phase=_STR, started_ms=_INT, duration_ms=_INT, success=_typed(bool))
    ),
    cache_keys=_dict_of(_STR),
    phases=_dict_of(
        _fields(
            key=_OPT_STR,
            status=_STR,
            exit_code=_OPT_INT,
            cache=_STR,
            wall_ms=_INT,
            cpu_ms=_INT,
            max_rss_kb=_INT,
            attempts=_INT,
            durations=_list_of(_INT),
            finished_ms=_OPT_INT,
            error=_OPT_STR,
        )
    ),
)


def state_problem(data: object) -> str | None:
    """What is wrong with the shape of a state file's contents (``phases.build: expected an
    object``), or None when every field ggen reads has the type it expects."""
    problem = _STATE(data)
    if problem is None:
        return None
    return problem[2:] if problem.startswith(": ") else problem[1:]


def _stderr_warning(message: str) -> None:
    sys.stderr.write(f"ggen: warning: {message}\n")


def read_state(path: Path, warn: Warn | None = None) -> dict[str, Any]:
    """The state file at ``path``, or ``{}`` when it is missing, or (with a warning naming it)
    unreadable, not JSON, or of the wrong shape: it is then rewritten by the next record."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        problem: str | None = f"cannot be read ({exc.strerror or exc})"
        data: Any = None
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            problem = "is not valid JSON"
        else:
            problem = state_problem(data)
            problem = problem and f"has the wrong shape ({problem})"
    if problem is None:
        assert isinstance(data, dict)
        return data
    (warn or _stderr_warning)(f"state file {path} {problem}: ignored; the next run rewrites it")
    return {}


def new_run_id() -> str:
    """A unique run id that sorts by start time: ``20261125-182000-123-1a2b3c`` (UTC, ms)."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{stamp}-{int(now * 1000) % 1000:03d}-{os.urandom(3).hex()}"


def ggen_dir(make: Make) -> Path:
    return Path(make.root) / GGEN_DIR


def root_state_path(make: Make) -> Path:
    return ggen_dir(make) / "state.json"


def workspace_state_path(make: Make, workspace: str) -> Path:
    ws = make.workspace(workspace)
    rel = ws.path if ws else "."
    return Path(make.root) / rel / GGEN_DIR / "state.json"


def load_recipe(make: Make, workspace: str, phase: str, warn: Warn | None = None) -> Any:
    """What the key of (workspace, phase) was made of when it last succeeded, or None."""
    path = (
        root_state_path(make)
        if workspace == ROOT_WORKSPACE
        else workspace_state_path(make, workspace)
    )
    return (read_state(path, warn).get("recipes") or {}).get(phase)


def load_root_state(make: Make, warn: Warn | None = None) -> dict[str, Any]:
    """The root state file (``{}`` when missing or unusable, see ``read_state``)."""
    return read_state(root_state_path(make), warn)


def totals(results: Iterable[TaskResult]) -> dict[str, Any]:
    """Counts per outcome, cache hit rate and CPU time of a run."""
    items = list(results)
    count = {s: 0 for s in Status}
    for r in items:
        count[r.status] += 1
    ran = count[Status.OK] + count[Status.FAILED] + count[Status.TIMEOUT]
    looked = count[Status.CACHED] + sum(1 for r in items if r.cache is CacheStatus.MISS)
    return {
        "tasks": len(items),
        "ran": ran,
        "cached": count[Status.CACHED],
        "failed": count[Status.FAILED] + count[Status.TIMEOUT],
        "skipped": count[Status.SKIPPED],
        "no_script": count[Status.NO_SCRIPT],
        "interrupted": count[Status.INTERRUPTED],
        "hit_rate": round(count[Status.CACHED] / looked, 4) if looked else 0.0,
        "cpu_ms": sum(r.cpu_ms for r in items),
    }


def write_summary(make: Make, summary: Mapping[str, Any], extra: Path | None = None) -> Path:
    """Store the summary under ``.ggen/runs`` (pruning old ones) and, with ``--summary``, at
    ``extra`` too. Returns the path under ``.ggen/runs``."""
    runs = ggen_dir(make) / "runs"
    path = runs / f"{summary['run_id']}.json"
    write_json_atomic(path, summary)
    if extra is not None:
        write_json_atomic(extra, summary)
    _prune_runs(runs)
    return path


def _prune_runs(runs: Path) -> None:
    try:
        names = sorted(n for n in os.listdir(runs) if n.endswith(".json"))
    except OSError:
        return
    for name in names[: max(0, len(names) - MAX_RUNS)]:
        with contextlib.suppress(OSError):
            os.unlink(runs / name)


def list_summaries(make: Make) -> list[Path]:
    """Run summaries on disk, oldest first."""
    runs = ggen_dir(make) / "runs"
    try:
        return sorted(runs / n for n in os.listdir(runs) if n.endswith(".json"))
    except OSError:
        return []


def load_summary(make: Make, run: str | None) -> dict[str, Any] | None:
    """The summary of run ``run`` (an id, a prefix of one, or a path), or of the last run."""
    if run and os.path.isfile(run):
        data = read_json(Path(run))
        return data if isinstance(data, dict) else None
    paths = list_summaries(make)
    if run:
        paths = [p for p in paths if p.stem.startswith(run)]
    for path in reversed(paths):
        data = read_json(path)
        if isinstance(data, dict):
            return data
    return None


def _task_entry(r: TaskResult) -> dict[str, Any]:
    return {
        "key": r.key,
        "status": r.status.value,
        "cache": r.cache.value,
        "exit_code": r.exit_code,
        "finished_ms": r.finished_ms,
        "duration_ms": r.duration_ms,
    }


def record_state(
    make: Make,
    run_id: str,
    summary: Mapping[str, Any],
    results: Sequence[TaskResult],
    recipes: Mapping[str, Any] | None = None,
    warn: Warn | None = None,
) -> int:
    """Update the root state and the state of every workspace where something changed.

    ``recipes`` (task id -> what its key was made of) are kept with each successful task's
    entry, for ``ggen explain``. Returns the number of workspace files written."""
    root_state = load_root_state(make, warn)
    index: dict[str, Any] = root_state.get("tasks") or {}
    changed: dict[str, list[TaskResult]] = {}
    for r in results:
        if r.status is Status.SKIPPED and r.started_ms is None:
            continue  # never started: the last real outcome stays on record
        before = index.get(r.task_id) or {}
        same = (
            r.status is Status.CACHED
            and before.get("key") == r.key
            and before.get("status") in (Status.OK.value, Status.CACHED.value)
        )
        index[r.task_id] = _task_entry(r)
        if not same:
            changed.setdefault(r.workspace, []).append(r)

    written = 0
    root_updates: list[TaskResult] = changed.pop(ROOT_WORKSPACE, [])
    for workspace, items in changed.items():
        path = workspace_state_path(make, workspace)
        state = read_state(path, warn)
        _apply(state, workspace, items, recipes or {})
        write_json_atomic(path, state)
        written += 1

    runs = [x for x in root_state.get("runs", []) if isinstance(x, str)][-(MAX_RUNS - 1) :]
    root_state.update(
        {
            "version": STATE_VERSION,
            "project": make.project.name,
            "last_run": {
                "run_id": run_id,
                "exit_code": summary["exit_code"],
                "command": summary["command"],
                "started_ms": summary["started_ms"],
                "wall_ms": summary["wall_ms"],
                "totals": summary["totals"],
            },
            "runs": [*runs, run_id],
            "tasks": index,
        }
    )
    if root_updates:
        _apply(root_state, ROOT_WORKSPACE, root_updates, recipes or {})
    write_json_atomic(root_state_path(make), root_state)
    return written


def _apply(
    state: dict[str, Any],
    workspace: str,
    items: Sequence[TaskResult],
    recipes: Mapping[str, Any],
) -> None:
    """Fold a run's results for one workspace into its state (old fields kept)."""
    state["version"] = STATE_VERSION
    kept = dict(state.get("recipes") or {})
    for r in items:
        if r.status.succeeded and r.task_id in recipes:
            kept[r.phase] = recipes[r.task_id]
    state["recipes"] = kept
    state["workspace"] = workspace
    history = [h for h in state.get("phase_history", []) if isinstance(h, dict)]
    keys = dict(state.get("cache_keys") or {})
    phases = dict(state.get("phases") or {})
    for r in sorted(items, key=lambda x: x.started_ms or 0):
        if r.started_ms is not None:
            state["last_phase"] = r.phase
            history.append(
                {
                    "phase": r.phase,
                    "started_ms": r.started_ms,
                    "duration_ms": r.duration_ms,
                    "success": r.status.succeeded,
                }
            )
        if r.key:
            keys[r.phase] = r.key
        entry = dict(phases.get(r.phase) or {})
        durations = [d for d in entry.get("durations", []) if isinstance(d, int)]
        if r.status is Status.OK:
            durations = [*durations, r.duration_ms][-MAX_DURATIONS:]
        entry.update(
            {
                "key": r.key,
                "status": r.status.value,
                "exit_code": r.exit_code,
                "cache": r.cache.value,
                "wall_ms": r.duration_ms,
                "cpu_ms": r.cpu_ms,
                "max_rss_kb": r.max_rss_kb,
                "attempts": r.attempts,
                "durations": durations,
                "finished_ms": r.finished_ms,
                "error": r.error,
            }
        )
        phases[r.phase] = entry
    state["phase_history"] = history[-MAX_HISTORY:]
    state["cache_keys"] = keys
    state["phases"] = phases
