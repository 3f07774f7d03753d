"""Tests of ggen.report.graph_html: the task graph drawn as a self-contained page."""

from __future__ import annotations

import itertools
import re

import pytest

from ggen.report.graph_html import render_graph

NODES = [
    ("shared:build", "shared:build"),
    ("@scope/ui:build", "@scope/ui:build"),
    ("backend:build", "backend:build"),
    ("backend:test", "backend:test"),
    ("docs:lint", "docs:lint"),
]
EDGES = [
    ("shared:build", "@scope/ui:build"),
    ("shared:build", "backend:build"),
    ("@scope/ui:build", "backend:build"),
    ("backend:build", "backend:test"),
]


def _positions(page: str) -> dict[str, tuple[float, float]]:
    found = re.findall(r'data-node="([^"]+)" transform="translate\(([\d.]+),([\d.]+)\)"', page)
    return {node: (float(x), float(y)) for node, x, y in found}


def test_layers_follow_the_longest_path_from_a_source() -> None:
    page = render_graph(NODES, EDGES, "acme build")
    pos = _positions(page)
    columns = sorted({x for x, _ in pos.values()})
    layer = {node: columns.index(x) for node, (x, _) in pos.items()}
    assert layer == {
        "shared:build": 0,
        "docs:lint": 0,
        "@scope/ui:build": 1,
        "backend:build": 2,
        "backend:test": 3,
    }
    assert 'data-nodes="5" data-edges="4" data-layers="4"' in page
    assert page.count('class="edge"') == 4
    for a, b in EDGES:
        assert pos[a][0] < pos[b][0]


def test_nodes_of_a_column_do_not_overlap() -> None:
    nodes = [(f"w{n}:build", f"w{n}:build") for n in range(30)]
    edges = [(f"w{n}:build", f"w{n + 10}:build") for n in range(20)]
    pos = _positions(render_graph(nodes, edges, "wide"))
    by_column: dict[float, list[float]] = {}
    for x, y in pos.values():
        by_column.setdefault(x, []).append(y)
    assert len(by_column) == 3
    for ys in by_column.values():
        ys.sort()
        assert all(b - a >= 28 for a, b in itertools.pairwise(ys))


def test_labels_are_escaped_and_the_page_is_self_contained() -> None:
    evil = "<script>alert(1)</script>:build"
    page = render_graph([(evil, evil), ("a:b", "a&b")], [(evil, "a:b")], "<i>title</i>")
    assert "<script>alert" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;:build" in page
    assert "a&amp;b" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert page.count("<script") == 1


def test_a_cycle_is_drawn_instead_of_hanging() -> None:
    page = render_graph([("a", "a"), ("b", "b")], [("a", "b"), ("b", "a")], "loop")
    assert 'data-nodes="2" data-edges="2"' in page


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown node 'nope'"):
        render_graph(NODES, [("shared:build", "nope")], "t")
    with pytest.raises(ValueError, match="more than once"):
        render_graph([("a", "a"), ("a", "b")], [], "t")
    assert "The graph is empty." in render_graph([], [], "t")
