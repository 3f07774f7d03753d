"""End-to-end cache behaviour of the real ``ggen`` command (issue: content-addressed cache)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import orjson
import pytest
from monorepo import ggen, ggen_command, last_summary, statuses, write_tree

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "monorepo"

# every command appends to a file outside the project: proof of what ran
COUNTED = {
    "make.toml": """
        [project]
        name = "counted"
        inputs = ["config.txt"]

        [env]
        LEVEL = "1"

        [workspace.core]
        path = "libs/core"

        [workspace.utils]
        path = "libs/utils"
        depends_on = ["core"]

        [workspace.api]
        path = "services/api"
        depends_on = ["utils"]

        [workspace.ui]
        path = "packages/ui"

        [lifecycle.build]
        commands = [
            "echo $GGEN_WORKSPACE:build >> $GGEN_PROJECT_ROOT/../executed.log",
            "mkdir -p dist bin && cat src/*.txt > dist/out.txt",
            "printf '#!/bin/sh\\necho hi\\n' > bin/tool && chmod 755 bin/tool",
            "ln -sf out.txt dist/latest",
        ]
        depends_on = ["^build"]
        inputs = ["src/**"]
        outputs = ["dist/**", "bin/**"]
        env_inputs = ["FLAVOUR"]
        parallel = true

        [lifecycle.test]
        command = "echo $GGEN_WORKSPACE:test >> $GGEN_PROJECT_ROOT/../executed.log; echo ok"
        depends_on = ["build"]
    """,
    "config.txt": "shared\n",
    "libs/core/src/a.txt": "core\n",
    "libs/utils/src/a.txt": "utils\n",
    "services/api/src/a.txt": "api\n",
    "packages/ui/src/a.txt": "ui\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", COUNTED)


def executed(repo: Path) -> list[str]:
    log = repo.parent / "executed.log"
    lines = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(lines)


def cache_env(tmp_path: Path) -> dict[str, str]:
    return {"GGEN_CACHE_DIR": str(tmp_path / "cache")}


def run(repo: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    r = ggen(
        "run",
        "build",
        "test",
        "-j2",
        *args,
        cwd=repo,
        env={**cache_env(repo.parent), **(env or {})},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return statuses(last_summary(repo))


def outputs(repo: Path) -> dict[str, tuple[bytes | str, int]]:
    found: dict[str, tuple[bytes | str, int]] = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if ("/dist" in rel or "/bin" in rel) and not path.is_dir():
            st = path.lstat()
            data: bytes | str = os.readlink(path) if path.is_symlink() else path.read_bytes()
            found[rel] = (data, stat.S_IMODE(st.st_mode))
    return found


def test_second_run_executes_nothing(repo: Path) -> None:
    assert set(run(repo).values()) == {"ok"}
    assert len(executed(repo)) == 8
    again = run(repo)
    assert set(again.values()) == {"cached"}
    assert executed(repo) == []
    summary = last_summary(repo)
    assert summary["totals"]["hit_rate"] == 1.0
    assert {t["cache"] for t in summary["tasks"]} == {"hit"}


def test_deleted_outputs_are_restored_byte_identical_with_modes(repo: Path) -> None:
    run(repo)
    executed(repo)
    before = outputs(repo)
    assert before["libs/core/bin/tool"][1] == 0o755
    assert before["libs/core/dist/latest"][0] == "out.txt"
    source_mtime = (repo / "libs/core/src/a.txt").stat().st_mtime_ns
    for ws in ("libs/core", "libs/utils", "services/api", "packages/ui"):
        shutil.rmtree(repo / ws / "dist")
        shutil.rmtree(repo / ws / "bin")
    assert set(run(repo).values()) == {"cached"}
    assert executed(repo) == []
    assert outputs(repo) == before
    # restored files are newer than their sources, for tools that judge freshness by mtime
    assert (repo / "libs/core/dist/out.txt").stat().st_mtime_ns > source_mtime


@pytest.mark.parametrize("edit", ["input", "env_input", "command", "env", "shared_input"])
def test_an_edit_reruns_that_task_and_downstream_only(repo: Path, edit: str) -> None:
    run(repo)
    executed(repo)
    env = None
    toml = repo / "make.toml"
    if edit == "input":
        (repo / "libs/utils/src/a.txt").write_text("utils changed\n")
        expected = ["api:build", "api:test", "utils:build", "utils:test"]
    elif edit == "env_input":
        env = {"FLAVOUR": "spicy"}
        expected = sorted(f"{w}:build" for w in ("core", "utils", "api", "ui")) + sorted(
            f"{w}:test" for w in ("core", "utils", "api", "ui")
        )
    elif edit == "command":
        toml.write_text(toml.read_text().replace('; echo ok"', '; echo ok!"'))
        expected = sorted(f"{w}:test" for w in ("api", "core", "ui", "utils"))
    elif edit == "env":
        toml.write_text(toml.read_text().replace('LEVEL = "1"', 'LEVEL = "2"'))
        expected = sorted(
            f"{w}:{p}" for w in ("api", "core", "ui", "utils") for p in ("build", "test")
        )
    else:
        (repo / "config.txt").write_text("shared changed\n")
        expected = sorted(
            f"{w}:{p}" for w in ("api", "core", "ui", "utils") for p in ("build", "test")
        )
    st = run(repo, env=env)
    assert executed(repo) == sorted(expected)
    assert sorted(k for k, v in st.items() if v == "ok") == sorted(expected)
    assert all(v == "cached" for k, v in st.items() if k not in expected)


def test_explain_says_what_changed(repo: Path) -> None:
    run(repo)
    r = ggen("explain", "build", "-w", "utils", cwd=repo, env=cache_env(repo.parent))
    assert r.returncode == 0 and "cached" in r.stdout
    (repo / "libs/utils/src/a.txt").write_text("utils changed\n")
    (repo / "libs/utils/src/b.txt").write_text("new\n")
    r = ggen("explain", "build", "-w", "utils", cwd=repo, env=cache_env(repo.parent))
    assert "would run" in r.stdout
    assert "input changed: src/a.txt" in r.stdout
    assert "input added: src/b.txt" in r.stdout
    r = ggen(
        "explain", "build", "-w", "api", cwd=repo, env={**cache_env(repo.parent), "FLAVOUR": "x"}
    )
    assert "upstream task changed: utils:build" in r.stdout
    assert "environment changed: FLAVOUR (unset -> 'x')" in r.stdout


def test_another_checkout_with_the_same_cache_runs_nothing(repo: Path, tmp_path: Path) -> None:
    run(repo)
    executed(repo)
    clone = tmp_path / "elsewhere" / "clone"
    shutil.copytree(repo, clone, ignore=shutil.ignore_patterns(".ggen", "dist", "bin"))
    r = ggen("run", "build", "test", "-j2", cwd=clone, env=cache_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert set(statuses(last_summary(clone)).values()) == {"cached"}
    assert (clone / "services/api/dist/out.txt").read_text() == "api\n"


def test_force_no_cache_and_cache_false(repo: Path) -> None:
    run(repo)
    executed(repo)
    assert set(run(repo, "--force").values()) == {"ok"}
    assert len(executed(repo)) == 8
    cache_dir = repo.parent / "cache"
    shutil.rmtree(cache_dir)
    assert set(run(repo, "--no-cache").values()) == {"ok"}
    assert not cache_dir.exists() or not any((cache_dir / "manifests").rglob("*.json"))
    toml = repo / "make.toml"
    toml.write_text(
        toml.read_text().replace('depends_on = ["build"]', 'depends_on = ["build"]\ncache = false')
    )
    run(repo)
    executed(repo)
    st = run(repo)
    assert executed(repo) == sorted(f"{w}:test" for w in ("api", "core", "ui", "utils"))
    assert all(st[f"{w}:build"] == "cached" for w in ("api", "core", "ui", "utils"))


def test_corrupt_blob_and_manifest_are_misses_and_the_result_is_right(repo: Path) -> None:
    run(repo)
    executed(repo)
    cache_dir = repo.parent / "cache"
    for blob in (cache_dir / "blobs").rglob("*"):
        if blob.is_file() and blob.read_bytes() == b"core\n":
            blob.write_bytes(b"evil\n")
    manifests = sorted((cache_dir / "manifests").rglob("*.json"))
    manifests[0].write_bytes(manifests[0].read_bytes()[:20])
    shutil.rmtree(repo / "libs/core/dist")
    r = ggen("run", "build", "test", "-j2", cwd=repo, env=cache_env(repo.parent))
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr
    assert (repo / "libs/core/dist/out.txt").read_text() == "core\n"
    assert "core:build" in executed(repo)
    v = ggen("cache", "verify", cwd=repo, env=cache_env(repo.parent))
    assert v.returncode == 0, v.stdout


def test_unwritable_cache_is_a_warning_not_a_failure(repo: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    r = ggen("run", "build", cwd=repo, env={"GGEN_CACHE_DIR": str(blocker / "cache")})
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr
    assert set(statuses(last_summary(repo)).values()) == {"ok"}


def test_two_processes_at_once_share_one_cache(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(repo, other)
    env = {**os.environ, "GGEN_CACHE_DIR": str(tmp_path / "cache")}
    procs = [
        subprocess.Popen(
            [*ggen_command(), "run", "build", "test", "-j2"],
            cwd=d,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for d in (repo, other, repo)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    v = ggen("cache", "verify", cwd=repo, env={"GGEN_CACHE_DIR": str(tmp_path / "cache")})
    assert v.returncode == 0, v.stdout + v.stderr
    assert "0 problems" in v.stdout


def test_state_records_hits_and_misses(repo: Path) -> None:
    run(repo)
    state = orjson.loads((repo / "libs/core/.ggen/state.json").read_bytes())
    assert state["phases"]["build"]["cache"] == "miss"
    (repo / "libs/core/src/a.txt").write_text("core 2\n")
    run(repo)
    state = orjson.loads((repo / "libs/core/.ggen/state.json").read_bytes())
    assert state["phases"]["build"]["status"] == "ok"
    ui_state = orjson.loads((repo / "packages/ui/.ggen/state.json").read_bytes())
    assert ui_state["phases"]["build"]["cache"] == "miss"  # untouched: not rewritten
    root = orjson.loads((repo / ".ggen/state.json").read_bytes())
    assert root["tasks"]["ui:build"]["status"] == "cached"
    assert root["last_run"]["totals"]["cached"] == 2  # ui:build and ui:test


def test_example_monorepo_second_run_is_fully_cached(tmp_path: Path) -> None:
    repo = tmp_path / "example"
    shutil.copytree(EXAMPLE, repo)
    r = ggen("run", "build", "test", "lint", "--parallel", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    r = ggen("run", "build", "test", "lint", "--parallel", cwd=repo)
    assert r.returncode == 0
    st = statuses(last_summary(repo))
    assert st.pop(".:check") == "ok"  # cache = false: it always runs
    assert set(st.values()) == {"cached"}
