"""The task graph as a self-contained HTML page (``ggen graph --format html``).

Nodes are placed in columns by the longest path from a source (a node with no incoming edge),
so every edge points to the right; within a column, nodes are ordered by the mean position of
their neighbours, a few sweeps each way, which removes most crossings. The drawing is plain
SVG written here; a few lines of inline script highlight a node's edges on hover.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

NODE_H = 28
GAP_Y = 12
GAP_X = 64
CHAR_W = 7.0
MIN_W = 96
MAX_W = 300
MAX_LABEL = 40
SWEEPS = 4
PALETTE = ("#2da44e", "#3b82f6", "#8250df", "#d4a72c", "#e16f24", "#1b7c83", "#bf3989", "#57606a")

_CSS = """
:root { --bg: #f4f5f7; --card: #fff; --ink: #1f2328; --muted: #656d76; --line: #d8dee4;
  --edge: #8c959f; --hot: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --card: #161b22; --ink: #e6edf3; --muted: #8d96a0; --line: #30363d;
    --edge: #6e7681; --hot: #4493f8; }
}
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Liberation Sans", sans-serif; }
main { padding: 20px 24px; }
h1 { font-size: 20px; margin: 0 0 4px; font-weight: 600; }
h1 span { color: var(--muted); font-weight: 500; }
.meta { color: var(--muted); font-size: 13px; margin-bottom: 14px; }
.legend span { margin-left: 14px; display: inline-flex; gap: 6px; align-items: center; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; }
.canvas { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  overflow: auto; padding: 16px; }
svg { display: block; }
.node rect { fill: var(--card); stroke: var(--line); stroke-width: 1; }
.node .tag { stroke: none; }
.node text { fill: var(--ink); font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas,
  "Liberation Mono", monospace; dominant-baseline: central; }
.edge { fill: none; stroke: var(--edge); stroke-width: 1.2; opacity: 0.7; }
#arrow path { fill: var(--edge); }
svg.hovering .edge { opacity: 0.15; }
svg.hovering .node { opacity: 0.35; }
svg.hovering .edge.hot { stroke: var(--hot); opacity: 1; stroke-width: 2; }
svg.hovering .node.hot { opacity: 1; }
svg.hovering .node.hot rect { stroke: var(--hot); stroke-width: 2; }
"""

_JS = r"""
(function () {
  "use strict";
  var svg = document.getElementById("graph");
  if (!svg) return;
  svg.addEventListener("mouseover", function (ev) {
    var node = ev.target.closest("g.node");
    svg.querySelectorAll(".hot").forEach(function (el) { el.classList.remove("hot"); });
    if (!node) { svg.classList.remove("hovering"); return; }
    var id = node.getAttribute("data-node");
    svg.classList.add("hovering");
    node.classList.add("hot");
    svg.querySelectorAll("path.edge").forEach(function (edge) {
      var a = edge.getAttribute("data-from"), b = edge.getAttribute("data-to");
      if (a !== id && b !== id) return;
      edge.classList.add("hot");
      var other = svg.querySelector('g.node[data-node="' + CSS.escape(a === id ? b : a) + '"]');
      if (other) other.classList.add("hot");
    });
  });
  svg.addEventListener("mouseleave", function () {
    svg.classList.remove("hovering");
    svg.querySelectorAll(".hot").forEach(function (el) { el.classList.remove("hot"); });
  });
  document.body.setAttribute("data-render-ms", performance.now().toFixed(1));
})();
"""


@dataclass(frozen=True)
class _Placed:
    id: str
    label: str
    layer: int
    x: float
    y: float
    width: float


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _layers(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest path from a source for each node; nodes on a cycle go after all others."""
    incoming = {node: 0 for node in ids}
    succ: dict[str, list[str]] = {node: [] for node in ids}
    for a, b in edges:
        succ[a].append(b)
        incoming[b] += 1
    layer = dict.fromkeys(ids, 0)
    queue = [node for node in ids if incoming[node] == 0]
    done: set[str] = set()
    while queue:
        node = queue.pop()
        done.add(node)
        for nxt in succ[node]:
            layer[nxt] = max(layer[nxt], layer[node] + 1)
            incoming[nxt] -= 1
            if incoming[nxt] == 0:
                queue.append(nxt)
    last = max((layer[n] for n in done), default=-1)
    for node in ids:
        if node not in done:
            layer[node] = last + 1
    return layer


def _barycenter(
    node: str, neighbours: Sequence[str], pos: dict[str, int], here: dict[str, int]
) -> tuple[int, float]:
    """Sort key: mean position of the neighbours; nodes without any sink to the bottom."""
    near = [pos[n] for n in neighbours if n in pos]
    return (0, sum(near) / len(near)) if near else (1, float(here[node]))


def _order(
    ids: Sequence[str], edges: Sequence[tuple[str, str]], layer: dict[str, int]
) -> list[list[str]]:
    """Nodes of each layer, ordered by the mean position of their neighbours (barycenters)."""
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for node in ids:
        columns[layer[node]].append(node)
    preds: dict[str, list[str]] = {node: [] for node in ids}
    succs: dict[str, list[str]] = {node: [] for node in ids}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        indexes = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
        for col in indexes:
            ref = columns[col - 1] if forward else columns[col + 1]
            pos = {node: i for i, node in enumerate(ref)}
            here = {node: i for i, node in enumerate(columns[col])}
            neigh = preds if forward else succs
            columns[col] = sorted(
                columns[col], key=lambda node: _barycenter(node, neigh[node], pos, here)
            )
    return columns


