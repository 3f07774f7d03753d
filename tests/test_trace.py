"""Tests of ggen.report.trace: Chrome trace-event JSON of a run summary."""

from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from report_summaries import make_summary

from ggen.errors import UsageError
from ggen.report.trace import trace_events, write_trace

X_KEYS = {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"}


def _complete(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X"]


def _thread_names(trace: dict[str, Any]) -> dict[int, str]:
    return {
        e["tid"]: e["args"]["name"]
        for e in trace["traceEvents"]
        if e["ph"] == "M" and e["name"] == "thread_name"
    }


def test_complete_events_follow_the_trace_event_format() -> None:
    summary = make_summary(workspaces=20, jobs=4, timeout=("docs:test",))
    trace = trace_events(summary)
    wall_us = summary["wall_ms"] * 1000

    assert trace["displayTimeUnit"] == "ms"
    events = _complete(trace)
    started = [t for t in summary["tasks"] if t["started_ms"] is not None]
    assert len(events) == len(started) > 0
    for event in events:
        assert set(event) == X_KEYS
        assert isinstance(event["ts"], int) and isinstance(event["dur"], int)
        assert event["pid"] == 1
        assert event["ts"] >= 0 and event["ts"] + event["dur"] <= wall_us
        assert set(event["args"]) == {"key", "status", "cache", "exit_code", "attempts"}
        assert event["cat"] == event["args"]["status"]

    by_task = {e["name"]: e for e in events}
    for task in started:
        event = by_task[f"{task['workspace']}:{task['phase']}"]
        assert event["ts"] == (task["started_ms"] - summary["started_ms"]) * 1000
        assert event["dur"] == (task["finished_ms"] - task["started_ms"]) * 1000
        assert event["args"]["key"] == task["key"]
        assert event["args"]["cache"] == task["cache"]
    failed = by_task["backend:build"]
    assert failed["cat"] == "failed"
    assert failed["args"] == {
        "key": next(t["key"] for t in summary["tasks"] if t["id"] == "backend:build"),
        "status": "failed",
        "cache": "miss",
        "exit_code": 1,
        "attempts": 2,
    }
    assert by_task["docs:test"]["cat"] == "timeout"
    skipped = {t["id"] for t in summary["tasks"] if t["status"] == "skipped"}
    assert skipped and not skipped & set(by_task)


def test_lanes_never_overlap_and_fit_in_the_wall_time() -> None:
    summary = make_summary(workspaces=60, jobs=3, cached_ratio=0.5)
    # two tasks of one worker that overlap (a reused pid) must still land on separate lanes
    placed = [t for t in summary["tasks"] if t["started_ms"] is not None and t["worker"] != "main"]
    first, second = placed[0], placed[1]
    second.update(
        worker=first["worker"],
        started_ms=first["started_ms"] + 1,
        finished_ms=min(first["finished_ms"] + 1, summary["started_ms"] + summary["wall_ms"]),
    )
    trace = trace_events(summary)
    lanes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    events = _complete(trace)
    for event in events:
        lanes[event["tid"]].append((event["ts"], event["ts"] + event["dur"]))
    # the summary has work for every lane: the checks below see events and shared lanes
    assert len(events) == sum(1 for t in summary["tasks"] if t["started_ms"] is not None) > 0
    assert any(len(spans) > 1 for spans in lanes.values())
    for spans in lanes.values():
        spans.sort()
        assert sum(end - start for start, end in spans) <= summary["wall_ms"] * 1000
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start


def test_one_named_lane_per_worker_and_main_for_cache_hits() -> None:
    summary = make_summary(workspaces=30, jobs=4, cached_ratio=0.5)
    trace = trace_events(summary)
    names = _thread_names(trace)
    workers = {t["worker"] for t in summary["tasks"] if t["started_ms"] is not None} - {"main"}
    assert sorted(names.values()) == sorted(["main", *(f"worker {w}" for w in workers)])
    assert names[1] == "main"
    events = _complete(trace)
    assert {e["tid"] for e in events} == set(names)
    main_lane = {e["name"] for e in events if names[e["tid"]] == "main"}
    cached = {t["id"] for t in summary["tasks"] if t["status"] == "cached"}
    assert main_lane == cached
    for task in summary["tasks"]:
        if task["worker"] not in (None, "main"):
            event = next(e for e in events if e["name"] == task["id"])
            assert names[event["tid"]] == f"worker {task['worker']}"
    process = [e for e in trace["traceEvents"] if e["name"] == "process_name"]
    assert process[0]["args"]["name"] == "ggen acme build test lint (20261125-182000-1a2b3c)"
    sort_index = {
        e["tid"]: e["args"]["sort_index"]
        for e in trace["traceEvents"]
        if e["name"] == "thread_sort_index"
    }
    assert sort_index == {tid: tid for tid in names}


def test_overlapping_tasks_of_one_label_get_a_second_lane() -> None:
    summary = make_summary(workspaces=4, jobs=1, cached_ratio=0.0, fail=())
    first, second = summary["tasks"][0], summary["tasks"][1]
    second["started_ms"] = first["started_ms"] + 1
    second["finished_ms"] = first["finished_ms"] + 1
    second["worker"] = first["worker"]
    trace = trace_events(summary)
    names = _thread_names(trace)
    assert f"worker {first['worker']} (2)" in names.values()
    by_name = {e["name"]: e for e in _complete(trace)}
    assert by_name[first["id"]]["tid"] != by_name[second["id"]]["tid"]


def test_unfinished_and_out_of_window_tasks_are_clamped_to_the_run() -> None:
    summary = make_summary(workspaces=3, jobs=1, cached_ratio=0.0, fail=())
    cut, early = summary["tasks"][0], summary["tasks"][1]
    cut.update(status="interrupted", finished_ms=None, duration_ms=10**9, exit_code=None)
    early["started_ms"] = summary["started_ms"] - 500
    events = {e["name"]: e for e in _complete(trace_events(summary))}
    wall_us = summary["wall_ms"] * 1000
    assert events[cut["id"]]["cat"] == "interrupted"
    assert events[cut["id"]]["ts"] + events[cut["id"]]["dur"] == wall_us
    assert events[early["id"]]["ts"] == 0


def test_write_trace_round_trips_through_orjson(tmp_path: Path) -> None:
    summary = make_summary(workspaces=10)
    target = tmp_path / "out" / "trace.json"
    write_trace(summary, target)
    assert orjson.loads(target.read_bytes()) == trace_events(summary)
    assert [p.name for p in target.parent.iterdir()] == ["trace.json"]
    write_trace(make_summary(workspaces=2), target)
    assert len(_complete(orjson.loads(target.read_bytes()))) < len(_complete(trace_events(summary)))


def test_a_bad_summary_is_a_usage_error_naming_the_task() -> None:
    summary = copy.deepcopy(make_summary(workspaces=3))
    summary["tasks"][2]["status"] = "exploded"
    with pytest.raises(UsageError, match=r"task 'shared:lint'.*'exploded'.*expected one of ok"):
        trace_events(summary)


def test_an_empty_run_has_only_the_process_name() -> None:
    trace = trace_events({"run_id": "r", "started_ms": 1, "wall_ms": 0, "tasks": []})
    assert [e["name"] for e in trace["traceEvents"]] == ["process_name"]
