"""The glob pattern language (ggen.globs): what each pattern matches, and which are refused."""

from __future__ import annotations

import pytest

from ggen.globs import Globs, check_pattern, output_globs, split_patterns


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("dist", ["dist", "dist/a.js", "dist/x/y.js"], ["distx", "src/dist", "dis"]),
        ("dist/**", ["dist/a.js", "dist/x/y.js"], ["dist", "src/dist/a.js"]),
        ("dist/", ["dist/a.js"], ["dist"]),
        ("package.json", ["package.json"], ["sub/package.json", "package.jsonx"]),
        ("*.py", ["a.py", ".py"], ["pkg/a.py", "a.pyc"]),
        ("**/*.py", ["a.py", "pkg/a.py", "pkg/sub/a.py"], ["a.pyc", "pkg/a.pyi"]),
        ("src/**/*.ts", ["src/a.ts", "src/x/y/a.ts"], ["a.ts", "src/a.tsx", "lib/src/a.ts"]),
        ("a/**/b", ["a/b", "a/x/b", "a/x/y/b", "a/b/c"], ["ab", "a/xb", "x/a/b"]),
        ("**", ["a", "a/b/c"], []),
        ("f[ab]c", ["fac", "fbc"], ["fcc", "f/c"]),
        ("f[!ab]c", ["fcc"], ["fac", "f/c"]),
        ("f?o", ["foo"], ["f/o", "fo"]),
        ("a\\*b", ["a*b"], ["axb"]),
        ("./src/*.c", ["src/x.c"], ["x.c"]),
        ("/top.txt", ["top.txt"], ["sub/top.txt"]),
    ],
)
def test_glob_semantics(pattern: str, matching: list[str], not_matching: list[str]) -> None:
    globs = Globs([pattern])
    assert [p for p in matching if not globs.match(p)] == []
    assert [p for p in not_matching if globs.match(p)] == []


def test_last_matching_pattern_decides() -> None:
    globs = Globs(["src/**", "!src/gen/**", "src/gen/keep.py"])
    assert globs.match("src/a.py")
    assert not globs.match("src/gen/x.py")
    assert globs.match("src/gen/keep.py")
    assert not globs.match("other.py")


def test_check_pattern() -> None:
    assert check_pattern("src/**") is None
    assert check_pattern("//tools/gen.py") is None
    assert check_pattern("!dist/cache/**") is None
    assert check_pattern("../shared/x.py") is not None
    assert check_pattern("a/../../x") == (
        'must not contain ".." (use "//path" for a path from the project root)'
    )
    assert check_pattern("//dist", allow_root=False) == (
        "must be relative to the workspace (no leading //)"
    )
    assert check_pattern("") == "is empty"


def test_split_patterns_separates_root_ones_and_keeps_negation() -> None:
    assert split_patterns(["src/**", "//tools/x.py", "!//tools/old.py", "!dist"]) == (
        ["src/**", "!dist"],
        ["tools/x.py", "!tools/old.py"],
    )


def test_output_globs_ignore_root_patterns_and_are_built_once() -> None:
    globs = output_globs(["dist", "//shared/out"])
    assert globs.match("dist/a.js")
    assert not globs.match("shared/out")
    assert output_globs(("dist", "//shared/out")) is globs
