"""The planner: phases, workspaces, depends_on, hooks, order, cycles. Nothing runs here."""

from __future__ import annotations

import pytest

from ggen.errors import CycleError, UsageError
from ggen.make import Hooks, Make, Phase, Project, Workspace
from ggen.runner.plan import build_plan


def make_project(
    phases: list[Phase], hooks: Hooks | None = None, workspaces: list[Workspace] | None = None
) -> Make:
    ws = (
        workspaces
        if workspaces is not None
        else [
            Workspace("core", "libs/core"),
            Workspace("utils", "libs/utils", depends_on=("core",)),
            Workspace("api", "services/api", depends_on=("core", "utils")),
            Workspace("@acme/ui", "packages/ui"),
        ]
    )
    return Make(
        root="/tmp/p",
        project=Project("p"),
        workspaces=tuple(ws),
        lifecycle=tuple(phases),
        hooks=hooks or Hooks(),
    )


def deps_of(plan, tid):  # type: ignore[no-untyped-def]
    return set(plan.task(tid).deps)


def test_caret_dependencies_follow_workspace_graph() -> None:
    make = make_project([Phase("build", ("true",), depends_on=("^build",))])
    plan = build_plan(make, ["build"])
    ids = [t.id for t in plan.tasks]
    assert set(ids) == {"core:build", "utils:build", "api:build", "@acme/ui:build"}
    assert deps_of(plan, "api:build") == {"core:build", "utils:build"}
    assert deps_of(plan, "utils:build") == {"core:build"}
    assert ids.index("core:build") < ids.index("utils:build") < ids.index("api:build")


def test_workspace_filter_still_pulls_in_dependencies() -> None:
    make = make_project([Phase("build", ("true",), depends_on=("^build",))])
    plan = build_plan(make, ["build"], ["api"])
    assert {t.id for t in plan.tasks} == {"core:build", "utils:build", "api:build"}


def test_phases_run_in_command_line_order_per_workspace() -> None:
    make = make_project([Phase("build", ("true",)), Phase("test", ("true",))])
    plan = build_plan(make, ["build", "test"])
    assert deps_of(plan, "core:test") == {"core:build"}
    assert deps_of(plan, "core:build") == set()


def test_order_does_not_fight_explicit_dependency() -> None:
    make = make_project(
        [Phase("build", ("true",)), Phase("test", ("true",), depends_on=("build",))]
    )
    plan = build_plan(make, ["test", "build"])  # test asked first, but depends on build
    assert deps_of(plan, "core:test") == {"core:build"}
    assert deps_of(plan, "core:build") == set()


def test_phase_workspaces_list_is_honoured() -> None:
    make = make_project([Phase("deploy", ("true",), workspaces=("api", "."))])
    plan = build_plan(make, ["deploy"])
    assert {t.id for t in plan.tasks} == {"api:deploy", ".:deploy"}


def test_before_all_runs_once_before_everything() -> None:
    hooks = Hooks(before_all=("check",), after_all=("report",))
    make = make_project(
        [
            Phase("check", ("true",)),
            Phase("build", ("true",)),
            Phase("test", ("true",)),
            Phase("report", ("true",)),
        ],
        hooks,
    )
    plan = build_plan(make, ["build", "test"])
    ids = [t.id for t in plan.tasks]
    assert ids.count(".:check") == 1 and ids[0] == ".:check"
    assert ids.count(".:report") == 1 and ids[-1] == ".:report"
    for t in plan.tasks:
        if t.id != ".:check":
            assert ".:check" in t.deps
        if t.id not in (".:check", ".:report"):
            assert ".:check" not in t.key_deps  # ordering only: not part of the key
    report = plan.task(".:report")
    assert set(report.deps) >= {f"{w}:test" for w in ("core", "utils", "api", "@acme/ui")}


def test_before_and_after_hooks_on_same_workspace() -> None:
    hooks = Hooks(before=(("build", ("lint",)),), after=(("build", ("docs",)),))
    make = make_project(
        [Phase("lint", ("true",)), Phase("build", ("true",)), Phase("docs", ("true",))], hooks
    )
    plan = build_plan(make, ["build"], ["core"])
    assert deps_of(plan, "core:build") == {"core:lint"}
    assert deps_of(plan, "core:docs") == {"core:build"}


