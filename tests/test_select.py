"""Workspace selection: --filter parsing and rules, changed files -> workspaces, the workspace
ggen starts in. Pure: no git, nothing runs (tests/test_select_e2e.py runs the real ggen)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ggen.errors import UsageError
from ggen.make import Make, Phase, Project, Workspace
from ggen.runner.select import (
    Closure,
    Selector,
    WorkspaceGraph,
    affected_by,
    check_names,
    has_tasks,
    matches,
    parse_filter,
    resolve_selection,
    select,
    workspace_at,
)

# core <- utils <- api <- plugin (nested in api); core <- @acme/ui; @acme/docs alone
GRAPH = WorkspaceGraph(
    paths={
        "core": "libs/core",
        "utils": "libs/utils",
        "api": "services/api",
        "plugin": "services/api/plugins/auth",
        "@acme/ui": "packages/ui",
        "@acme/docs": "packages/docs",
    },
    deps={
        "core": (),
        "utils": ("core",),
        "api": ("utils",),
        "plugin": ("api",),
        "@acme/ui": ("core",),
        "@acme/docs": (),
    },
)
ALL = GRAPH.names


def chosen(
    *filters: str, cwd: str = "", changed: dict[str, frozenset[str]] | None = None
) -> set[str]:
    sels = [parse_filter(f, cwd) for f in filters]
    check_names(GRAPH, sels)
    return set(select(GRAPH, sels, changed))


# -------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("api", {"name": "api"}),
        ("@acme/*", {"name": "@acme/*"}),
        ("api...", {"name": "api", "dependencies": Closure.WITH_SELF}),
        ("api^...", {"name": "api", "dependencies": Closure.WITHOUT_SELF}),
        ("...core", {"name": "core", "dependents": Closure.WITH_SELF}),
        ("...^core", {"name": "core", "dependents": Closure.WITHOUT_SELF}),
        ("!@acme/docs", {"name": "@acme/docs", "exclude": True}),
        ("[main]", {"ref": "main"}),
        ("...[origin/main]", {"ref": "origin/main", "dependents": Closure.WITH_SELF}),
        ("[HEAD~2]...", {"ref": "HEAD~2", "dependencies": Closure.WITH_SELF}),
        ("./packages/*", {"directory": "packages/*"}),
        ("./packages/*[main]", {"directory": "packages/*", "ref": "main"}),
        ("{packages}", {"directory": "packages"}),
        ("//libs", {"directory": "libs"}),
        (".", {"directory": ""}),
        ("@acme/*[v1.0]", {"name": "@acme/*", "ref": "v1.0"}),
    ],
)
def test_parse_filter(text: str, fields: dict[str, object]) -> None:
    sel = parse_filter(text)
    expected = Selector(text=text, **fields)  # type: ignore[arg-type]
    assert sel == expected


def test_directories_are_relative_to_the_current_directory() -> None:
    assert parse_filter("./ui", "packages").directory == "packages/ui"
    assert parse_filter("../libs/*", "packages").directory == "libs/*"
    assert parse_filter(".", "packages").directory == "packages"
    assert parse_filter("//libs", "packages").directory == "libs"  # // starts at the root
    assert parse_filter("..", "packages").directory == ""


@pytest.mark.parametrize(
    ("text", "cwd", "message"),
    [
        ("", "", "selects nothing"),
        ("!", "", "selects nothing"),
        ("...", "", "selects nothing"),
        ("[]", "", 'empty git revision "[]"'),
        ("..", "", "is outside the project root"),
        ("../../x", "packages", "is outside the project root"),
    ],
)
def test_parse_errors(text: str, cwd: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as err:
        parse_filter(text, cwd)
    assert err.value.exit_code == 2
    assert f'--filter "{text}"' in str(err.value)


# ------------------------------------------------------------------------------- selection


def test_names_globs_and_closures() -> None:
    assert chosen("api") == {"api"}
    assert chosen("@acme/*") == {"@acme/ui", "@acme/docs"}
    assert chosen("api...") == {"api", "utils", "core"}
    assert chosen("api^...") == {"utils", "core"}
    assert chosen("...utils") == {"utils", "api", "plugin"}
    assert chosen("...^utils") == {"api", "plugin"}
    assert chosen("...utils...") == {"core", "utils", "api", "plugin"}


def test_union_and_exclusion() -> None:
    assert chosen("api", "@acme/ui") == {"api", "@acme/ui"}
    assert chosen("...core", "!@acme/*") == {"core", "utils", "api", "plugin"}
    assert chosen("!@acme/docs") == ALL - {"@acme/docs"}  # only exclusions: from everything
    assert chosen("!...utils", "!@acme/*") == {"core"}


def test_directories_select_at_and_below() -> None:
    assert chosen("./packages/*") == {"@acme/ui", "@acme/docs"}
    assert chosen("./services") == {"api", "plugin"}  # no glob: everything below
    assert chosen("./services/api/plugins/*") == {"plugin"}
    assert chosen("./ui", cwd="packages") == {"@acme/ui"}
    assert chosen(".", cwd="libs") == {"core", "utils"}
    assert chosen(".") == ALL
    assert chosen("./nowhere/*") == set()


def test_refs_select_changed_workspaces() -> None:
    changed = {"main": frozenset({"utils"})}
    assert chosen("[main]", changed=changed) == {"utils"}
    assert chosen("...[main]", changed=changed) == {"utils", "api", "plugin"}
    assert chosen("[main]...", changed=changed) == {"utils", "core"}
    assert chosen("./libs/*[main]", changed=changed) == {"utils"}
    assert chosen("./packages/*[main]", changed=changed) == set()
    assert chosen("...[main]", "!plugin", changed=changed) == {"utils", "api"}


def test_unknown_name_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(UsageError) as err:
        chosen("...utlis")
    assert str(err.value).startswith('--filter "...utlis": unknown workspace "utlis"')
    assert 'did you mean "utils"?' in str(err.value)
    with pytest.raises(UsageError, match=r"a directory\? write \./libs/core"):
        chosen("libs/core")
    with pytest.raises(UsageError, match='-w apj: unknown workspace "apj", did you mean "api"'):
        check_names(GRAPH, [Selector(text="apj", name="apj", literal=True)])
    # a glob that matches nothing is not an error: the selection is just empty
    assert chosen("@nobody/*") == set()


def test_literal_names_do_not_glob() -> None:
    graph = WorkspaceGraph({"a*": "a", "ab": "b"}, {})
    assert matches(graph, Selector(text="a*", name="a*", literal=True), {}) == {"a*"}
    assert matches(graph, Selector(text="a*", name="a*"), {}) == {"a*", "ab"}


# ------------------------------------------------------------------------ changed files


def test_files_affect_every_workspace_that_holds_them() -> None:
    assert affected_by(GRAPH, ["libs/core/src/a.ts"]) == {"core"}
    assert affected_by(GRAPH, ["services/api/src/x.py"]) == {"api"}
    assert affected_by(GRAPH, ["services/api/plugins/auth/x.py"]) == {"plugin", "api"}
    assert affected_by(GRAPH, ["libs/core2/x"]) == set()  # a sibling with a common prefix
    assert affected_by(GRAPH, ["packages/ui/make.toml"]) == {"@acme/ui"}
    assert affected_by(GRAPH, ["packages/ui/Cargo.lock"]) == {"@acme/ui"}


def test_root_files_affect_everything_or_nothing() -> None:
    assert affected_by(GRAPH, ["README.md", "docs/guide.md"]) == set()
    assert affected_by(GRAPH, ["make.toml"]) == ALL
    for manifest in ("package.json", "pnpm-workspace.yaml", "Cargo.toml", "pyproject.toml"):
        assert affected_by(GRAPH, [manifest]) == ALL, manifest
        assert affected_by(GRAPH, [f"tools/{manifest}"]) == set(), manifest  # not the root's
    for lock in ("package-lock.json", "pnpm-lock.yaml", "yarn.lock", "Cargo.lock", "uv.lock"):
        assert affected_by(GRAPH, [lock]) == ALL, lock
    inputs = ["tsconfig.base.json", "tools/**"]
    assert affected_by(GRAPH, ["tools/gen/x.py"], inputs) == ALL
    assert affected_by(GRAPH, ["tsconfig.base.json"], inputs) == ALL
    assert affected_by(GRAPH, ["tsconfig.json"], inputs) == set()
    # ggen's and git's own files never count
    assert affected_by(GRAPH, [".ggen/state.json", "libs/core/.ggen/logs/x.log"]) == set()


def test_a_declared_root_workspace_owns_the_files_of_no_other() -> None:
    graph = WorkspaceGraph({".": ".", "core": "libs/core"}, {"core": (".",), ".": ()})
    assert affected_by(graph, ["README.md"]) == {"."}
    assert affected_by(graph, ["libs/core/x"]) == {"core", "."}  # "." holds every file
    assert affected_by(graph, ["pnpm-lock.yaml"]) == {".", "core"}
    assert workspace_at(graph, "") is None  # the root is not "inside a workspace"
    assert workspace_at(graph, "libs/core/src") == "core"
    assert workspace_at(graph, "docs") is None


# ----------------------------------------------------------- the workspace ggen starts in


def _make(root: Path) -> Make:
    return Make(
        root=str(root.resolve()),
        project=Project("p"),
        workspaces=tuple(Workspace(n, p, depends_on=GRAPH.deps[n]) for n, p in GRAPH.paths.items()),
    )


def test_scope_is_the_workspace_started_in(tmp_path: Path) -> None:
    make = _make(tmp_path)
    inside = resolve_selection(make, str(tmp_path / "services/api/src"))
    assert inside.workspaces == ("api",)
    assert inside.note == "in workspace api (use --all for every workspace)"
    nested = resolve_selection(make, str(tmp_path / "services/api/plugins/auth"))
    assert nested.workspaces == ("plugin",)
    for everything in (
        resolve_selection(make, str(tmp_path)),
        resolve_selection(make, str(tmp_path / "services")),
        resolve_selection(make, str(tmp_path / "services/api"), all_=True),
        resolve_selection(make, str(tmp_path / "services/api"), scope=False),
    ):
        assert everything.workspaces is None
        assert everything.note is None


def test_w_passes_through_and_joins_filters(tmp_path: Path) -> None:
    make = _make(tmp_path)
    assert resolve_selection(make, str(tmp_path / "libs/core"), workspaces=["api"]).workspaces == (
        "api",
    )
    both = resolve_selection(make, str(tmp_path), filters=["@acme/*"], workspaces=["core"])
    assert both.workspaces == ("core", "@acme/ui", "@acme/docs")
    assert both.note == "--filter @acme/*: 3 of 6 workspaces: core, @acme/ui, @acme/docs"
    none = resolve_selection(make, str(tmp_path), filters=["@nobody/*"])
    assert none.empty
    assert none.note == "--filter @nobody/*: no workspace selected"


# ---------------------------------------------------------------------- properties


@st.composite
def graphs(draw: st.DrawFn) -> WorkspaceGraph:
    """Random acyclic workspace graphs: workspace i may depend only on workspaces j < i."""
    n = draw(st.integers(1, 8))
    names = [f"w{i}" for i in range(n)]
    deps = {names[i]: tuple(names[j] for j in range(i) if draw(st.booleans())) for i in range(n)}
    return WorkspaceGraph({name: f"pkgs/{name}" for name in names}, deps)


@st.composite
def graph_and_name(draw: st.DrawFn) -> tuple[WorkspaceGraph, str, str]:
    g = draw(graphs())
    names = sorted(g.names)
    return g, draw(st.sampled_from(names)), draw(st.sampled_from(names))


def sel(g: WorkspaceGraph, *texts: str) -> frozenset[str]:
    return select(g, [parse_filter(t) for t in texts])


@settings(max_examples=200, deadline=None)
@given(graph_and_name())
def test_closures_contain_what_they_start_from(case: tuple[WorkspaceGraph, str, str]) -> None:
    g, x, _ = case
    assert sel(g, x) == {x}
    assert sel(g, f"...{x}") == {x} | sel(g, f"...^{x}")
    assert sel(g, f"{x}...") == {x} | sel(g, f"{x}^...")
    assert x not in sel(g, f"!{x}")
    assert sel(g, f"!{x}") == g.names - {x}
    # closed: what X... selects holds every dependency of its members (dependents for ...X)
    up = sel(g, f"{x}...")
    assert all(set(g.deps[m]) <= up for m in up)
    down = sel(g, f"...{x}")
    assert all(m in down for m in g.names if set(g.deps[m]) & down)


@settings(max_examples=200, deadline=None)
@given(graph_and_name())
def test_dependencies_and_dependents_are_mirror_images(
    case: tuple[WorkspaceGraph, str, str],
) -> None:
    g, x, y = case
    assert (y in g.dependencies([x])) == (x in g.dependents([y]))
    assert x not in g.dependencies([x])  # acyclic
    assert sel(g, f"{x}...", f"...{x}") == sel(g, f"...{x}...")


@settings(max_examples=200, deadline=None)
@given(graph_and_name(), st.sampled_from(["", "...", "^..."]), st.sampled_from(["", "..."]))
def test_union_and_exclusion_laws(
    case: tuple[WorkspaceGraph, str, str], suffix: str, prefix: str
) -> None:
    g, x, y = case
    a, b = f"{prefix}{x}{suffix}", f"{y}{suffix}"
    assert sel(g, a, b) == sel(g, a) | sel(g, b)
    assert sel(g, a, f"!{b}") == sel(g, a) - sel(g, b)
    assert sel(g, a, f"!{b}").isdisjoint(sel(g, b))
    assert sel(g, f"!{a}", f"!{b}") == g.names - sel(g, a) - sel(g, b)


@settings(max_examples=200, deadline=None)
@given(
    graphs(),
    st.lists(st.sampled_from(["pkgs/w0/a", "pkgs/w1/b/c", "pkgs/w3/d", "README.md", "x/y"])),
    st.lists(st.sampled_from(["pkgs/w2/e", "yarn.lock", "pkgs/w10/f", ".ggen/s.json"])),
)
def test_changed_files_map_to_workspaces_file_by_file(
    g: WorkspaceGraph, first: list[str], second: list[str]
) -> None:
    both = affected_by(g, [*first, *second])
    assert both == affected_by(g, first) | affected_by(g, second)
    assert both <= g.names
    changed = {"r": affected_by(g, first)}
    assert select(g, [parse_filter("[r]")], changed) == changed["r"]
    assert select(g, [parse_filter("...[r]")], changed) >= changed["r"]


def test_has_tasks_follows_the_planners_rule(tmp_path: Path) -> None:
    make = Make(
        root=str(tmp_path),
        project=Project("p"),
        workspaces=(
            Workspace("a", "a"),
            Workspace("b", "b", phases=(Phase("own", ("true",)),)),
        ),
        lifecycle=(Phase("build", ("true",)), Phase("lint", ("true",), workspaces=("a",))),
    )
    assert has_tasks(make, ["build"], ["b"])
    assert not has_tasks(make, ["lint"], ["b"])
    assert has_tasks(make, ["lint", "build"], ["b"])
    assert has_tasks(make, ["own"], ["b"]) and not has_tasks(make, ["own"], ["a"])
    assert not has_tasks(make, ["build"], [])
    assert has_tasks(make, ["nope"], ["a"])  # unknown: left for the planner to report
