"""What a worker runs for one task: its commands, each in its own process group, with a log.

The worker gets the project snapshot once (``install_snapshot``, the pool's initializer) and then
only (workspace, phase) per task. Each command runs as ``sh -c`` in a new session so that the
whole group can be terminated on timeout or interrupt: TERM first, KILL after a grace period.
While a command runs, a small control file ``<control_dir>/<task>.pid`` holds the worker pid and
the command's process group, so the scheduler can find and stop it from outside.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ggen.errors import InternalError
from ggen.make import Make
from ggen.names import task_file_stem
from ggen.runner.plan import task_id
from ggen.runner.results import CacheStatus, Status, TaskResult

DEFAULT_GRACE = 5.0


@dataclass(frozen=True)
class ExecOptions:
    """Per-run settings a worker needs besides the snapshot."""

    logs_dir: str  # absolute
    control_dir: str  # absolute
    timeout: float | None = None  # --timeout: overrides every phase's own
    grace: float = DEFAULT_GRACE


@dataclass(frozen=True)
class TaskSpec:
    """Everything needed to run one task, resolved from the snapshot."""

    task_id: str
    workspace: str
    phase: str
    cwd: str
    commands: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # set over the inherited environment
    timeout: float | None
    retries: int
    log_path: str
    log_rel: str


def task_spec(make: Make, workspace: str, phase: str, options: ExecOptions) -> TaskSpec:
    """Resolve the commands, directory and environment of (workspace, phase)."""
    ws = make.workspace(workspace)
    spec = make.phase_for(workspace, phase)
    if ws is None or spec is None:
        raise InternalError(f"no task {task_id(workspace, phase)} in the snapshot")
    env = dict(ws.env)
    env.update(spec.env)
    env["GGEN_PHASE"] = phase
    env["GGEN_WORKSPACE"] = workspace
    env["GGEN_PROJECT_ROOT"] = make.root
    log_path = os.path.join(options.logs_dir, task_file_stem(workspace, phase) + ".log")
    return TaskSpec(
        task_id=task_id(workspace, phase),
        workspace=workspace,
        phase=phase,
        cwd=os.path.normpath(os.path.join(make.root, ws.path)),
        commands=spec.commands,
        env=tuple(sorted(env.items())),
        timeout=options.timeout if options.timeout is not None else spec.timeout,
        retries=spec.retries,
        log_path=log_path,
        log_rel=os.path.relpath(log_path, make.root),
    )


class _Snapshot:
    """The one slot per worker process that holds the snapshot sent by the pool initializer."""

    make: Make | None = None


def install_snapshot(make: Make) -> None:
    """Pool initializer: keep the snapshot for every task this worker will run.

    Workers ignore SIGINT: on Ctrl-C the scheduler decides what to stop, and how.
    """
    set_snapshot(make)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def set_snapshot(make: Make) -> None:
    """Hold ``make`` for the tasks run in this process (the inline executor's way in)."""
    _Snapshot.make = make


def run_in_worker(workspace: str, phase: str, options: ExecOptions) -> TaskResult:
    """The function the pool calls for each task."""
    make = _Snapshot.make
    if make is None:
        raise InternalError("worker started without a project snapshot")
    return execute(task_spec(make, workspace, phase, options), options)


def kill_group(pgid: int, grace: float) -> None:
    """TERM the process group, then KILL it if anything is left after ``grace`` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class _Run:
    exit_code: int
    timed_out: bool
    cpu_s: float
    max_rss_kb: int


def _wait(proc: subprocess.Popen[bytes], deadline: float | None, grace: float) -> _Run:
    """Wait for ``proc`` (a session leader), without polling, up to ``deadline``."""
    timed_out = False
    if deadline is not None:
        fd = os.pidfd_open(proc.pid)
        try:
            remaining = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                timed_out = True
                kill_group(proc.pid, grace)
        finally:
            os.close(fd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if not timed_out:
        # the command is done; anything it left running in its group goes too
        kill_group(proc.pid, grace)
    return _Run(proc.returncode, timed_out, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def _control_path(spec: TaskSpec, options: ExecOptions) -> str:
    return os.path.join(options.control_dir, task_file_stem(spec.workspace, spec.phase) + ".pid")


def execute(spec: TaskSpec, options: ExecOptions) -> TaskResult:
    """Run the task's commands in order (with its retries); return the outcome."""
    env: Mapping[str, str] = {**os.environ, **dict(spec.env)}
    Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
    control = _control_path(spec, options)
    started = time.time()
    t0 = time.monotonic()
    deadline = t0 + spec.timeout if spec.timeout else None
    cpu = 0.0
    rss = 0
    attempts = 0
    status = Status.FAILED
    exit_code: int | None = None
    error: str | None = None
    with open(spec.log_path, "wb") as log:
        while attempts <= spec.retries:
            attempts += 1
            if attempts > 1:
                log.write(f"\n[ggen] attempt {attempts} of {spec.retries + 1}\n".encode())
                log.flush()
            status, exit_code, error = Status.OK, 0, None
            for command in spec.commands:
                log.flush()
                proc = subprocess.Popen(
                    ["sh", "-c", command],
                    cwd=spec.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                _write_control(control, proc.pid)
                run = _wait(proc, deadline, options.grace)
                cpu += run.cpu_s
                rss = max(rss, run.max_rss_kb)
                exit_code = run.exit_code
                if run.timed_out:
                    status = Status.TIMEOUT
                    error = f"timed out after {spec.timeout:g} s running: {command}"
                    break
                if run.exit_code != 0:
                    status = Status.FAILED
                    error = _describe_exit(command, run.exit_code)
                    break
            if status is Status.OK or status is Status.TIMEOUT:
                break
        if error:
            log.write(f"[ggen] {error}\n".encode())
    _remove(control)
    finished = time.time()
    return TaskResult(
        task_id=spec.task_id,
        workspace=spec.workspace,
        phase=spec.phase,
        status=status,
        cache=CacheStatus.MISS,
        exit_code=exit_code,
        started_ms=int(started * 1000),
        finished_ms=int(finished * 1000),
        duration_ms=int((time.monotonic() - t0) * 1000),
        cpu_ms=int(cpu * 1000),
        max_rss_kb=rss,
        worker=str(os.getpid()),
        attempts=attempts,
        log=spec.log_rel,
        error=error,
    )


def _describe_exit(command: str, code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} running: {command}"
    return f"exit code {code} running: {command}"


def _write_control(path: str, pgid: int) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()} {pgid}\n")
    os.replace(tmp, path)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
