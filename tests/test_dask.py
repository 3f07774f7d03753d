"""The dask executor on a real cluster on loopback (issue: beyond one machine)."""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import distributed  # noqa: F401  (a missing Dask fails this module instead of skipping it)
import orjson
import psutil
import pytest
from dask_cluster import DaskCluster, dask_cluster
from monorepo import ggen, last_summary, statuses, write_tree

from ggen.errors import InternalError, UsageError
from ggen.make import ExecutorKind, load_make
from ggen.runner.dask_pool import CONNECT_TIMEOUT, dask_executor
from ggen.runner.execute import ExecOptions
from ggen.runner.executor import TaskCall
from ggen.runner.pools import make_executor
from ggen.runner.results import Status

EXAMPLE = Path(__file__).parent.parent / "examples" / "monorepo"
GENERATED = ("dist", "build", "gen")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """Scheduler and two one-thread workers, shared by the tests that kill no worker."""
    with dask_cluster(tmp_path_factory.mktemp("dask")) as c:
        yield c


def _copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".ggen", *GENERATED))
    return dest


def _generated(repo: Path) -> dict[str, bytes]:
    files = {}
    for top in GENERATED:
        for path in repo.rglob(f"{top}/**/*"):
            if path.is_file() and ".ggen" not in path.parts:
                files[str(path.relative_to(repo))] = path.read_bytes()
    return files


def _phase_states(repo: Path) -> dict[str, Any]:
    states = {}
    for path in sorted(repo.rglob(".ggen/state.json")):
        data = orjson.loads(path.read_bytes())
        ws = str(path.parent.parent.relative_to(repo))
        states[ws] = {
            "phases": {p: (v["status"], v.get("exit_code")) for p, v in data["phases"].items()},
            "cache_keys": data.get("cache_keys"),
        }
    return states


def test_example_build_and_test_on_dask_match_loky(cluster: DaskCluster, tmp_path: Path) -> None:
    on_loky = _copy_example(tmp_path / "loky")
    on_dask = _copy_example(tmp_path / "dask")
    r = ggen("run", "build", "test", "-j2", cwd=on_loky)
    assert r.returncode == 0, r.stdout + r.stderr
    on_cluster = ["--executor", "dask", "--scheduler", cluster.address]
    r = ggen("run", "build", "test", "-j2", *on_cluster, cwd=on_dask)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    loky, dask = last_summary(on_loky), last_summary(on_dask)
    assert (loky["executor"], dask["executor"]) == ("loky", "dask")
    assert statuses(dask) == statuses(loky)
    assert set(statuses(dask).values()) == {"ok"} and len(dask["tasks"]) == 22
    assert {t["id"]: t["key"] for t in dask["tasks"]} == {t["id"]: t["key"] for t in loky["tasks"]}
    # every task ran on a worker of the cluster, and its log reached the project
    workers = cluster.worker_addresses()
    assert {t["worker"] for t in dask["tasks"]} <= workers
    for t in dask["tasks"]:
        assert (on_dask / t["log"]).is_file(), t["id"]
    web_test = next(t for t in dask["tasks"] if t["id"] == "web:test")
    assert "check_site: 4 pages" in (on_dask / web_test["log"]).read_text()
    # byte-identical outputs and the same state files
    outputs = _generated(on_dask)
    assert len(outputs) > 40
    assert outputs == _generated(on_loky)
    assert _phase_states(on_dask) == _phase_states(on_loky)
    assert len(_phase_states(on_dask)) == 8  # the root and seven workspaces
    assert not list((on_dask / ".ggen/control").iterdir())


