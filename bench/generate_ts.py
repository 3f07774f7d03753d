"""A realistic pnpm monorepo of TypeScript packages, built with tsc and tested with node --test.

    packages/pkg-NN/            @bench/pkg-NN
      package.json              "build": "tsc -b", "test": "node --test dist/",
                                dependencies on earlier packages as "workspace:*"
      tsconfig.json             extends ../../tsconfig.base.json, references its dependencies
      src/index.ts              imports its dependencies, exports value()
      src/shape.ts              a type and a class, so each package has more than one file
      src/index.test.ts         node:test tests, compiled to dist/index.test.js
    package.json                packageManager pnpm@9, typescript as a devDependency
    pnpm-workspace.yaml         packages/*
    tsconfig.base.json          composite, declaration, strict, lib es2022
    types/node/index.d.ts       the few node:test and node:assert declarations the tests use
    turbo.json                  build after ^build, outputs dist/** and tsconfig.tsbuildinfo
    make.toml                   ten lines: workspaces = "auto", script = "build"

Packages form layers of ``width``: a package depends on two packages of the layer below (a DAG
with diamonds). ``pnpm install`` fetches typescript from the registry (or the store) and links
the packages; tsc writes ``dist/`` and, beside tsconfig.json, ``tsconfig.tsbuildinfo``. The
same spec always gives byte-identical trees. Small local typings stand in for @types/node,
whose 50,000 lines would triple every tsc run's parse time without changing what is measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGES_DIR = "packages"
SCOPE = "@bench"
PNPM_VERSION = "9.15.9"
TYPESCRIPT_VERSION = "5.9.3"
OUTPUTS = ("dist", "tsconfig.tsbuildinfo")

MAKE_TOML = """\
[project]
name = "ts-bench"
workspaces = "auto"
inputs = ["tsconfig.base.json", "types/**", "pnpm-lock.yaml"]

[lifecycle.build]
script = "build"
depends_on = ["^build"]
inputs = ["src/**", "package.json", "tsconfig.json"]
outputs = ["dist/**", "tsconfig.tsbuildinfo"]

[lifecycle.test]
script = "test"
depends_on = ["build"]
inputs = ["src/**", "package.json"]
"""


@dataclass(frozen=True)
class TsSpec:
    """``workspaces`` packages in layers of ``width``; each depends on two of the layer below."""

    workspaces: int = 20
    width: int = 4

    def __post_init__(self) -> None:
        if self.workspaces < 1 or self.width < 1:
            raise ValueError("workspaces and width must be at least 1")

    def dirname(self, index: int) -> str:
        """The directory name of package ``index`` under packages/ (sorts in index order)."""
        return f"pkg-{index:0{max(2, len(str(self.workspaces - 1)))}d}"

    def name(self, index: int) -> str:
        """The npm name of package ``index``."""
        return f"{SCOPE}/{self.dirname(index)}"

    def deps(self, index: int) -> tuple[int, ...]:
        """The packages ``index`` depends on: positions p and p+1 of the layer below."""
        layer, pos = divmod(index, self.width)
        if layer == 0:
            return ()
        below = (layer - 1) * self.width
        return tuple(sorted({below + pos, below + (pos + 1) % self.width}))

    def dependents(self, index: int) -> tuple[int, ...]:
        """``index`` and every package that depends on it, directly or not, in index order."""
        found = {index}
        for i in range(index + 1, self.workspaces):
            if any(d in found for d in self.deps(i)):
                found.add(i)
        return tuple(sorted(found))

    def value(self, index: int, x: int) -> int:
        """What ``value(x)`` of package ``index`` returns (the tests assert it)."""
        return x * (index + 1) + sum(self.value(d, x) for d in self.deps(index))


@dataclass(frozen=True)
class TsTree:
    """A generated TypeScript tree: where it is and what it was generated from."""

    root: Path
    spec: TsSpec

    def workspace_dir(self, index: int) -> Path:
        """The directory of package ``index``."""
        return self.root / PACKAGES_DIR / self.spec.dirname(index)

    def output(self, index: int) -> Path:
        """The main build output of package ``index``."""
        return self.workspace_dir(index) / "dist" / "index.js"

    def source(self, index: int) -> Path:
        """The entry source file of package ``index`` (what an edit changes)."""
        return self.workspace_dir(index) / "src" / "index.ts"

    def outputs(self) -> dict[str, bytes]:
        """Every build output (files under dist/ and the tsbuildinfo), by path from the root."""
        found: dict[str, bytes] = {}
        for i in range(self.spec.workspaces):
            ws = self.workspace_dir(i)
            paths = [ws / OUTPUTS[1], *(ws / OUTPUTS[0]).rglob("*")]
            for p in paths:
                if p.is_file():
                    found[str(p.relative_to(self.root))] = p.read_bytes()
        return dict(sorted(found.items()))


def _json(doc: object) -> str:
    return json.dumps(doc, indent=2) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def index_ts(spec: TsSpec, index: int, revision: int = 0) -> str:
    """src/index.ts: imports the dependencies and combines their values."""
    deps = spec.deps(index)
    lines = [f'import {{ value as dep{d} }} from "{spec.name(d)}";' for d in deps]
    lines += [
        'import { Shape, describe } from "./shape";',
        "",
        f'export const NAME = "{spec.name(index)}";',
        f"export const REVISION = {revision};",
        "",
        "/** This package's contribution plus its dependencies' values. */",
        "export function value(x: number): number {",
        f"  return {' + '.join([f'x * {index + 1}', *(f'dep{d}(x)' for d in deps)])};",
        "}",
        "",
        "export function shape(): Shape {",
        "  return { name: NAME, size: value(1) };",
        "}",
        "",
        "export const summary: string = describe(shape());",
        "",
    ]
    return "\n".join(lines)


SHAPE_TS = """\
export interface Shape {
  readonly name: string;
  readonly size: number;
}

