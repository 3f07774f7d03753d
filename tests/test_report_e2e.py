"""A real run, its report in a real headless Chromium, and its trace (issue: runs to look at)."""

from __future__ import annotations

from pathlib import Path

import orjson
from monorepo import SMALL, ggen, last_summary, write_tree
from test_report import Elements, _is_png, chromium


def test_report_of_a_real_run_draws_every_task_and_its_totals(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", SMALL)
    (repo / "libs/utils/src/a.txt").write_text("")  # utils' test fails; the rest goes on
    trace = tmp_path / "trace.json"
    r = ggen("run", "build", "test", "-k", "-j2", "--trace", str(trace), cwd=repo)
    assert r.returncode == 1
    summary = last_summary(repo)
    out = tmp_path / "report.html"
    r = ggen("report", "-o", str(out), cwd=repo)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1000

    shot = tmp_path / "shot.png"
    chromium(out, tmp_path, f"--screenshot={shot}")
    assert _is_png(shot, 1280, 800)

    dom = Elements(chromium(out, tmp_path, "--dump-dom"))
    rows = {a["data-task"]: a["data-status"] for a in dom.with_attr("data-task", "tr")}
    assert rows == {t["id"]: t["status"] for t in summary["tasks"]}
    bars = {a["data-task"] for a in dom.with_attr("data-task", "div")}
    assert bars == {t["id"] for t in summary["tasks"] if t["started_ms"]}
    totals = dom.by_id("totals")
    assert int(totals["data-tasks"]) == summary["totals"]["tasks"] == 8
    assert int(totals["data-failed"]) == summary["totals"]["failed"] == 1
    assert int(totals["data-wall-ms"]) == summary["wall_ms"]

    # the trace of the same run: complete events per worker lane, within the wall time
    events = orjson.loads(trace.read_bytes())["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    assert {e["name"] for e in spans} == bars
    for e in spans:
        assert {"name", "ph", "ts", "dur", "pid", "tid"} <= e.keys()
    per_lane: dict[object, int] = {}
    for e in spans:
        per_lane[e["tid"]] = per_lane.get(e["tid"], 0) + e["dur"]
    assert max(per_lane.values()) <= summary["wall_ms"] * 1000


def test_report_of_an_unknown_run_is_a_usage_error(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", SMALL)
    r = ggen("report", cwd=repo)
    assert r.returncode == 2 and "no run recorded yet" in r.stderr
    ggen("run", "build", "-w", "core", cwd=repo)
    r = ggen("report", "nope", cwd=repo)
    assert r.returncode == 2 and 'no run "nope"' in r.stderr


def test_graph_page_draws_every_task_and_edge_in_a_real_browser(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", SMALL)
    r = ggen("graph", "build", "test", "--format", "json", cwd=repo)
    assert r.returncode == 0, r.stderr
    tasks = orjson.loads(r.stdout)["tasks"]
    edges = {(d, t["id"]) for t in tasks for d in t["deps"]}
    page = tmp_path / "graph.html"
    r = ggen("graph", "build", "test", "--format", "html", "-o", str(page), cwd=repo)
    assert r.returncode == 0, r.stderr

    shot = tmp_path / "graph.png"
    chromium(page, tmp_path, f"--screenshot={shot}")  # a script error on the page fails it
    assert _is_png(shot, 1280, 800)

    dom = Elements(chromium(page, tmp_path, "--dump-dom"))
    nodes = {a["data-node"] for a in dom.with_attr("data-node", "g")}
    assert nodes == {t["id"] for t in tasks}
    drawn = {(a["data-from"], a["data-to"]) for a in dom.with_attr("data-from", "path")}
    assert drawn == edges
    assert len(tasks) == 8 and len(edges) == 8
