"""Tests of ggen.report.model: reading summaries, lanes and the critical path."""

from __future__ import annotations

from typing import Any

import pytest
from report_summaries import make_summary

from ggen.errors import UsageError
from ggen.report.model import CacheUse, Outcome, assign_lanes, critical_path, read_run

T0 = 1_795_000_000_000


def _task(task_id: str, start: int | None, end: int | None, **extra: Any) -> dict[str, Any]:
    workspace, _, phase = task_id.partition(":")
    task: dict[str, Any] = {
        "id": task_id,
        "workspace": workspace,
        "phase": phase,
        "key": "0" * 32,
        "status": "ok",
        "cache": "miss",
        "exit_code": 0,
        "started_ms": None if start is None else T0 + start,
        "finished_ms": None if end is None else T0 + end,
        "duration_ms": 0 if start is None or end is None else end - start,
        "cpu_ms": 0,
        "max_rss_kb": 0,
        "worker": "100",
        "attempts": 1,
        "deps": [],
        "log": None,
        "error": None,
    }
    task.update(extra)
    return task


def _summary(tasks: list[dict[str, Any]], wall: int = 1000) -> dict[str, Any]:
    return {
        "run_id": "r1",
        "started_ms": T0,
        "finished_ms": T0 + wall,
        "wall_ms": wall,
        "exit_code": 0,
        "tasks": tasks,
    }


def test_critical_path_follows_the_dependency_that_finished_last() -> None:
    summary = _summary(
        [
            _task("a:build", 0, 100, worker="1"),
            _task("b:build", 110, 300, worker="1", deps=["a:build"]),
            _task("c:build", 110, 600, worker="2", deps=["a:build"]),
            _task("d:build", 610, 900, worker="2", deps=["b:build", "c:build"]),
            _task("e:lint", 0, 850, worker="3"),
            _task("f:test", None, None, status="skipped", deps=["d:build"]),
        ]
    )
    run = read_run(summary)
    path = critical_path(run)
    assert [run.tasks[i].id for i in path.tasks] == ["a:build", "c:build", "d:build"]
    assert path.busy_ms == 100 + 490 + 290
    assert path.share == pytest.approx(880 / 1000)


def test_critical_path_of_a_run_where_nothing_started_is_empty() -> None:
    run = read_run(_summary([_task("a:build", None, None, status="skipped")]))
    assert critical_path(run).tasks == ()
    assert critical_path(run).share == 0.0


def test_times_are_relative_to_the_run_and_clamped_into_it() -> None:
    run = read_run(
        _summary(
            [
                _task("a:build", -50, 100),
                _task("b:build", 900, 1400),
                _task("c:build", 200, None, status="interrupted", duration_ms=30),
            ]
        )
    )
    assert [(t.start_ms, t.end_ms) for t in run.tasks] == [(0, 100), (900, 1000), (200, 230)]
    assert run.tasks[2].outcome is Outcome.INTERRUPTED
    assert run.tasks[0].cache is CacheUse.MISS


def test_lanes_put_main_first_then_workers_by_first_start() -> None:
    run = read_run(
        _summary(
            [
                _task("a:build", 50, 100, worker="200"),
                _task("b:build", 10, 40, worker="300"),
                _task("c:build", 0, 1, worker="main", status="cached", cache="hit"),
                _task("d:build", 1, 1, worker="main", status="cached", cache="hit"),
                _task("e:build", 45, 80, worker="300"),
            ]
        )
    )
    lanes = assign_lanes(run)
    assert [(lane.number, lane.name) for lane in lanes] == [
        (1, "main"),
        (2, "worker 300"),
        (3, "worker 200"),
    ]
    assert [run.tasks[i].id for i in lanes[1].tasks] == ["b:build", "e:build"]


def test_missing_totals_are_counted_from_the_tasks() -> None:
    summary = make_summary(workspaces=10, fail=("backend:build",))
    expected = summary.pop("totals")
    totals = read_run(summary).totals
    assert totals.tasks == expected["tasks"]
    assert totals.ran == expected["ran"]
    assert totals.cached == expected["cached"]
    assert totals.failed == expected["failed"] == 1
    assert totals.skipped == expected["skipped"]
    assert totals.hit_rate == pytest.approx(expected["hit_rate"], abs=1e-4)
    assert totals.cpu_ms == expected["cpu_ms"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": "nope"}, r"'tasks' must be a list"),
        ({"tasks": [{"status": "ok"}]}, r"tasks\[0\]: a task needs a non-empty string 'id'"),
        ({"tasks": [_task("a:b", 0, 1, cache="maybe")]}, r"task 'a:b'.*'maybe'"),
        ({"tasks": [_task("a:b", 0, 1, started_ms="soon")]}, r"'started_ms' must be a number"),
        ({"tasks": [_task("a:b", 0, 1), _task("a:b", 0, 1)]}, r"appears more than once"),
        ({"totals": {"hit_rate": "high"}}, r"totals: 'hit_rate' must be a number"),
    ],
)
def test_bad_summaries_raise_usage_errors(change: dict[str, Any], message: str) -> None:
    summary = _summary([_task("a:build", 0, 10)])
    summary.update(change)
    with pytest.raises(UsageError, match=message) as caught:
        read_run(summary)
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith("run summary: ")
