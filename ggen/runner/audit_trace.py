"""strace's output -> the files a traced command opened, wrote, renamed or deleted. Pure.

``ggen audit`` runs each command as ``strace -f -y -o FILE sh -c COMMAND`` (see
``STRACE_ARGS``) and reads FILE back through ``parse`` (lines -> ``Syscall``, joining the
``<unfinished ...>`` and ``<... NAME resumed>`` halves that ``-f`` interleaves) and
``file_events`` (syscalls -> ``FileEvent`` with absolute paths).

Paths are made absolute the way the kernel does: an absolute path as given; a relative one
against its directory descriptor, which ``-y`` decodes (``3</src>``, ``AT_FDCWD</work/a>``),
else against the process's working directory, followed here through ``chdir``/``fchdir`` and
inherited across ``fork``/``vfork``/``clone`` (shared with ``CLONE_FS``). Names are C-escaped
by strace (``\\303\\251`` for the bytes of a non-ASCII name, ``\\"``, ``\\76`` for ``>`` inside
``<...>``); they are decoded to bytes and then to ``str`` with the filesystem encoding, so a
name that is not UTF-8 survives as surrogate escapes. ``..`` is folded lexically.

Failed calls are kept (``ok=False``): deciding what a failed open means is the rules' job.
"""

from __future__ import annotations

import enum
import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# the system calls that read, write or delete files by name, change directory or make processes;
# "?" lets strace skip a name this architecture does not have (open, creat, fork on arm64)
TRACED = (
    "?open",
    "openat",
    "?openat2",
    "?creat",
    "execve",
    "?execveat",
    "chdir",
    "fchdir",
    "?rename",
    "renameat",
    "?renameat2",
    "?unlink",
    "unlinkat",
    "?link",
    "linkat",
    "?symlink",
    "symlinkat",
    "truncate",
    "?clone",
    "?clone3",
    "?fork",
    "?vfork",
)
STRACE_ARGS = ("-f", "-qq", "-y", "-e", "signal=none", "-e", "trace=" + ",".join(TRACED))
"""strace's options for ``ggen audit``: follow children, no attach/exit notes, decode
descriptors to paths, no signal lines, and only the calls above."""


class Access(enum.Enum):
    """What a call did to a file."""

    READ = "read"
    WRITE = "write"  # created, written, truncated, renamed (either name) or deleted


@dataclass(frozen=True)
class Syscall:
    """One completed system call. ``seq`` orders calls by when they were entered."""

    seq: int
    pid: int
    name: str
    args: tuple[str, ...]  # as strace printed them, split at top-level commas
    result: str  # "0", "3", "-1", "?"
    errno: str | None = None  # "ENOENT" when it failed
    result_path: str | None = None  # the path ``-y`` decoded for a returned descriptor


@dataclass(frozen=True)
class FileEvent:
    """A file a traced process touched by name."""

    path: str  # absolute, normalised
    access: Access
    pid: int
    ok: bool  # the call succeeded
    directory: bool = False  # the call was about a directory (O_DIRECTORY, AT_REMOVEDIR)


_LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(.*)$")
_RESUMED = re.compile(r"^<\.\.\. ([A-Za-z0-9_]+) resumed>(.*)$")
_UNFINISHED = " <unfinished ...>"
_CALL = re.compile(r"^([A-Za-z0-9_]+)\((.*)$")
_FD_RESULT = re.compile(r"^(-?\d+)<")
_ERRNO = re.compile(r"^\s*(E[A-Z0-9]+)\b")
_FD = re.compile(r"^(-?\d+|AT_FDCWD)<(.*)>$", re.DOTALL)
_ESCAPES = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8, "e": 27}


def parse(lines: Iterable[str]) -> list[Syscall]:
    """The completed calls of an ``strace -f -o`` file, in the order they were entered.

    Lines that are not calls (``+++ exited +++``, ``--- SIG... ---``, a call strace could not
    finish printing because its process died) are dropped.
    """
    pending: dict[int, tuple[int, str, str]] = {}  # pid -> (seq, name, args so far)
    calls: list[Syscall] = []
    for seq, raw in enumerate(lines):
        line = raw.rstrip("\n")
        m = _LINE.match(line)
        pid, body = (int(m.group(1)), m.group(2)) if m else (0, line)
        if body.startswith(("+++", "---")):
            continue
        resumed = _RESUMED.match(body)
        if resumed:
            started = pending.pop(pid, None)
            if started is None or started[1] != resumed.group(1):
                continue
            seq0, name, head = started
            rest = resumed.group(2)
            sep = " " if head.endswith(",") and not rest.startswith(")") else ""
            call = _complete(seq0, pid, name, head + sep + rest.lstrip())
        else:
            if body.endswith(_UNFINISHED):
                start = _CALL.match(body[: -len(_UNFINISHED)])
                if start:
                    pending[pid] = (seq, start.group(1), start.group(2).rstrip())
                continue
            start = _CALL.match(body)
            call = _complete(seq, pid, start.group(1), start.group(2)) if start else None
        if call is not None:
            calls.append(call)
    calls.sort(key=lambda c: c.seq)
    return calls


