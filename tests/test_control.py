"""Control files, the stop flag, stopping process groups and sweeping what a killed run left."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from procs import wait_for

from ggen.runner.control import (
    Control,
    clear_stop,
    control_path,
    group_alive,
    kill_group,
    read_control,
    request_stop,
    running_groups,
    stop_requested,
    stray_groups,
    sweep,
    task_identity,
    write_control,
)


@pytest.fixture
def groups() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Process groups started by a test, killed whatever happens."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def start_group(
    started: list[subprocess.Popen[bytes]], command: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["sh", "-c", command], env={**os.environ, **(env or {})}, start_new_session=True
    )
    started.append(proc)
    return proc


def has_identity(pid: int) -> bool:
    return "GGEN_PHASE" in psutil.Process(pid).environ()


def test_control_files_round_trip_and_list_running_groups(tmp_path: Path) -> None:
    a = control_path(str(tmp_path), "@acme/ui", "build")
    b = control_path(str(tmp_path), ".", "lint")
    assert Path(a).name == "%40acme%2Fui.build.pid" and Path(b).name == "%2E.lint.pid"
    write_control(a, 10, 0)
    write_control(b, 11, 4242)
    host = socket.gethostname()
    assert read_control(a) == Control(10, 0, host)
    assert read_control(b) == Control(11, 4242, host)
    assert running_groups(str(tmp_path)) == [4242]  # a task between commands has no group
    # a command on another machine (a Dask worker elsewhere) is never signalled from here
    Path(tmp_path, "x.other.pid").write_text("12 777 some-other-host\n")
    assert running_groups(str(tmp_path)) == [4242]
    Path(tmp_path, "x.other.pid").unlink()
    Path(a).write_text("garbage")
    assert read_control(a) is None
    assert list(tmp_path.glob("*.tmp")) == []


def test_the_stop_flag(tmp_path: Path) -> None:
    d = str(tmp_path / "control")
    assert not stop_requested(d)
    request_stop(d)
    assert stop_requested(d)
    clear_stop(d)
    assert not stop_requested(d)


def test_kill_group_terms_then_kills_what_ignores_term(
    tmp_path: Path, groups: list[subprocess.Popen[bytes]]
) -> None:
    polite = start_group(groups, "sleep 300")
    stubborn = start_group(groups, f"trap '' TERM; touch {tmp_path}/ready; sleep 300 & wait")
    wait_for((tmp_path / "ready").exists, 10)
    t0 = time.monotonic()
    kill_group(polite.pid, 5.0)
    assert time.monotonic() - t0 < 1 and polite.wait(5) == -15
    t0 = time.monotonic()
    kill_group(stubborn.pid, 0.5)
    assert 0.5 <= time.monotonic() - t0 < 2
    assert stubborn.wait(5) == -9
    assert not group_alive(stubborn.pid)


def test_a_group_left_with_zombies_only_is_not_alive(
    groups: list[subprocess.Popen[bytes]],
) -> None:
    proc = start_group(groups, "exit 0")
    wait_for(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE, 10)
    os.killpg(proc.pid, 0)  # the group still exists: its leader is not collected yet
    assert not group_alive(proc.pid)
    proc.wait()
    assert not group_alive(proc.pid)


def test_sweep_stops_only_groups_that_still_carry_the_tasks_identity(
    tmp_path: Path, groups: list[subprocess.Popen[bytes]]
) -> None:
    root = str(tmp_path)
    control = tmp_path / "control"
    control.mkdir()
    ours = start_group(groups, "sleep 300", task_identity(root, "@acme/ui", "build"))
    other_root = start_group(groups, "sleep 300", task_identity("/elsewhere", "@acme/ui", "build"))
    unrelated = start_group(groups, "sleep 300")
    for proc in (ours, other_root):  # exec'd: /proc shows the environment
        wait_for(functools.partial(has_identity, proc.pid))
    write_control(control_path(str(control), "@acme/ui", "build"), 1, ours.pid)
    write_control(control_path(str(control), "a", "build"), 1, unrelated.pid)
    write_control(control_path(str(control), "b", "build"), 1, other_root.pid)
    write_control(control_path(str(control), "c", "build"), 1, 0)
    (control / "x.pid.7.tmp").write_text("half")
    request_stop(str(control))
    assert sweep(str(control), root, 1.0) == 1
    assert ours.wait(5) == -15
    assert unrelated.poll() is None and other_root.poll() is None
    assert sorted(p.name for p in control.iterdir()) == []


def test_stray_groups_are_those_carrying_the_projects_root(
    tmp_path: Path, groups: list[subprocess.Popen[bytes]]
) -> None:
    root = str(tmp_path / "project")
    ours = start_group(groups, "sleep 300", {"GGEN_PROJECT_ROOT": root})
    other = start_group(groups, "sleep 300", {"GGEN_PROJECT_ROOT": root + "-other"})
    plain = start_group(groups, "sleep 300")
    wait_for(lambda: has_root(ours.pid, root), 10, "the command's environment")
    found = stray_groups(root)
    assert ours.pid in found
    assert other.pid not in found and plain.pid not in found
    assert os.getpgrp() not in found
    kill_group(ours.pid, 1)
    ours.wait()
    assert ours.pid not in stray_groups(root)


def has_root(pid: int, root: str) -> bool:
    return bool(psutil.Process(pid).environ().get("GGEN_PROJECT_ROOT") == root)