export class Registry<T extends Shape> {
  private readonly items = new Map<string, T>();

  add(item: T): this {
    this.items.set(item.name, item);
    return this;
  }

  total(): number {
    let sum = 0;
    for (const item of this.items.values()) sum += item.size;
    return sum;
  }
}

export function describe(shape: Shape): string {
  return `${shape.name}: ${shape.size}`;
}
"""


NODE_TYPES = """\
declare module "node:test" {
  export function test(name: string, fn: () => void | Promise<void>): Promise<void>;
}

declare module "node:assert/strict" {
  function assert(value: unknown, message?: string): asserts value;
  namespace assert {
    function equal<T>(actual: unknown, expected: T, message?: string): asserts actual is T;
    function deepEqual<T>(actual: unknown, expected: T, message?: string): void;
  }
  export = assert;
}
"""


def index_test_ts(spec: TsSpec, index: int) -> str:
    """src/index.test.ts: node:test tests of the package's values."""
    return (
        'import { test } from "node:test";\n'
        'import assert from "node:assert/strict";\n'
        'import { Registry } from "./shape";\n'
        'import { NAME, shape, value } from "./index";\n\n'
        'test("value", () => {\n'
        f"  assert.equal(value(1), {spec.value(index, 1)});\n"
        f"  assert.equal(value(3), {spec.value(index, 3)});\n"
        "});\n\n"
        'test("registry", () => {\n'
        "  const reg = new Registry().add(shape());\n"
        f"  assert.equal(reg.total(), {spec.value(index, 1)});\n"
        f'  assert.equal(NAME, "{spec.name(index)}");\n'
        "});\n"
    )


