"""The task graph as text (ggen.runner.graph): dot, mermaid and JSON of a plan's tasks."""

from __future__ import annotations

import json

import pytest

from ggen.make import Make, Phase, Project, Workspace
from ggen.runner.graph import GraphFormat, edges, nodes, render_graph
from ggen.runner.plan import Plan, build_plan


def _plan() -> Plan:
    make = Make(
        root="/p",
        project=Project(name="p"),
        lifecycle=(Phase(name="build", commands=("true",), depends_on=("^build",)),),
        workspaces=(
            Workspace(name="lib", path="lib"),
            Workspace(name='app "x"', path="app", depends_on=("lib",)),
        ),
    )
    return build_plan(make, ["build"])


def test_nodes_and_edges_follow_the_plan() -> None:
    plan = _plan()
    assert nodes(plan) == [("lib:build", "lib:build"), ('app "x":build', 'app "x":build')]
    assert edges(plan) == [("lib:build", 'app "x":build')]


def test_dot_quotes_names() -> None:
    dot = render_graph(_plan(), GraphFormat.DOT)
    assert dot.startswith("digraph ggen {")
    assert '  "lib:build" -> "app \\"x\\":build";' in dot


def test_mermaid_escapes_quotes_in_labels() -> None:
    text = render_graph(_plan(), GraphFormat.MERMAID)
    assert text.splitlines() == [
        "graph LR",
        '  t0["lib:build"]',
        '  t1["app #quot;x#quot;:build"]',
        "  t0 --> t1",
    ]


def test_json_lists_tasks_and_edges() -> None:
    data = json.loads(render_graph(_plan(), GraphFormat.JSON))
    assert [t["id"] for t in data["tasks"]] == ["lib:build", 'app "x":build']
    assert data["tasks"][1]["deps"] == ["lib:build"]
    assert data["edges"] == [["lib:build", 'app "x":build']]


def test_html_is_the_report_packages_job() -> None:
    with pytest.raises(ValueError, match="html is not a text format"):
        render_graph(_plan(), GraphFormat.HTML)
