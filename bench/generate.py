"""A deterministic synthetic monorepo, with equivalent configurations for ggen and its peers.

The tree has N workspaces under ``packages/``, each with F source files of K KiB in ``src/``;
optionally workspaces form dependency chains (each one builds on the previous one of its chain).
Every tool is given the same build, which does real but cheap work::

    mkdir -p dist && cat src/*.txt | sha256sum > dist/out.txt [&& sleep S]

and the same inputs (``src/``, plus the upstream output) and outputs (``dist/``). The same spec
and seed always give byte-identical trees, so each tool can work in its own copy of "the same
tree" without the others' outputs or state confusing it.

Files written at the root: ``make.toml`` (ggen), ``package.json`` + ``package-lock.json`` +
``turbo.json`` + one ``package.json`` per workspace (turbo, npm workspaces), ``Taskfile.yml``
(go-task, checksum method), ``dodo.py`` (doit) and ``Makefile`` (GNU make).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

PACKAGES_DIR = "packages"
OUTPUT_FILE = "dist/out.txt"
DEFAULT_PACKAGE_MANAGER = "npm@10.9.2"
LINE_WIDTH = 64
_ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
_TRANSLATE = bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256))
IGNORED = (
    "dist/",
    "node_modules/",
    ".turbo/",
    ".task/",
    ".ggen/",
    ".doit.db*",
    "__pycache__/",
)


@dataclass(frozen=True)
class TreeSpec:
    """What to generate: ``workspaces`` x ``files`` source files of ``kib`` KiB.

    ``chain`` > 1 links workspaces into chains of that length (workspace i depends on i-1
    unless i is a multiple of ``chain``); ``sleep`` seconds are added to every build.
    """

    workspaces: int
    files: int = 20
    kib: int = 8
    chain: int = 0
    sleep: float = 0.0
    seed: int = 0
    package_manager: str = DEFAULT_PACKAGE_MANAGER

    def __post_init__(self) -> None:
        if self.workspaces < 1 or self.files < 1 or self.kib < 1:
            raise ValueError("workspaces, files and kib must be at least 1")
        if self.chain < 0 or self.sleep < 0:
            raise ValueError("chain and sleep must not be negative")

    def name(self, index: int) -> str:
        """The name of workspace ``index`` (zero-padded, so names sort in index order)."""
        width = max(4, len(str(self.workspaces - 1)))
        return f"ws-{index:0{width}d}"

    def names(self) -> tuple[str, ...]:
        """Every workspace name, in index order."""
        return tuple(self.name(i) for i in range(self.workspaces))

    def upstream(self, index: int) -> int | None:
        """The index of the workspace that ``index`` depends on, if any."""
        if self.chain > 1 and index % self.chain != 0:
            return index - 1
        return None

    def downstream(self, index: int) -> tuple[int, ...]:
        """``index`` and every workspace that (transitively) depends on it."""
        out = [index]
        nxt = index + 1
        while nxt < self.workspaces and self.upstream(nxt) == nxt - 1:
            out.append(nxt)
            nxt += 1
        return tuple(out)

    def source_names(self) -> tuple[str, ...]:
        """The file names under each workspace's ``src/``."""
        width = max(2, len(str(self.files - 1)))
        return tuple(f"f-{j:0{width}d}.txt" for j in range(self.files))

    def build_command(self) -> str:
        """The shell command that builds a workspace, run in its directory (the same for all).

        A dependency orders the builds and invalidates the dependents when it changes; the
        command itself reads only the workspace's own sources.
        """
        cmd = f"mkdir -p dist && cat src/*.txt | sha256sum > {OUTPUT_FILE}"
        if self.sleep > 0:
            cmd += f" && sleep {self.sleep:g}"
        return cmd


@dataclass(frozen=True)
class Tree:
    """A generated tree: where it is and what it was generated from."""

    root: Path
    spec: TreeSpec

    def workspace_dir(self, index: int) -> Path:
        """The directory of workspace ``index``."""
        return self.root / PACKAGES_DIR / self.spec.name(index)

    def output(self, index: int) -> Path:
        """The build output of workspace ``index``."""
        return self.workspace_dir(index) / OUTPUT_FILE

    def source(self, index: int, file: int = 0) -> Path:
        """Source file number ``file`` of workspace ``index``."""
        return self.workspace_dir(index) / "src" / self.spec.source_names()[file]

    def expected_output(self, index: int) -> str:
        """What ``dist/out.txt`` of workspace ``index`` must hold after a correct build.

        Computed from the sources on disk, so it also holds after a scenario changed one.
        """
        digest = hashlib.sha256()
        for name in self.spec.source_names():
            digest.update((self.workspace_dir(index) / "src" / name).read_bytes())
        return f"{digest.hexdigest()}  -\n"


