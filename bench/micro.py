"""Micro figures: file hashing throughput, pool overhead per task, files read by a no-op run.

- Hashing: ggen's own file hashing (``ggen.cache.digest.hash_file``) against plain xxh3-128
  over the same bytes (one read, or an mmap from 4 MiB), on one 256 MiB file and on 10,000
  files of 8 KiB, both from the page cache (one untimed pass first), best of three.
- Pool overhead: 1,000 no-op calls through a warm loky pool of J workers (what the pool costs
  per task), and 1,000 workspaces whose build is ``true`` through ``ggen run --no-cache``
  (what a task costs end to end: plan, pool, process spawn, record).
- Files read by a no-op run: the no-op run of ggen under ``strace -f``, counting opens of
  source files; none may be opened when their size, mtime and inode are unchanged.
"""

from __future__ import annotations

import functools
import mmap
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xxhash

from bench.generate import Tree, TreeSpec, generate
from bench.measure import run_measured
from bench.scenarios import parse_summary
from bench.tools import Tool

MIB = 1024 * 1024
MMAP_FROM = 4 * MIB
BIG_FILE_MIB = 256
SMALL_FILES = 10_000
SMALL_KIB = 8


@dataclass(frozen=True)
class Figure:
    """One micro figure."""

    name: str
    value: float | None
    unit: str
    note: str = ""

    def to_json(self) -> dict[str, object]:
        """A plain dict for the results file."""
        return {"name": self.name, "value": self.value, "unit": self.unit, "note": self.note}


