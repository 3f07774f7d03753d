"""Atomic writes: whole files or none, no temp file left behind."""

from __future__ import annotations

from collections.abc import Iterator
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


def test_a_path_that_cannot_be_written_raises_an_error_naming_it(tmp_path: Path) -> None:
    from ggen.errors import EXIT_INTERNAL, WriteError

    (tmp_path / "runs").write_text("a file where a directory is expected")
    target = tmp_path / "runs" / "1.json"
    with pytest.raises(WriteError) as err:
        write_bytes_atomic(target, b"{}")
    assert str(err.value).startswith(f"cannot write {target}: ")
    assert isinstance(err.value, OSError) and err.value.exit_code == EXIT_INTERNAL


def test_chunks_are_written_in_order_and_a_failing_source_keeps_the_old_file(
    tmp_path: Path,
) -> None:
    from ggen.atomic import write_chunks_atomic

    target = tmp_path / "log"
    write_chunks_atomic(target, iter([b"a" * 3, b"b", b""]))
    assert target.read_bytes() == b"aaab"

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise OSError(5, "Input/output error")  # reading the source, not writing the file

    with pytest.raises(OSError) as err:
        write_chunks_atomic(target, broken())
    assert type(err.value) is OSError  # passed on as it is, not as a failure to write
    assert target.read_bytes() == b"aaab"
    assert [p.name for p in tmp_path.iterdir()] == ["log"]
