"""strace output -> file events: recorded lines, joined halves, escapes, working directories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ggen.runner.audit_trace import (
    STRACE_ARGS,
    Access,
    FileEvent,
    fd_path,
    file_events,
    parse,
    split_args,
    unescape,
)


def events(text: str, cwd: str = "/w") -> list[tuple[str, Access, bool]]:
    lines = [line.strip() for line in text.strip().splitlines()]
    return [(e.path, e.access, e.ok) for e in file_events(parse(lines), cwd)]


R, W = Access.READ, Access.WRITE


def test_relative_paths_resolve_against_the_decoded_cwd_or_the_start_directory() -> None:
    got = events(
        """
        100 openat(AT_FDCWD</w/pkg>, "src/a.txt", O_RDONLY|O_CLOEXEC) = 3</w/pkg/src/a.txt>
        100 openat(AT_FDCWD, "b.txt", O_RDONLY) = 3
        100 open("../c.txt", O_RDONLY) = 4
        100 openat(AT_FDCWD, "/abs//d/./e.txt", O_RDONLY) = 5
        """
    )
    assert got == [
        ("/w/pkg/src/a.txt", R, True),
        ("/w/b.txt", R, True),
        ("/c.txt", R, True),
        ("/abs/d/e.txt", R, True),
    ]


def test_chdir_and_fchdir_move_the_process_and_only_it() -> None:
    got = events(
        """
        100 chdir("sub") = 0
        100 openat(AT_FDCWD, "a", O_RDONLY) = 3
        100 chdir("../other/./deeper") = 0
        100 open("b", O_RDONLY) = 3
        100 fchdir(7</elsewhere/dir>) = 0
        100 open("c", O_RDONLY) = 3
        100 chdir("missing") = -1 ENOENT (No such file or directory)
        100 open("d", O_RDONLY) = 3
        200 open("e", O_RDONLY) = 3
        """
    )
    assert [p for p, _, _ in got] == [
        "/w/sub/a",
        "/w/other/deeper/b",
        "/elsewhere/dir/c",
        "/elsewhere/dir/d",
        "/w/e",  # a process whose creation the trace does not show starts in the task's dir
    ]


def test_a_child_inherits_the_cwd_its_parent_had_when_it_forked() -> None:
    # as -f writes it: the child's first calls come before its parent's "vfork resumed"
    got = events(
        """
        100 chdir("/w/pkg") = 0
        100 vfork( <unfinished ...>
        101 execve("/usr/bin/cat", ["cat", "a.txt"], 0x55 /* 35 vars */ <unfinished ...>
        100 <... vfork resumed>) = 101
        101 <... execve resumed>) = 0
        101 openat(AT_FDCWD, "a.txt", O_RDONLY) = 3
        100 chdir("/elsewhere") = 0
        101 openat(AT_FDCWD, "b.txt", O_RDONLY) = 3
        100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x7f) = 102
        102 chdir("x") = 0
        100 open("c.txt", O_RDONLY) = 3
        102 open("d.txt", O_RDONLY) = 3
        """
    )
    assert got == [
        ("/usr/bin/cat", R, True),
        ("/w/pkg/a.txt", R, True),
        ("/w/pkg/b.txt", R, True),  # the parent's later chdir does not move the child
        ("/elsewhere/c.txt", R, True),  # nor does the child's chdir move the parent
        ("/elsewhere/x/d.txt", R, True),
    ]


def test_threads_sharing_the_filesystem_context_share_the_cwd() -> None:
    got = events(
        """
        100 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_THREAD, exit_signal=0}, 88) = 101
        101 chdir("t") = 0
        100 open("a", O_RDONLY) = 3
        """
    )
    assert got == [("/w/t/a", R, True)]


def test_a_call_split_by_another_process_is_joined_in_the_order_it_was_entered() -> None:
    got = events(
        """
        100 openat(AT_FDCWD, "first", O_RDONLY <unfinished ...>
        101 openat(AT_FDCWD, "second", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
        100 <... openat resumed>) = 4
        102 openat(AT_FDCWD, "third", <unfinished ...>
        102 <... openat resumed>O_RDONLY) = -1 ENOENT (No such file or directory)
        """
    )
    assert got == [("/w/first", R, True), ("/w/second", W, True), ("/w/third", R, False)]


def test_a_call_whose_process_died_before_it_resumed_is_dropped() -> None:
    got = events(
        """
        100 openat(AT_FDCWD, "lost", O_RDONLY <unfinished ...>
        100 +++ killed by SIGKILL +++
        101 --- SIGCHLD {si_signo=SIGCHLD} ---
        101 openat(AT_FDCWD, "kept", O_RDONLY) = 3
        101 <... openat resumed>) = 3
        """
    )
    assert got == [("/w/kept", R, True)]


def test_quoted_and_escaped_names_are_decoded_to_the_bytes_of_the_name() -> None:
    got = events(
        r"""
        100 openat(AT_FDCWD</w>, "\303\251 n.txt", O_RDONLY) = 3</w/\303\251 n.txt>
        100 openat(AT_FDCWD</w/we\"ird\76dir>, "q\"uote, comma) = 9", O_RDONLY) = 3
        100 openat(AT_FDCWD, "tab\there\\back", O_RDONLY) = 3
        100 openat(AT_FDCWD, "latin1-\377", O_RDONLY) = 3
        """
    )
    assert [p for p, _, _ in got] == [
        "/w/é n.txt",
        '/w/we"ird>dir/q"uote, comma) = 9',
        "/w/tab\there\\back",
        os.fsdecode(b"/w/latin1-\xff"),
    ]


def test_open_flags_say_read_write_or_both_and_directories_are_marked() -> None:
    lines = """
        100 openat(AT_FDCWD, "r", O_RDONLY|O_CLOEXEC) = 3
        100 openat(AT_FDCWD, "w", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
        100 openat(AT_FDCWD, "rw", O_RDWR) = 3
        100 openat(AT_FDCWD, "d", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3
        100 openat(AT_FDCWD, "handle", O_RDONLY|O_PATH) = 3
        100 openat2(AT_FDCWD, "o2", {flags=O_WRONLY|O_CREAT, mode=0644, resolve=0}, 24) = 3
        100 creat("c", 0644) = 3
    """
    found = list(file_events(parse(line.strip() for line in lines.splitlines()), "/w"))
    assert [(e.path, e.access, e.directory) for e in found] == [
        ("/w/r", R, False),
        ("/w/w", W, False),
        ("/w/rw", R, False),
        ("/w/rw", W, False),
        ("/w/d", R, True),
        ("/w/o2", W, False),
        ("/w/c", W, False),
    ]


def test_renames_deletes_links_and_execs() -> None:
    lines = """
        100 renameat2(AT_FDCWD</w/d>, "tmp", AT_FDCWD</w/d>, "out", RENAME_NOREPLACE) = 0
        100 rename("a", "b") = 0
        100 unlinkat(AT_FDCWD, "gone", 0) = 0
        100 unlinkat(AT_FDCWD, "dir", AT_REMOVEDIR) = 0
        100 unlink("u") = 0
        100 symlinkat("target", AT_FDCWD, "link") = 0
        100 linkat(AT_FDCWD, "src", AT_FDCWD, "hard", 0) = 0
        100 truncate("t", 0) = 0
        100 execve("./run.sh", ["./run.sh"], 0x7ffd /* 3 vars */) = 0
        100 execve("/nope/sh", ["sh"], 0x7ffd /* 3 vars */) = -1 ENOENT (No such file or directory)
    """
    found = list(file_events(parse(line.strip() for line in lines.splitlines()), "/w"))
    assert [(e.path, e.access, e.ok, e.directory) for e in found] == [
        ("/w/d/tmp", W, True, False),
        ("/w/d/out", W, True, False),
        ("/w/a", W, True, False),
        ("/w/b", W, True, False),
        ("/w/gone", W, True, False),
        ("/w/dir", W, True, True),
        ("/w/u", W, True, False),
        ("/w/link", W, True, False),
        ("/w/src", R, True, False),
        ("/w/hard", W, True, False),
        ("/w/t", W, True, False),
        ("/w/run.sh", R, True, False),
        ("/nope/sh", R, False, False),
    ]


def test_a_descriptor_strace_did_not_decode_gives_no_path() -> None:
    got = events(
        """
        100 openat(3</w/src>, "a", O_RDONLY) = 4
        100 openat(5, "b", O_RDONLY) = 6
        """
    )
    assert got == [("/w/src/a", R, True)]


def test_split_args_keeps_strings_brackets_paths_and_comments_whole() -> None:
    text = '3</a,b>, "x, \\"y\\"", [1, 2], {a=1, b=2}, 0x1 /* 3, vars */, f(1, 2)'
    assert split_args(text) == [
        "3</a,b>",
        '"x, \\"y\\""',
        "[1, 2]",
        "{a=1, b=2}",
        "0x1 /* 3, vars */",
        "f(1, 2)",
    ]
    assert fd_path("AT_FDCWD</a\\76b>") == "/a>b"
    assert fd_path("AT_FDCWD") is None


def _strace_escape(data: bytes) -> str:
    """How strace prints a name: printable ASCII as is, quote and
    backslash escaped, \\t \\n \\v \\f \\r by letter, any other byte in octal, with three
    digits when an octal digit follows."""
    letters = {9: "t", 10: "n", 11: "v", 12: "f", 13: "r"}
    out = []
    for i, b in enumerate(data):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif b in letters:
            out.append("\\" + letters[b])
        elif 32 <= b < 127:
            out.append(c)
        elif i + 1 < len(data) and chr(data[i + 1]) in "01234567":
            out.append(f"\\{b:03o}")
        else:
            out.append(f"\\{b:o}")
    return "".join(out)


@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b))
def test_any_name_strace_prints_decodes_to_the_same_name(name: bytes) -> None:
    assert unescape(_strace_escape(name)) == os.fsdecode(name)
    assert unescape(_strace_escape(name + b"7")) == os.fsdecode(name + b"7")


def test_the_real_strace_output_is_understood(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "é.txt").write_text("x")
    (tmp_path / "top.txt").write_text("y")
    trace = tmp_path / "trace"
    script = "cd sub && cat é.txt > /dev/null; (cd .. && cat top.txt > made.txt) ; rm ../made.txt"
    subprocess.run(
        ["strace", *STRACE_ARGS, "-o", str(trace), "--", "sh", "-c", script],
        cwd=tmp_path,
        check=True,
    )
    with open(trace, encoding="utf-8", errors="surrogateescape") as f:
        found = [
            e for e in file_events(parse(f), str(tmp_path)) if e.path.startswith(str(tmp_path))
        ]
    root = str(tmp_path)
    assert FileEvent(f"{root}/sub/é.txt", R, found[0].pid, True) in found
    assert any(e.path == f"{root}/top.txt" and e.access is R for e in found)
    writes = [e.path for e in found if e.access is W]
    assert writes == [f"{root}/made.txt", f"{root}/made.txt"]  # created, then removed
