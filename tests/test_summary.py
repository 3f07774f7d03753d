"""``RunSummary``: the typed summary writes the document ``ggen report``, ``status`` and the
benchmarks read (README, "Files written"), field for field."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ggen.runner.results import CacheStatus, Status, TaskResult
from ggen.runner.state import totals
from ggen.runner.summary import RunSummary, RunTotals

FIELDS = {
    "version", "run_id", "project", "root", "command", "executor", "jobs", "started_ms",
    "finished_ms", "wall_ms", "exit_code", "totals", "tasks",
}  # fmt: skip

results = st.lists(
    st.builds(
        TaskResult,
        task_id=st.sampled_from(["a:build", "b:build", "c:test"]),
        workspace=st.just("a"),
        phase=st.just("build"),
        status=st.sampled_from(list(Status)),
        cache=st.sampled_from(list(CacheStatus)),
        cpu_ms=st.integers(0, 10_000),
    ),
    max_size=6,
).map(tuple)


def summary(tasks: tuple[TaskResult, ...]) -> RunSummary:
    return RunSummary(
        run_id="20261202-000000-000-abcdef",
        project="p",
        root="/r",
        command=("build", "test"),
        executor="loky",
        jobs=2,
        started_ms=1000,
        finished_ms=3500,
        exit_code=1,
        totals=RunTotals.of(tasks),
        tasks=tasks,
    )


@given(results)
def test_the_document_keeps_every_field(tasks: tuple[TaskResult, ...]) -> None:
    doc = orjson.loads(orjson.dumps(summary(tasks).to_json()))
    assert set(doc) == FIELDS
    assert doc["wall_ms"] == 2500 and doc["command"] == ["build", "test"]
    assert doc["totals"] == totals(tasks)
    assert doc["tasks"] == [orjson.loads(orjson.dumps(t.to_json())) for t in tasks]
