"""Following the log files of running tasks, line by line (``--output stream``).

Workers write each task's output to its log file; a thread of the scheduling process reads the
new bytes of every followed file a few times a second and hands out complete lines only. A
line still being written stays until its newline arrives, or until the task ends (``finish``),
which also hands out what is left. A file that shrinks (a task run again, truncating its log)
is read again from its start.

Memory stays bounded whatever a task writes: files are read ``MAX_READ`` bytes at a time, and
a line longer than ``MAX_LINE`` bytes (a progress bar redrawn with ``\r``, minified output) is
handed out in pieces of at most that size, cut between UTF-8 characters.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

POLL_S = 0.1
MAX_READ = 1 << 20  # bytes read at once
MAX_LINE = 64 * 1024  # bytes of a line handed out at once; a longer one comes in pieces


@dataclass
class _Followed:
    path: str
    fd: int | None = None
    inode: int = 0
    offset: int = 0
    partial: bytes = b""


class LogTailer:
    """Hands out the complete lines of followed files to ``emit(key, line)``.

    ``emit`` is called from the tailer's thread or from the caller of ``finish``, never from two
    threads at once, and in file order for each key.
    """

    def __init__(self, emit: Callable[[str, str], None], interval: float = POLL_S) -> None:
        self._emit = emit
        self._interval = interval
        self._lock = threading.Lock()
        self._files: dict[str, _Followed] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    @property
    def running(self) -> bool:
        """True while the thread runs (it ends when nothing is followed)."""
        with self._lock:
            return self._thread is not None

    def follow(self, key: str, path: str) -> None:
        """Start following ``path`` (it may not exist yet) under ``key``."""
        with self._lock:
            old = self._files.pop(key, None)
            if old is not None:
                _close(old)
            self._files[key] = _Followed(path)
            if self._thread is None:
                self._wake.clear()
                self._thread = threading.Thread(target=self._run, name="ggen-tail", daemon=True)
                self._thread.start()

    def finish(self, key: str) -> None:
        """Hand out the rest of ``key``'s file, its last line even without a newline; stop."""
        with self._lock:
            followed = self._files.pop(key, None)
            if followed is None:
                return
            self._read(key, followed, final=True)
            _close(followed)

    def poll(self) -> None:
        """One pass over every followed file (what the thread does every ``interval``)."""
        with self._lock:
            for key, followed in list(self._files.items()):
                self._read(key, followed, final=False)

    def close(self) -> None:
        """Stop the thread; what was not handed out yet is dropped."""
        with self._lock:
            thread, self._thread = self._thread, None
            for followed in self._files.values():
                _close(followed)
            self._files.clear()
            self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while not self._wake.wait(self._interval):
            self.poll()
            with self._lock:
                if not self._files:
                    # nothing to follow: the thread ends, ``follow`` starts another
                    self._thread = None
                    return

    def _read(self, key: str, followed: _Followed, final: bool) -> None:
        for data in _new_chunks(followed):
            lines = (followed.partial + data).split(b"\n")
            followed.partial = lines.pop()
            for line in lines:
                self._emit_pieces(key, line)
            while len(followed.partial) > MAX_LINE:
                cut = _piece_end(followed.partial)
                self._emit_line(key, followed.partial[:cut])
                followed.partial = followed.partial[cut:]
        if final and followed.partial:
            self._emit_line(key, followed.partial)
            followed.partial = b""

    def _emit_pieces(self, key: str, line: bytes) -> None:
        while len(line) > MAX_LINE:
            cut = _piece_end(line)
            self._emit_line(key, line[:cut])
            line = line[cut:]
        self._emit_line(key, line)

    def _emit_line(self, key: str, line: bytes) -> None:
        self._emit(key, line.decode("utf-8", "replace").rstrip("\r"))


def _piece_end(data: bytes) -> int:
    """Where to cut the first piece of an over-long line: at most ``MAX_LINE`` bytes, not in
    the middle of a UTF-8 character (continuation bytes are 0b10xxxxxx)."""
    cut = MAX_LINE
    while cut > MAX_LINE - 4 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut if data[cut] & 0xC0 != 0x80 else MAX_LINE


def _new_chunks(followed: _Followed) -> Iterator[bytes]:
    """What was appended to the file since the last read, ``MAX_READ`` bytes at a time
    (nothing if it does not exist yet)."""
    try:
        st = os.stat(followed.path)
    except OSError:
        return
    if followed.fd is not None and st.st_ino != followed.inode:
        _close(followed)  # replaced by a new file: start over on that one
    if followed.fd is None:
        try:
            followed.fd = os.open(followed.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        followed.inode = os.fstat(followed.fd).st_ino
        followed.offset = 0
        followed.partial = b""
    size = os.fstat(followed.fd).st_size
    if size < followed.offset:
        followed.offset = 0  # truncated: the task is writing it anew
        followed.partial = b""
    while followed.fd is not None and followed.offset < size:
        chunk = os.pread(followed.fd, min(MAX_READ, size - followed.offset), followed.offset)
        if not chunk:
            break
        followed.offset += len(chunk)
        yield chunk


def _close(followed: _Followed) -> None:
    if followed.fd is not None:
        with contextlib.suppress(OSError):
            os.close(followed.fd)
        followed.fd = None
