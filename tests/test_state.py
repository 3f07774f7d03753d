"""State files and run summaries: whatever JSON they hold, ggen reads past it.

A state file is advisory: valid JSON of the wrong shape is ignored with a warning, like an
unreadable one, and rewritten whole by the next run. The property test writes arbitrary JSON
into the root and workspace state files, the digest memo and a run summary, then runs the
commands that read them (status, explain, report, run) in this process.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from monorepo import ggen, write_tree
from typer.testing import CliRunner

from ggen.cli import app
from ggen.runner.state import read_state, state_problem

REPO = {
    "make.toml": """
        [project]
        name = "shapes"

        [workspace.a]
        path = "a"

        [lifecycle.build]
        command = "mkdir -p out && cat src.txt > out/f && echo built"
        inputs = ["src.txt"]
        outputs = ["out/**"]
    """,
    "a/src.txt": "x\n",
}

# keys ggen reads somewhere in these files, so that generated objects often have its shape
KEYS = [
    "version", "tasks", "runs", "last_run", "recipes", "phases", "phase_history", "cache_keys",
    "durations", "status", "key", "command", "exit_code", "duration_ms", "started_ms",
    "finished_ms", "wall_ms", "totals", "run_id", "entries", "a:build", "build", "id", "deps",
    "workspace", "phase", "cache", "log", "format", "inputs", "env", "outputs", "upstream",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["ok", "cached", "failed", "hit", "miss", "a:build", "0" * 32]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), inner, max_size=5),
    ),
    max_leaves=25,
)


# a run summary close to what ggen writes, with any values: `report` reads deep into these
summaries = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "run_id": json_values,
            "tasks": st.lists(st.dictionaries(st.sampled_from(KEYS), json_values)),
        },
        optional={k: json_values for k in ("started_ms", "finished_ms", "wall_ms", "totals")},
    ),
)


@contextlib.contextmanager
def _repo() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield write_tree(Path(tmp) / "repo", REPO)


def _invoke(root: Path, *args: str) -> None:
    """Run ``ggen -C ROOT ARGS`` in this process: never a traceback, never exit 3."""
    here = os.getcwd()
    try:
        result = CliRunner().invoke(
            app, ["-C", str(root), *args], env={"GGEN_CACHE_DIR": str(root / ".cache")}
        )
    finally:
        os.chdir(here)
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, output)
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, output)
    assert "Traceback" not in output and "internal error" not in output, (args, output)


@given(root_state=json_values, ws_state=json_values, digests=json_values, summary=summaries)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_json_in_state_files_is_read_past(
    root_state: Any, ws_state: Any, digests: Any, summary: Any
) -> None:
    with _repo() as root:
        files = {
            root / ".ggen/state.json": root_state,
            root / "a/.ggen/state.json": ws_state,
            root / ".ggen/digests.json": digests,
            root / ".ggen/runs/20260101-000000-000-aaaaaa.json": summary,
        }
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(orjson.dumps(data))
        _invoke(root, "status")
        _invoke(root, "status", "--json")
        _invoke(root, "explain", "build", "-w", "a")
        _invoke(root, "report", "-o", str(root / "report.html"))
        _invoke(root, "run", "build", "--executor", "inline", "--output", "quiet")
        # the run rewrote both state files whole, in the shape every reader expects
        for path in (root / ".ggen/state.json", root / "a/.ggen/state.json"):
            assert state_problem(orjson.loads(path.read_bytes())) is None
        assert (root / "a/out/f").read_text() == "x\n"
        _invoke(root, "status")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"phases": {"build": 5}}, "phases.build: expected an object"),
        ([], "expected an object"),
        ({"tasks": {"a:build": {"key": 5}}}, "tasks.a:build.key: expected str or null"),
        ({"phase_history": [{"phase": 1}]}, "phase_history[0].phase: expected str"),
        ({"last_run": {"command": "build"}}, "last_run.command: expected a list"),
        ({"phases": {"build": {"durations": [1, "2"]}}}, "phases.build.durations[1]: expected int"),
    ],
)
def test_a_state_of_the_wrong_shape_is_ignored_with_a_warning(
    tmp_path: Path, data: object, problem: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps(data))
    warnings: list[str] = []
    assert read_state(path, warnings.append) == {}
    assert warnings == [
        f"state file {path} has the wrong shape ({problem}): ignored; the next run rewrites it"
    ]


def test_a_state_of_the_right_shape_is_read_without_a_word(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    data = {"version": 1, "tasks": {"a:build": {"key": None, "status": "ok"}}, "extra": [1]}
    path.write_bytes(orjson.dumps(data))
    warnings: list[str] = []
    assert read_state(path, warnings.append) == data
    assert read_state(tmp_path / "missing.json", warnings.append) == {}
    assert warnings == []


def test_wrong_shapes_do_not_stop_run_or_status_end_to_end(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", REPO)
    assert ggen("run", "build", cwd=root).returncode == 0
    (root / "a/.ggen/state.json").write_text('{"phases": {"build": 5}}')
    (root / ".ggen/state.json").write_text('{"tasks": {"a:build": 5}}')
    for args in (("status",), ("run", "build", "--force"), ("status",)):
        r = ggen(*args, cwd=root)
        assert r.returncode == 0, (args, r.stderr)
        assert "internal error" not in r.stderr
    assert "a:build" in r.stdout and "ok" in r.stdout
    state = orjson.loads((root / "a/.ggen/state.json").read_bytes())
    assert state["phases"]["build"]["status"] == "ok"
