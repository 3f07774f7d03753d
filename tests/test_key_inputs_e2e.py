"""End to end, through the real ``ggen``: the key is made from what the task sees (its
environment, its workspace's name), and inputs that change while a task runs are not cached."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from monorepo import ggen, ggen_command, last_summary, statuses, write_tree

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


SLOW_BUILD = {
    "make.toml": """
        [project]
        name = "slow"

        [workspace.a]
        path = "a"

        [lifecycle.build]
        commands = [
            "mkdir -p dist",
            "touch $GGEN_PROJECT_ROOT/../started && sleep 1 && cat src/*.txt > dist/out.txt",
        ]
        inputs = ["src/**"]
        outputs = ["dist/**"]
    """,
    "a/src/in.txt": "v1\n",
    "a/src/extra.txt": "extra\n",
}

# edit made while the task runs, and the edit that puts the inputs back as they were
EDITS = {
    "content": (
        lambda src: (src / "in.txt").write_text("v3\n"),
        lambda src: (src / "in.txt").write_text("v2\n"),
    ),
    "added": (
        lambda src: (src / "new.txt").write_text("new\n"),
        lambda src: (src / "new.txt").unlink(),
    ),
    "removed": (
        lambda src: (src / "extra.txt").unlink(),
        lambda src: (src / "extra.txt").write_text("extra\n"),
    ),
}
CHANGED_FILE = {"content": "src/in.txt", "added": "src/new.txt", "removed": "src/extra.txt"}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_input_edited_while_its_task_runs_is_not_cached(tmp_path: Path, edit: str) -> None:
    repo = write_tree(tmp_path / "repo", SLOW_BUILD)
    src = repo / "a" / "src"
    (src / "in.txt").write_text("v2\n")
    started = tmp_path / "started"
    env = {**os.environ, "GGEN_CACHE_DIR": str(repo / ".ggen-test-cache")}
    proc = subprocess.Popen(
        [*ggen_command(), "run", "build"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():  # the command has begun: its inputs are keyed by now
            assert proc.poll() is None and time.monotonic() < deadline, "the task never started"
            time.sleep(0.02)
        change, revert = EDITS[edit]
        change(src)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    # back to the inputs the first run was keyed with: no entry may claim to be their result
    revert(src)
    expected = "".join(p.read_text() for p in sorted(src.glob("*.txt")))
    assert build(repo) == "ok"
    assert (repo / "a/dist/out.txt").read_text() == expected
    assert build(repo) == "cached"
    # and the run that was not stored said which file changed
    assert f"{CHANGED_FILE[edit]}" in err and "not cached" in err, err


def test_an_input_whose_name_is_not_utf8_is_hashed_and_memoised(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", ENV_OVERLAP)
    src = os.fsencode(repo / "a" / "src")
    for name in (b"caf\xe9.txt", b"new\nline.txt"):
        with open(os.path.join(src, name), "wb") as f:
            f.write(b"latin-1 name\n")
    assert build(repo) == "ok"
    assert build(repo) == "cached"
    with open(os.path.join(src, b"caf\xe9.txt"), "wb") as f:
        f.write(b"edited\n")
    text = explain(repo)
    assert "would run" in text and "input changed: src/caf\\xe9.txt" in text, text
    assert build(repo) == "ok"