def _content(seed: int, index: int, file: int, kib: int, revision: int = 0) -> bytes:
    """Deterministic text of ``kib`` KiB: lines of 63 url-safe characters."""
    rng = random.Random(f"{seed}:{index}:{file}:{revision}")
    raw = rng.randbytes(kib * 1024).translate(_TRANSLATE)
    step = LINE_WIDTH
    return b"".join(raw[i : i + step - 1] + b"\n" for i in range(0, len(raw), step))


def _write(path: Path, data: bytes | str) -> None:
    """Write a file whole (atomic: temp file in the same directory, then rename)."""
    blob = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


def change_source(tree: Tree, index: int, revision: int, file: int = 0) -> Path:
    """Give source ``file`` of workspace ``index`` new content (the incremental scenario).

    Different revisions give different content of the same size; the file gets a new mtime
    and (being replaced) a new inode, as an editor's save would.
    """
    path = tree.source(index, file)
    _write(path, _content(tree.spec.seed, index, file, tree.spec.kib, revision + 1))
    return path


def make_toml(spec: TreeSpec) -> str:
    """The ggen configuration: one build phase over every workspace."""
    lines = [
        "[project]",
        'name = "bench"',
        "",
        "[lifecycle.build]",
        'description = "Hash the sources of every workspace"',
        f"command = {json.dumps(spec.build_command())}",
        "parallel = true",
        'depends_on = ["^build"]',
        'inputs = ["src/**"]',
        'outputs = ["dist/**"]',
        "",
    ]
    for i in range(spec.workspaces):
        name = spec.name(i)
        lines.append(f'[workspace."{name}"]')
        lines.append(f'path = "{PACKAGES_DIR}/{name}"')
        up = spec.upstream(i)
        if up is not None:
            lines.append(f'depends_on = ["{spec.name(up)}"]')
        lines.append("")
    return "\n".join(lines)


def root_package_json(spec: TreeSpec) -> str:
    """npm workspaces root, as turbo requires (with ``packageManager``)."""
    doc = {
        "name": "bench",
        "version": "0.0.0",
        "private": True,
        "packageManager": spec.package_manager,
        "workspaces": [f"{PACKAGES_DIR}/*"],
    }
    return json.dumps(doc, indent=2) + "\n"


def package_json(spec: TreeSpec, index: int) -> str:
    """One workspace's package.json: its build script and its workspace dependency."""
    doc: dict[str, object] = {
        "name": spec.name(index),
        "version": "0.0.0",
        "private": True,
        "scripts": {"build": spec.build_command()},
    }
    up = spec.upstream(index)
    if up is not None:
        doc["dependencies"] = {spec.name(up): "0.0.0"}
    return json.dumps(doc, indent=2) + "\n"


def package_lock(spec: TreeSpec) -> str:
    """npm's lockfile for the workspaces (what ``npm install --package-lock-only`` writes).

    turbo reads it to resolve the workspace graph and warns when it is missing.
    """
    packages: dict[str, object] = {
        "": {"name": "bench", "version": "0.0.0", "workspaces": [f"{PACKAGES_DIR}/*"]}
    }
    for name in spec.names():
        packages[f"node_modules/{name}"] = {"resolved": f"{PACKAGES_DIR}/{name}", "link": True}
    for i, name in enumerate(spec.names()):
        entry: dict[str, object] = {"version": "0.0.0"}
        up = spec.upstream(i)
        if up is not None:
            entry["dependencies"] = {spec.name(up): "0.0.0"}
        packages[f"{PACKAGES_DIR}/{name}"] = entry
    doc = {
        "name": "bench",
        "version": "0.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": packages,
    }
    return json.dumps(doc, indent=2) + "\n"


def turbo_json(spec: TreeSpec) -> str:
    """turbo's pipeline: build after the dependencies' builds, src/ in, dist/ out."""
    doc = {
        "$schema": "https://turborepo.com/schema.json",
        "tasks": {
            "build": {
                "dependsOn": ["^build"],
                "inputs": ["src/**"],
                "outputs": ["dist/**"],
            }
        },
    }
    return json.dumps(doc, indent=2) + "\n"