def _complete(seq: int, pid: int, name: str, text: str) -> Syscall | None:
    """A call from the text after ``NAME(``: ``ARGS) = RESULT [ERRNO (...)]``."""
    end = _closing(text)
    if end < 0:
        return None
    tail = text[end + 1 :].lstrip()
    if not tail.startswith("="):
        return None
    tail = tail[1:].lstrip()
    result_path = None
    fd = _FD_RESULT.match(tail)
    if fd:
        close = _angle_end(tail, fd.end() - 1)
        result, result_path = fd.group(1), unescape(tail[fd.end() : close])
        tail = tail[close + 1 :]
    else:
        result, _, tail = tail.partition(" ")
    m = _ERRNO.match(tail)
    errno = m.group(1) if m else None
    return Syscall(seq, pid, name, tuple(split_args(text[:end])), result, errno, result_path)


def _closing(text: str) -> int:
    """Index of the ``)`` closing the argument list ``text`` continues, or -1."""
    depth = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _string_end(text, i)
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return i if c == ")" else -1
            depth -= 1
        elif c == "<" and i > 0 and (text[i - 1].isalnum()):
            i = _angle_end(text, i)
        i += 1
    return -1


def _string_end(text: str, start: int) -> int:
    """Index of the ``"`` closing the string opened at ``start`` (or the end of ``text``)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return len(text)


def _angle_end(text: str, start: int) -> int:
    """Index of the ``>`` closing a ``-y`` path opened at ``start`` (``>`` inside is escaped)."""
    end = text.find(">", start)
    return len(text) if end < 0 else end


def split_args(text: str) -> list[str]:
    """Split an argument list at its top-level commas (not inside strings, brackets, ``<>``
    paths or ``/* comments */``)."""
    out: list[str] = []
    depth = 0
    cur = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _string_end(text, i)
        elif c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "<" and i > 0 and text[i - 1].isalnum():
            i = _angle_end(text, i)
        elif c == "," and depth == 0:
            out.append(text[cur:i].strip())
            cur = i + 1
        i += 1
    last = text[cur:].strip()
    if last or out:
        out.append(last)
    return out


def unescape(text: str) -> str:
    """Decode strace's C escapes (``\\303\\251``, ``\\"``, ``\\n``, ``\\x41``) into a name."""
    data = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        b = raw[i]
        if b != 0x5C or i + 1 == len(raw):  # not a backslash
            data.append(b)
            i += 1
            continue
        nxt = chr(raw[i + 1])
        if nxt in "01234567":
            j = i + 1
            while j < len(raw) and j < i + 4 and chr(raw[j]) in "01234567":
                j += 1
            data.append(int(raw[i + 1 : j], 8) & 0xFF)
            i = j
        elif nxt == "x" and _is_hex(raw[i + 2 : i + 4]):
            data.append(int(raw[i + 2 : i + 4], 16))
            i += 4
        else:
            data.append(_ESCAPES.get(nxt, raw[i + 1]))
            i += 2
    return os.fsdecode(bytes(data))


def _is_hex(chunk: bytes) -> bool:
    return len(chunk) == 2 and all(chr(c) in "0123456789abcdefABCDEF" for c in chunk)


def string_arg(arg: str) -> str | None:
    """The value of a quoted string argument (``"a.txt"`` or a truncated ``"a..."...``)."""
    if not arg.startswith('"'):
        return None
    end = _string_end(arg, 0)
    return unescape(arg[1:end])


def fd_path(arg: str) -> str | None:
    """The path ``-y`` decoded for a descriptor argument (``3</src>``, ``AT_FDCWD</a>``)."""
    m = _FD.match(arg)
    return unescape(m.group(2)) if m else None


