"""What a person sees during and after a run.

- On a terminal: one live progress line (done/total, cached, running tasks), the log of every
  failed task, and the closing line.
- Elsewhere (``--output grouped``, the default off a terminal): each finished task's output as
  one block headed ``workspace:phase``; with ``GITHUB_ACTIONS=true`` as ``::group::`` blocks.
- ``--output stream``: the lines of running tasks as they come, each prefixed with
  ``workspace:phase | `` (``tail.py`` follows the log files; lines over 64 KiB come in
  pieces), then the log of every failed task again, whole; a cached task's log is replayed
  as one block, as ``grouped`` does.
- ``--output quiet``: failed tasks' logs and the closing line only.
A last line always sums up: ran, cached, failed, wall time. Nothing here imports rich.
"""

from __future__ import annotations

import enum
import os
import shutil
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from ggen.runner.results import Status, TaskResult
from ggen.runner.state import totals
from ggen.runner.tail import LogTailer

MAX_LOG_SHOWN = 200_000  # bytes of one log printed at most; the file keeps it all


class OutputMode(enum.Enum):
    """How task output is shown."""

    AUTO = "auto"
    STREAM = "stream"
    GROUPED = "grouped"
    QUIET = "quiet"


def _read_log(root: str, rel: str | None) -> str:
    if not rel:
        return ""
    try:
        with open(Path(root) / rel, "rb") as f:
            data = f.read(MAX_LOG_SHOWN + 1)
    except OSError:
        return ""
    text = data[:MAX_LOG_SHOWN].decode("utf-8", "replace")
    if len(data) > MAX_LOG_SHOWN:
        text += f"\n[ggen] ... log truncated; full log: {rel}\n"
    return text


class Console:
    """Reports the progress and outcome of a run; safe to call from several threads."""

    def __init__(
        self,
        root: str,
        mode: OutputMode = OutputMode.AUTO,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.root = root
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tty = self.out.isatty() and os.environ.get("TERM") != "dumb"
        if mode is OutputMode.AUTO:
            mode = OutputMode.QUIET if self.tty else OutputMode.GROUPED
        self.mode = mode
        self.live = self.tty and mode is not OutputMode.STREAM
        self.github = os.environ.get("GITHUB_ACTIONS") == "true"
        self.total = 0
        self.done = 0
        self.cached = 0
        self.running: dict[str, None] = {}
        self._lock = threading.Lock()
        self._line_shown = False
        self._tail = LogTailer(self.stream_line) if mode is OutputMode.STREAM else None

    # progress -----------------------------------------------------------------------------
    def begin(self, total: int) -> None:
        self.total = total

    def started(self, task_id: str, log: str | None = None) -> None:
        """A task was sent to run; with ``--output stream`` its ``log`` file is followed."""
        with self._lock:
            self.running[task_id] = None
            self._progress()
        if self._tail is not None and log:
            self._tail.follow(task_id, log)

    def finished(self, result: TaskResult) -> None:
        """Print what the mode shows of a finished (or cached, or skipped) task."""
        if self._tail is not None:
            self._tail.finish(result.task_id)  # its last lines come before its block
        with self._lock:
            self.running.pop(result.task_id, None)
            self.done += 1
            if result.status is Status.CACHED:
                self.cached += 1
            failed = result.status in (Status.FAILED, Status.TIMEOUT)
            grouped = self.mode is OutputMode.GROUPED and result.status is not Status.SKIPPED
            # a cached task's log is replayed whole: no line of it was streamed
            replayed = self.mode is OutputMode.STREAM and result.status is Status.CACHED
            if failed or grouped or replayed:
                self._clear()
                self._block(result)
            self._progress()

    def stream_line(self, task_id: str, line: str) -> None:
        """One complete line of a running task's output (``--output stream``)."""
        with self._lock:
            self._clear()
            self.out.write(f"{task_id} | {line}\n")
            self.out.flush()
            self._progress()

    def warn(self, message: str) -> None:
        with self._lock:
            self._clear()
            self.err.write(f"ggen: warning: {message}\n")
            self.err.flush()
            self._progress()

    def _block(self, r: TaskResult) -> None:
        title = f"{r.task_id} [{r.status.value}]"
        if r.error and r.status is not Status.CACHED:
            title += f" {r.error}"
        text = (
            _read_log(self.root, r.log)
            if self.mode is not OutputMode.STREAM or r.status is not Status.OK
            else ""
        )
        if self.mode is OutputMode.STREAM and r.status is Status.OK:
            return
        stream = self.out
        if self.github:
            stream.write(f"::group::{title}\n{text}")
            if text and not text.endswith("\n"):
                stream.write("\n")
            stream.write("::endgroup::\n")
        else:
            stream.write(f"── {title}\n")
            for line in text.splitlines():
                stream.write(f"{r.task_id} | {line}\n")
        stream.flush()

    def _progress(self) -> None:
        if not self.live or not self.total:
            return
        names = ", ".join(list(self.running)[:3])
        if len(self.running) > 3:
            names += f", +{len(self.running) - 3}"
        line = f"[{self.done}/{self.total}] {self.cached} cached"
        if names:
            line += f" · running: {names}"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.out.write("\r\x1b[2K" + line[:width])
        self.out.flush()
        self._line_shown = True

    def _clear(self) -> None:
        if self._line_shown:
            self.out.write("\r\x1b[2K")
            self._line_shown = False

    # the end ------------------------------------------------------------------------------
    def summary(self, results: Iterable[TaskResult], wall_s: float) -> None:
        """The closing line: ran, cached, failed, skipped, wall time."""
        t = totals(results)
        if self._tail is not None:
            self._tail.close()
        with self._lock:
            self._clear()
            parts = [
                f"{t['tasks']} tasks",
                f"{t['ran']} ran",
                f"{t['cached']} cached",
                f"{t['failed']} failed",
            ]
            if t["skipped"]:
                parts.append(f"{t['skipped']} skipped")
            if t["no_script"]:
                parts.append(f"{t['no_script']} with nothing to do")
            if t["interrupted"]:
                parts.append(f"{t['interrupted']} interrupted")
            self.out.write(f"ggen: {', '.join(parts)} in {wall_s:.2f}s\n")
            self.out.flush()
