"""Chrome trace-event JSON of a run (``ggen run --trace FILE``), for Perfetto or chrome://tracing.

Each task that started becomes a complete event (``ph: "X"``) on the lane of the worker that
ran it; each lane is named by a ``thread_name`` metadata event. Times are microseconds from the
start of the run. Tasks that never started (skipped) have no place on a timeline and are left
out; the run summary still lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ggen.atomic import write_bytes_atomic
from ggen.report.model import RunView, assign_lanes, read_run

PID = 1
_US_PER_MS = 1000


def _metadata(run: RunView, lanes: list[tuple[int, str]]) -> list[dict[str, Any]]:
    title = f"ggen {run.project} {' '.join(run.command)}".strip()
    if run.run_id:
        title += f" ({run.run_id})"
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": PID, "tid": 0, "args": {"name": title}}
    ]
    for number, name in lanes:
        events.append(
            {"name": "thread_name", "ph": "M", "pid": PID, "tid": number, "args": {"name": name}}
        )
        events.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": PID,
                "tid": number,
                "args": {"sort_index": number},
            }
        )
    return events


def trace_events(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Build the trace-event JSON object of a run summary.

    Returns ``{"traceEvents": [...], "displayTimeUnit": "ms"}``: one ``X`` event per started
    task (``name`` ``workspace:phase``, ``cat`` its status, ``tid`` its lane) and ``M`` events
    naming the process and each lane. Lanes never hold two overlapping tasks, which trace
    viewers need to nest events correctly.
    """
    run = read_run(summary)
    lanes = assign_lanes(run)
    events = _metadata(run, [(lane.number, lane.name) for lane in lanes])
    for lane in lanes:
        for index in lane.tasks:
            task = run.tasks[index]
            start = task.start_ms or 0
            end = task.end_ms or start
            events.append(
                {
                    "name": f"{task.workspace}:{task.phase}",
                    "cat": task.outcome.value,
                    "ph": "X",
                    "ts": start * _US_PER_MS,
                    "dur": (end - start) * _US_PER_MS,
                    "pid": PID,
                    "tid": lane.number,
                    "args": {
                        "key": task.key,
                        "status": task.outcome.value,
                        "cache": task.cache.value,
                        "exit_code": task.exit_code,
                        "attempts": task.attempts,
                    },
                }
            )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_trace(summary: Mapping[str, Any], path: Path) -> None:
    """Write the trace of a run summary to ``path`` atomically (see ``trace_events``)."""
    write_bytes_atomic(Path(path), orjson.dumps(trace_events(summary)))
