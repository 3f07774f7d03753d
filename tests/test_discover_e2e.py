"""End-to-end: ``ggen list`` on workspaces made by the real package managers.

Each repository is made with the tool's own commands (pnpm, npm, cargo, uv) and checked with
the tool's own view of it (``pnpm list``, ``npm query``, ``cargo metadata``, ``uv.lock``): every
package appears in ``ggen list --json`` with exactly the workspace dependencies the tool sees,
from a make.toml of a few lines. A missing tool fails these tests: .ci/run installs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import tomli
from monorepo import ggen, write_tree

MAKE = """\
[project]
name = "{name}"
workspaces = {workspaces}

[lifecycle.build]
command = "echo built > built.txt && echo $GGEN_WORKSPACE >> {log}"
outputs = ["built.txt"]
depends_on = ["^build"]
"""

Graph = dict[str, tuple[str, tuple[str, ...]]]


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed (.ci/run installs it)"
    return found


def sh(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run one of the package managers; its failure fails the test with its output."""
    r = subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def write_make(root: Path, workspaces: str) -> None:
    text = MAKE.format(name=root.name, workspaces=workspaces, log=root / "order.log")
    assert len(text.splitlines()) <= 15
    (root / "make.toml").write_text(text)


def ggen_graph(root: Path) -> tuple[Graph, set[str]]:
    """ggen list --json as name -> (path, dependencies), and the sources it shows."""
    r = ggen("list", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)["workspaces"]
    text = ggen("list", cwd=root).stdout
    rows = {tuple(line.split()[:2]): line for line in text.splitlines() if line.startswith("  ")}
    for w in listed:  # the text form says where each one came from too
        assert f"  from {w['source']}" in rows[w["name"], w["path"]]
    return (
        {w["name"]: (w["path"], tuple(w["depends_on"])) for w in listed},
        {w["source"] for w in listed},
    )


def check_build_order(root: Path, graph: Graph) -> None:
    """ggen run build builds every package after the packages it depends on."""
    r = ggen("run", "build", "-j", "2", cwd=root)
    assert r.returncode == 0, r.stderr
    order = (root / "order.log").read_text().split()
    assert sorted(order) == sorted(graph)
    for name, (_path, deps) in graph.items():
        assert all(order.index(d) < order.index(name) for d in deps), (name, order)


# -- pnpm ---------------------------------------------------------------------------------------


def test_pnpm_workspace(tmp_path: Path) -> None:
    pnpm = tool("pnpm")
    root = tmp_path / "pnpm-repo"
    write_tree(
        root,
        {
            "package.json": '{"name": "pnpm-repo", "private": true}',
            "pnpm-workspace.yaml": 'packages:\n  - "packages/*"\n  - "apps/*"\n  - "!apps/old"\n',
        },
    )
    for d, name in [
        ("packages/utils", "@acme/utils"),
        ("packages/theme", "@acme/theme"),
        ("packages/ui", "@acme/ui"),
        ("apps/web", "web"),
        ("apps/old", "old"),
    ]:
        (root / d).mkdir(parents=True)
        sh(root / d, pnpm, "init")
        data = json.loads((root / d / "package.json").read_text())
        (root / d / "package.json").write_text(json.dumps({**data, "name": name}))
    for args in (
        ["--filter", "@acme/theme", "@acme/utils"],
        ["--filter", "@acme/ui", "@acme/utils", "@acme/theme"],
        ["--filter", "web", "--save-dev", "@acme/ui"],
        ["--filter", "web", "--save-peer", "@acme/theme"],
    ):
        sh(root, pnpm, "add", "--workspace", "--offline", *args)
    sh(root, pnpm, "install", "--offline")

    truth: Graph = {}
    for project in json.loads(sh(root, pnpm, "list", "-r", "--json", "--depth", "0")):
        if Path(project["path"]) == root:
            continue
        deps = {
            name
            for field in ("dependencies", "devDependencies", "optionalDependencies")
            for name, dep in project.get(field, {}).items()
            if dep["version"].startswith("link:")
        }
        truth[project["name"]] = (
            Path(project["path"]).relative_to(root).as_posix(),
            tuple(sorted(deps)),
        )
    assert "old" not in truth and len(truth) == 4
    # pnpm list leaves peer dependencies out: web's is read from its manifest by ggen
    web = json.loads((root / "apps/web/package.json").read_text())
    assert web["peerDependencies"] == {"@acme/theme": "workspace:^"}
    truth["web"] = (truth["web"][0], tuple(sorted({*truth["web"][1], "@acme/theme"})))

    write_make(root, '"auto"')
    graph, sources = ggen_graph(root)
    assert graph == truth
    assert sources == {"pnpm-workspace.yaml"}
    check_build_order(root, graph)


