"""A TypeScript monorepo as users have them: scoped workspace names, project references built
with ``tsc -b`` (which judges freshness by mtime), and a root config read by every package."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from monorepo import ggen, last_summary, statuses, write_tree


def find_tsc() -> str:
    """The TypeScript compiler; .ci/run installs it with npm. Missing is a failure."""
    found = os.environ.get("GGEN_TEST_TSC") or shutil.which("tsc")
    if not found:
        pytest.fail("tsc not found: install it with `npm install -g typescript@5`")
    return found


BASE = (
    '{"compilerOptions": {"composite": true, "declaration": true, "strict": true, '
    '"target": "es2020", "module": "commonjs"}}\n'
)
PACKAGE = (
    '{{"extends": "../../tsconfig.base.json", "compilerOptions": {{"rootDir": "src", '
    '"outDir": "dist", "tsBuildInfoFile": "tsconfig.tsbuildinfo"}}, "include": ["src"]'
    "{refs}}}\n"
)

TREE = {
    "make.toml": """
        [project]
        name = "web-platform"
        inputs = ["tsconfig.base.json"]

        [workspace."@acme/lib"]
        path = "packages/lib"

        [workspace."@acme/app"]
        path = "packages/app"
        depends_on = ["@acme/lib"]

        [lifecycle.build]
        command = "$TSC -b"
        depends_on = ["^build"]
        inputs = ["src/**", "tsconfig.json"]
        outputs = ["dist/**", "tsconfig.tsbuildinfo"]
        env_inputs = ["TSC"]
        parallel = true
    """,
    "tsconfig.base.json": BASE,
    "packages/lib/tsconfig.json": PACKAGE.format(refs=""),
    "packages/app/tsconfig.json": PACKAGE.format(refs=', "references": [{"path": "../lib"}]'),
    "packages/lib/src/index.ts": (
        "export function greet(n: string): string { return `hello ${n}`; }\n"
    ),
    "packages/app/src/main.ts": (
        'import { greet } from "../../lib/dist/index";\nconsole.log(greet("app"));\n'
    ),
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", TREE)


def build(repo: Path, tsc: str) -> dict[str, str]:
    r = ggen("run", "build", "-p", cwd=repo, env={"TSC": tsc}, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return statuses(last_summary(repo))


def test_restored_outputs_are_up_to_date_for_tsc(repo: Path) -> None:
    tsc = find_tsc()
    assert set(build(repo, tsc).values()) == {"ok"}
    for pkg in ("lib", "app"):
        shutil.rmtree(repo / "packages" / pkg / "dist")
        (repo / "packages" / pkg / "tsconfig.tsbuildinfo").unlink()
    assert set(build(repo, tsc).values()) == {"cached"}
    # tsc itself agrees: every project is up to date, nothing is rebuilt
    verbose = subprocess.run(
        [tsc, "-b", "--verbose"],
        cwd=repo / "packages/app",
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert "is up to date" in verbose.stdout
    assert "Building project" not in verbose.stdout, verbose.stdout
    out = subprocess.run(
        ["node", "packages/app/dist/main.js"], cwd=repo, text=True, capture_output=True, timeout=60
    )
    assert out.stdout.strip() == "hello app"


def test_a_library_edit_rebuilds_it_and_its_dependents(repo: Path) -> None:
    tsc = find_tsc()
    build(repo, tsc)
    lib = repo / "packages/lib/src/index.ts"
    lib.write_text(lib.read_text().replace("hello", "hi"))
    st = build(repo, tsc)
    assert st == {"@acme/lib:build": "ok", "@acme/app:build": "ok"}
    out = subprocess.run(
        ["node", "packages/app/dist/main.js"], cwd=repo, text=True, capture_output=True, timeout=60
    )
    assert out.stdout.strip() == "hi app"
    # the shared root config is an input of every package
    base = repo / "tsconfig.base.json"
    base.write_text(base.read_text().replace('"es2020"', '"es2021"'))
    assert set(build(repo, tsc).values()) == {"ok"}
    assert set(build(repo, tsc).values()) == {"cached"}