def test_hook_cycle_is_reported_before_anything_runs() -> None:
    hooks = Hooks(before=(("build", ("test",)), ("test", ("build",))))
    make = make_project([Phase("build", ("true",)), Phase("test", ("true",))], hooks)
    with pytest.raises(CycleError) as err:
        build_plan(make, ["build"])
    assert "build -> test -> build" in str(err.value) or "test -> build -> test" in str(err.value)


def test_depends_on_cycle_is_reported() -> None:
    make = make_project(
        [Phase("a", ("true",), depends_on=("b",)), Phase("b", ("true",), depends_on=("a",))]
    )
    with pytest.raises(CycleError) as err:
        build_plan(make, ["a"])
    assert "a -> b -> a" in str(err.value) or "b -> a -> b" in str(err.value)


def test_before_all_hook_recursing_into_itself_is_a_cycle_not_a_hang() -> None:
    hooks = Hooks(before_all=("check",), before=(("check", ("check",)),))
    make = make_project([Phase("check", ("true",)), Phase("build", ("true",))], hooks)
    with pytest.raises(CycleError, match="check -> check"):
        build_plan(make, ["build"])


def test_unknown_phase_and_workspace_suggest_fix() -> None:
    make = make_project([Phase("build", ("true",))])
    with pytest.raises(UsageError, match='unknown phase "biuld", did you mean "build"'):
        build_plan(make, ["biuld"])
    with pytest.raises(UsageError, match='unknown workspace "cor", did you mean "core"'):
        build_plan(make, ["build"], ["cor"])


def test_parallel_false_marks_tasks_exclusive() -> None:
    make = make_project([Phase("deploy", ("true",), parallel=False)])
    plan = build_plan(make, ["deploy"])
    assert all(t.exclusive for t in plan.tasks)


def test_on_error_tasks_are_a_separate_plan() -> None:
    hooks = Hooks(on_error=("cleanup",))
    make = make_project([Phase("build", ("true",)), Phase("cleanup", ("true",))], hooks)
    plan = build_plan(make, ["build"])
    assert ".:cleanup" not in {t.id for t in plan.tasks}
    assert [t.id for t in plan.on_error] == [".:cleanup"]


def test_workspace_override_phase_applies_only_there() -> None:
    ws = [Workspace("a", "a", phases=(Phase("gen", ("echo own",)),)), Workspace("b", "b")]
    make = make_project([Phase("build", ("true",))], workspaces=ws)
    plan = build_plan(make, ["gen"])
    assert [t.id for t in plan.tasks] == ["a:gen"]


LONG = 3000  # far deeper than Python's default recursion limit (1000)


def test_a_chain_of_thousands_of_phases_is_planned_in_order() -> None:
    phases = [
        Phase(f"p{i}", ("true",), depends_on=(f"p{i + 1}",) if i + 1 < LONG else ())
        for i in range(LONG)
    ]
    plan = build_plan(make_project(phases, workspaces=[]), ["p0"])
    assert [t.id for t in plan.tasks] == [f".:p{i}" for i in reversed(range(LONG))]
    assert deps_of(plan, ".:p0") == {".:p1"}


def test_a_long_depends_on_cycle_is_named_whole() -> None:
    phases = [Phase(f"p{i}", ("true",), depends_on=(f"p{(i + 1) % LONG}",)) for i in range(LONG)]
    with pytest.raises(CycleError) as err:
        build_plan(make_project(phases, workspaces=[]), ["p0"])
    names = str(err.value).split(": ", 2)[-1].split(" (")[0].split(" -> ")
    assert len(names) == LONG + 1 and names[0] == names[-1]


def test_a_long_cycle_closed_by_after_hooks_is_found_after_expansion() -> None:
    # p0 needs p{LONG-1}; after_p{i} runs p{i+1}, so p{LONG-1} comes after p{LONG-2} ... after
    # p0: a cycle the expansion cannot see, found when the tasks are ordered
    last = LONG - 1
    phases = [Phase("p0", ("true",), depends_on=(f"p{last}",))]
    phases += [Phase(f"p{i}", ("true",)) for i in range(1, LONG)]
    hooks = Hooks(after=tuple((f"p{i}", (f"p{i + 1}",)) for i in range(last)))
    with pytest.raises(CycleError) as err:
        build_plan(make_project(phases, hooks, workspaces=[]), ["p0"])
    assert f"p{last} -> p0" in str(err.value) or f"p0 -> p{last}" in str(err.value)
