"""A pnpm monorepo of TypeScript packages whose phases are package scripts, and a cold build of
it by ggen (``script = "build"``: no package manager started per task) against ``turbo run
build`` (which starts pnpm for every task) and ``pnpm -r run build``.

    python -m bench.ts_scripts /tmp/ts -n 20 --jobs 2

Each package ``@ts/pNN`` depends on up to two earlier ones (``workspace:*`` and a TypeScript
project reference), builds with ``tsc -p tsconfig.json`` into ``dist/`` and tests with
``node --test``. The tree is written once; each tool builds its own copy, cold (no dist, no
cache), ``--reps`` times with the tools taking turns; the median is reported. The dist/
trees of ggen and pnpm are compared byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PNPM_VERSION = "9.15.9"


def deps_of(i: int) -> list[int]:
    """The earlier packages package ``i`` depends on: its parents in a binary and a ternary
    tree, so the graph is a few levels deep and each level can build in parallel."""
    return sorted({(i - 1) // 2, (i - 1) // 3}) if i > 0 else []


def name(i: int) -> str:
    return f"@ts/p{i:02d}"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def generate(root: Path, n: int) -> Path:
    """Write the monorepo of ``n`` packages under ``root`` (make.toml, pnpm and turbo files)."""
    write(root / "pnpm-workspace.yaml", 'packages:\n  - "packages/*"\n')
    write(
        root / "package.json",
        json.dumps(
            {"name": "ts-mono", "private": True, "packageManager": f"pnpm@{PNPM_VERSION}"},
            indent=2,
        )
        + "\n",
    )
    write(
        root / "tsconfig.base.json",
        json.dumps(
            {
                "compilerOptions": {
                    "composite": True,
                    "declaration": True,
                    "strict": True,
                    "target": "es2020",
                    "module": "commonjs",
                    "types": [],
                }
            },
            indent=2,
        )
        + "\n",
    )
    write(
        root / "turbo.json",
        json.dumps(
            {
                "$schema": "https://turbo.build/schema.json",
                "tasks": {
                    "build": {"dependsOn": ["^build"], "outputs": ["dist/**"]},
                    "test": {"dependsOn": ["build"]},
                },
            },
            indent=2,
        )
        + "\n",
    )
    make = ['[project]\nname = "ts-mono"\ninputs = ["tsconfig.base.json"]\n']
    for i in range(n):
        pkg = root / "packages" / f"p{i:02d}"
        deps = deps_of(i)
        write(
            pkg / "package.json",
            json.dumps(
                {
                    "name": name(i),
                    "version": "1.0.0",
                    "main": "dist/index.js",
                    "scripts": {
                        "build": "tsc -p tsconfig.json",
                        "test": "node --test test/",
                    },
                    "dependencies": {name(j): "workspace:*" for j in deps},
                },
                indent=2,
            )
            + "\n",
        )
        write(
            pkg / "tsconfig.json",
            json.dumps(
                {
                    "extends": "../../tsconfig.base.json",
                    "compilerOptions": {
                        "rootDir": "src",
                        "outDir": "dist",
                        "tsBuildInfoFile": "dist/.tsbuildinfo",
                    },
                    "include": ["src"],
                    "references": [{"path": f"../p{j:02d}"} for j in deps],
                },
                indent=2,
            )
            + "\n",
        )
        imports = "".join(f'import {{ value as v{j} }} from "{name(j)}";\n' for j in deps)
        body = imports + (
            "\nexport function value(x: number): number {\n"
            f"  return x * {i + 1};\n}}\n\n"
            "export const total: number = "
            + " + ".join([str(i + 1), *(f"v{j}(1)" for j in deps)])
            + ";\n"
        )
        write(pkg / "src" / "index.ts", body)
        expected = (i + 1) + sum(j + 1 for j in deps)
        write(
            pkg / "test" / "index.test.js",
            'const test = require("node:test");\n'
            'const assert = require("node:assert");\n'
            'const { value, total } = require("../dist/index.js");\n'
            f'test("value", () => assert.strictEqual(value(2), {2 * (i + 1)}));\n'
            f'test("total", () => assert.strictEqual(total, {expected}));\n',
        )
        make.append(f'[workspace."{name(i)}"]\npath = "packages/p{i:02d}"\n')
        if deps:
            make.append(f"depends_on = {json.dumps([name(j) for j in deps])}\n")
    make.append(
        '\n[lifecycle.build]\nscript = "build"\ndepends_on = ["^build"]\n'
        'inputs = ["src/**", "tsconfig.json", "package.json"]\noutputs = ["dist/**"]\n'
        '\n[lifecycle.test]\nscript = "test"\ndepends_on = ["build"]\n'
        'inputs = ["test/**", "package.json"]\n'
    )
    write(root / "make.toml", "".join(make))
    return root


def pnpm_install(root: Path) -> None:
    """Link the workspace packages (no registry needed: every dependency is a workspace)."""
    subprocess.run(
        ["pnpm", "install", "--offline", "--frozen-lockfile=false", "--reporter=silent"],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=300,
    )


def dist_files(root: Path) -> dict[str, bytes]:
    """Every file under a package's dist/, by path relative to ``root``."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.glob("packages/*/dist/**/*"))
        if p.is_file()
    }


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall time of ``argv``; raises if it fails."""
    t0 = time.monotonic()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=env, timeout=1800)
    return time.monotonic() - t0


def find_turbo() -> str | None:
    """turbo's native binary from the bench peers (``python -m bench install-peers``)."""
    from bench.tools import default_peers_dir, find_turbo

    tool = find_turbo(default_peers_dir())
    return tool.exe[0] if tool is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ts_scripts", description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("-n", type=int, default=20, help="packages (default 20)")
    parser.add_argument("--jobs", "-j", type=int, default=2)
    parser.add_argument("--reps", type=int, default=1, help="cold builds per tool")
    args = parser.parse_args(argv)
    base = args.dir
    if base.exists():
        shutil.rmtree(base)
    tree = generate(base / "tree", args.n)
    ggen = [sys.executable, "-m", "ggen"]
    ggen_env = {**os.environ, "GGEN_CACHE_DIR": str(base / "ggen-cache")}
    turbo_env = {**os.environ, "TURBO_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1"}
    builds: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "ggen": ([*ggen, "run", "build", "-j", str(args.jobs)], ggen_env),
        "pnpm": (["pnpm", "-r", f"--workspace-concurrency={args.jobs}", "run", "build"], None),
    }
    turbo = find_turbo()
    if turbo is not None:
        builds["turbo"] = (
            [turbo, "run", "build", f"--concurrency={args.jobs}", "--cache-dir=.turbo-cache"],
            turbo_env,
        )
    copies = {tool: base / tool for tool in builds}
    runs: dict[str, list[float]] = {tool: [] for tool in builds}
    for _ in range(args.reps):
        for tool, (command, env) in builds.items():
            if copies[tool].exists():
                shutil.rmtree(copies[tool])
            shutil.rmtree(base / "ggen-cache", ignore_errors=True)
            shutil.copytree(tree, copies[tool])
            pnpm_install(copies[tool])
            runs[tool].append(timed(command, copies[tool], env))
    times = {tool: statistics.median(seconds) for tool, seconds in runs.items()}
    same = dist_files(copies["ggen"]) == dist_files(copies["pnpm"])
    test = timed([*ggen, "run", "test", "-j", str(args.jobs)], copies["ggen"], ggen_env)
    print(
        f"{args.n} TypeScript packages, cold build at -j{args.jobs}, median of {args.reps} "
        "(wall seconds):"
    )
    for tool, seconds in times.items():
        each = ", ".join(f"{x:.2f}" for x in runs[tool])
        print(f"  {tool:<6} {seconds:6.2f}   ({each})")
    if turbo is None:
        print("  turbo  not found (python -m bench install-peers)")
    print(f"ggen test (node --test, after build): {test:.2f} s")
    print(f"dist/ of ggen and pnpm byte-identical: {same}")
    if not same:
        a, b = dist_files(copies["ggen"]), dist_files(copies["pnpm"])
        for path in sorted(a.keys() | b.keys()):
            if a.get(path) != b.get(path):
                print(f"  differs: {path}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