# syscall name -> (index of the directory descriptor or None, index of the path) per named file,
# with the access it makes; opens and the special cases are handled in _events
_NAMED: dict[str, tuple[tuple[int | None, int, Access], ...]] = {
    "creat": ((None, 0, Access.WRITE),),
    "truncate": ((None, 0, Access.WRITE),),
    "execve": ((None, 0, Access.READ),),
    "execveat": ((0, 1, Access.READ),),
    "rename": ((None, 0, Access.WRITE), (None, 1, Access.WRITE)),
    "renameat": ((0, 1, Access.WRITE), (2, 3, Access.WRITE)),
    "renameat2": ((0, 1, Access.WRITE), (2, 3, Access.WRITE)),
    "unlink": ((None, 0, Access.WRITE),),
    "link": ((None, 0, Access.READ), (None, 1, Access.WRITE)),
    "linkat": ((0, 1, Access.READ), (2, 3, Access.WRITE)),
    "symlink": ((None, 1, Access.WRITE),),
    "symlinkat": ((1, 2, Access.WRITE),),
}
_FORKS = frozenset({"clone", "clone3", "fork", "vfork"})
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")


class _Cwds:
    """The working directory of every traced process; threads sharing it share one cell."""

    def __init__(self, start: str) -> None:
        self.start = start
        self.cells: dict[int, list[str]] = {}

    def cell(self, pid: int) -> list[str]:
        found = self.cells.get(pid)
        if found is None:
            # the first process, or one whose creation was not seen: the task's directory
            found = self.cells[pid] = [self.start]
        return found

    def fork(self, parent: int, child: int, shared: bool) -> None:
        cell = self.cell(parent)
        self.cells[child] = cell if shared else [cell[0]]


def file_events(calls: Iterable[Syscall], start_cwd: str) -> Iterator[FileEvent]:
    """The files ``calls`` touched by name, in order; ``start_cwd`` is the directory the first
    process started in (that of any process whose creation the trace does not show)."""
    cwds = _Cwds(start_cwd)
    for call in calls:
        ok = call.errno is None and call.result not in ("?", "-1")
        if call.name in _FORKS:
            if ok and call.result.isdigit():
                shared = any("CLONE_FS" in a or "CLONE_THREAD" in a for a in call.args)
                cwds.fork(call.pid, int(call.result), shared)
            continue
        cwd = cwds.cell(call.pid)
        if call.name in ("chdir", "fchdir"):
            if ok and call.args:
                arg = call.args[0]
                target = (
                    fd_path(arg)
                    if call.name == "fchdir"
                    else _resolve(cwd[0], None, string_arg(arg))
                )
                if target is not None:
                    cwd[0] = target
            continue
        yield from _events(call, cwd[0], ok)


def _events(call: Syscall, cwd: str, ok: bool) -> Iterator[FileEvent]:
    args = call.args
    if call.name in ("open", "openat", "openat2"):
        at = 0 if call.name != "open" else None
        index = 0 if at is None else 1
        if len(args) <= index + 1:
            return
        flags = args[index + 1]
        if call.name == "openat2":
            m = re.search(r"flags=([A-Z0-9_|]+)", flags)
            flags = m.group(1) if m else ""
        if "O_PATH" in flags:
            return  # a handle, not an open of the contents
        path = _resolve(cwd, args[at] if at is not None else None, string_arg(args[index]))
        if path is None:
            return
        directory = "O_DIRECTORY" in flags
        if "O_RDWR" in flags or not any(f in flags for f in _WRITE_FLAGS):
            yield FileEvent(path, Access.READ, call.pid, ok, directory)
        if any(f in flags for f in _WRITE_FLAGS):
            yield FileEvent(path, Access.WRITE, call.pid, ok, directory)
        return
    if call.name == "unlinkat":
        if len(args) >= 2:
            path = _resolve(cwd, args[0], string_arg(args[1]))
            directory = len(args) > 2 and "AT_REMOVEDIR" in args[2]
            if path is not None:
                yield FileEvent(path, Access.WRITE, call.pid, ok, directory)
        return
    for at, index, access in _NAMED.get(call.name, ()):
        if index < len(args):
            path = _resolve(cwd, args[at] if at is not None else None, string_arg(args[index]))
            if path is not None:
                yield FileEvent(path, access, call.pid, ok)


def _resolve(cwd: str, dirfd: str | None, path: str | None) -> str | None:
    """``path`` made absolute against ``dirfd`` (``-y`` decoded) or the working directory."""
    if path is None or path == "":
        return None
    if path.startswith("/"):
        return _norm(path)
    base = cwd
    if dirfd is not None:
        decoded = fd_path(dirfd)
        if decoded is not None:
            base = decoded
        elif dirfd != "AT_FDCWD":
            return None  # a descriptor strace did not decode: its directory is unknown
    return _norm(posixpath.join(base, path))


def _norm(path: str) -> str:
    """Fold ``.``, ``..`` and repeated slashes (normpath keeps a leading ``//``)."""
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/") if normal.startswith("//") else normal