def raw_xxh3_file(path: Path) -> str:
    """xxh3-128 of a file the plainest fast way: one read, or an mmap for large files.

    This is the yardstick for ggen's hashing: the library's own speed on the same bytes, with
    no memo, no locking and no bookkeeping.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < MMAP_FROM:
            return xxhash.xxh3_128_hexdigest(os.read(fd, size))
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
            return xxhash.xxh3_128_hexdigest(mapped)
    finally:
        os.close(fd)


def _hash_all(hasher: Callable[[Path], str], files: list[Path]) -> list[str]:
    return [hasher(p) for p in files]


def _best_of(fn: Callable[[], object], times: int = 3) -> float:
    fn()  # warm the page cache and the code paths
    best = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _ggen_hash_file() -> Callable[[Path], str] | None:
    try:
        from ggen.cache.digest import hash_file
    except ImportError:
        return None
    return hash_file


def hashing_figures(
    scratch: Path, big_mib: int = BIG_FILE_MIB, small: int = SMALL_FILES
) -> list[Figure]:
    """Throughput of ggen's file hashing vs raw xxh3-128 (MiB/s) and ggen's share of raw."""
    ggen_hash = _ggen_hash_file()
    scratch.mkdir(parents=True, exist_ok=True)
    big = scratch / "big.bin"
    with open(big, "wb") as fh:
        block = os.urandom(MIB)
        for i in range(big_mib):
            fh.write(block[i % 251 :] + block[: i % 251])
    small_dir = scratch / "small"
    small_dir.mkdir(exist_ok=True)
    blob = os.urandom(SMALL_KIB * 1024 + small)
    paths = []
    for i in range(small):
        p = small_dir / f"f{i:05d}.bin"
        p.write_bytes(blob[i : i + SMALL_KIB * 1024])
        paths.append(p)
    figures: list[Figure] = []
    cases = (
        (f"one {big_mib} MiB file", [big], big_mib),
        (f"{small:,} files of {SMALL_KIB} KiB", paths, small * SMALL_KIB / 1024),
    )
    for label, files, mib in cases:
        raw = _best_of(functools.partial(_hash_all, raw_xxh3_file, files))
        figures.append(Figure(f"hash raw xxh3_128, {label}", round(mib / raw, 1), "MiB/s"))
        if ggen_hash is None:
            figures.append(
                Figure(f"hash ggen, {label}", None, "MiB/s", "ggen.cache.digest missing")
            )
            continue
        same = ggen_hash(files[0]) == raw_xxh3_file(files[0])
        note = "" if same else "digest differs from raw xxh3_128"
        ours = _best_of(functools.partial(_hash_all, ggen_hash, files))
        figures.append(Figure(f"hash ggen, {label}", round(mib / ours, 1), "MiB/s", note))
        figures.append(Figure(f"hash ggen/raw, {label}", round(raw / ours * 100, 1), "%", note))
    shutil.rmtree(small_dir, ignore_errors=True)
    big.unlink(missing_ok=True)
    return figures


def _noop() -> None:
    return None


def loky_overhead(jobs: int, tasks: int = 1000) -> Figure:
    """Microseconds per no-op task through a warm loky pool of ``jobs`` workers."""
    from loky import get_reusable_executor

    executor = get_reusable_executor(max_workers=jobs, timeout=10)
    try:
        for f in [executor.submit(_noop) for _ in range(jobs * 4)]:
            f.result()
        start = time.perf_counter()
        for f in [executor.submit(_noop) for _ in range(tasks)]:
            f.result()
        elapsed = time.perf_counter() - start
    finally:
        executor.shutdown(wait=True, kill_workers=True)
    return Figure(
        f"loky pool, {tasks:,} no-op tasks, {jobs} workers",
        round(elapsed / tasks * 1e6, 1),
        "us/task",
    )


def ggen_task_overhead(ggen: Tool, work: Path, jobs: int, tasks: int = 1000) -> list[Figure]:
    """ms per task of ``ggen run --no-cache`` over ``tasks`` workspaces whose build is ``true``."""
    spec = TreeSpec(tasks, files=1, kib=1)
    tree = generate(spec, work / "noop-tasks")
    toml = (tree.root / "make.toml").read_text()
    (tree.root / "make.toml").write_text(toml.replace(f'"{spec.build_command()}"', '"true"'))
    argv = ggen.build_argv(tree.root, jobs, force=True)
    samples = []
    note = ""
    for i in range(3):
        s = run_measured(argv, cwd=tree.root, env=dict(ggen.env), timeout_s=300)
        summary = parse_summary(s.stdout)
        if s.exit_code != 0 or summary is None or summary.ran != tasks:
            note = f"invalid: exit {s.exit_code}, ran={summary.ran if summary else None}"
        if i:
            samples.append(s.wall_s)
    shutil.rmtree(tree.root, ignore_errors=True)
    med = statistics.median(samples)
    return [
        Figure(
            f"ggen run --no-cache, {tasks:,} tasks of `true`, -j{jobs}",
            round(med / tasks * 1000, 2),
            "ms/task",
            note or f"whole process {med:.2f} s",
        )
    ]


_OPEN = re.compile(r'open(?:at2?)?\((?:[A-Z_]+, )?"([^"]+)", ([A-Z_|]+)')


def count_source_opens(strace_log: str) -> set[str]:
    """The source files (``.../src/...``, not directories) that an strace log shows opened."""
    opened: set[str] = set()
    for line in strace_log.splitlines():
        m = _OPEN.search(line)
        if m and "/src/" in m.group(1) and "O_DIRECTORY" not in m.group(2):
            opened.add(m.group(1))
    return opened


def noop_source_opens(ggen: Tool, tree: Tree, jobs: int) -> Figure:
    """Source files opened by a no-op ggen run (under ``strace -f``); must be 0."""
    name = "source files opened by a no-op run (strace)"
    strace = shutil.which("strace")
    if strace is None:
        return Figure(name, None, "files", "not measured: strace is not installed")
    argv = ggen.build_argv(tree.root, jobs)
    first = run_measured(argv, cwd=tree.root, env=dict(ggen.env), timeout_s=300)
    if first.exit_code != 0:
        return Figure(name, None, "files", f"not measured: ggen exit {first.exit_code}")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "strace.log"
        # let the racy window of the files just written pass (see ggen.cache.digest)
        time.sleep(0.1)
        run_measured(argv, cwd=tree.root, env=dict(ggen.env), timeout_s=300)
        traced = [strace, "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(log), *argv]
        s = run_measured(traced, cwd=tree.root, env=dict(ggen.env), timeout_s=300)
        summary = parse_summary(s.stdout)
        opened = count_source_opens(log.read_text(errors="replace"))
    note = "" if summary is not None and summary.ran == 0 else "invalid: the traced run ran tasks"
    return Figure(name, float(len(opened)), "files", note or f"N={tree.spec.workspaces}")
