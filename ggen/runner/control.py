"""Control files: who is running what, so that it can be stopped from outside.

Under ``.ggen/control/`` (one run at a time holds the project lock, so the directory is the
run's):

- ``<task>.pid`` holds ``WORKERPID PGID HOST``: written by the worker when the task starts (PGID 0)
  and again for each command it starts (the command's process group); removed when the task
  ends. The scheduler reads them to stop every running command on Ctrl-C or SIGTERM, and to stop
  the command a dead worker left behind.
- ``stop``: present while the run is being interrupted. A worker starts no command while it is
  there, and stops a command it started just as the flag appeared: the scheduler writes the flag
  before it reads the ``.pid`` files, the worker writes its ``.pid`` file before it checks the
  flag, so every command is seen by one of the two.

A ``.pid`` file found when a run begins was left by a run that was killed (``kill -9``): the
process group it names is stopped only if one of its processes still carries that task's
``GGEN_*`` environment, so that a process group id reused since is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ggen.errors import WriteError
from ggen.names import task_file_stem

_HOST = os.uname().nodename  # what socket.gethostname() answers, without importing socket

STOP_FILE = "stop"
POLL_S = 0.02  # how often a stopping group is checked for survivors


@dataclass(frozen=True)
class Control:
    """The content of one ``<task>.pid`` file."""

    worker: int  # pid of the process running the task
    group: int  # process group of the running command, 0 between commands
    host: str = ""  # the machine they run on (Dask workers may be elsewhere)

    @property
    def local(self) -> bool:
        """Whether the pids name processes of this machine (only then may ggen signal them)."""
        return not self.host or self.host == _HOST


def control_path(control_dir: str, workspace: str, phase: str) -> str:
    """The control file of task (workspace, phase)."""
    return os.path.join(control_dir, task_file_stem(workspace, phase) + ".pid")


def write_control(path: str, worker: int, group: int) -> None:
    """Record that ``worker`` runs the task and, if not 0, that ``group`` is its command."""
    tmp = f"{path}.{worker}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(f"{worker} {group} {_HOST}\n")
        os.replace(tmp, path)
    except OSError as exc:  # a full disk says no file name: this names it
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise WriteError(path, exc) from exc


def read_control(path: str | Path) -> Control | None:
    """The control file at ``path``, or None if missing or not (yet) readable."""
    try:
        with open(path) as f:
            fields = f.read().split()
        return Control(int(fields[0]), int(fields[1]), fields[2] if len(fields) > 2 else "")
    except (OSError, ValueError, IndexError):
        return None


def remove_file(path: str | Path) -> None:
    """Remove ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def running_groups(control_dir: str) -> list[int]:
    """The process groups of the commands running now, from the control files."""
    groups = []
    for entry in Path(control_dir).glob("*.pid"):
        control = read_control(entry)
        if control is not None and control.group > 0 and control.local:
            groups.append(control.group)
    return groups


# the stop flag ----------------------------------------------------------------------------
def request_stop(control_dir: str) -> None:
    """Tell the workers to start no more commands (the run is being interrupted)."""
    Path(control_dir).mkdir(parents=True, exist_ok=True)
    Path(control_dir, STOP_FILE).touch()


def stop_requested(control_dir: str) -> bool:
    """True while the run is being interrupted."""
    return os.path.exists(os.path.join(control_dir, STOP_FILE))


def clear_stop(control_dir: str) -> None:
    """Remove the stop flag (at the start and at the end of a run)."""
    remove_file(os.path.join(control_dir, STOP_FILE))