CRASHING = r"""
    [project]
    name = "crashing"

    [executor]
    kind = "dask"
    scheduler = "{address}"

    [workspace.victim]
    path = "victim"

    [workspace.phoenix]
    path = "phoenix"

    [workspace.a]
    path = "a"

    [workspace.b]
    path = "b"

    [workspace.slow]
    path = "slow"

    # $PPID of the command's shell is the Dask worker process running the task; the victim
    # leaves a sleep behind in its process group once the control file names that group
    [lifecycle.build]
    command = '''
    case $GGEN_WORKSPACE in
      victim)
        until grep -qs " $$ " "$GGEN_PROJECT_ROOT/.ggen/control/victim.build.pid"; do
          sleep 0.01
        done
        sleep 30 &
        echo $! >> left.pids
        kill -9 $PPID; exit 1 ;;
      phoenix) [ -e crashed ] || {{ touch crashed; kill -9 $PPID; }} ;;
      slow) sleep 1 ;;
    esac
    echo built > out.txt
    '''
    retries = 1
    parallel = true
    cache = false

    [lifecycle.once]
    command = "kill -9 $PPID"
    workspaces = ["victim"]
    cache = false
"""


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("allowed_failures", [0, 3])
def test_a_killed_worker_fails_only_its_task(tmp_path: Path, allowed_failures: int) -> None:
    """With allowed-failures 0 the cluster gives up at once (KilledWorker); with Dask's
    default of 3 it reruns the task and ggen's count of starts stops it. Either way a task
    survives as many worker deaths as its phase's retries, no more, and the rest goes on."""
    with dask_cluster(tmp_path / "cluster", allowed_failures=allowed_failures) as cluster:
        names = ("victim", "phoenix", "a", "b", "slow")
        repo = write_tree(
            tmp_path / "repo",
            {
                "make.toml": CRASHING.format(address=cluster.address),
                **{f"{name}/.keep": "" for name in names},
            },
        )
        r = ggen("run", "build", "-k", "-j2", cwd=repo)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "Traceback" not in r.stderr
        summary = last_summary(repo)
        assert summary["executor"] == "dask"
        assert statuses(summary) == {
            "victim:build": "failed",
            "phoenix:build": "ok",
            "a:build": "ok",
            "b:build": "ok",
            "slow:build": "ok",
        }
        for name in ("phoenix", "a", "b", "slow"):
            assert (repo / name / "out.txt").read_text() == "built\n"
        assert (repo / "phoenix/crashed").exists()  # it killed a worker once, then succeeded
        assert not (repo / "victim/out.txt").exists()
        # what each dead worker's command left behind was stopped
        left = [int(pid) for pid in (repo / "victim/left.pids").read_text().split()]
        assert len(left) == 2
        assert not [pid for pid in left if _running(pid)]
        victim = next(t for t in summary["tasks"] if t["id"] == "victim:build")
        dead = victim["worker"]
        assert victim["error"] == (
            f"worker {dead} died running it "
            "(after 2 attempts, every one on a worker that died)"
        )
        assert victim["attempts"] == 2  # retries = 1: one more start after the first death
        assert f"victim:build [failed] worker {dead} died running it" in r.stdout
        log = (repo / victim["log"]).read_text()
        assert log.count(f"[ggen] worker {dead} died running it") == 1  # written once
        # the nannies bring the cluster back to two workers, none of them the dead one
        cluster.wait_for_workers(2)
        assert dead not in cluster.worker_addresses()
        assert dead.startswith("tcp://127.0.0.1:")
        assert not list((repo / ".ggen/control").iterdir())

        # retries = 0: the first death fails the task
        before = cluster.worker_addresses()
        r = ggen("run", "once", cwd=repo)
        assert r.returncode == 1, r.stdout + r.stderr
        (once,) = last_summary(repo)["tasks"]
        assert once["status"] == "failed" and once["attempts"] == 1
        assert once["worker"] in before
        assert once["error"] == f"worker {once['worker']} died running it"
        cluster.wait_for_workers(2)


