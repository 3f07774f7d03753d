"""Shared fixtures: every test must leave no child process behind."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Make orphans of our descendants (a ``sleep 300 &`` whose shell exited) our children,
    so that the check below sees them instead of losing them to init."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


_become_subreaper()


def _descendants() -> set[int]:
    try:
        return {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
    except psutil.Error:
        return set()


def _reap_adopted(before: set[int]) -> None:
    """Collect the orphans this subreaper adopted once they have died: nobody else will, and
    each would stay a zombie until pytest exits."""
    try:
        children = psutil.Process(os.getpid()).children()
    except psutil.Error:
        return
    for child in children:
        if child.pid in before:
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


@pytest.fixture(autouse=True)
def no_child_left_behind() -> Iterator[None]:
    """Fail a test that leaves a child process (or grandchild) running after it ends.

    Zombies do not count (they are collected here), live processes get 5 seconds to go.
    """
    before = _descendants()
    yield
    deadline = time.monotonic() + 5.0
    _reap_adopted(before)
    left = {p for p in _descendants() - before if _alive(p)}
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap_adopted(before)
        left = {p for p in _descendants() - before if _alive(p)}
    if left:
        names = []
        for pid in left:
            try:
                names.append(f"{pid} {' '.join(psutil.Process(pid).cmdline())[:80]}")
            except psutil.Error:
                names.append(str(pid))
        pytest.fail(f"test left child processes behind: {names}")


def _alive(pid: int) -> bool:
    """Running, and not a resource tracker: loky and multiprocessing start one per process that
    uses them (here, pytest itself, for tests that use a pool in-process), and it lives as long
    as that process does."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return not (
            proc.ppid() == os.getpid()
            and "resource_tracker import main" in " ".join(proc.cmdline())
        )
    except psutil.Error:
        return False
