"""The task graph of a plan as dot, mermaid, JSON or an HTML page."""

from __future__ import annotations

import enum
import json

from ggen.runner.plan import Plan


class GraphFormat(enum.Enum):
    DOT = "dot"
    MERMAID = "mermaid"
    JSON = "json"
    HTML = "html"


def _edges(plan: Plan) -> list[tuple[str, str]]:
    return [(d, t.id) for t in plan.tasks for d in t.deps]


def render_graph(plan: Plan, fmt: GraphFormat, title: str = "ggen") -> str:
    """The plan's tasks and dependency edges (dependency -> dependent) in ``fmt``."""
    if fmt is GraphFormat.DOT:
        lines = ["digraph ggen {", "  rankdir=LR;", "  node [shape=box];"]
        lines += [f"  {json.dumps(t.id)};" for t in plan.tasks]
        lines += [f"  {json.dumps(a)} -> {json.dumps(b)};" for a, b in _edges(plan)]
        return "\n".join([*lines, "}"]) + "\n"
    if fmt is GraphFormat.MERMAID:
        ids = {t.id: f"t{i}" for i, t in enumerate(plan.tasks)}
        lines = ["graph LR"]
        for t in plan.tasks:
            label = t.id.replace('"', "#quot;")
            lines.append(f'  {ids[t.id]}["{label}"]')
        lines += [f"  {ids[a]} --> {ids[b]}" for a, b in _edges(plan)]
        return "\n".join(lines) + "\n"
    if fmt is GraphFormat.JSON:
        data = {
            "tasks": [
                {"id": t.id, "workspace": t.workspace, "phase": t.phase, "deps": list(t.deps)}
                for t in plan.tasks
            ],
            "edges": [list(e) for e in _edges(plan)],
        }
        return json.dumps(data, indent=2) + "\n"
    from ggen.report.graph_html import render_graph as render_html

    return render_html([(t.id, t.id) for t in plan.tasks], _edges(plan), title)
