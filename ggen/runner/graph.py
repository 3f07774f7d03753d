"""The task graph of a plan as dot, mermaid or JSON text.

The HTML page is drawn by ``ggen.report.graph_html`` from the plain nodes and edges given here
(``nodes`` and ``edges``): the report package renders, the runner only knows the plan.
"""

from __future__ import annotations

import enum
import json

from ggen.runner.plan import Plan


class GraphFormat(enum.Enum):
    DOT = "dot"
    MERMAID = "mermaid"
    JSON = "json"
    HTML = "html"


def nodes(plan: Plan) -> list[tuple[str, str]]:
    """The plan's tasks as (id, label) pairs, in plan order."""
    return [(t.id, t.id) for t in plan.tasks]


def edges(plan: Plan) -> list[tuple[str, str]]:
    """The plan's dependency edges as (dependency, dependent) pairs."""
    return [(d, t.id) for t in plan.tasks for d in t.deps]


def render_graph(plan: Plan, fmt: GraphFormat) -> str:
    """The plan's tasks and dependency edges (dependency -> dependent) in ``fmt``, a text
    format (the HTML page is ``ggen.report.graph_html.render_graph``)."""
    if fmt is GraphFormat.DOT:
        lines = ["digraph ggen {", "  rankdir=LR;", "  node [shape=box];"]
        lines += [f"  {json.dumps(t.id)};" for t in plan.tasks]
        lines += [f"  {json.dumps(a)} -> {json.dumps(b)};" for a, b in edges(plan)]
        return "\n".join([*lines, "}"]) + "\n"
    if fmt is GraphFormat.MERMAID:
        ids = {t.id: f"t{i}" for i, t in enumerate(plan.tasks)}
        lines = ["graph LR"]
        for t in plan.tasks:
            label = t.id.replace('"', "#quot;")
            lines.append(f'  {ids[t.id]}["{label}"]')
        lines += [f"  {ids[a]} --> {ids[b]}" for a, b in edges(plan)]
        return "\n".join(lines) + "\n"
    if fmt is GraphFormat.JSON:
        data = {
            "tasks": [
                {"id": t.id, "workspace": t.workspace, "phase": t.phase, "deps": list(t.deps)}
                for t in plan.tasks
            ],
            "edges": [list(e) for e in edges(plan)],
        }
        return json.dumps(data, indent=2) + "\n"
    raise ValueError(f"{fmt.value} is not a text format")
