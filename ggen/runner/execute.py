"""What a worker runs for one task: its commands, each in its own process group, with a log.

The worker gets the project snapshot once (``init_worker``, the pool's initializer) and then
only (workspace, phase) per task. Each command runs as ``sh -c`` in a new session so that the
whole group can be terminated on timeout or interrupt: TERM first, KILL after a grace period.
From the task's start to its end a control file (``control.py``) names the worker and the
running command's process group, so the scheduler can find and stop it from outside.

A pool worker also watches its parent: if ``ggen`` dies without a word (``kill -9``), the worker
stops the command it is running (TERM, then KILL) and exits, so that nothing outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ggen.errors import InternalError, WriteError
from ggen.make import Env, Make
from ggen.names import task_file_stem
from ggen.runner.control import (
    control_path,
    kill_group,
    remove_file,
    stop_requested,
    stop_stale,
    task_identity,
    write_control,
)
from ggen.runner.plan import task_id
from ggen.runner.results import CacheStatus, Status, TaskResult
from ggen.task_env import task_env

__all__ = [
    "DEFAULT_GRACE",
    "ExecOptions",
    "TaskSpec",
    "describe_exit_code",
    "execute",
    "init_worker",
    "install_snapshot",
    "kill_group",
    "run_in_worker",
    "set_snapshot",
    "task_spec",
    "watch_parent",
]

DEFAULT_GRACE = 5.0


@dataclass(frozen=True)
class ExecOptions:
    """Per-run settings a worker needs besides the snapshot."""

    logs_dir: str  # absolute
    control_dir: str  # absolute
    timeout: float | None = None  # --timeout: overrides every phase's own
    grace: float = DEFAULT_GRACE
    append_log: bool = False  # a start after a worker died: keep what the log holds
    # the scheduling process's values of env_inputs variables (None: this process's own)
    environ: Env | None = None


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
    unset: tuple[str, ...] = ()  # removed from the inherited environment
    # package scripts (ggen.scripts): per command, variables set over ``env`` for it alone,
    # and directories put in front of PATH for every command
    command_env: tuple[Env, ...] = ()
    path_prefix: tuple[str, ...] = ()


def task_spec(make: Make, workspace: str, phase: str, options: ExecOptions) -> TaskSpec:
    """Resolve the commands, directory and environment of (workspace, phase); the environment
    is the one the task's key is made from (``ggen.task_env``)."""
    ws = make.workspace(workspace)
    spec = make.phase_for(workspace, phase)
    if ws is None or spec is None:
        raise InternalError(f"no task {task_id(workspace, phase)} in the snapshot")
    inherited = os.environ if options.environ is None else dict(options.environ)
    env = task_env(make, workspace, phase, inherited)
    log_path = os.path.join(options.logs_dir, task_file_stem(workspace, phase) + ".log")
    commands = spec.commands
    command_env: tuple[Env, ...] = ()
    path_prefix: tuple[str, ...] = ()
    if spec.script is not None:
        from ggen import scripts

        found = scripts.script_commands(make, ws, spec)
        commands = tuple(c.text for c in found)
        command_env = tuple(scripts.command_env(make, ws, c) for c in found)
        path_prefix = scripts.bin_dirs(make, ws)
    return TaskSpec(
        task_id=task_id(workspace, phase),
        workspace=workspace,
        phase=phase,
        cwd=os.path.normpath(os.path.join(make.root, ws.path)),
        commands=commands,
        env=env.set,
        unset=env.unset,
        timeout=options.timeout if options.timeout is not None else spec.timeout,
        retries=spec.retries,
        log_path=log_path,
        log_rel=os.path.relpath(log_path, make.root),
        command_env=command_env,
        path_prefix=path_prefix,
    )


class _Worker:
    """This process's slots as a task runner (class attributes: one set per process).

    ``make`` is the snapshot sent by the pool initializer. ``group`` and ``grace`` say which
    command runs now, for the parent watcher; ``orphaned`` is set once the parent is gone, after
    which no command starts. ``lock`` makes "start a command" and "the parent is gone" exclusive.
    """

    make: Make | None = None
    lock = threading.Lock()
    group = 0
    grace = DEFAULT_GRACE
    orphaned = False