# -- npm and yarn -------------------------------------------------------------------------------


def npm_repo(root: Path) -> Graph:
    """An npm workspaces repository, and npm's own view of its workspace dependencies."""
    npm = tool("npm")
    root.mkdir()
    sh(root, npm, "init", "-y")
    for d, scope in [("libs/core", None), ("libs/ui", "@acme"), ("tools/cli", None)]:
        sh(root, npm, "init", "-y", "-w", d, *([f"--scope={scope}"] if scope else []))
    sh(root, npm, "pkg", "set", "dependencies.core=^1.0.0", "-w", "libs/ui")
    sh(
        root,
        npm,
        "pkg",
        "set",
        "dependencies.@acme/ui=*",
        "devDependencies.core=1",
        "-w",
        "tools/cli",
    )
    sh(root, npm, "pkg", "set", "optionalDependencies.left-pad=*", "-w", "tools/cli")
    sh(root, npm, "install", "--offline", "--no-audit", "--no-fund", "--omit=optional")
    truth: Graph = {}
    for ws in json.loads(sh(root, npm, "query", ".workspace")):
        deps = json.loads(sh(root, npm, "query", f'[name="{ws["name"]}"] > .workspace'))
        truth[ws["name"]] = (ws["location"], tuple(sorted(d["name"] for d in deps)))
    assert truth == {
        "core": ("libs/core", ()),
        "@acme/ui": ("libs/ui", ("core",)),
        "cli": ("tools/cli", ("@acme/ui", "core")),
    }
    return truth


def test_npm_workspaces(tmp_path: Path) -> None:
    root = tmp_path / "npm-repo"
    truth = npm_repo(root)
    write_make(root, '["npm"]')
    graph, sources = ggen_graph(root)
    assert graph == truth
    assert sources == {"package.json"}
    check_build_order(root, graph)
    # a dependency added with npm is in the next run's graph: nothing to regenerate
    sh(root, tool("npm"), "pkg", "set", "peerDependencies.@acme/ui=*", "-w", "libs/core")
    sh(root, tool("npm"), "pkg", "delete", "dependencies.core", "-w", "libs/ui")
    graph, _ = ggen_graph(root)
    assert graph["core"] == ("libs/core", ("@acme/ui",))
    assert graph["@acme/ui"] == ("libs/ui", ())


def test_yarn_style_packages_object(tmp_path: Path) -> None:
    """npm refuses yarn's ``{"packages": [...]}`` form: the repository npm made is rewritten
    to it, as yarn users write it, and must give the same graph."""
    root = tmp_path / "yarn-repo"
    truth = npm_repo(root)
    manifest = json.loads((root / "package.json").read_text())
    manifest["workspaces"] = {"packages": ["libs/*", "tools/*"], "nohoist": ["**/left-pad"]}
    (root / "package.json").write_text(json.dumps(manifest, indent=2))
    (root / "yarn.lock").write_text("")
    write_make(root, '"auto"')
    graph, sources = ggen_graph(root)
    assert graph == truth
    assert sources == {"package.json"}


# -- Cargo --------------------------------------------------------------------------------------


