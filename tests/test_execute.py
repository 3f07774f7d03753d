"""Running one task's commands in this process: groups, timeouts, retries, stop flag, logs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from procs import files_exist, read_pids, running, survivors, wait_for

from ggen.runner.control import control_path, request_stop, task_identity
from ggen.runner.execute import ExecOptions, TaskSpec, execute
from ggen.runner.results import Status


def spec(
    tmp: Path,
    *commands: str,
    timeout: float | None = None,
    retries: int = 0,
    workspace: str = "w",
    phase: str = "p",
) -> TaskSpec:
    root = str(tmp)
    log = tmp / ".ggen" / "logs" / f"{workspace}.{phase}.log"
    return TaskSpec(
        task_id=f"{workspace}:{phase}",
        workspace=workspace,
        phase=phase,
        cwd=root,
        commands=commands,
        env=tuple(sorted(task_identity(root, workspace, phase).items())),
        timeout=timeout,
        retries=retries,
        log_path=str(log),
        log_rel=os.path.relpath(log, root),
    )


def options(tmp: Path, grace: float = 5.0) -> ExecOptions:
    return ExecOptions(
        logs_dir=str(tmp / ".ggen" / "logs"),
        control_dir=str(tmp / ".ggen" / "control"),
        grace=grace,
    )


def log_of(tmp: Path, s: TaskSpec) -> str:
    return (tmp / s.log_rel).read_text()


def test_commands_run_in_order_in_the_workspace_with_a_log(tmp_path: Path) -> None:
    s = spec(tmp_path, "echo one", "echo two $GGEN_PHASE $GGEN_WORKSPACE", "pwd")
    r = execute(s, options(tmp_path))
    assert r.status is Status.OK and r.exit_code == 0 and r.error is None
    assert log_of(tmp_path, s) == f"one\ntwo p w\n{tmp_path}\n"
    assert r.attempts == 1
    assert r.worker == str(os.getpid())
    assert r.log == ".ggen/logs/w.p.log"
    assert not Path(control_path(options(tmp_path).control_dir, "w", "p")).exists()


def test_first_failing_command_ends_the_task(tmp_path: Path) -> None:
    s = spec(tmp_path, "echo a", "exit 3", "touch never")
    r = execute(s, options(tmp_path))
    assert r.status is Status.FAILED and r.exit_code == 3
    assert r.error == "exit code 3 running: exit 3"
    assert not (tmp_path / "never").exists()
    assert log_of(tmp_path, s).endswith("[ggen] exit code 3 running: exit 3\n")


def test_a_command_killed_by_a_signal_is_named(tmp_path: Path) -> None:
    r = execute(spec(tmp_path, "kill -SEGV $$"), options(tmp_path))
    assert r.status is Status.FAILED and r.exit_code == -11
    assert r.error == "killed by SIGSEGV running: kill -SEGV $$"


def test_each_command_has_its_own_process_group_named_in_the_control_file(
    tmp_path: Path,
) -> None:
    control = control_path(options(tmp_path).control_dir, "w", "p")
    # ggen writes the group into the control file right after starting the command: wait (at
    # most 10 s) until it is there, then read it, all while the command runs
    wait = (
        f'i=0; until grep -q " $$ " {control} || [ $i -ge 1000 ]; do sleep 0.01; i=$((i+1)); done'
    )
    s = spec(tmp_path, f"echo $$ > me; {wait}; cat {control} > seen", f"cat {control} > seen2")
    assert execute(s, options(tmp_path)).status is Status.OK
    me = int((tmp_path / "me").read_text())
    host = socket.gethostname()
    assert (tmp_path / "seen").read_text() == f"{os.getpid()} {me} {host}\n"
    worker, group, _host = (tmp_path / "seen2").read_text().split()
    assert int(worker) == os.getpid() and int(group) not in (0, me)
    assert me != os.getpgid(0)


def test_timeout_kills_the_command_and_its_background_grandchild(tmp_path: Path) -> None:
    s = spec(tmp_path, "sleep 300 & echo $! > grandchild; echo $$ > child; sleep 300", timeout=0.5)
    t0 = time.monotonic()
    r = execute(s, options(tmp_path))
    elapsed = time.monotonic() - t0
    assert r.status is Status.TIMEOUT
    assert r.error == f"timed out after 0.5 s running: {s.commands[0]}"
    assert 0.5 <= elapsed < 3, elapsed
    pids = read_pids([tmp_path / "child", tmp_path / "grandchild"])
    assert survivors(pids) == []


def test_timeout_escalates_to_kill_after_the_grace_period(tmp_path: Path) -> None:
    s = spec(tmp_path, "trap '' TERM; echo $$ > child; sleep 300", timeout=0.3)
    t0 = time.monotonic()
    r = execute(s, options(tmp_path, grace=0.7))
    elapsed = time.monotonic() - t0
    assert r.status is Status.TIMEOUT and r.exit_code == -9
    assert 1.0 <= elapsed < 4, elapsed  # timeout + grace, then KILL
    assert survivors(read_pids([tmp_path / "child"])) == []


def test_what_a_command_leaves_running_in_its_group_is_stopped(tmp_path: Path) -> None:
    r = execute(spec(tmp_path, "sleep 300 & echo $! > bg"), options(tmp_path))
    assert r.status is Status.OK
    assert survivors(read_pids([tmp_path / "bg"])) == []


def test_retries_run_the_commands_again_and_count_attempts(tmp_path: Path) -> None:
    flaky = "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; [ $n -ge 2 ]"
    s = spec(tmp_path, "echo start", flaky, retries=3)
    r = execute(s, options(tmp_path))
    assert r.status is Status.OK and r.attempts == 3
    log = log_of(tmp_path, s)
    assert log.count("start\n") == 3
    assert "[ggen] attempt 3 of 4" in log and "attempt 4" not in log


def test_retries_exhausted_fail_with_the_last_error(tmp_path: Path) -> None:
    r = execute(spec(tmp_path, "echo x >> runs; exit 5", retries=2), options(tmp_path))
    assert r.status is Status.FAILED and r.attempts == 3 and r.exit_code == 5
    assert (tmp_path / "runs").read_text() == "x\nx\nx\n"


def test_the_timeout_covers_the_whole_task_and_is_not_retried(tmp_path: Path) -> None:
    s = spec(tmp_path, "echo x >> runs; sleep 300", timeout=0.4, retries=3)
    r = execute(s, options(tmp_path))
    assert r.status is Status.TIMEOUT and r.attempts == 1
    assert (tmp_path / "runs").read_text() == "x\n"


def test_nothing_starts_once_the_stop_flag_is_up(tmp_path: Path) -> None:
    opts = options(tmp_path)
    request_stop(opts.control_dir)
    r = execute(spec(tmp_path, "touch ran"), opts)
    assert r.status is Status.INTERRUPTED and r.attempts == 0
    assert r.error == "interrupted before it started"
    assert not (tmp_path / "ran").exists()


def test_the_stop_flag_ends_the_task_between_commands(tmp_path: Path) -> None:
    opts = options(tmp_path)
    stop = Path(opts.control_dir, "stop")
    r = execute(spec(tmp_path, f"touch {stop}", "touch ran2", retries=2), opts)
    assert r.status is Status.INTERRUPTED and r.attempts == 1
    assert r.error == "interrupted before: touch ran2"
    assert not (tmp_path / "ran2").exists()


def test_a_command_stopped_during_an_interrupt_is_interrupted_not_failed(tmp_path: Path) -> None:
    opts = options(tmp_path)
    stop = Path(opts.control_dir, "stop")
    # the command raises the flag, then is killed as an interrupt would kill it
    r = execute(spec(tmp_path, f"touch {stop}; kill -TERM $$", retries=2), opts)
    assert r.status is Status.INTERRUPTED and r.attempts == 1
    assert r.error == f"interrupted running: touch {stop}; kill -TERM $$"


def test_a_stale_control_file_group_of_the_same_task_is_stopped_first(tmp_path: Path) -> None:
    opts = options(tmp_path)
    Path(opts.control_dir).mkdir(parents=True)
    identity = task_identity(str(tmp_path), "w", "p")
    left = subprocess.Popen(
        ["sh", "-c", "sleep 300"], env={**os.environ, **identity}, start_new_session=True
    )
    try:
        control = control_path(opts.control_dir, "w", "p")
        Path(control).write_text(f"999999 {left.pid}\n")
        r = execute(spec(tmp_path, "true"), opts)
        assert r.status is Status.OK
        assert left.wait(timeout=10) == -15
    finally:
        left.kill()
        left.wait()


def test_ctrl_c_in_the_inline_executor_stops_the_command_group(tmp_path: Path) -> None:
    # a KeyboardInterrupt reaching execute() while a command runs (the inline executor runs
    # it in the scheduling process) must not leave the command's group behind
    script = textwrap.dedent(
        f"""
        import os, signal, sys, threading, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_execute import spec, options
        from ggen.runner.execute import execute
        tmp = __import__("pathlib").Path({str(tmp_path)!r})
        def interrupt():
            while not (tmp / "child").exists():
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=interrupt, daemon=True).start()
        try:
            execute(spec(tmp, "sleep 300 & echo $! > grandchild; echo $$ > child; wait"),
                    options(tmp, grace=1))
        except KeyboardInterrupt:
            print("interrupted")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout == "interrupted\n", out.stderr
    wait_for(files_exist(tmp_path / "grandchild"), 5)
    assert survivors(read_pids([tmp_path / "child", tmp_path / "grandchild"])) == []


