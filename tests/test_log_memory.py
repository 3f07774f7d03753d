"""End-to-end: ggen's memory does not grow with the size of a task's output.

A task writes 100 MB; ggen's own (private) memory is sampled while it runs. File pages that
ggen maps to hash a file (the digest's mmap) are shared with the page cache and reclaimable,
so they are left out: what is measured is resident memory minus shared, i.e. what ggen holds.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from monorepo import ggen_command, last_summary, statuses, write_tree

LOG_BYTES = 100_000_000
BOUND = 40 * 1024 * 1024  # well below the log's size; ggen itself takes about 20 MB

REPO = {
    "make.toml": f"""
        [project]
        name = "loud"

        [lifecycle.build]
        command = "yes 0123456789abcdef | head -c {LOG_BYTES}"
        inputs = ["make.toml"]

        [lifecycle.line]
        command = "head -c {LOG_BYTES} /dev/zero | tr '\\\\0' a"
        inputs = ["make.toml"]
        cache = false
    """,
}


@dataclass
class Measured:
    code: int
    peak_private: int
    out_bytes: int
    out_lines: int
    longest_line: int


def _measure(root: Path, *args: str) -> Measured:
    """Run ``ggen ARGS``, sampling its private memory; stdout is counted, not kept."""
    env = {**os.environ, "GGEN_CACHE_DIR": str(root.parent / "cache")}
    proc = subprocess.Popen(
        [*ggen_command(), *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    counts = {"bytes": 0, "lines": 0, "longest": 0}

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            counts["bytes"] += len(line)
            counts["lines"] += 1
            counts["longest"] = max(counts["longest"], len(line))

    reader = threading.Thread(target=drain)
    reader.start()
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            info = watched.memory_info()
        except psutil.Error:
            break
        peak = max(peak, info.rss - info.shared)
        time.sleep(0.005)
    reader.join()
    code = proc.wait(timeout=120)
    assert proc.stdout is not None
    proc.stdout.close()
    return Measured(code, peak, counts["bytes"], counts["lines"], counts["longest"])


def test_a_100_mb_log_is_stored_and_replayed_in_bounded_memory(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", REPO)
    log = root / ".ggen/logs/%2E.build.log"
    first = _measure(root, "run", "build", "--output", "quiet")
    assert first.code == 0
    assert statuses(last_summary(root)) == {".:build": "ok"}
    assert log.stat().st_size == LOG_BYTES
    log.unlink()
    second = _measure(root, "run", "build", "--output", "grouped")
    assert second.code == 0
    assert statuses(last_summary(root)) == {".:build": "cached"}
    assert log.stat().st_size == LOG_BYTES  # the log came back from the cache, whole
    assert second.out_bytes < 1_000_000  # what is shown of it is bounded
    assert first.peak_private < BOUND, f"storing: {first.peak_private >> 20} MB"
    assert second.peak_private < BOUND, f"replaying: {second.peak_private >> 20} MB"


def test_a_100_mb_line_streams_in_pieces_in_bounded_memory(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", REPO)
    got = _measure(root, "run", "line", "--output", "stream")
    assert got.code == 0
    prefix = len(".:line | ")
    # every byte of the line came out, in pieces of at most 64 KiB
    assert got.longest_line <= prefix + 64 * 1024 + 1
    assert got.out_bytes >= LOG_BYTES
    assert got.peak_private < BOUND, f"streaming: {got.peak_private >> 20} MB"
