"""End-to-end: the real ``ggen`` finds its root from any directory, scopes a run to the
workspace it starts in, and selects workspaces with --filter and --affected on a real git
repository whose commits the tests make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepo import commit, git, init, write
from monorepo import ggen, last_summary, statuses, write_tree

# core <- utils <- api <- plugin (nested inside api); core <- @acme/ui; @acme/docs alone
TREE = {
    "make.toml": """
        [project]
        name = "sel"
        inputs = ["tsconfig.base.json"]

        [workspace.core]
        path = "libs/core"

        [workspace.utils]
        path = "libs/utils"
        depends_on = ["core"]

        [workspace.api]
        path = "services/api"
        depends_on = ["utils"]

        [workspace.plugin]
        path = "services/api/plugins/auth"
        depends_on = ["api"]

        [workspace."@acme/ui"]
        path = "packages/ui"
        depends_on = ["core"]

        [workspace."@acme/docs"]
        path = "packages/docs"

        [lifecycle.build]
        command = "echo built $GGEN_WORKSPACE"
        depends_on = ["^build"]

        [lifecycle.test]
        command = "echo tested $GGEN_WORKSPACE"
        depends_on = ["build"]

        [lifecycle.lint]
        command = "echo linted $GGEN_WORKSPACE"
        workspaces = ["core", "utils"]
    """,
    ".gitignore": ".ggen/\n.ggen-test-cache/\n",
    "tsconfig.base.json": "{}\n",
    "package-lock.json": "{}\n",
    "README.md": "sel\n",
    "tools/lint.sh": "true\n",
    "libs/core/src/a.ts": "core\n",
    "libs/utils/src/a.ts": "utils\n",
    "services/api/src/a.py": "api\n",
    "services/api/make.toml": """
        [lifecycle.test]
        command = "echo api tests"
        depends_on = ["build"]
    """,
    "services/api/plugins/auth/src/a.py": "plugin\n",
    "packages/ui/src/a.ts": "ui\n",
    "packages/docs/index.md": "docs\n",
}
EVERY = {"core", "utils", "api", "plugin", "@acme/ui", "@acme/docs"}
NO_CI = {"GGEN_BASE": "", "GITHUB_BASE_REF": ""}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init(write_tree(tmp_path / "repo", TREE))


def ran(
    repo: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> set[str]:
    """Run ``ggen run ARGS`` (exit 0 expected); the ids of the tasks the run had."""
    r = ggen("run", *args, cwd=cwd or repo, env={**NO_CI, **(env or {})})
    assert r.returncode == 0, r.stderr + r.stdout
    return set(statuses(last_summary(repo)))


def listed(
    repo: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> set[str]:
    """The workspaces ``ggen list --json ARGS`` shows."""
    r = ggen("list", "--json", *args, cwd=cwd or repo, env={**NO_CI, **(env or {})})
    assert r.returncode == 0, r.stderr + r.stdout
    return {w["name"] for w in json.loads(r.stdout)["workspaces"]}


def builds(*names: str) -> set[str]:
    return {f"{n}:build" for n in names}


# ------------------------------------------------------------- root from anywhere, scope


def test_inside_a_workspace_runs_it_and_its_dependencies_only(repo: Path) -> None:
    r = ggen("run", "build", cwd=repo / "libs/utils/src")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0] == "ggen: in workspace utils (use --all for every workspace)"
    assert set(statuses(last_summary(repo))) == builds("core", "utils")
    # a workspace with its own make.toml (no [project] table): the root's is found all the same
    assert ran(repo, "build", "test", cwd=repo / "services/api") == {
        *builds("core", "utils", "api"),
        "api:test",
    }


def test_nested_workspaces_the_deepest_wins(repo: Path) -> None:
    assert ran(repo, "build", cwd=repo / "services/api/plugins/auth/src") == builds(
        "core", "utils", "api", "plugin"
    )
    assert ran(repo, "test", cwd=repo / "services/api/src") == {
        *builds("core", "utils", "api"),
        "api:test",
    }


def test_outside_every_workspace_or_with_all_runs_everything(repo: Path) -> None:
    everything = builds(*EVERY)
    r = ggen("run", "build", cwd=repo / "tools")
    assert r.returncode == 0, r.stderr
    assert "ggen: in workspace" not in r.stderr
    assert set(statuses(last_summary(repo))) == everything
    assert ran(repo, "build", cwd=repo / "services") == everything
    assert ran(repo, "build", "--all", cwd=repo / "libs/core") == everything
    r = ggen("-C", "../utils", "run", "build", cwd=repo / "libs/core")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("ggen: in workspace utils")  # -C first, then the scope
    assert set(statuses(last_summary(repo))) == builds("core", "utils")
    assert ran(repo, "build", cwd=repo) == everything


def test_other_commands_inside_a_workspace(repo: Path) -> None:
    inside = repo / "libs/utils"
    # list and status describe the whole project
    assert listed(repo, cwd=inside) == EVERY
    assert ggen("run", "build", cwd=inside).returncode == 0
    status = ggen("status", cwd=inside)
    assert status.returncode == 0 and "core" in status.stdout and "utils" in status.stdout
    # graph draws what run would run; explain is about the workspace you are in
    graph = ggen("graph", "build", "-f", "json", cwd=inside)
    assert graph.returncode == 0, graph.stderr
    assert {t["id"] for t in json.loads(graph.stdout)["tasks"]} == builds("core", "utils")
    assert graph.stderr.startswith("ggen: in workspace utils")
    explain = ggen("explain", "build", cwd=inside)
    assert explain.returncode == 0, explain.stderr
    assert "utils:build" in explain.stdout


def test_all_with_a_selection_is_a_usage_error(repo: Path) -> None:
    r = ggen("run", "build", "--all", "-F", "core", cwd=repo)
    assert r.returncode == 2
    assert "--all selects every workspace" in r.stderr


def test_no_project_above_is_still_not_found(tmp_path: Path) -> None:
    lone = write(tmp_path / "x", "sub/make.toml", '[lifecycle.build]\ncommand = "true"\n')
    r = ggen("run", "build", cwd=lone.parent)
    assert r.returncode == 2
    assert "missing [project] table" in r.stderr


# ---------------------------------------------------------------------------- --filter


def test_names_globs_and_closures(repo: Path) -> None:
    assert listed(repo, "--filter", "api") == {"api"}
    assert listed(repo, "--filter", "@acme/*") == {"@acme/ui", "@acme/docs"}
    assert listed(repo, "--filter", "api...") == {"api", "utils", "core"}
    assert listed(repo, "--filter", "api^...") == {"utils", "core"}
    assert listed(repo, "-F", "...utils") == {"utils", "api", "plugin"}
    assert listed(repo, "-F", "...^utils") == {"api", "plugin"}
    assert listed(repo, "-F", "...core", "-F", "!@acme/*") == {"core", "utils", "api", "plugin"}
    assert listed(repo, "-F", "!@acme/docs") == EVERY - {"@acme/docs"}
    assert listed(repo, "-F", "@acme/ui", "-w", "utils") == {"@acme/ui", "utils"}


def test_directories_are_relative_to_where_ggen_starts(repo: Path) -> None:
    assert listed(repo, "-F", "./packages/*") == {"@acme/ui", "@acme/docs"}
    assert listed(repo, "-F", "./services") == {"api", "plugin"}
    assert listed(repo, "-F", "./ui", cwd=repo / "packages") == {"@acme/ui"}
    assert listed(repo, "-F", ".", cwd=repo / "libs") == {"core", "utils"}
    assert listed(repo, "-F", "//libs/*", cwd=repo / "packages") == {"core", "utils"}
    r = ggen("list", "-F", "../..", cwd=repo / "libs")
    assert r.returncode == 2
    assert "is outside the project root" in r.stderr


def test_run_plans_the_selection_with_its_dependencies(repo: Path) -> None:
    r = ggen("run", "build", "-F", "@acme/ui", "-F", "utils", cwd=repo, env=NO_CI)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0] == (
        "ggen: --filter @acme/ui --filter utils: 2 of 6 workspaces: utils, @acme/ui"
    )
    assert set(statuses(last_summary(repo))) == builds("core", "utils", "@acme/ui")
    # a filter inside a workspace replaces the scope of that workspace
    assert ran(repo, "build", "-F", "@acme/docs", cwd=repo / "libs/core") == builds("@acme/docs")


def test_graph_shows_the_selection(repo: Path) -> None:
    r = ggen("graph", "build", "test", "-F", "...api", "-f", "json", cwd=repo)
    assert r.returncode == 0, r.stderr
    ids = {t["id"] for t in json.loads(r.stdout)["tasks"]}
    assert ids == {*builds("core", "utils", "api", "plugin"), "api:test", "plugin:test"}


def test_unknown_name_is_exit_2_with_a_suggestion(repo: Path) -> None:
    for args in (["run", "build", "-F", "...utlis"], ["list", "-F", "utlis"]):
        r = ggen(*args, cwd=repo)
        assert r.returncode == 2, r.stderr
        assert 'unknown workspace "utlis", did you mean "utils"?' in r.stderr
        assert "Traceback" not in r.stderr
    assert not (repo / ".ggen" / "runs").exists()
    r = ggen("list", "-w", "utlis", cwd=repo)
    assert r.returncode == 2
    assert '-w utlis: unknown workspace "utlis", did you mean "utils"?' in r.stderr


def test_a_filter_matching_nothing_runs_nothing_and_succeeds(repo: Path) -> None:
    r = ggen("run", "build", "-F", "@nobody/*", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "ggen: --filter @nobody/*: no workspace selected" in r.stderr
    assert not (repo / ".ggen" / "runs").exists()
    assert listed(repo, "-F", "@nobody/*") == set()
    r = ggen("list", "-F", "@nobody/*", cwd=repo)
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr == "ggen: --filter @nobody/*: no workspace selected\n"


def test_a_selection_without_tasks_of_the_phase_runs_nothing(repo: Path) -> None:
    r = ggen("run", "lint", "-F", "@acme/*", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "ggen: nothing to run: no lint task there" in r.stderr
    assert not (repo / ".ggen" / "runs").exists()
    assert ran(repo, "lint", "build", "-F", "@acme/*") == builds("core", "@acme/ui", "@acme/docs")
    r = ggen("run", "lnit", "-F", "@acme/*", cwd=repo)
    assert r.returncode == 2
    assert 'unknown phase "lnit", did you mean "lint"?' in r.stderr


# ----------------------------------------------------------------- [REF] and --affected


def test_ref_selectors_see_committed_staged_unstaged_and_untracked(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    write(repo, "libs/utils/src/b.ts", "committed\n")
    commit(repo, "utils: b")
    assert listed(repo, "-F", f"[{base}]") == {"utils"}
    assert listed(repo, "-F", "[HEAD]") == set()
    write(repo, "packages/docs/new.md", "untracked\n")
    assert listed(repo, "-F", "[HEAD]") == {"@acme/docs"}
    write(repo, "libs/core/src/a.ts", "unstaged\n")
    write(repo, "services/api/plugins/auth/src/b.py", "staged\n")
    git(repo, "add", "services/api/plugins/auth/src/b.py")
    # plugin's file is also api's: api's files are every file below it
    assert listed(repo, "-F", "[HEAD]") == {"@acme/docs", "core", "plugin", "api"}
    assert listed(repo, "-F", f"[{base}]") == {"@acme/docs", "core", "plugin", "api", "utils"}
    assert listed(repo, "-F", "...[HEAD~1]", "-F", "!@acme/docs") == EVERY - {"@acme/docs"}
    assert listed(repo, "-F", "./packages/*[HEAD]") == {"@acme/docs"}
    assert listed(repo, "-F", "[HEAD]...", "-F", "!core") == {
        "@acme/docs",
        "utils",
        "api",
        "plugin",
    }


def test_root_files_affect_everything_or_nothing(repo: Path) -> None:
    write(repo, "README.md", "changed\n")
    write(repo, "tools/lint.sh", "changed\n")
    assert listed(repo, "-F", "[HEAD]") == set()
    write(repo, "package-lock.json", '{"lockfileVersion": 3}\n')  # a lockfile
    assert listed(repo, "-F", "[HEAD]") == EVERY
    git(repo, "checkout", "--", "package-lock.json")
    write(repo, "tsconfig.base.json", '{"strict": true}\n')  # a [project] inputs file
    assert listed(repo, "-F", "[HEAD]") == EVERY
    git(repo, "checkout", "--", "tsconfig.base.json")
    write(repo, "services/api/make.toml", TREE["services/api/make.toml"] + "# edited\n")
    assert listed(repo, "-F", "[HEAD]") == {"api"}  # a workspace's own make.toml
    # ggen's own files (state, logs, the cache of these tests) never count
    assert ggen("run", "build", cwd=repo / "libs/core").returncode == 0
    assert listed(repo, "-F", "[HEAD]") == {"api"}


def test_affected_on_a_branch_is_changed_plus_dependents(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "libs/utils/src/c.ts", "feature\n")
    commit(repo, "utils: c")
    git(repo, "checkout", "-q", "main")
    write(repo, "packages/ui/src/a.ts", "main moved\n")
    commit(repo, "ui on main")
    git(repo, "checkout", "-q", "feature")
    # the merge base, not main's tip: ui's change on main is not this branch's
    r = ggen("run", "build", "--affected", cwd=repo, env=NO_CI)
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("ggen: --affected (since ")
    assert first.endswith("merge base with main): 3 of 6 workspaces: utils, api, plugin")
    assert set(statuses(last_summary(repo))) == builds("core", "utils", "api", "plugin")
    assert listed(repo, "--affected", "-F", "!plugin") == {"utils", "api"}
    assert listed(repo, "-F", "[main...feature]") == {"utils"}  # a range: commits only
    assert listed(repo, "-F", "...[feature...main]") == {"@acme/ui"}
    # an untracked file counts too
    write(repo, "packages/docs/draft.md")
    assert listed(repo, "--affected") == {"utils", "api", "plugin", "@acme/docs"}


def test_affected_with_github_base_ref_and_ggen_base(repo: Path, tmp_path: Path) -> None:
    # main: initial -> docs change; release: forks there -> ui change; pr: forks release -> core
    write(repo, "packages/docs/index.md", "on main\n")
    commit(repo, "docs on main")
    git(repo, "checkout", "-q", "-b", "release")
    write(repo, "packages/ui/src/a.ts", "release fix\n")
    commit(repo, "ui fix on release")
    git(repo, "checkout", "-q", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "release", repo.as_posix(), clone.as_posix())
    git(clone, "checkout", "-q", "-b", "pr")
    write(clone, "packages/docs/guide.md")
    commit(clone, "docs in the pull request")
    # without GITHUB_BASE_REF the base is main (only origin/main in the clone)
    assert listed(clone, "--affected") == {"@acme/ui", "@acme/docs"}
    on_ci = {"GITHUB_BASE_REF": "release"}
    assert listed(clone, "--affected", env=on_ci) == {"@acme/docs"}
    r = ggen("list", "--affected", cwd=clone, env={**NO_CI, **on_ci})
    assert "merge base with origin/release" in r.stderr
    # GGEN_BASE wins over both
    assert listed(clone, "--affected", env={**on_ci, "GGEN_BASE": "HEAD"}) == set()
    assert listed(clone, "--affected", env={**on_ci, "GGEN_BASE": "HEAD~2"}) == {
        "@acme/ui",
        "@acme/docs",
    }


def test_lockfile_change_on_a_branch_affects_everything(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "deps")
    write(repo, "package-lock.json", '{"packages": {}}\n')
    commit(repo, "bump dependencies")
    assert ran(repo, "build", "--affected") == builds(*EVERY)


def test_bad_ref_and_not_a_repository_are_exit_2(repo: Path, tmp_path: Path) -> None:
    r = ggen("run", "build", "-F", "...[nope]", cwd=repo)
    assert r.returncode == 2
    assert 'ggen: error: unknown git revision "nope"' in r.stderr
    r = ggen("list", "--affected", cwd=repo, env={"GGEN_BASE": "v0.0.0"})
    assert r.returncode == 2
    assert 'GGEN_BASE: unknown git revision "v0.0.0"' in r.stderr
    plain = write_tree(tmp_path / "plain", TREE)
    for args in (["run", "build", "--affected"], ["list", "-F", "[main]"]):
        r = ggen(*args, cwd=plain, env=NO_CI)
        assert r.returncode == 2, r.stderr
        assert "is not inside a git work tree" in r.stderr
        assert "Traceback" not in r.stderr
    # without any base branch
    git(repo, "branch", "-m", "main", "trunk")
    r = ggen("run", "build", "--affected", cwd=repo, env=NO_CI)
    assert r.returncode == 2
    assert "--affected: no base branch" in r.stderr
