"""run.py's pipeline steps, each called alone: plan -> lock -> schedule -> summarize -> record."""

from __future__ import annotations

from pathlib import Path

import orjson
from monorepo import write_tree

from ggen.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TASK_FAILED
from ggen.make import Make, load_make
from ggen.runner.console import Console, OutputMode
from ggen.runner.results import Status, TaskResult
from ggen.runner.run import Ran, RunOptions, exit_code, plan_run, record, schedule_run, summarize

TREE = {
    "make.toml": """
        [project]
        name = "r"

        [workspace.core]
        path = "core"

        [lifecycle.build]
        commands = ["mkdir -p dist", "cp src/a.txt dist/a.txt"]
        inputs = ["src/**"]
        outputs = ["dist/**"]

        [lifecycle.rescue]
        command = "true"
        cache = false
    """,
    "core/src/a.txt": "a\n",
}


def project(tmp_path: Path) -> Make:
    write_tree(tmp_path, TREE)
    return load_make(tmp_path)


def result(tid: str, status: Status) -> TaskResult:
    ws, phase = tid.split(":")
    return TaskResult(tid, ws, phase, status)


def test_exit_code_counts_planned_tasks_only(tmp_path: Path) -> None:
    plan, _ = plan_run(project(tmp_path), RunOptions(phases=("build",)))
    ok = result("core:build", Status.OK)
    failed = result("core:build", Status.FAILED)
    other = result("core:rescue", Status.FAILED)  # not in the plan's tasks
    assert exit_code(plan, Ran((ok, other), False, {}, 0, 1)) == EXIT_OK
    assert exit_code(plan, Ran((failed,), False, {}, 0, 1)) == EXIT_TASK_FAILED
    assert exit_code(plan, Ran((ok,), True, {}, 0, 1)) == EXIT_INTERRUPTED


def test_schedule_summarize_record(tmp_path: Path) -> None:
    make = project(tmp_path)
    options = RunOptions(phases=("build",), cache_dir=str(tmp_path / "cache"))
    console = Console(make.root, mode=OutputMode.QUIET)
    plan, limits = plan_run(make, options)
    ran = schedule_run(make, options, console, plan, limits)
    assert [(r.task_id, r.status) for r in ran.results] == [("core:build", Status.OK)]
    assert set(ran.recipes) == {"core:build"}
    assert ran.recipes["core:build"].key() == ran.results[0].key
    assert list((tmp_path / "cache" / "manifests").rglob("*.json"))  # saved before returning

    summary = summarize(make, options, plan, limits, ran)
    assert summary.run_id == ran.run_id
    assert (summary.exit_code, summary.totals.ran, summary.command) == (0, 1, ("build",))
    record(make, options, summary, ran.recipes, console.warn)
    doc = orjson.loads((tmp_path / f".ggen/runs/{ran.run_id}.json").read_bytes())
    assert doc == orjson.loads(orjson.dumps(summary.to_json()))
    state = orjson.loads((tmp_path / "core/.ggen/state.json").read_bytes())
    assert state["recipes"]["build"] == ran.recipes["core:build"].to_json()
