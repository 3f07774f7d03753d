"""The values a run produces (ggen.results): pickle-safe, and written to summaries as is."""

from __future__ import annotations

import pickle

import orjson

from ggen.report.model import read_run
from ggen.results import CacheStatus, Status, TaskResult

RESULT = TaskResult(
    "web:build",
    "web",
    "build",
    Status.FAILED,
    cache=CacheStatus.MISS,
    key="a" * 32,
    exit_code=2,
    started_ms=1_000,
    finished_ms=1_500,
    duration_ms=500,
    worker="4242",
    attempts=2,
    log=".ggen/logs/web/build.log",
    error="exit code 2",
    deps=("lib:build",),
)


def test_which_statuses_count_as_success() -> None:
    assert {s for s in Status if s.succeeded} == {Status.OK, Status.CACHED, Status.NO_SCRIPT}


def test_a_result_crosses_processes_unchanged() -> None:
    assert pickle.loads(pickle.dumps(RESULT)) == RESULT


def test_evolve_changes_only_what_it_is_given() -> None:
    later = RESULT.evolve(status=Status.OK, exit_code=0)
    assert (later.status, later.exit_code) == (Status.OK, 0)
    assert later.evolve(status=Status.FAILED, exit_code=2) == RESULT


def test_the_summary_entry_is_json_with_enum_values() -> None:
    entry = orjson.loads(orjson.dumps(RESULT.to_json()))
    assert entry["id"] == "web:build"
    assert (entry["status"], entry["cache"]) == ("failed", "miss")
    assert entry["deps"] == ["lib:build"]
    assert set(entry) == {
        "id", "workspace", "phase", "key", "status", "cache", "exit_code", "started_ms",
        "finished_ms", "duration_ms", "cpu_ms", "max_rss_kb", "worker", "attempts", "deps",
        "log", "error",
    }  # fmt: skip


def test_the_report_reads_what_a_result_writes() -> None:
    summary = {
        "run_id": "r",
        "phases": ["build"],
        "started_ms": 1_000,
        "finished_ms": 1_500,
        "wall_ms": 500,
        "exit_code": 1,
        "tasks": [RESULT.to_json()],
    }
    task = read_run(summary).tasks[0]
    assert (task.workspace, task.phase, task.worker) == ("web", "build", "4242")
    assert task.cache is CacheStatus.MISS
