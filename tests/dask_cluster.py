"""A real Dask cluster on loopback for tests: one ``dask scheduler``, ``dask worker`` processes.

Every process listens on 127.0.0.1 only (checked), starts in its own session, and is stopped by
pid: TERM, then KILL for whatever is left, and the test fails if anything survives.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

START_TIMEOUT = 30.0
STOP_GRACE = 5.0


def dask_command() -> list[str]:
    """The ``dask`` script next to this Python, else the one on PATH."""
    script = Path(sys.executable).with_name("dask")
    if script.exists():
        return [str(script)]
    found = shutil.which("dask")
    assert found, "the dask command is missing: pip install 'ggen[dask]'"
    return [found]


@dataclass(frozen=True)
class DaskCluster:
    """A running cluster: the scheduler's address and the pids of what the fixture started."""

    address: str
    scheduler_pid: int
    worker_pids: tuple[int, ...]  # the ``dask worker`` processes (each a nanny)
    logs: Path

    def worker_addresses(self) -> set[str]:
        """The addresses of the workers now registered with the scheduler."""
        workers = _scheduler_info(self.address)["workers"]
        assert isinstance(workers, dict)
        return set(workers)

    def wait_for_workers(self, count: int) -> None:
        """Block until ``count`` workers are registered (nannies restart killed ones)."""
        wait_for_workers(self.address, count, self.logs)


def _scheduler_info(address: str) -> dict[str, object]:
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        info = client.scheduler_info(n_workers=-1)
    assert isinstance(info, dict)
    return info


def wait_for_workers(address: str, count: int, logs: Path) -> None:
    """Block until ``count`` workers are registered; fail with the cluster's logs if not."""
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        try:
            client.wait_for_workers(count, timeout=START_TIMEOUT)
        except TimeoutError:
            raise AssertionError(
                f"{count} Dask workers did not register: "
                + "".join(p.read_text() for p in sorted(logs.glob("*.log")))
            ) from None


def _start(
    args: list[str], log: Path, env: Mapping[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*dask_command(), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _listening_hosts(procs: list[psutil.Process]) -> set[str]:
    hosts = set()
    for p in procs:
        with contextlib.suppress(psutil.Error):
            for conn in p.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    hosts.add(conn.laddr.ip)
    return hosts


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """TERM every process (and its group), KILL what is left after ``STOP_GRACE``; verify."""
    tree = [p for proc in procs for p in _tree(proc.pid)]
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=STOP_GRACE)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the session's group: spawned workers too
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    _, alive = psutil.wait_procs(tree, timeout=STOP_GRACE)
    for proc in procs:
        proc.wait(timeout=STOP_GRACE)
    assert not alive, f"Dask processes survived: {[p.pid for p in alive]}"


@contextlib.contextmanager
def dask_cluster(tmp: Path, workers: int = 2, allowed_failures: int = 0) -> Iterator[DaskCluster]:
    """Start a scheduler and ``workers`` one-thread workers (with nannies) on loopback."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(allowed_failures),
        "DASK_TEMPORARY_DIRECTORY": str(tmp),
    }
    scheduler_file = tmp / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            _start(
                [
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",  # a free port, chosen by the system; read back from the file
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--scheduler-file",
                    str(scheduler_file),
                ],
                tmp / "scheduler.log",
                env,
                tmp,
            )
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert procs[0].poll() is None, (tmp / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the Dask scheduler did not start"
            time.sleep(0.05)
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            procs.append(
                _start(
                    [
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--nanny",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--dashboard-address",
                        "127.0.0.1:0",  # the worker's HTTP endpoints, even without a dashboard
                        "--local-directory",
                        str(tmp / f"worker-{i}"),
                    ],
                    tmp / f"worker-{i}.log",
                    env,
                    tmp,
                )
            )
        wait_for_workers(address, workers, tmp)
        hosts = _listening_hosts([p for proc in procs for p in _tree(proc.pid)])
        assert hosts == {"127.0.0.1"}, f"the cluster listens on {hosts}"
        yield DaskCluster(address, procs[0].pid, tuple(p.pid for p in procs[1:]), tmp)
    finally:
        # workers first, while the scheduler can still take their goodbyes
        stop(procs[1:])
        stop(procs[:1])
