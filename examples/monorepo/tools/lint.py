"""Lint the workspace in the current directory; exit 1 listing every problem.

Checks the top-level *.toml and *.md files and every text file under src/, tests/, schema/
and scripts/ (the lint phase's inputs): line length ([lint] max_line_length in
config/shared.toml), tabs, trailing whitespace, CRLF line ends, a final newline, and that
Python and JSON files parse.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import tomllib

TOP_LEVEL = ("*.toml", "*.md")
TREES = ("src", "tests", "schema", "scripts")


def files_to_lint(suffixes: set[str]) -> list[Path]:
    """The files this lint reads, sorted; generated and compiled files are never among them."""
    found = {p for pattern in TOP_LEVEL for p in Path().glob(pattern) if p.is_file()}
    for tree in TREES:
        found.update(
            p
            for p in Path(tree).rglob("*")
            if p.is_file() and p.suffix in suffixes and "__pycache__" not in p.parts
        )
    return sorted(found)


def check_text(path: Path, text: str, max_length: int) -> list[str]:
    """Problems in one file, as ``path:line:column: message`` strings."""
    problems = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            problems.append(f"{path}:{number}:{len(line)}: CRLF line end")
            line = line[:-1]
        if "\t" in line:
            problems.append(f"{path}:{number}:{line.index(chr(9)) + 1}: tab character")
        if line != line.rstrip():
            problems.append(f"{path}:{number}:{len(line.rstrip()) + 1}: trailing whitespace")
        if len(line) > max_length:
            problems.append(
                f"{path}:{number}:{max_length + 1}: line too long ({len(line)} > {max_length})"
            )
    if text and not text.endswith("\n"):
        problems.append(f"{path}:{text.count(chr(10)) + 1}:1: no newline at end of file")
    if path.suffix == ".py":
        try:
            compile(text, str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            problems.append(f"{path}:{exc.lineno}:{exc.offset}: syntax error: {exc.msg}")
    elif path.suffix == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}")
    elif path.suffix == ".toml":
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path}:1:1: invalid TOML: {exc}")
    return problems


def main() -> int:
    root = Path(os.environ.get("GGEN_PROJECT_ROOT", "."))
    config = tomllib.loads((root / "config/shared.toml").read_text(encoding="utf-8"))["lint"]
    max_length = config["max_line_length"]
    files = files_to_lint(set(config["suffixes"]))
    problems = []
    for path in files:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{path}:1:1: not UTF-8 ({exc.reason})")
            continue
        problems += check_text(path, text, max_length)
    for problem in problems:
        print(problem)
    if problems:
        bad = len({p.split(":", 1)[0] for p in problems})
        print(f"lint: {len(problems)} problem(s) in {bad} of {len(files)} files", file=sys.stderr)
        return 1
    print(f"lint: {len(files)} files clean (max line length {max_length})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
