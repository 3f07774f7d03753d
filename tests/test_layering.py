"""ggen's modules and packages import each other without cycles, read from their source (ast).

What counts as a dependency:

- every ``import`` / ``from ... import`` of a ggen module, wherever it stands: at the top, or
  inside a function (a lazy import keeps the CLI fast but is still a dependency: the importing
  code cannot run without the imported module);
- except imports under ``if TYPE_CHECKING:``, which exist only for annotations and never run,
  so they may name types of any layer without tying the load order.

Two graphs must be acyclic: the modules themselves, and the units of layering (each package
under ``ggen/`` such as ``ggen.runner`` or ``ggen.cache`` collapsed to one node, and each top-level
module its own node), so that ``runner/`` and ``report/`` never import each other either way.
A failure prints the cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

import pytest

import ggen

ROOT = Path(ggen.__file__).parent

# Loops known and planned to go, each as the set of modules it may run through; a cycle within
# one of them is excused. Keep this empty: the layering is only visible while it is.
KNOWN_LOOPS: tuple[frozenset[str], ...] = ()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement below ``node``, skipping ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _imports_of_statement(other)
            continue
        yield from _imports_of_statement(child)


def _imports_of_statement(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _imports(node)


def imported_modules(name: str, path: Path, known: Set[str]) -> set[str]:
    """The ggen modules that module ``name`` (at ``path``) imports at run time."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from ggen.cache import store`` names a module; ``from ggen.make import Make`` not
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "ggen":
                found.add(target)
    return found


def module_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imported_modules(name, path, modules.keys()) for name, path in modules.items()}


def unit(module: str) -> str:
    """The unit of layering a module belongs to: its package under ggen, or itself."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (ROOT / parts[1]).is_dir()):
        return ".".join(parts[:2])
    return module


def unit_graph(modules: Mapping[str, Set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for name, deps in modules.items():
        here = unit(name)
        units.setdefault(here, set()).update(unit(d) for d in deps if unit(d) != here)
    return units


def find_cycles(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one node (Tarjan), each as a
    path ``a -> b -> ... -> a`` through the component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, component) for component in components]


def _cycle_through(graph: Mapping[str, Set[str]], component: set[str]) -> list[str]:
    """A shortest cycle from the component's first node back to itself (breadth first)."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for dep in sorted(graph[node] & component):
                if dep == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if dep not in parents:
                    parents[dep] = node
                    following.append(dep)
        frontier = following
    raise AssertionError(f"no cycle in component {sorted(component)}")  # pragma: no cover


def _describe(cycles: list[list[str]], graph: Mapping[str, Set[str]]) -> str:
    """Each cycle, then every module caught in it (its strongly connected component), since
    breaking the cycle shown may leave another through the same modules."""
    lines = []
    for cycle in cycles:
        caught = _reaching(graph, cycle[0]) & {n for n in graph if cycle[0] in _reaching(graph, n)}
        lines.append(
            " -> ".join(cycle) + f"\n  (modules in this loop: {', '.join(sorted(caught))})"
        )
    return "\n".join(lines)


def _reaching(graph: Mapping[str, Set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def _unexcused(cycles: list[list[str]]) -> list[list[str]]:
    return [c for c in cycles if not any(set(c) <= known for known in KNOWN_LOOPS)]


def test_no_import_cycle_among_modules() -> None:
    graph = module_graph()
    cycles = _unexcused(find_cycles(graph))
    assert not cycles, "import cycles among ggen's modules:\n" + _describe(cycles, graph)


def test_no_import_cycle_among_packages() -> None:
    graph = unit_graph(module_graph())
    cycles = _unexcused(find_cycles(graph))
    assert not cycles, "import cycles among ggen's packages:\n" + _describe(cycles, graph)


def test_the_reader_sees_lazy_imports_and_skips_type_checking_ones(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from ggen import errors\n"
        "from . import atomic\n"
        "if TYPE_CHECKING:\n"
        "    from ggen.make import Make\n"
        "else:\n"
        "    import ggen.names\n"
        "def later() -> None:\n"
        "    from ggen.cache.store import Store\n"
        "    from .runner import plan\n"
    )
    known = {"ggen", "ggen.errors", "ggen.atomic", "ggen.make", "ggen.names", "ggen.cache",
             "ggen.cache.store", "ggen.runner", "ggen.runner.plan"}  # fmt: skip
    assert imported_modules("ggen.mod", source, known) == {
        "ggen.errors",
        "ggen.atomic",
        "ggen.names",
        "ggen.cache.store",
        "ggen.runner.plan",
    }


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c", "a"]]),
        ({"a": {"b", "d"}, "b": {"a"}, "d": {"e"}, "e": {"d"}}, [["d", "e", "d"], ["a", "b", "a"]]),
    ],
)
def test_cycles_are_found_and_spelled_out(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert find_cycles(graph) == expected


def test_packages_collapse_to_one_unit() -> None:
    assert unit("ggen.runner.run") == "ggen.runner"
    assert unit("ggen.runner") == "ggen.runner"
    assert unit("ggen.make") == "ggen.make"
    assert unit_graph({"ggen.runner.run": {"ggen.report.trace", "ggen.runner.plan"}}) == {
        "ggen.runner": {"ggen.report"}
    }
