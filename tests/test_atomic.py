"""Atomic writes: whole files or none, no temp file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from ggen.atomic import write_bytes_atomic, write_text_atomic


def test_writes_whole_file_with_parents_and_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "state.json"
    write_bytes_atomic(target, b"one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_bytes_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
