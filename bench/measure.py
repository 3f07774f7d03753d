"""Run one command and measure it: wall time, exit code, peak RSS, CPU time, output.

The command runs in its own session (process group) with its output sent to temporary files,
so the harness never blocks on a pipe. Its peak RSS is read from ``/proc/PID/status``
(``VmHWM``, the kernel's high-water mark) by a polling thread while it runs; the largest RSS
of any process in its tree and the CPU time of the whole tree come from ``wait4``. Whatever is
left of its process group once it has exited is reported and killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

POLL_INTERVAL_S = 0.01
STDERR_TAIL = 2000
LEFTOVER_GRACE_S = 1.0


@dataclass(frozen=True)
class Sample:
    """One measured run of one command."""

    argv: tuple[str, ...]
    wall_s: float
    exit_code: int
    timed_out: bool
    peak_rss_kb: int  # the started process itself; 0 if it ended before the first poll
    tree_max_rss_kb: int  # the largest of the process and its waited-for descendants
    cpu_s: float  # user + system time of the process and its waited-for descendants
    leftovers: int  # processes of its group alive 1 s after it exited (then killed)
    stdout: bytes
    stderr_tail: str


def _vm_hwm_kb(pid: int) -> int:
    """The high-water mark of ``pid``'s resident set, in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _poll_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _vm_hwm_kb(pid))
        stop.wait(POLL_INTERVAL_S)


def _group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of group ``pgid``."""
    alive: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields after "comm)": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _group_survivors(pgid: int) -> int:
    """How many processes of group ``pgid`` are still alive after a grace period; kills them.

    The grace period lets helpers that exit by themselves once their parent is gone (loky's
    resource tracker, for one) do so without being counted.
    """
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    alive = _group_members(pgid)
    while alive and time.monotonic() < deadline:
        time.sleep(0.01)
        alive = _group_members(pgid)
    if alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        # Orphans may have been handed to us (a subreaper): reap those, ignore the others.
        deadline = time.monotonic() + 2.0
        for pid in alive:
            while time.monotonic() < deadline:
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    break
                time.sleep(0.01)
    return len(alive)


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> Sample:
    """Run ``argv`` in ``cwd`` and measure it (see the module docstring).

    On timeout the whole process group is killed and the sample says ``timed_out``.
    """
    run_env = dict(os.environ)
    if env:
        run_env.update(env)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=run_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        stop = threading.Event()
        peak = [0]
        poller = threading.Thread(target=_poll_rss, args=(proc.pid, stop, peak), daemon=True)
        poller.start()
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout_s, _kill) if timeout_s else None
        if timer is not None:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            wall = time.perf_counter() - start
            if timer is not None:
                timer.cancel()
            stop.set()
            poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        leftovers = _group_survivors(proc.pid)
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        err_text = err.read().decode(errors="replace")
    return Sample(
        argv=tuple(argv),
        wall_s=wall,
        exit_code=proc.returncode,
        timed_out=timed_out.is_set(),
        peak_rss_kb=peak[0],
        tree_max_rss_kb=int(usage.ru_maxrss),
        cpu_s=usage.ru_utime + usage.ru_stime,
        leftovers=leftovers,
        stdout=stdout,
        stderr_tail=err_text[-STDERR_TAIL:],
    )
