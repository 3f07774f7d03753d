"""``ggen explain``: decides as a run would, and writes nothing (no file under ``.ggen/``
created or changed, nothing in the local store touched)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from monorepo import ggen, last_summary, write_tree

TREE = {
    "make.toml": """
        [project]
        name = "e"

        [workspace.core]
        path = "core"

        [workspace.app]
        path = "app"
        depends_on = ["core"]

        [lifecycle.build]
        commands = ["mkdir -p dist", "cat src/*.txt > dist/out.txt"]
        depends_on = ["^build"]
        inputs = ["src/**"]
        outputs = ["dist/**"]
    """,
    "core/src/a.txt": "a\n",
    "app/src/b.txt": "b\n",
}


def snapshot(*tops: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file and directory under ``tops``: (mtime_ns, size, contents)."""
    seen: dict[str, tuple[int, int, bytes]] = {}
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames]:
                path = Path(dirpath, name)
                st = path.lstat()
                data = path.read_bytes() if path.is_file() else b""
                seen[str(path)] = (st.st_mtime_ns, st.st_size, data)
    return seen


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", TREE)


def ggen_dirs(repo: Path) -> list[Path]:
    return [repo / ".ggen", repo / "core/.ggen", repo / "app/.ggen", repo / ".ggen-test-cache"]


def test_explain_before_any_run_creates_nothing(repo: Path) -> None:
    r = ggen("explain", "build", "-w", "app", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "would run, because:\n  - never run" in r.stdout
    assert [p for p in ggen_dirs(repo) if p.exists()] == []


def test_explain_after_a_run_changes_no_file_and_agrees_with_the_next_run(repo: Path) -> None:
    assert ggen("run", "build", cwd=repo).returncode == 0
    (repo / "app/src/b.txt").write_text("changed\n")
    before = snapshot(*ggen_dirs(repo))
    assert any(".ggen/digests.json" in p for p in before)
    core = ggen("explain", "build", "-w", "core", cwd=repo)
    app = ggen("explain", "build", "-w", "app", cwd=repo)
    assert core.returncode == app.returncode == 0, core.stderr + app.stderr
    assert snapshot(*ggen_dirs(repo)) == before
    assert "cached: would be restored from the cache, nothing runs" in core.stdout
    assert "would run, because:\n  - input changed: src/b.txt" in app.stdout

    assert ggen("run", "build", cwd=repo).returncode == 0
    tasks = {t["id"]: t for t in last_summary(repo)["tasks"]}
    assert tasks["core:build"]["status"] == "cached"
    assert tasks["app:build"]["status"] == "ok"
    for out, tid in ((core.stdout, "core:build"), (app.stdout, "app:build")):
        assert f"{tid}: key {tasks[tid]['key']}" in out