# stopping process groups ------------------------------------------------------------------
def group_alive(pgid: int) -> bool:
    """True while some process of group ``pgid`` is running (zombies do not count).

    A command's orphans that died stay zombies until whoever adopted them (init, a subreaper)
    collects them, which may take a while: waiting for them would only delay the run.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _live_member(pgid)


def _live_member(pgid: int) -> bool:
    """True if ``/proc`` shows a process of group ``pgid`` that is not a zombie (or if there
    is no ``/proc`` to look at)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
            fields = data[data.rindex(b")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False


def kill_group(pgid: int, grace: float) -> None:
    """TERM the process group, then KILL it if anything is left after ``grace`` seconds.

    Returns once the group is gone (or has been sent KILL): TERM is what lets a command clean
    up, KILL is what guarantees that nothing of it survives.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(POLL_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def stop_in_background(pgid: int, grace: float) -> threading.Thread:
    """``kill_group`` on a thread of its own, so that several groups get their grace at once.

    The thread is not a daemon: the interpreter waits for it before exiting, so a command that
    ignores TERM is still killed when its grace period ends.
    """
    thread = threading.Thread(target=kill_group, args=(pgid, grace), name=f"ggen-stop-{pgid}")
    thread.start()
    return thread


def group_carries(pgid: int, identity: Mapping[str, str]) -> bool:
    """True if a live process of group ``pgid`` has every ``identity`` variable in its
    environment: the proof that the group is still the one a control file recorded."""
    return any(group == pgid for group in _groups_carrying(identity))


def stray_groups(root: str) -> set[int]:
    """The process groups of live processes that carry ``GGEN_PROJECT_ROOT=root``: commands of
    this project's tasks. Once every task of a run is over, any such group is a stray."""
    return set(_groups_carrying({"GGEN_PROJECT_ROOT": root})) - {os.getpgrp()}


def _groups_carrying(identity: Mapping[str, str]) -> Iterator[int]:
    """The process group of each live (not zombie) process whose environment has every
    ``identity`` variable."""
    import psutil

    for proc in psutil.process_iter():
        try:
            env = proc.environ()
            if all(env.get(k) == v for k, v in identity.items()) and proc.status() not in (
                psutil.STATUS_ZOMBIE,
                psutil.STATUS_DEAD,
            ):
                yield os.getpgid(proc.pid)
        except (OSError, psutil.Error):
            continue


def task_identity(root: str, workspace: str, phase: str) -> dict[str, str]:
    """The environment variables every command of a task carries (see execute.task_spec)."""
    return {"GGEN_PROJECT_ROOT": root, "GGEN_WORKSPACE": workspace, "GGEN_PHASE": phase}


def stop_stale(path: str, identity: Mapping[str, str], grace: float) -> bool:
    """Stop the command recorded in the control file ``path`` if it is still running and
    still carries ``identity``; remove the file. Returns True if a group was stopped."""
    control = read_control(path)
    remove_file(path)
    if control is None or control.group <= 0 or not control.local:
        return False
    if not group_alive(control.group):
        return False
    if not group_carries(control.group, identity):
        return False
    kill_group(control.group, grace)
    return True


def sweep(control_dir: str, root: str, grace: float) -> int:
    """Before a run starts anything: stop the commands a killed run left running, remove its
    control files and clear its stop flag. Returns the number of groups stopped."""
    clear_stop(control_dir)
    stopped = 0
    for entry in Path(control_dir).glob("*.pid"):
        identity = _identity_of(entry.name, root)
        if identity is None:
            remove_file(entry)
            continue
        if stop_stale(str(entry), identity, grace):
            stopped += 1
    for tmp in Path(control_dir).glob("*.tmp"):
        remove_file(tmp)
    return stopped


def _identity_of(name: str, root: str) -> dict[str, str] | None:
    """``%40acme%2Fui.build.pid`` -> the identity of task (@acme/ui, build)."""
    from urllib.parse import unquote

    parts = name.split(".")
    if len(parts) != 3:
        return None
    return task_identity(root, unquote(parts[0]), unquote(parts[1]))


class Watchdog:
    """A process that outlives a ``kill -9`` of ggen to stop the commands ggen ran itself.

    Commands run in ggen's own process (the inline executor, or a lone task run without
    starting a pool) have no worker to notice ggen's death and stop them. The watchdog is a
    fork of ggen holding the read end of a pipe: when ggen ends normally it writes one byte
    and the watchdog exits; when ggen dies, the pipe reads end-of-file and the watchdog stops
    every group the control directory names (``sweep``), then exits. It ignores the terminal's
    signals: Ctrl-C is ggen's to handle. ``keep_fd`` (the project's run lock) stays open in it,
    so that a dead ggen's lock is only released once the watchdog has stopped its commands: a
    new run cannot start the same tasks while their old commands are being stopped.
    """

    def __init__(
        self, control_dir: str, root: str, grace: float, keep_fd: int | None = None
    ) -> None:
        read_end, self._write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the watchdog: only code and modules already loaded run here
            try:
                keep = sorted({read_end, keep_fd if keep_fd is not None else read_end})
                low = 3
                for fd in keep:
                    os.closerange(low, fd)
                    low = fd + 1
                os.closerange(low, _MAX_FD)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_IGN)
                if _wait_for_word(read_end) != _DONE:
                    sweep(control_dir, root, grace)
            finally:
                os._exit(0)
        os.close(read_end)

    def close(self) -> None:
        """ggen ends normally: the watchdog exits without stopping anything."""
        if self._write_end < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._write_end, _DONE)
        os.close(self._write_end)
        self._write_end = -1
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


_DONE = b"."
_MAX_FD = 65536


def _wait_for_word(fd: int) -> bytes:
    """The byte ggen writes to ``fd`` when it ends normally, or b"" when it died."""
    while True:
        try:
            return os.read(fd, 1)
        except InterruptedError:
            continue
