"""Names in file names: escaped, unique, and short enough for any filesystem."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ggen.names import MAX_STEM, escape_name, task_file_stem

names = st.text(min_size=1, max_size=400)


@given(names, names)
def test_every_stem_is_one_short_ascii_file_name(workspace: str, phase: str) -> None:
    stem = task_file_stem(workspace, phase)
    assert stem.isascii() and "/" not in stem and "\0" not in stem
    assert not stem.startswith(".")
    assert len(f".{stem}.log.abcdefgh.tmp".encode()) <= 255
    assert len(stem) <= MAX_STEM


@given(st.lists(st.tuples(names, names), min_size=2, max_size=6, unique=True))
def test_different_tasks_get_different_stems(tasks: list[tuple[str, str]]) -> None:
    stems = {task_file_stem(ws, ph) for ws, ph in tasks}
    assert len(stems) == len(tasks)


def test_short_stems_stay_readable_and_long_ones_keep_a_prefix() -> None:
    assert task_file_stem("@acme/ui", "build") == "%40acme%2Fui.build"
    assert escape_name(".") == "%2E"
    long_stem = task_file_stem("w" * 300, "build")
    assert long_stem.startswith("w" * 20) and ".build." in long_stem
    assert task_file_stem("w" * 300, "build") == long_stem  # stable across runs
