"""End-to-end: the real ``ggen`` command on temporary monorepos (issue: core run)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from monorepo import SMALL, ggen, last_summary, statuses, write_tree


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", SMALL)


def test_build_test_runs_everything_in_dependency_order(small: Path) -> None:
    r = ggen("run", "build", "test", "--parallel", cwd=small)
    assert r.returncode == 0, r.stderr + r.stdout
    summary = last_summary(small)
    tasks = {t["id"]: t for t in summary["tasks"]}
    assert set(statuses(summary).values()) == {"ok"}
    assert len(tasks) == 8
    for t in tasks.values():
        for dep in t["deps"]:
            assert tasks[dep]["finished_ms"] <= t["started_ms"], (dep, t["id"])
    assert (small / "services/api/dist/out.txt").read_text() == "api a\n"
    # state files: root and per workspace, with the old system's fields
    root_state = orjson.loads((small / ".ggen/state.json").read_bytes())
    assert root_state["last_run"]["run_id"] == summary["run_id"]
    ws_state = orjson.loads((small / "libs/core/.ggen/state.json").read_bytes())
    assert ws_state["last_phase"] in ("build", "test")
    assert {h["phase"] for h in ws_state["phase_history"]} == {"build", "test"}
    assert ws_state["cache_keys"]["build"] == tasks["core:build"]["key"]
    assert ws_state["phases"]["test"]["status"] == "ok"
    # the closing line sums up
    assert "8 tasks, 8 ran, 0 cached, 0 failed" in r.stdout


def test_failing_test_exits_1_shows_log_and_does_not_start_dependents(tmp_path: Path) -> None:
    files = dict(SMALL)
    files["make.toml"] = (
        SMALL["make.toml"]
        + """
        [lifecycle.deploy]
        command = "echo deploying > deployed.txt"
        depends_on = ["test", "^deploy"]
        """
    )
    repo = write_tree(tmp_path / "repo", files)
    (repo / "libs/utils/src/a.txt").write_text("")  # utils' test needs a non-empty dist
    r = ggen("run", "build", "test", "deploy", "-j2", cwd=repo)
    assert r.returncode == 1
    summary = last_summary(repo)
    st = statuses(summary)
    assert st["utils:test"] == "failed"
    assert st["utils:deploy"] == "skipped"
    assert st["api:deploy"] == "skipped"  # depends on utils through ^deploy
    assert not (repo / "libs/utils/deployed.txt").exists()
    assert not (repo / "services/api/deployed.txt").exists()
    assert "utils:test [failed]" in r.stdout
    assert "exit code 1" in r.stdout
    state = orjson.loads((repo / "libs/utils/.ggen/state.json").read_bytes())
    assert state["phases"]["test"]["status"] == "failed"
    assert state["phase_history"][-1] == {**state["phase_history"][-1], "success": False}


def test_continue_on_error_runs_independent_tasks(small: Path) -> None:
    (small / "libs/utils/src/a.txt").write_text("")
    r = ggen("run", "build", "test", "-k", "-j2", cwd=small)
    assert r.returncode == 1
    st = statuses(last_summary(small))
    assert st["utils:test"] == "failed"
    assert st["api:test"] == "ok" and st["@acme/ui:test"] == "ok"


def test_before_all_runs_once_and_after_all_last(tmp_path: Path) -> None:
    files = dict(SMALL)
    files["make.toml"] = (
        SMALL["make.toml"]
        + """
        [lifecycle.check]
        command = "echo check >> $GGEN_PROJECT_ROOT/hooks.log"
        cache = false

        [lifecycle.report]
        command = "echo report >> $GGEN_PROJECT_ROOT/hooks.log"
        cache = false

        [hooks]
        before_all = ["check"]
        after_all = ["report"]
        """
    )
    repo = write_tree(tmp_path / "repo", files)
    r = ggen("run", "build", "test", "--parallel", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (repo / "hooks.log").read_text() == "check\nreport\n"


def test_hook_cycle_is_an_error_before_anything_runs(tmp_path: Path) -> None:
    files = dict(SMALL)
    files["make.toml"] = (
        SMALL["make.toml"].replace('command = "test -s', 'command = "touch ran.txt; test -s')
        + """
        [hooks]
        before_build = ["test"]
        """
    )
    repo = write_tree(tmp_path / "repo", files)
    r = ggen("run", "build", cwd=repo)
    assert r.returncode == 2
    assert "cycle" in r.stderr and "build -> test -> build" in r.stderr
    assert "Traceback" not in r.stderr
    assert not list(repo.rglob("ran.txt"))
    assert not (repo / ".ggen/runs").exists()


def test_parallelism_is_real(tmp_path: Path) -> None:
    toml = '[project]\nname = "sleepy"\n'
    for i in range(4):
        toml += f'[workspace.w{i}]\npath = "w{i}"\n'
        (tmp_path / "repo" / f"w{i}").mkdir(parents=True)
    toml += '[lifecycle.build]\ncommand = "sleep 1"\ncache = false\n'
    repo = write_tree(tmp_path / "repo", {"make.toml": toml})
    t0 = time.monotonic()
    r = ggen("run", "build", "-j4", cwd=repo)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert elapsed < 2.5, f"4 x sleep 1 at -j4 took {elapsed:.2f}s"


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        (
            '[project]\nname = "x"\n[lifecycle.build]\ncommand = "true"\noutput = ["d"]\n',
            'lifecycle.build.output: unknown key, did you mean "outputs"?',
        ),
        ('[project]\nname = "x"\n[lifecycle.build\n', "make.toml:3"),
        ('[project]\nname = "x"\n[workspace.a]\npath = "../elsewhere"\n', "workspace.a.path"),
        (
            '[project]\nname = "x"\n[lifecycle.build]\ncommand = "true"\n'
            '[hooks]\nbefore_all = ["biuld"]\n',
            '"biuld", did you mean "build"?',
        ),
    ],
)
def test_bad_configuration_exits_2_without_traceback(
    tmp_path: Path, toml: str, needle: str
) -> None:
    repo = write_tree(tmp_path / "repo", {"make.toml": toml})
    r = ggen("run", "build", cwd=repo)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert not (repo / ".ggen" / "runs").exists()


def test_missing_make_toml_and_unknown_phase(tmp_path: Path, small: Path) -> None:
    r = ggen("run", "build", cwd=tmp_path)
    assert r.returncode == 2 and "make.toml" in r.stderr
    r = ggen("run", "biuld", cwd=small)
    assert r.returncode == 2 and 'did you mean "build"' in r.stderr
    r = ggen("run", "build", "-w", "nope", cwd=small)
    assert r.returncode == 2 and 'unknown workspace "nope"' in r.stderr


def test_directory_option_works_for_every_command(small: Path, tmp_path: Path) -> None:
    for args in (
        ["list"],
        ["show", "build"],
        ["validate"],
        ["graph", "build"],
        ["run", "build", "-w", "core"],
        ["status"],
        ["explain", "build", "-w", "core"],
        ["cache", "stats"],
        ["lifecycle", "list"],
    ):
        r = ggen("-C", str(small), *args, cwd=tmp_path)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    r = ggen("-C", str(small), "status", cwd=tmp_path)
    assert "core:build" in r.stdout


def test_json_and_summary_file(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    r = ggen("run", "build", "--json", "--summary", str(out), cwd=small)
    assert r.returncode == 0
    printed = orjson.loads(r.stdout)
    written = orjson.loads(out.read_bytes())
    assert printed == written == last_summary(small)
    assert printed["totals"]["tasks"] == 4


def test_workspace_filter_and_environment(small: Path) -> None:
    (small / "make.toml").write_text(
        (small / "make.toml").read_text()
        + """