def root_files(spec: TsSpec) -> dict[str, str]:
    """The files at the root of the tree."""
    base = {
        "compilerOptions": {
            "composite": True,
            "declaration": True,
            "declarationMap": True,
            "sourceMap": True,
            "strict": True,
            "target": "es2022",
            "module": "commonjs",
            "moduleResolution": "node10",
            "esModuleInterop": True,
            "lib": ["es2022"],
            "skipLibCheck": True,
            "typeRoots": ["./types"],
            "types": ["node"],
        }
    }
    turbo = {
        "$schema": "https://turborepo.com/schema.json",
        "globalDependencies": ["tsconfig.base.json", "types/**"],
        "tasks": {
            "build": {"dependsOn": ["^build"], "outputs": ["dist/**", "tsconfig.tsbuildinfo"]},
            "test": {"dependsOn": ["build"]},
        },
    }
    root = {
        "name": "ts-bench",
        "version": "0.0.0",
        "private": True,
        "packageManager": f"pnpm@{PNPM_VERSION}",
        "scripts": {"build": "pnpm -r run build", "test": "pnpm -r run test"},
        "devDependencies": {"typescript": TYPESCRIPT_VERSION},
    }
    return {
        "package.json": _json(root),
        "pnpm-workspace.yaml": f"packages:\n  - {PACKAGES_DIR}/*\n",
        "tsconfig.base.json": _json(base),
        "turbo.json": _json(turbo),
        "types/node/index.d.ts": NODE_TYPES,
        "make.toml": MAKE_TOML,
        ".gitignore": "node_modules/\ndist/\n*.tsbuildinfo\n.turbo/\n.ggen/\n",
        ".npmrc": "auto-install-peers=true\n",
    }


def package_files(spec: TsSpec, index: int) -> dict[str, str]:
    """The files of package ``index``, by path from its directory."""
    deps = spec.deps(index)
    package = {
        "name": spec.name(index),
        "version": "1.0.0",
        "private": True,
        "main": "dist/index.js",
        "types": "dist/index.d.ts",
        "scripts": {"build": "tsc -b", "test": "node --test dist/"},
        "dependencies": {spec.name(d): "workspace:*" for d in deps},
    }
    tsconfig = {
        "extends": "../../tsconfig.base.json",
        "compilerOptions": {"rootDir": "src", "outDir": "dist"},
        "include": ["src"],
        "references": [{"path": f"../{spec.dirname(d)}"} for d in deps],
    }
    return {
        "package.json": _json(package),
        "tsconfig.json": _json(tsconfig),
        "src/index.ts": index_ts(spec, index),
        "src/shape.ts": SHAPE_TS,
        "src/index.test.ts": index_test_ts(spec, index),
    }


def generate_ts(spec: TsSpec, root: Path) -> TsTree:
    """Write the tree described by ``spec`` at ``root`` (created; must be empty or absent)."""
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    tree = TsTree(root, spec)
    for rel, text in root_files(spec).items():
        _write(root / rel, text)
    for i in range(spec.workspaces):
        for rel, text in package_files(spec, i).items():
            _write(tree.workspace_dir(i) / rel, text)
    return tree


def change_source(tree: TsTree, index: int, revision: int) -> Path:
    """Give package ``index``'s src/index.ts a new content (``REVISION``), as an editor would."""
    path = tree.source(index)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(index_ts(tree.spec, index, revision + 1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def remove_outputs(tree: TsTree) -> None:
    """Delete every package's dist/ and tsconfig.tsbuildinfo (a cold build)."""
    for i in range(tree.spec.workspaces):
        ws = tree.workspace_dir(i)
        shutil.rmtree(ws / OUTPUTS[0], ignore_errors=True)
        (ws / OUTPUTS[1]).unlink(missing_ok=True)


def pnpm_install(root: Path, *, timeout: float = 600) -> None:
    """``pnpm install`` in ``root``: typescript from the store when it has it
    (``--prefer-offline``), else from the registry; the packages linked to each other.

    Raises ``subprocess.CalledProcessError`` (with pnpm's output) when pnpm fails.
    """
    pnpm = shutil.which("pnpm")
    if pnpm is None:
        raise FileNotFoundError("pnpm not found on PATH (npm install -g pnpm@9)")
    env = {**os.environ, "CI": "1", "npm_config_update_notifier": "false"}
    subprocess.run(
        [pnpm, "install", "--prefer-offline", "--reporter=append-only"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def git_init(root: Path) -> None:
    """Make ``root`` a git repository with everything not ignored committed, as a real
    monorepo is (turbo hashes through git; ggen's file walks honour .gitignore)."""
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "-C", str(root)]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run([*git, *args], check=True, capture_output=True, text=True, timeout=120)
