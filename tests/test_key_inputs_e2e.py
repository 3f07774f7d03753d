"""End to end, through the real ``ggen``: the key is made from what the task sees (its
environment, its workspace's name), and inputs that change while a task runs are not cached."""

from __future__ import annotations

from pathlib import Path

from monorepo import ggen, last_summary, statuses, write_tree

ENV_OVERLAP = {
    "make.toml": """
        [project]
        name = "overlap"

        [workspace.a]
        path = "a"

        [lifecycle.build]
        commands = ["mkdir -p dist", "echo $MODE > dist/mode.txt"]
        inputs = ["src/**"]
        outputs = ["dist/**"]
        env = { MODE = "one" }
        env_inputs = ["MODE"]
    """,
    "a/src/in.txt": "v1\n",
}


def build(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``ggen run build`` and return a:build's status."""
    r = ggen("run", "build", *args, cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return statuses(last_summary(repo))["a:build"]


def explain(repo: Path, env: dict[str, str] | None = None) -> str:
    r = ggen("explain", "build", "-w", "a", cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_a_variable_in_env_and_env_inputs_is_keyed_by_the_value_the_task_gets(
    tmp_path: Path,
) -> None:
    repo = write_tree(tmp_path / "repo", ENV_OVERLAP)
    assert build(repo, env={"MODE": "outside"}) == "ok"
    assert (repo / "a/dist/mode.txt").read_text() == "one\n"
    # the outside value is not what the task sees: changing it changes nothing
    assert "cached" in explain(repo, env={"MODE": "other"})
    assert build(repo, env={"MODE": "other"}) == "cached"
    # the phase's value is: editing it is a miss, and explain says why
    make = repo / "make.toml"
    make.write_text(make.read_text().replace('MODE = "one"', 'MODE = "two"'))
    text = explain(repo, env={"MODE": "other"})
    assert "would run" in text and "environment changed: MODE ('one' -> 'two')" in text
    assert build(repo, env={"MODE": "other"}) == "ok"
    assert (repo / "a/dist/mode.txt").read_text() == "two\n"


def test_a_workspace_renamed_at_the_same_path_is_a_miss(tmp_path: Path) -> None:
    files = dict(ENV_OVERLAP)
    files["make.toml"] = files["make.toml"].replace("echo $MODE", "echo $GGEN_WORKSPACE")
    repo = write_tree(tmp_path / "repo", files)
    assert build(repo) == "ok"
    assert (repo / "a/dist/mode.txt").read_text() == "a\n"
    make = repo / "make.toml"
    make.write_text(make.read_text().replace("[workspace.a]", "[workspace.b]"))
    r = ggen("explain", "build", "-w", "b", cwd=repo)
    assert "would run" in r.stdout, r.stdout + r.stderr
    r = ggen("run", "build", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(last_summary(repo))["b:build"] == "ok"
    assert (repo / "a/dist/mode.txt").read_text() == "b\n"