def test_executor_runs_tasks_and_shuts_down_cleanly(cluster: DaskCluster, tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "repo",
        {
            "make.toml": """
                [project]
                name = "inproc"
                [workspace.a]
                path = "a"
                [lifecycle.build]
                command = "echo $GGEN_WORKSPACE > out.txt"
            """,
            "a/.keep": "",
        },
    )
    make = load_make(str(repo))
    options = ExecOptions(logs_dir=str(repo / ".ggen/logs"), control_dir=str(repo / ".ggen/c"))
    Path(options.control_dir).mkdir(parents=True)
    threads_before = set(threading.enumerate())
    executor = make_executor(ExecutorKind.DASK, make, 2, cluster.address)
    result = executor.submit_task(TaskCall("a", "build", options)).result(timeout=30)
    assert result.status is Status.OK and result.worker in cluster.worker_addresses()
    assert (repo / "a/out.txt").read_text() == "a\n"
    assert executor.submit(len, "abc").result(timeout=30) == 3  # a plain callable
    # workers must see the project at the same path
    repo.rename(tmp_path / "moved")
    with pytest.raises(InternalError, match=r"does not see the project at .*/repo: Dask workers"):
        executor.submit_task(TaskCall("a", "build", options)).result(timeout=30)
    executor.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit_task(TaskCall("a", "build", options))
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - threads_before == set()


def test_missing_scheduler_address_is_a_usage_error(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "repo",
        {
            "make.toml": '[project]\nname = "x"\n[lifecycle.build]\ncommand = "touch ran"\n'
            'cache = false\n[executor]\nkind = "dask"\n'
        },
    )
    r = ggen("run", "build", cwd=repo, env={"GGEN_DASK_SCHEDULER": ""})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "needs the address of a Dask scheduler" in r.stderr
    assert "--scheduler tcp://HOST:8786" in r.stderr and "GGEN_DASK_SCHEDULER" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert not (repo / "ran").exists()
    r = ggen("run", "build", "--scheduler", "nonsense", cwd=repo)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--scheduler: nonsense: missing port number" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_unreachable_scheduler_exits_3_within_the_connect_timeout(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "repo",
        {"make.toml": '[project]\nname = "x"\n[lifecycle.build]\ncommand = "touch ran"\n'},
    )
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
        t0 = time.monotonic()
        r = ggen(
            "run", "build", "--executor", "dask", cwd=repo, env={"GGEN_DASK_SCHEDULER": address}
        )
        elapsed = time.monotonic() - t0
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"cannot reach the Dask scheduler at {address}" in r.stderr
    assert "is it running?" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert elapsed < CONNECT_TIMEOUT + 5
    assert not (repo / "ran").exists()


def test_missing_dask_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = write_tree(tmp_path / "repo", {"make.toml": '[project]\nname = "x"\n'})
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(UsageError, match=r"pip install 'ggen\[dask\]'") as raised:
        dask_executor(load_make(str(repo)), "tcp://127.0.0.1:8786", 1)
    assert raised.value.exit_code == 2


NAPS = """
    [project]
    name = "naps"

    [executor]
    kind = "dask"
    scheduler = "{address}"

    [workspace.a]
    path = "a"

    [workspace.b]
    path = "b"

    [workspace.c]
    path = "c"

    [lifecycle.nap]
    command = "sleep 1"
    cache = false
"""


def test_a_parallel_run_without_j_uses_every_thread_of_the_cluster(tmp_path: Path) -> None:
    """Three workers of one thread: three one-second tasks run at once, whatever the number of
    CPUs of the machine running ggen; -j still caps it."""
    with dask_cluster(tmp_path / "cluster", workers=3) as cluster:
        repo = write_tree(
            tmp_path / "repo",
            {"make.toml": NAPS.format(address=cluster.address), "a/.k": "", "b/.k": "", "c/.k": ""},
        )
        r = ggen("run", "nap", "--parallel", cwd=repo)
        assert r.returncode == 0, r.stdout + r.stderr
        summary = last_summary(repo)
        tasks = summary["tasks"]
        assert summary["jobs"] == 3, tasks
        span = max(t["finished_ms"] for t in tasks) - min(t["started_ms"] for t in tasks)
        workers = [(t["worker"], t["started_ms"]) for t in tasks]
        assert span < 1700, workers  # one round of three naps, not two rounds (>= 2000 ms)
        r = ggen("run", "nap", "-j2", cwd=repo)
        assert r.returncode == 0, r.stdout + r.stderr
        assert last_summary(repo)["jobs"] == 2
