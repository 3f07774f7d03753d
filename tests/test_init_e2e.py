"""`ggen init` on a real npm-workspaces repository with a turbo.json: `ggen run build test`
with the generated make.toml writes the same files as `turbo run build test` on a copy.

turbo comes from the bench peers (``python -m bench install-peers``) or PATH; .ci/run installs
it. Without it this test fails: the acceptance of ``ggen init`` is this comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from monorepo import ggen, write_tree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for find_turbo

# Each package builds with node only (no dependency to install): its build copies what the
# packages it uses built, so a wrong order gives different files; its test writes a report.
BUILD = """
const fs = require("fs");
const path = require("path");
const pkg = require("./package.json");
const deps = Object.keys(pkg.dependencies || {}).sort();
const lines = [pkg.name + " " + fs.readFileSync("src/index.txt", "utf8").trim()];
for (const dep of deps) {
  const dir = path.join("..", dep.split("/")[1], "dist", "out.txt");
  lines.push("  uses " + fs.readFileSync(dir, "utf8").trim().split("\\n").join("\\n  "));
}
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/out.txt", lines.join("\\n") + "\\n");
if (fs.existsSync("turbo.json")) {  // the package whose turbo.json adds an output
  fs.mkdirSync("extra", { recursive: true });
  fs.writeFileSync("extra/info.txt", "extra of " + pkg.name + "\\n");
}
"""
TEST = """
const fs = require("fs");
const out = fs.readFileSync("dist/out.txt", "utf8");
fs.mkdirSync("reports", { recursive: true });
fs.writeFileSync("reports/test.txt", "ok " + out.split("\\n").length + " lines\\n");
"""
PACKAGES = {"base": [], "lib": ["base"], "ui": ["base", "lib"], "app": ["lib", "ui"]}
TURBO_JSON = {
    "$schema": "https://turbo.build/schema.json",
    "ui": "stream",
    "globalDependencies": ["shared.txt"],
    "tasks": {
        "build": {
            "dependsOn": ["^build"],
            "inputs": ["$TURBO_DEFAULT$", "$TURBO_ROOT$/shared.txt"],
            "outputs": ["dist/**"],
            "outputLogs": "new-only",
        },
        "test": {"dependsOn": ["build"], "outputs": ["reports/**"], "env": ["CI"]},
        "dev": {"cache": False, "persistent": True},
    },
}
TURBO_ENV = {
    "TURBO_TELEMETRY_DISABLED": "1",
    "DO_NOT_TRACK": "1",
    "TURBO_NO_UPDATE_NOTIFIER": "1",
    "TURBO_UI": "false",
}


def find_turbo() -> str:
    """turbo's binary from the bench peers or PATH; fail (never skip) without it."""
    from bench.tools import default_peers_dir, find_turbo

    tool = find_turbo(default_peers_dir())
    if tool is None:
        pytest.fail("turbo not found: run `python -m bench install-peers` or npm i -g turbo@2")
    return tool.exe[0]


def make_repo(root: Path) -> None:
    files = {
        "package.json": json.dumps(
            {
                "name": "init-demo",
                "private": True,
                "packageManager": "npm@10.8.2",
                "workspaces": ["packages/*"],
            }
        ),
        "shared.txt": "shared\n",
        "turbo.json": json.dumps(TURBO_JSON, indent=2),
        ".gitignore": "node_modules\n.turbo\n.ggen\n.ggen-test-cache\ndist\nreports\nextra\n",
    }
    for name, deps in PACKAGES.items():
        pkg = {
            "name": f"@demo/{name}",
            "version": "1.0.0",
            "scripts": {"build": "node build.js", "test": "node test.js", "dev": "node dev.js"},
            "dependencies": {f"@demo/{d}": "*" for d in deps},
        }
        files[f"packages/{name}/package.json"] = json.dumps(pkg, indent=2)
        files[f"packages/{name}/build.js"] = BUILD
        files[f"packages/{name}/test.js"] = TEST
        files[f"packages/{name}/src/index.txt"] = f"{name} source\n"
    files["packages/app/turbo.json"] = json.dumps(
        {"extends": ["//"], "tasks": {"build": {"outputs": ["$TURBO_EXTENDS$", "extra/**"]}}}
    )
    write_tree(root, files)
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def outputs(root: Path) -> dict[str, str]:
    """Every file the tasks wrote (what the outputs globs cover), by path."""
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.glob("packages/*/*/**/*"))
        if p.is_file() and p.parent.name in ("dist", "reports", "extra")
    }


def test_ggen_init_then_run_gives_the_outputs_of_turbo_run(tmp_path: Path) -> None:
    turbo = find_turbo()
    ours, theirs = tmp_path / "ggen", tmp_path / "turbo"
    make_repo(ours)
    shutil.copytree(ours, theirs)

    r = ggen("init", cwd=ours)
    assert r.returncode == 0, r.stderr
    found = "workspace sources: npm\nworkspaces: 4\nphases (from turbo.json): build, test, dev\n"
    assert found in r.stdout
    assert "turbo.json: tasks.build.outputLogs" in r.stdout
    assert "turbo.json: ui" in r.stdout
    text = (ours / "make.toml").read_text()
    assert "#   turbo.json: tasks.build.outputLogs: no equivalent" in text
    assert 'inputs = ["shared.txt"]' in text
    own = (ours / "packages/app/make.toml").read_text()
    assert 'outputs = ["dist/**", "extra/**"]' in own

    env = {**os.environ, **TURBO_ENV}
    proc = subprocess.run(
        [turbo, "run", "build", "test", f"--cache-dir={tmp_path / 'turbo-cache'}"],
        cwd=theirs,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = outputs(theirs)
    assert len(expected) == 2 * len(PACKAGES) + 1, expected
    assert expected["packages/app/extra/info.txt"] == "extra of @demo/app\n"
    assert "@demo/app app source\n  uses @demo/lib" in expected["packages/app/dist/out.txt"]

    r = ggen("run", "build", "test", cwd=ours)
    assert r.returncode == 0, r.stdout + r.stderr
    assert outputs(ours) == expected

    # and a cache hit restores the same files
    for d in [*ours.glob("packages/*/dist"), ours / "packages/app/extra"]:
        shutil.rmtree(d)
    r = ggen("run", "build", "test", cwd=ours)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "8 cached" in r.stdout + r.stderr
    assert outputs(ours) == expected