[env]
SHARED = "root"

[lifecycle.env]
command = "echo $GGEN_PHASE $GGEN_WORKSPACE $SHARED $LOCAL $GGEN_PROJECT_ROOT > env.txt"
env = { LOCAL = "phase" }
cache = false
"""
    )
    r = ggen("run", "env", "-w", "@acme/ui", cwd=small)
    assert r.returncode == 0, r.stderr
    assert (small / "packages/ui/env.txt").read_text().split() == [
        "env",
        "@acme/ui",
        "root",
        "phase",
        str(small.resolve()),
    ]
    assert not (small / "libs/core/env.txt").exists()


def test_graph_formats(small: Path) -> None:
    dot = ggen("graph", "build", cwd=small)
    assert '"core:build" -> "utils:build"' in dot.stdout
    mermaid = ggen("graph", "build", "--format", "mermaid", cwd=small)
    assert mermaid.stdout.startswith("graph LR")
    data = orjson.loads(ggen("graph", "build", "-f", "json", cwd=small).stdout)
    assert ["core:build", "api:build"] in data["edges"]


def test_lifecycle_aliases(small: Path) -> None:
    r = ggen("lifecycle", "run", "build", "-w", "core", cwd=small)
    assert r.returncode == 0, r.stderr
    assert statuses(last_summary(small)) == {"core:build": "ok"}
    r = ggen("lifecycle", "pipeline", "build", "test", "-w", "core", cwd=small)
    assert r.returncode == 0
    assert set(statuses(last_summary(small))) == {"core:build", "core:test"}
    r = ggen("lifecycle", "run", "build", "--no-such-option", cwd=small)
    assert r.returncode == 2 and "No such option" in r.stderr
    r = ggen("lifecycle", "show", "build", cwd=small)
    assert "cat src/*.txt > dist/out.txt" in r.stdout
