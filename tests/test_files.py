"""Input enumeration and output matching (ggen.cache.files)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ggen.cache.files import InputIndex, output_files, task_inputs


def _tree(root: Path, *paths: str) -> Path:
    for rel in paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"contents of {rel}\n")
    return root


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _keys(pairs: list[tuple[str, Path]]) -> list[str]:
    return [key for key, _ in pairs]


def test_explicit_inputs_with_root_patterns_outputs_and_ggen_excluded(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        "backend/src/a.py",
        "backend/src/sub/b.py",
        "backend/src/dist/c.py",
        "backend/README.md",
        "backend/dist/out.js",
        "backend/src/.ggen/state.json",
        "tools/gen.py",
        "tools/other.py",
    )
    pairs = task_inputs(
        root, "backend", ["src/**", "README.md", "//tools/gen.py", "dist/**"], ["dist/**"]
    )
    assert pairs == [
        ("//tools/gen.py", str(root / "tools/gen.py")),
        ("README.md", str(root / "backend/README.md")),
        ("src/a.py", str(root / "backend/src/a.py")),
        ("src/dist/c.py", str(root / "backend/src/dist/c.py")),
        ("src/sub/b.py", str(root / "backend/src/sub/b.py")),
    ]


def test_pattern_depth_and_negation(tmp_path: Path) -> None:
    root = _tree(tmp_path, "ws/a.py", "ws/pkg/b.py", "ws/pkg/gen/c.py", "ws/d.txt")
    assert _keys(task_inputs(root, "ws", ["*.py"], [])) == ["a.py"]
    assert _keys(task_inputs(root, "ws", ["**/*.py"], [])) == ["a.py", "pkg/b.py", "pkg/gen/c.py"]
    assert _keys(task_inputs(root, "ws", ["**/*.py", "!pkg/gen"], [])) == ["a.py", "pkg/b.py"]
    assert _keys(task_inputs(root, "ws", ["//ws/pkg/**", "!//ws/pkg/gen/**"], [])) == [
        "//ws/pkg/b.py"
    ]
    assert _keys(task_inputs(root, "ws", ["pkg"], [])) == ["pkg/b.py", "pkg/gen/c.py"]
    assert _keys(task_inputs(root, "ws", ["missing.txt", "../ws/a.py"], [])) == []


def test_outputs_excluded_from_default_inputs_outside_git(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        "app/main.c",
        "app/build/main.o",
        "app/out.txt",
        "app/.ggen/state.json",
        "app/.gitignore",
        "app/ignored.log",
        "other/x.c",
    )
    (root / "app/.gitignore").write_text("*.log\n")  # no effect outside a git work tree
    pairs = task_inputs(root, "app", None, ["build", "out.txt"])
    assert _keys(pairs) == [".gitignore", "ignored.log", "main.c"]


def test_default_inputs_follow_git(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        ".gitignore",
        "web/src/index.ts",
        "web/src/index.ts.bak",
        "web/node_modules/lib/index.js",
        "web/tracked.log",
        "web/untracked.ts",
        "web/gone.ts",
        "web/dist/bundle.js",
        "web/.ggen/state.json",
        "api/main.go",
    )
    (root / ".gitignore").write_text("node_modules/\n*.log\n*.bak\n")
    _git(root, "init", "-q")
    _git(root, "add", ".gitignore", "web/src/index.ts", "web/gone.ts", "web/dist/bundle.js")
    _git(root, "add", "-f", "web/tracked.log")  # tracked files count even when ignored
    (root / "web/gone.ts").unlink()  # still in the index, no longer on disk

    index = InputIndex(root)
    assert index.uses_git
    pairs = index.task_inputs("web", None, ["dist/**"])
    assert pairs == [
        ("src/index.ts", str(root / "web/src/index.ts")),
        ("tracked.log", str(root / "web/tracked.log")),
        ("untracked.ts", str(root / "web/untracked.ts")),
    ]
    assert pairs == task_inputs(root, "web", None, ["dist/**"])
    assert _keys(index.task_inputs(".", None, [])) == [
        ".gitignore",
        "api/main.go",
        "web/dist/bundle.js",
        "web/src/index.ts",
        "web/tracked.log",
        "web/untracked.ts",
    ]


def test_explicit_globs_skip_ignored_files_but_literals_do_not(tmp_path: Path) -> None:
    root = _tree(tmp_path, ".gitignore", "ws/src/a.py", "ws/src/__pycache__/a.pyc", "ws/app.env")
    (root / ".gitignore").write_text("__pycache__/\n*.env\n")
    _git(root, "init", "-q")
    index = InputIndex(root)
    assert _keys(index.task_inputs("ws", ["src/**", "*.env"], [])) == ["src/a.py"]
    assert _keys(index.task_inputs("ws", ["src/**", "app.env"], [])) == ["app.env", "src/a.py"]


def test_root_workspace_inside_git_subdirectory(tmp_path: Path) -> None:
    _tree(tmp_path, "project/ws/a.txt", "project/top.txt", "elsewhere.txt")
    _git(tmp_path, "init", "-q")
    root = tmp_path / "project"
    assert _keys(task_inputs(root, ".", None, [])) == ["top.txt", "ws/a.txt"]
    assert _keys(task_inputs(root, "ws", ["//top.txt", "*.txt"], [])) == ["//top.txt", "a.txt"]


def test_symlinks_count_as_their_target_files(tmp_path: Path) -> None:
    root = _tree(tmp_path, "ws/real.txt", "ws/dir/inner.txt", "outside.txt")
    os.symlink("real.txt", root / "ws/link.txt")
    os.symlink("missing.txt", root / "ws/dangling.txt")
    os.symlink("dir", root / "ws/dirlink")
    os.symlink(root / "outside.txt", root / "ws/out.txt")
    assert _keys(task_inputs(root, "ws", None, [])) == [
        "dir/inner.txt",
        "link.txt",
        "out.txt",
        "real.txt",
    ]


def test_index_answers_many_workspaces(tmp_path: Path) -> None:
    root = tmp_path
    for i in range(30):
        _tree(root, *(f"pkgs/p{i}/src/f{j}.ts" for j in range(5)), f"pkgs/p{i}/package.json")
    _tree(root, "package-lock.json")
    index = InputIndex(root)
    inputs = ["src/**", "package.json", "//package-lock.json"]
    for i in range(30):
        pairs = index.task_inputs(f"pkgs/p{i}", inputs, [])
        assert len(pairs) == 7
        assert pairs[0] == ("//package-lock.json", str(root / "package-lock.json"))
        assert all(os.path.isfile(path) for _, path in pairs)


def test_output_files(tmp_path: Path) -> None:
    ws = _tree(
        tmp_path,
        "dist/a.js",
        "dist/sub/b.js",
        "build/out.txt",
        "build/other.txt",
        "lib/x.whl",
        "y.whl",
        "dist/.ggen/state.json",
        "src/a.ts",
    )
    os.symlink("a.js", ws / "dist/link.js")
    os.symlink("../src", ws / "dist/srclink")  # a symlinked directory: reported, not entered
    assert output_files(ws, ["dist/**", "build/out.txt"]) == [
        "build/out.txt",
        "dist/a.js",
        "dist/link.js",
        "dist/srclink",
        "dist/sub/b.js",
    ]
    assert output_files(ws, ["dist", "!dist/sub"]) == ["dist/a.js", "dist/link.js", "dist/srclink"]
    assert output_files(ws, ["*.whl"]) == ["y.whl"]
    assert output_files(ws, ["**/*.whl"]) == ["lib/x.whl", "y.whl"]
    assert output_files(ws, ["missing/**", "nope.txt"]) == []
    assert output_files(ws, []) == []