def install_snapshot(make: Make) -> None:
    """Keep the snapshot for every task this worker will run; ignore Ctrl-C.

    On Ctrl-C the scheduler decides what to stop, and how. The signal is caught by a handler
    that does nothing rather than ignored (SIG_IGN), because an ignored signal would stay
    ignored in every command the worker starts.
    """
    set_snapshot(make)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _ignore)


def init_worker(make: Make, parent: int) -> None:
    """Pool initializer of a worker process: the snapshot, signals, and the parent watcher.

    SIGTERM is left to the scheduler as Ctrl-C is (``timeout``, CI runners and service managers
    often signal the whole process group). ``parent`` is the pid of the scheduling process:
    the worker stops its command and exits when that process dies, even before this runs.
    """
    install_snapshot(make)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _ignore)
    watch_parent(parent)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A handler that does nothing: the signal interrupts no one, and is not inherited."""


def set_snapshot(make: Make) -> None:
    """Hold ``make`` for the tasks run in this process (the inline executor's way in)."""
    _Worker.make = make


def watch_parent(parent: int | None = None) -> None:
    """Stop the running command and exit this process as soon as ``parent`` (by default the
    current parent) dies, or at once if it is no longer this process's parent."""
    if parent is None:
        parent = os.getppid()
    threading.Thread(
        target=_watch_parent, args=(parent,), name="ggen-parent-watch", daemon=True
    ).start()


def _watch_parent(parent: int) -> None:
    _wait_for_exit(parent)
    with _Worker.lock:
        _Worker.orphaned = True
        group, grace = _Worker.group, _Worker.grace
    if group:
        kill_group(group, grace)
    os._exit(1)


def _wait_for_exit(parent: int) -> None:
    """Return when process ``parent`` has exited or is no longer this process's parent (it
    died and this process was adopted, possibly before the watch began)."""
    try:
        fd: int | None = os.pidfd_open(parent)
    except (AttributeError, OSError):
        fd = None
    try:
        if os.getppid() != parent:
            return  # gone already, possibly before the pidfd was opened
        if fd is not None:
            select.select([fd], [], [])
            return
        while os.getppid() == parent:
            time.sleep(0.5)
    finally:
        if fd is not None:
            os.close(fd)


def run_in_worker(workspace: str, phase: str, options: ExecOptions) -> TaskResult:
    """The function the pool calls for each task."""
    make = _Worker.make
    if make is None:
        raise InternalError("worker started without a project snapshot")
    return execute(task_spec(make, workspace, phase, options), options)


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


def _start(
    command: str, spec: TaskSpec, env: Mapping[str, str], log: int, grace: float
) -> subprocess.Popen[bytes] | None:
    """Start ``command`` in a new session, unless the parent is gone (then None)."""
    with _Worker.lock:
        if _Worker.orphaned:
            return None
        proc = subprocess.Popen(
            ["sh", "-c", command],
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _Worker.group, _Worker.grace = proc.pid, grace
        return proc


def _run_command(
    command: str,
    spec: TaskSpec,
    env: Mapping[str, str],
    log: int,
    control: str,
    deadline: float | None,
    options: ExecOptions,
) -> _Run | None:
    """Run one command to its end; None if it was not started (the parent is gone)."""
    proc = None
    try:
        with _signals_held():
            proc = _start(command, spec, env, log, options.grace)
            if proc is None:
                return None
            write_control(control, os.getpid(), proc.pid)
        if stop_requested(options.control_dir):
            # the scheduler may have read the control files before this one was written
            kill_group(proc.pid, options.grace)
        return _wait(proc, deadline, options.grace)
    except BaseException:
        # stopped here (Ctrl-C reaching the inline executor): the group must not outlive it
        if proc is not None:
            kill_group(proc.pid, options.grace)
            if proc.returncode is None:
                with contextlib.suppress(ChildProcessError):
                    _, status = os.waitpid(proc.pid, 0)
                    proc.returncode = os.waitstatus_to_exitcode(status)
        raise
    finally:
        with _Worker.lock:
            _Worker.group = 0


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Python's signal handlers back while a command is started and recorded, and run
    them after: an exception raised by one in between (Ctrl-C in the inline executor) would
    leave a command running that nobody knows of. Only the main thread runs handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    held: dict[int, Callable[[int, FrameType | None], Any]] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        handler = signal.getsignal(sig)
        if callable(handler):
            held[sig] = handler
            signal.signal(sig, hold)
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        for signum in caught:
            held[signum](signum, None)


def _stopped(options: ExecOptions) -> bool:
    return _Worker.orphaned or stop_requested(options.control_dir)


def execute(spec: TaskSpec, options: ExecOptions) -> TaskResult:
    """Run the task's commands in order (with its retries); return the outcome.

    A timeout covers the whole task, retries included; a timed-out task is not retried, nor
    is one stopped by an interrupt.
    """
    env: dict[str, str] = {**os.environ, **dict(spec.env)}
    for name in spec.unset:
        env.pop(name, None)
    if spec.path_prefix:
        env["PATH"] = os.pathsep.join([*spec.path_prefix, env.get("PATH", os.defpath)])
    for directory in (Path(spec.log_path).parent, Path(options.control_dir)):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(directory, exc) from exc
    control = control_path(options.control_dir, spec.workspace, spec.phase)
    # a control file already there names a command of an earlier start of this task, whose
    # worker died (or whose run was killed): stop what may be left of it before starting again
    stop_stale(control, _identity(spec), options.grace)
    write_control(control, os.getpid(), 0)
    started = time.time()
    t0 = time.monotonic()
    deadline = t0 + spec.timeout if spec.timeout else None
    cpu = 0.0
    rss = 0
    attempts = 0
    status = Status.FAILED
    exit_code: int | None = None
    error: str | None = None
    try:
        try:
            # unbuffered: ggen's own notes go out at once, and closing has nothing left to fail
            log_file = open(spec.log_path, "ab" if options.append_log else "wb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise WriteError(spec.log_path, exc) from exc
        with log_file as log:
            while attempts <= spec.retries:
                if _stopped(options):
                    status, error = Status.INTERRUPTED, "interrupted before it started"
                    break
                attempts += 1
                if attempts > 1:
                    with contextlib.suppress(OSError):
                        log.write(f"\n[ggen] attempt {attempts} of {spec.retries + 1}\n".encode())
                status, exit_code, error = Status.OK, 0, None
                for i, command in enumerate(spec.commands):
                    log.flush()
                    run = None
                    own = spec.command_env[i] if i < len(spec.command_env) else ()
                    run_env = {**env, **dict(own)} if own else env
                    if not _stopped(options):
                        run = _run_command(
                            command, spec, run_env, log.fileno(), control, deadline, options
                        )
                    if run is None:
                        status, error = Status.INTERRUPTED, f"interrupted before: {command}"
                        break
                    cpu += run.cpu_s
                    rss = max(rss, run.max_rss_kb)
                    exit_code = run.exit_code
                    if run.timed_out:
                        status = Status.TIMEOUT
                        error = f"timed out after {spec.timeout:g} s running: {command}"
                        break
                    if run.exit_code != 0:
                        if _stopped(options):
                            status, error = Status.INTERRUPTED, f"interrupted running: {command}"
                        else:
                            status, error = Status.FAILED, _describe_exit(command, run.exit_code)
                        break
                if status is not Status.FAILED:
                    break
            if error:
                with contextlib.suppress(OSError):  # a full disk: the result still says it
                    log.write(f"[ggen] {error}\n".encode())
    finally:
        remove_file(control)
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


def _identity(spec: TaskSpec) -> dict[str, str]:
    env = dict(spec.env)
    return task_identity(env["GGEN_PROJECT_ROOT"], env["GGEN_WORKSPACE"], env["GGEN_PHASE"])


def describe_exit_code(code: int) -> str:
    """``-9`` -> ``killed by SIGKILL``; ``3`` -> ``exit code 3``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit code {code}"


def _describe_exit(command: str, code: int) -> str:
    return f"{describe_exit_code(code)} running: {command}"
