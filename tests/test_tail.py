"""Following log files: complete lines only, in order, the last one at the end of the task."""

from __future__ import annotations

import os
from pathlib import Path

from procs import wait_for

from ggen.runner.tail import LogTailer


class Lines:
    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []

    def __call__(self, key: str, line: str) -> None:
        self.got.append((key, line))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def test_only_complete_lines_until_the_task_ends(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    lines = Lines()
    tail = LogTailer(lines, interval=3600)  # polled by hand here
    tail.follow("w:build", str(log))
    tail.poll()  # no file yet
    append(log, b"first li")
    tail.poll()
    assert lines.got == []
    append(log, b"ne\r\nsecond\nthi")
    tail.poll()
    assert lines.got == [("w:build", "first line"), ("w:build", "second")]
    append(log, b"rd \xff without newline")
    tail.finish("w:build")
    assert lines.got[2:] == [("w:build", "third \ufffd without newline")]
    append(log, b"after the end\n")
    tail.poll()
    tail.finish("w:build")
    assert len(lines.got) == 3
    tail.close()


def test_a_truncated_or_replaced_log_is_read_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    lines = Lines()
    tail = LogTailer(lines, interval=3600)
    log.write_bytes(b"attempt one, a long first line\n")
    tail.follow("t", str(log))
    tail.poll()
    log.write_bytes(b"again\n")  # truncated, as a task run again rewrites its log
    tail.poll()
    os.unlink(log)
    log.write_bytes(b"a new file altogether\n")
    tail.poll()
    tail.finish("t")
    assert [line for _, line in lines.got] == [
        "attempt one, a long first line",
        "again",
        "a new file altogether",
    ]
    tail.close()


def test_several_files_keep_their_own_order(tmp_path: Path) -> None:
    lines = Lines()
    tail = LogTailer(lines, interval=3600)
    for name in ("a", "b"):
        tail.follow(name, str(tmp_path / name))
    for i in range(50):
        append(tmp_path / "a", f"a{i}\n".encode())
        append(tmp_path / "b", f"b{i}".encode() + (b"\n" if i % 2 else b"-"))
        if i % 7 == 0:
            tail.poll()
    tail.finish("a")
    tail.finish("b")
    assert [line for key, line in lines.got if key == "a"] == [f"a{i}" for i in range(50)]
    assert [line for key, line in lines.got if key == "b"] == [
        f"b{i}-b{i + 1}" for i in range(0, 50, 2)
    ]
    tail.close()


def test_the_thread_follows_on_its_own_and_stops_when_idle(tmp_path: Path) -> None:
    lines = Lines()
    tail = LogTailer(lines, interval=0.01)
    tail.follow("t", str(tmp_path / "log"))
    append(tmp_path / "log", b"hello\n")
    wait_for(lambda: lines.got == [("t", "hello")], 10)
    tail.finish("t")
    wait_for(lambda: not tail.running, 10, "the idle thread to end")
    tail.follow("t", str(tmp_path / "log2"))  # a new thread starts
    append(tmp_path / "log2", b"again\n")
    wait_for(lambda: lines.got[-1] == ("t", "again"), 10)
    tail.close()


def test_an_over_long_line_comes_in_bounded_pieces_cut_between_characters(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.log"
    lines = Lines()
    tail = LogTailer(lines, interval=3600)
    tail.follow("w:build", str(log))
    # a line of 2.5 MB without a newline, of 1- to 4-byte characters, written in two halves
    text = ("a€ü😀" * (2_500_000 // 10)).encode()
    append(log, text[: len(text) // 2])
    tail.poll()
    assert lines.got, "pieces of an over-long line come before its newline"
    append(log, text[len(text) // 2 :] + b"\nshort\n")
    tail.poll()
    pieces = [line for _, line in lines.got]
    assert pieces[-1] == "short"
    assert "".join(pieces[:-1]).encode() == text  # nothing lost, no character cut in two
    assert max(len(p.encode()) for p in pieces) <= 64 * 1024
    tail.close()
