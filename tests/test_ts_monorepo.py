"""End-to-end: a pnpm monorepo of 20 TypeScript packages (bench.generate_ts), built by ggen's
``script = "build"`` phases and by pnpm itself, with the real pnpm, tsc and node.

ggen runs each package's ``tsc -b`` without starting pnpm; the outputs must be byte for byte
those of ``pnpm -r run build`` (topological), a second run must be fully cached, an edit must
rebuild exactly the edited package and its dependents, and outputs restored from the cache must
look fresh to ``tsc -b`` (which compares the times of inputs and outputs): a later
``pnpm -r run build`` rewrites nothing. A missing pnpm or node fails these tests: .ci/run
installs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from monorepo import ggen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate_ts import (
    TsSpec,
    TsTree,
    change_source,
    generate_ts,
    git_init,
    pnpm_install,
)
from bench.generate_ts import remove_outputs as remove_ts_outputs

N = 20
EDITED = 5  # layer 1: some packages depend on it, others do not

pytestmark = pytest.mark.timeout(600)


def need(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed (.ci/run installs it)"
    return found


def pnpm_build(root: Path) -> str:
    """``pnpm -r run build`` (pnpm orders the packages topologically), two at a time."""
    r = subprocess.run(
        [need("pnpm"), "-r", "--workspace-concurrency=2", "run", "build"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CI": "1"},
    )
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def ggen_run(root: Path, *args: str) -> dict[str, str]:
    """``ggen run ARGS --json`` in ``root``: each task's status, by task id."""
    r = ggen("run", *args, "-j", "2", "--json", cwd=root, timeout=600)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:])
    doc = json.loads(r.stdout[r.stdout.index("{") :])
    return {t["id"]: t["status"] for t in doc["tasks"]}


def stamps(tree: TsTree) -> dict[str, tuple[int, bytes]]:
    """Every output's modification time (ns) and content."""
    return {
        rel: ((tree.root / rel).stat().st_mtime_ns, data) for rel, data in tree.outputs().items()
    }


def ids(spec: TsSpec, indexes: range | tuple[int, ...], phase: str = "build") -> set[str]:
    return {f"{spec.name(i)}:{phase}" for i in indexes}


def ran(statuses: Mapping[str, str]) -> set[str]:
    return {task for task, status in statuses.items() if status == "ok"}


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[TsTree, TsTree]:
    """Two installed copies of one generated tree: A for ggen, B for pnpm."""
    need("node")
    need("pnpm")
    base = tmp_path_factory.mktemp("ts")
    a = generate_ts(TsSpec(N), base / "a")
    pnpm_install(a.root)
    git_init(a.root)
    # the same install in B: node_modules' links are relative, so a copy is an install
    shutil.copytree(a.root, base / "b", symlinks=True)
    return a, TsTree(base / "b", a.spec)


def test_the_tree_is_a_pnpm_workspace_ggen_discovers(trees: tuple[TsTree, TsTree]) -> None:
    a, _ = trees
    assert len((a.root / "make.toml").read_text().splitlines()) <= 20
    assert (a.root / "pnpm-lock.yaml").is_file()
    # tsc comes from the root's node_modules/.bin, as in real repositories
    assert (a.root / "node_modules" / ".bin" / "tsc").exists()
    r = ggen("list", "--json", cwd=a.root)
    assert r.returncode == 0, r.stderr
    listed = {w["name"]: w for w in json.loads(r.stdout)["workspaces"]}
    assert set(listed) == {a.spec.name(i) for i in range(N)}
    for i in range(N):
        w = listed[a.spec.name(i)]
        assert sorted(w["depends_on"]) == sorted(a.spec.name(d) for d in a.spec.deps(i))
        assert w["source"] == "pnpm-workspace.yaml"


def test_ggen_builds_what_pnpm_builds_caches_and_restores_fresh_outputs(
    trees: tuple[TsTree, TsTree],
) -> None:
    a, b = trees
    spec = a.spec
    # (a) ggen in A, (b) pnpm in B: the same files, byte for byte
    first = ggen_run(a.root, "build")
    assert first == {task: "ok" for task in ids(spec, range(N))}
    pnpm_build(b.root)
    built_by_ggen, built_by_pnpm = a.outputs(), b.outputs()
    assert set(built_by_ggen) == set(built_by_pnpm)
    assert len(built_by_ggen) == N * 13  # 12 files under dist/ and the tsbuildinfo
    assert built_by_ggen == built_by_pnpm
    # node --test on the compiled tests, through the test script
    tested = ggen_run(a.root, "test")
    assert ran(tested) == ids(spec, range(N), "test")
    assert set(tested.values()) == {"ok", "cached"}

    # a second run is fully cached and rewrites nothing
    before = stamps(a)
    again = ggen_run(a.root, "build")
    assert set(again.values()) == {"cached"} and len(again) == N
    assert stamps(a) == before

    # outputs restored from the cache are the same bytes, and tsc -b finds them up to date
    remove_ts_outputs(a)
    restored = ggen_run(a.root, "build")
    assert set(restored.values()) == {"cached"} and len(restored) == N
    assert a.outputs() == built_by_pnpm
    after_restore = stamps(a)
    pnpm_build(a.root)
    assert stamps(a) == after_restore, "tsc -b rebuilt outputs that ggen restored"

    # an edit rebuilds the edited package and its dependents, nothing else
    change_source(a, EDITED, 0)
    dependents = spec.dependents(EDITED)
    assert 1 < len(dependents) < N - spec.width
    edited = ggen_run(a.root, "build")
    assert ran(edited) == ids(spec, dependents)
    assert {t for t, s in edited.items() if s == "cached"} == ids(spec, range(N)) - ids(
        spec, dependents
    )
    # the same edit built by pnpm gives the same bytes again
    change_source(b, EDITED, 0)
    pnpm_build(b.root)
    assert a.outputs() == b.outputs()
    assert b"REVISION = 1" in (a.workspace_dir(EDITED) / "dist" / "index.js").read_bytes()