def taskfile(spec: TreeSpec) -> str:
    """go-task's Taskfile.yml: one task per workspace, checksum method, ``build`` runs all."""
    out = ["version: '3'", "", "tasks:", "  build:", "    deps:"]
    out.extend(f"      - {name}" for name in spec.names())
    for i in range(spec.workspaces):
        name = spec.name(i)
        up = spec.upstream(i)
        out += [
            f"  {name}:",
            f"    dir: {PACKAGES_DIR}/{name}",
            "    run: once",
            "    method: checksum",
            "    sources:",
            "      - src/**/*",
        ]
        if up is not None:
            out.append(f"      - ../{spec.name(up)}/{OUTPUT_FILE}")
        out += ["    generates:", f"      - {OUTPUT_FILE}"]
        if up is not None:
            out += ["    deps:", f"      - {spec.name(up)}"]
        out += ["    cmds:", f"      - {json.dumps(spec.build_command())}"]
    return "\n".join(out) + "\n"


def dodo(spec: TreeSpec) -> str:
    """doit's dodo.py: one sub-task per workspace with ``file_dep`` and ``targets``."""
    table = ",\n".join(
        f"    ({spec.name(i)!r}, {spec.name(up)!r})"
        if (up := spec.upstream(i)) is not None
        else f"    ({spec.name(i)!r}, None)"
        for i in range(spec.workspaces)
    )
    return f'''"""doit tasks of the synthetic benchmark monorepo."""

import glob

DOIT_CONFIG = {{"default_tasks": ["build"], "verbosity": 0}}
BUILD = {json.dumps(spec.build_command())}

WORKSPACES = [
{table},
]


def task_build():
    """Hash the sources of every workspace."""
    for name, upstream in WORKSPACES:
        where = "{PACKAGES_DIR}/" + name
        deps = sorted(glob.glob(where + "/src/*.txt"))
        if upstream is not None:
            deps.append("{PACKAGES_DIR}/" + upstream + "/{OUTPUT_FILE}")
        yield {{
            "name": name,
            "actions": ["cd " + where + " && " + BUILD],
            "file_dep": deps,
            "targets": [where + "/{OUTPUT_FILE}"],
        }}
'''


def makefile(spec: TreeSpec) -> str:
    """GNU make: one rule per workspace output, ``build`` depends on all of them."""
    outs = [f"{PACKAGES_DIR}/{n}/{OUTPUT_FILE}" for n in spec.names()]
    # Without built-in rules make does not search implicit rules for each of the thousands
    # of source files (a no-op at N=200 takes 15 ms instead of 1 s).
    lines = ["MAKEFLAGS += --no-builtin-rules", ".SUFFIXES:", "", ".PHONY: build", "build: \\"]
    lines += [f"\t{o} \\" for o in outs[:-1]] + [f"\t{outs[-1]}", ""]
    for i in range(spec.workspaces):
        where = f"{PACKAGES_DIR}/{spec.name(i)}"
        up = spec.upstream(i)
        prereq = f"$(wildcard {where}/src/*.txt)"
        if up is not None:
            prereq += f" {PACKAGES_DIR}/{spec.name(up)}/{OUTPUT_FILE}"
        lines.append(f"{where}/{OUTPUT_FILE}: {prereq}")
        lines.append(f"\tcd {where} && {spec.build_command()}")
        lines.append("")
    return "\n".join(lines)


def generate(spec: TreeSpec, root: Path) -> Tree:
    """Write the tree described by ``spec`` at ``root`` (created; must be empty or absent)."""
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    tree = Tree(root=root, spec=spec)
    _write(root / "make.toml", make_toml(spec))
    _write(root / "package.json", root_package_json(spec))
    _write(root / "package-lock.json", package_lock(spec))
    _write(root / "turbo.json", turbo_json(spec))
    _write(root / "Taskfile.yml", taskfile(spec))
    _write(root / "dodo.py", dodo(spec))
    _write(root / "Makefile", makefile(spec))
    _write(root / ".gitignore", "\n".join(IGNORED) + "\n")
    sources = spec.source_names()
    for i in range(spec.workspaces):
        ws = tree.workspace_dir(i)
        (ws / "src").mkdir(parents=True)
        _write(ws / "package.json", package_json(spec, i))
        for j, fname in enumerate(sources):
            (ws / "src" / fname).write_bytes(_content(spec.seed, i, j, spec.kib))
    return tree


def clone_tree(tree: Tree, dest: Path) -> Tree:
    """A copy of ``tree`` at ``dest`` whose files are hard links to the original's.

    Tools only add files (outputs, caches), and ``change_source`` replaces a file rather than
    writing into it, so the copies never see each other's changes; hard links make a copy of
    a 1,000-workspace tree take a fraction of a second and no extra space.
    """
    shutil.copytree(tree.root, dest, copy_function=os.link)
    return Tree(root=dest, spec=tree.spec)


def remove_outputs(tree: Tree) -> None:
    """Delete every workspace's ``dist/`` (the cold and restore scenarios)."""
    for i in range(tree.spec.workspaces):
        shutil.rmtree(tree.workspace_dir(i) / "dist", ignore_errors=True)