def test_a_worker_stops_its_command_and_exits_when_its_parent_dies(tmp_path: Path) -> None:
    # parent -> worker (parent watcher on) -> command; kill -9 the parent: the worker must TERM
    # the command's group and exit, as a loky worker does when ggen is killed
    worker = tmp_path / "worker.py"
    worker.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from pathlib import Path
            from test_execute import spec, options
            from ggen.runner.execute import execute, watch_parent
            tmp = Path({str(tmp_path)!r})
            (tmp / "worker.pid").write_text(str(os.getpid()))
            watch_parent()
            execute(spec(tmp, "echo $$ > child; sleep 300"), options(tmp, grace=0.5))
            """
        )
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time; subprocess.Popen([sys.executable, {str(worker)!r}]);"
            " time.sleep(300)",
        ],
        start_new_session=True,
    )
    try:
        wait_for(files_exist(tmp_path / "child", tmp_path / "worker.pid"), 20)
        pids = read_pids([tmp_path / "child", tmp_path / "worker.pid"])
        assert all(running(p) for p in pids)
        parent.kill()
    finally:
        parent.kill()
        parent.wait()
    t0 = time.monotonic()
    wait_for(lambda: not survivors(pids), 5, "the worker and its command to end")
    assert time.monotonic() - t0 < 2


def test_env_inputs_get_the_scheduling_process_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker elsewhere (Dask) has an environment of its own: the task still gets the
    env_inputs values its key was made from, set or unset, and the same key."""
    from ggen.cache.digest import DigestMemo
    from ggen.cache.files import InputIndex
    from ggen.cache.keys import task_recipe
    from ggen.make import load_make
    from ggen.runner.execute import task_spec
    from ggen.task_env import env_inputs_values

    (tmp_path / "make.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "p"

            [lifecycle.build]
            command = "echo mode=${MODE-none} ci=${CI-none}"
            env_inputs = ["MODE", "CI"]
            """
        )
    )
    make = load_make(tmp_path)
    scheduler = {"MODE": "scheduler", "PATH": os.environ["PATH"]}
    pinned = env_inputs_values(make, scheduler)
    assert pinned == (("MODE", "scheduler"),)
    monkeypatch.setenv("MODE", "worker")
    monkeypatch.setenv("CI", "true")
    opts = ExecOptions(
        logs_dir=str(tmp_path / ".ggen" / "logs"),
        control_dir=str(tmp_path / ".ggen" / "control"),
        environ=pinned,
    )
    s = task_spec(make, ".", "build", opts)
    assert execute(s, opts).status is Status.OK
    assert log_of(tmp_path, s) == "mode=scheduler ci=none\n"
    key = task_recipe(make, ".", "build", (), InputIndex(tmp_path), DigestMemo(None), scheduler)
    worker = task_recipe(make, ".", "build", (), InputIndex(tmp_path), DigestMemo(None))
    assert key.env == (
        ("CI", "\x00unset"),
        ("GGEN_PHASE", "build"),
        ("GGEN_WORKSPACE", "."),
        ("MODE", "scheduler"),
    )
    assert worker.key() != key.key()