def test_cargo_workspace(tmp_path: Path) -> None:
    cargo = tool("cargo")
    root = tmp_path / "cargo-repo"
    write_tree(
        root,
        {
            "Cargo.toml": """
                [workspace]
                resolver = "2"
                members = ["crates/*"]
                exclude = ["crates/scratch"]

                [workspace.dependencies]
                my-core = { path = "crates/core" }
            """,
        },
    )
    env = {"CARGO_TARGET_DIR": str(tmp_path / "target"), "CARGO_NET_OFFLINE": "true"}
    for args in (["--lib", "crates/core"], ["--lib", "crates/net"], ["crates/app"]):
        name = "my-" + args[-1].split("/")[-1]
        sh(root, cargo, "new", "-q", "--vcs", "none", "--name", name, *args, env=env)
    sh(root, cargo, "new", "-q", "--vcs", "none", "--lib", "crates/scratch", env=env)
    sh(root / "crates/net", cargo, "add", "--offline", "-q", "my-core", env=env)  # workspace = true
    sh(root / "crates/app", cargo, "add", "--offline", "-q", "--path", "../net", env=env)
    sh(root / "crates/app", cargo, "add", "--offline", "-q", "--build", "my-core", env=env)
    net = tomli.loads((root / "crates/net/Cargo.toml").read_text())
    assert net["dependencies"] == {"my-core": {"workspace": True}}
    sh(root, cargo, "build", "--offline", "-q", env=env)

    meta = json.loads(
        sh(root, cargo, "metadata", "--offline", "--no-deps", "--format-version", "1", env=env)
    )
    dirs = {str(Path(p["manifest_path"]).parent): p["name"] for p in meta["packages"]}
    truth: Graph = {
        p["name"]: (
            Path(p["manifest_path"]).parent.relative_to(root).as_posix(),
            tuple(sorted({dirs[d["path"]] for d in p["dependencies"] if d.get("path") in dirs})),
        )
        for p in meta["packages"]
    }
    assert truth == {
        "my-core": ("crates/core", ()),
        "my-net": ("crates/net", ("my-core",)),
        "my-app": ("crates/app", ("my-core", "my-net")),
    }
    write_make(root, '["cargo"]')
    graph, sources = ggen_graph(root)
    assert graph == truth
    assert sources == {"Cargo.toml"}
    check_build_order(root, graph)


# -- uv -----------------------------------------------------------------------------------------


def test_uv_workspace(tmp_path: Path) -> None:
    uv = tool("uv")
    root = tmp_path / "uv-repo"
    root.mkdir()
    env = {"UV_OFFLINE": "1", "UV_NO_CONFIG": "1"}
    init = [
        "init",
        "-q",
        "--no-pin-python",
        "--no-readme",
        "--author-from",
        "none",
        "--vcs",
        "none",
    ]
    sh(root, uv, *init, "--name", "app", env=env)
    for member in ("packages/my-lib", "packages/helpers", "packages/tester"):
        sh(root, uv, *init, "--lib", member, env=env)
    # --frozen: neither lock nor sync, so nothing is fetched
    for args in (
        ["my-lib"],
        ["--dev", "tester"],
        ["--package", "my-lib", "helpers"],
        ["--package", "helpers", "--optional", "extra", "tester"],
    ):
        sh(root, uv, "add", "-q", "--frozen", *args, env=env)
    sources = tomli.loads((root / "packages/helpers/pyproject.toml").read_text())["tool"]["uv"]
    assert sources["sources"] == {"tester": {"workspace": True}}
    sh(root, uv, "lock", "--offline", "-q", env=env)
    lock = tomli.loads((root / "uv.lock").read_text())
    truth: Graph = {}
    for p in lock["package"]:
        deps = {d["name"] for d in p.get("dependencies", [])}
        for table in ("optional-dependencies", "dev-dependencies"):
            for listed in p.get(table, {}).values():
                deps.update(d["name"] for d in listed)
        truth[p["name"]] = (p["source"]["editable"], tuple(sorted(deps)))
    assert truth == {
        "app": (".", ("my-lib", "tester")),
        "my-lib": ("packages/my-lib", ("helpers",)),
        "helpers": ("packages/helpers", ("tester",)),
        "tester": ("packages/tester", ()),
    }
    write_make(root, '["uv"]')
    graph, sources_shown = ggen_graph(root)
    assert graph == truth
    assert sources_shown == {"pyproject.toml"}
    check_build_order(root, graph)


# -- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workspaces", "expected"),
    [('["pnmp"]', 'did you mean "pnpm"?'), ('["pnpm"]', "pnpm-workspace.yaml: not found")],
)
def test_bad_discovery_is_exit_2_without_traceback(
    tmp_path: Path, workspaces: str, expected: str
) -> None:
    write_make(tmp_path, workspaces)
    r = ggen("list", cwd=tmp_path)
    assert r.returncode == 2
    assert expected in r.stderr and "Traceback" not in r.stderr
