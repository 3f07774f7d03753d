"""Helpers for tests that start, signal and look for processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Return as soon as ``condition()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or condition}")
        time.sleep(0.02)


def running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def survivors(pids: Iterable[int]) -> list[int]:
    """The processes of ``pids`` still running."""
    return [p for p in pids if running(p)]


def read_pids(paths: Iterable[Path]) -> list[int]:
    """The pids written (one each) in ``paths``."""
    return [int(p.read_text().split()[0]) for p in paths]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now."""
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def files_exist(*paths: Path) -> Callable[[], bool]:
    """A condition: every one of ``paths`` exists and is not empty."""
    return lambda: all(p.exists() and p.stat().st_size > 0 for p in paths)


def is_group_leader(pid: int) -> bool:
    """True if ``pid`` leads its own process group (a command ggen started)."""
    return os.getpgid(pid) == pid