def _place(columns: list[list[str]], labels: dict[str, str]) -> dict[str, _Placed]:
    tallest = max((len(col) for col in columns), default=0)
    placed: dict[str, _Placed] = {}
    x = 0.0
    for n, column in enumerate(columns):
        longest = max((min(len(labels[node]), MAX_LABEL) for node in column), default=0)
        width = max(MIN_W, min(MAX_W, longest * CHAR_W + 30))
        offset = (tallest - len(column)) * (NODE_H + GAP_Y) / 2
        for i, node in enumerate(column):
            y = offset + i * (NODE_H + GAP_Y)
            placed[node] = _Placed(node, labels[node], n, x, y, width)
        x += width + GAP_X
    return placed


def _phase(label: str) -> str:
    return label.rpartition(":")[2]


def _colours(labels: Sequence[str]) -> dict[str, str]:
    """One palette colour per phase, in order of first appearance (stable across runs)."""
    phases = dict.fromkeys(_phase(label) for label in labels)
    return {phase: PALETTE[n % len(PALETTE)] for n, phase in enumerate(phases)}


def _svg(
    placed: dict[str, _Placed], edges: Sequence[tuple[str, str]], colours: dict[str, str]
) -> str:
    width = max((p.x + p.width for p in placed.values()), default=0) + 2
    height = max((p.y + NODE_H for p in placed.values()), default=0) + 2
    parts = [
        f'<svg id="graph" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="-1 -1 {width:.0f} {height:.0f}" role="img" aria-label="task graph">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>"
    ]
    for a, b in edges:
        src, dst = placed[a], placed[b]
        x1, y1 = src.x + src.width, src.y + NODE_H / 2
        x2, y2 = dst.x, dst.y + NODE_H / 2
        if dst.layer <= src.layer:  # an edge of a cycle: loop back around the bottom
            x1, x2 = src.x + src.width / 2, dst.x + dst.width / 2
            y1, y2 = src.y + NODE_H, dst.y + NODE_H
            bend = max(y1, y2) + 30
            d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{bend:.1f} {x2:.1f},{bend:.1f} {x2:.1f},{y2:.1f}"
        else:
            dx = max(24.0, (x2 - x1) / 2)
            d = (
                f"M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} "
                f"{x2 - dx:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
            )
        parts.append(
            f'<path class="edge" data-from="{_e(a)}" data-to="{_e(b)}" d="{d}" '
            'marker-end="url(#arrow)"/>'
        )
    for p in placed.values():
        shown = p.label if len(p.label) <= MAX_LABEL else p.label[: MAX_LABEL - 1] + "\u2026"
        parts.append(
            f'<g class="node" data-node="{_e(p.id)}" transform="translate({p.x:.1f},{p.y:.1f})">'
            f"<title>{_e(p.label)}</title>"
            f'<rect width="{p.width:.0f}" height="{NODE_H}" rx="6"/>'
            f'<rect class="tag" width="5" height="{NODE_H}" rx="2" '
            f'style="fill:{colours[_phase(p.label)]}"/>'
            f'<text x="14" y="{NODE_H / 2}">{_e(shown)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_graph(
    nodes: Sequence[tuple[str, str]], edges: Sequence[tuple[str, str]], title: str
) -> str:
    """Draw a graph as one self-contained HTML page; ``nodes`` are ``(id, label)`` pairs.

    An edge ``(a, b)`` is an arrow from ``a`` to ``b``, and ``b`` is drawn in a column to the
    right of ``a``. Raises ``ValueError`` for an edge naming an unknown node or a repeated
    node id, since either means the caller passed a graph it did not mean to.
    """
    labels: dict[str, str] = {}
    for node_id, label in nodes:
        if node_id in labels:
            raise ValueError(f"node {node_id!r} appears more than once")
        labels[node_id] = label
    unique_edges = list(dict.fromkeys(edges))
    for a, b in unique_edges:
        for end in (a, b):
            if end not in labels:
                raise ValueError(f"edge {a!r} -> {b!r} names unknown node {end!r}")
    ids = list(labels)
    layer = _layers(ids, unique_edges)
    placed = _place(_order(ids, unique_edges, layer), labels)
    layers = max(layer.values(), default=-1) + 1
    meta = (
        f"{len(ids)} node{'s' if len(ids) != 1 else ''} \u00b7 {len(unique_edges)} "
        f"edge{'s' if len(unique_edges) != 1 else ''} \u00b7 {layers} "
        f"layer{'s' if layers != 1 else ''}"
    )
    colours = _colours(list(labels.values()))
    body = _svg(placed, unique_edges, colours) if ids else "<p>The graph is empty.</p>"
    legend = "".join(
        f'<span><i style="background:{colour}"></i>{_e(phase)}</span>'
        for phase, colour in colours.items()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f'<h1><span>ggen</span> {_e(title)}</h1><div class="meta" id="graph-meta" '
        f'data-nodes="{len(ids)}" data-edges="{len(unique_edges)}" data-layers="{layers}">'
        f'{meta}<span class="legend">{legend}</span></div>'
        f'<div class="canvas">{body}</div></main>'
        f"<script>{_JS}</script></body></html>\n"
    )
