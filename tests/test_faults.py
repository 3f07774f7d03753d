"""Faults injected for real into ``ggen run``: timeouts, Ctrl-C, SIGTERM, dying workers,
``kill -9`` of ggen itself, concurrent output. Every test checks that no process survives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from monorepo import ggen, ggen_command, last_summary, statuses, write_tree
from procs import descendants, files_exist, read_pids, survivors, wait_for


class Run:
    """A ``ggen`` started in the background, its output going to files."""

    def __init__(self, repo: Path, args: tuple[str, ...], env: Mapping[str, str]) -> None:
        self.repo = repo
        self.out = repo.parent / f"out.{time.monotonic_ns()}"
        self.err = self.out.with_suffix(".err")
        # the same cache as ``monorepo.ggen`` uses, so that both kinds of run share it
        full_env = {**os.environ, "GGEN_CACHE_DIR": str(repo / ".ggen-test-cache"), **env}
        full_env.pop("GITHUB_ACTIONS", None)
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [*ggen_command(), *args],
                cwd=repo,
                env=full_env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    @property
    def stderr(self) -> str:
        return self.err.read_text()


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    """Background runs of a test; killed (with their descendants) if the test fails midway."""
    started: list[Run] = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            for pid in [run.proc.pid, *descendants(run.proc.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            run.proc.wait()


def start(runs: list[Run], repo: Path, *args: str, env: Mapping[str, str] | None = None) -> Run:
    run = Run(repo, args, env or {})
    runs.append(run)
    return run


def project(tmp_path: Path, workspaces: int, phases: str) -> Path:
    toml = '[project]\nname = "faults"\n'
    files = {}
    for i in range(workspaces):
        toml += f'[workspace.w{i}]\npath = "w{i}"\n'
        files[f"w{i}/src/a.txt"] = f"w{i} a\n"
    files["make.toml"] = toml + textwrap.dedent(phases)
    return write_tree(tmp_path / "repo", files)


def task_state(repo: Path, workspace: str, phase: str) -> dict[str, Any]:
    state = orjson.loads((repo / workspace / ".ggen" / "state.json").read_bytes())
    entry = state["phases"][phase]
    assert isinstance(entry, dict)
    return entry


# timeouts and retries -----------------------------------------------------------------------
def test_timeout_leaves_neither_the_command_nor_its_background_grandchild(tmp_path: Path) -> None:
    repo = project(
        tmp_path,
        1,
        """
        [lifecycle.hang]
        command = "sleep 300 & echo $! > grandchild; echo $$ > child; sleep 300"
        timeout = 0.5
        cache = false
        """,
    )
    t0 = time.monotonic()
    r = ggen("run", "hang", cwd=repo)
    assert time.monotonic() - t0 < 10
    assert r.returncode == 1, r.stderr
    summary = last_summary(repo)
    (task,) = summary["tasks"]
    assert task["status"] == "timeout"
    assert task["error"].startswith("timed out after 0.5 s running: sleep 300 &")
    assert summary["totals"]["failed"] == 1
    assert "w0:hang [timeout] timed out after 0.5 s" in r.stdout
    pids = read_pids([repo / "w0/child", repo / "w0/grandchild"])
    assert survivors(pids) == []
    assert task_state(repo, "w0", "hang")["status"] == "timeout"


def test_timeout_on_the_command_line_overrides_the_phases(tmp_path: Path) -> None:
    repo = project(
        tmp_path,
        2,
        """
        [lifecycle.hang]
        command = "echo $$ > child; sleep 300"
        timeout = 600
        cache = false
        """,
    )
    r = ggen("run", "hang", "--timeout", "0.3", "-j2", cwd=repo)
    assert r.returncode == 1
    tasks = last_summary(repo)["tasks"]
    assert [t["status"] for t in tasks] == ["timeout", "timeout"]
    assert all("timed out after 0.3 s" in t["error"] for t in tasks)
    assert survivors(read_pids([repo / "w0/child", repo / "w1/child"])) == []


def test_retries_are_counted_in_the_summary_and_the_state(tmp_path: Path) -> None:
    repo = project(
        tmp_path,
        1,
        """
        [lifecycle.flaky]
        command = "echo x >> tries; [ $(wc -l < tries) -ge 3 ]"
        retries = 3
        cache = false

        [lifecycle.broken]
        command = "exit 4"
        retries = 1
        cache = false
        """,
    )
    r = ggen("run", "flaky", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    (task,) = last_summary(repo)["tasks"]
    assert (task["status"], task["attempts"]) == ("ok", 3)
    assert task_state(repo, "w0", "flaky")["attempts"] == 3
    r = ggen("run", "broken", cwd=repo)
    assert r.returncode == 1
    (task,) = last_summary(repo)["tasks"]
    assert (task["status"], task["attempts"], task["exit_code"]) == ("failed", 2, 4)


# Ctrl-C and SIGTERM -------------------------------------------------------------------------
LONG = """
    [lifecycle.long]
    command = "{prefix}echo $$ > pid; sleep 300 & echo $! > bg; wait"
    cache = false
"""


def long_repo(tmp_path: Path, prefix: str = "") -> Path:
    return project(tmp_path, 4, LONG.format(prefix=prefix))


def wait_all_running(run: Run, repo: Path) -> list[int]:
    """Wait until the 4 tasks run; every process below ggen then (workers, shells, sleeps)."""
    wait_for(files_exist(*command_files(repo)), 60, "the 4 tasks to start")
    return sorted(set(descendants(run.proc.pid)) | set(read_pids(command_files(repo))))


def command_files(repo: Path) -> list[Path]:
    return [repo / f"w{i}" / name for i in range(4) for name in ("pid", "bg")]


def assert_nothing_left(repo: Path, tree: list[int]) -> None:
    """The commands are gone when ggen has exited; so is everything else below it, but for
    the pools' resource trackers, which exit on their own once ggen has."""
    assert survivors(read_pids(command_files(repo))) == []
    wait_for(lambda: not survivors(tree), 3, f"{survivors(tree)} to end")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_an_interrupt_stops_every_task_within_the_grace_period(
    tmp_path: Path, runs: list[Run], sig: int
) -> None:
    repo = long_repo(tmp_path)
    run = start(runs, repo, "run", "long", "--parallel", "-j4")
    tree = wait_all_running(run, repo)
    assert len(tree) >= 4 * 3  # 4 workers, 4 shells, 4 background sleeps at least
    t0 = time.monotonic()
    run.signal(sig)
    code = run.wait()
    elapsed = time.monotonic() - t0
    print(f"{signal.Signals(sig).name}: ggen exited {elapsed:.3f}s after the signal")
    assert code == 130, run.stderr
    assert elapsed < 5.0  # the default grace period: TERM was enough
    assert_nothing_left(repo, tree)
    summary = last_summary(repo)
    assert summary["exit_code"] == 130
    assert set(statuses(summary).values()) == {"interrupted"}
    assert summary["totals"]["interrupted"] == 4
    root_state = orjson.loads((repo / ".ggen/state.json").read_bytes())
    assert root_state["last_run"]["exit_code"] == 130
    assert task_state(repo, "w2", "long")["status"] == "interrupted"
    assert "4 interrupted" in run.stdout
    assert sorted(p.name for p in (repo / ".ggen/control").iterdir()) == ["workers"]


def test_an_interrupt_stops_the_inline_executors_command(tmp_path: Path, runs: list[Run]) -> None:
    repo = long_repo(tmp_path)
    run = start(runs, repo, "run", "long", "-w", "w1", "--executor", "inline")
    wait_for(files_exist(repo / "w1/pid", repo / "w1/bg"), 60)
    t0 = time.monotonic()
    run.signal(signal.SIGINT)
    assert run.wait() == 130
    print(f"inline: ggen exited {time.monotonic() - t0:.3f}s after SIGINT")
    assert survivors(read_pids([repo / "w1/pid", repo / "w1/bg"])) == []
    assert statuses(last_summary(repo)) == {"w1:long": "interrupted"}


def test_commands_that_ignore_term_are_killed_when_the_grace_period_ends(
    tmp_path: Path, runs: list[Run]
) -> None:
    repo = long_repo(tmp_path, prefix="trap '' TERM; ")
    run = start(runs, repo, "run", "long", "-j4", "--grace", "1")
    tree = wait_all_running(run, repo)
    t0 = time.monotonic()
    run.signal(signal.SIGINT)
    assert run.wait() == 130
    elapsed = time.monotonic() - t0
    print(f"TERM ignored: ggen exited {elapsed:.3f}s after SIGINT (grace 1 s)")
    assert 1.0 <= elapsed < 4.0
    assert_nothing_left(repo, tree)
    assert set(statuses(last_summary(repo)).values()) == {"interrupted"}


def test_a_second_ctrl_c_kills_at_once(tmp_path: Path, runs: list[Run]) -> None:
    repo = long_repo(tmp_path, prefix="trap '' TERM; ")
    run = start(runs, repo, "run", "long", "-j4", "--grace", "120")
    tree = wait_all_running(run, repo)
    t0 = time.monotonic()
    run.signal(signal.SIGINT)
    wait_for((repo / ".ggen/control/stop").exists, 10, "the first interrupt to be handled")
    run.signal(signal.SIGINT)
    assert run.wait() == 130
    elapsed = time.monotonic() - t0
    print(f"second Ctrl-C: ggen exited {elapsed:.3f}s after the first (grace 120 s)")
    assert elapsed < 10
    assert_nothing_left(repo, tree)
    assert set(statuses(last_summary(repo)).values()) == {"interrupted"}


def test_commands_get_default_signal_dispositions_from_the_workers(tmp_path: Path) -> None:
    # the workers catch SIGINT and SIGTERM with handlers that do nothing; an ignored signal
    # (SIG_IGN) would be inherited by every command, which could then not be stopped by TERM
    repo = project(
        tmp_path,
        2,
        """
        [lifecycle.sig]
        command = "grep SigIgn /proc/$$/status > sigign"
        cache = false
        """,
    )
    assert ggen("run", "sig", "-j2", cwd=repo).returncode == 0
    for ws in ("w0", "w1"):
        ignored = int((repo / ws / "sigign").read_text().split()[1], 16)
        assert ignored & (1 << (signal.SIGINT - 1)) == 0
        assert ignored & (1 << (signal.SIGTERM - 1)) == 0


# dying workers ------------------------------------------------------------------------------
CRASH = """
    [lifecycle.crash]
    command = '''
      root=$GGEN_PROJECT_ROOT
      echo run >> $root/runs.$GGEN_WORKSPACE
      if [ "$GGEN_WORKSPACE" = w0 ]; then
        while [ $(ls $root | grep -c '^started[.]') -lt 3 ]; do sleep 0.02; done
        sleep 300 & echo $! > $root/orphan.pid
        echo "killing my worker $PPID"
        eval "$CRASH"
        wait
      elif [ -e $root/started.$GGEN_WORKSPACE ]; then
        echo "second run"
      else
        touch $root/started.$GGEN_WORKSPACE
        sleep 300
      fi
    '''
    cache = false
"""

EXIT_ON_USR1 = """
import os, signal
if os.environ.get("EXIT_ON_USR1"):
    signal.signal(signal.SIGUSR1, lambda *_: os._exit(int(os.environ["EXIT_ON_USR1"])))
"""


@pytest.mark.parametrize(
    ("crash", "named"),
    [
        ("kill -KILL $PPID", "killed by SIGKILL"),
        ("kill -SEGV $PPID", "killed by SIGSEGV"),
        ("kill -USR1 $PPID", "exit code 3"),  # the worker calls os._exit(3), see EXIT_ON_USR1
    ],
    ids=["SIGKILL", "SIGSEGV", "os._exit(3)"],
)
def test_crash_table_a_dead_worker_fails_only_its_task(
    tmp_path: Path, crash: str, named: str
) -> None:
    repo = project(tmp_path, 4, CRASH)
    env = {"CRASH": crash}
    if "USR1" in crash:
        # test-only: every Python started by this ggen (its workers) exits with code 3 on USR1
        hook = tmp_path / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(EXIT_ON_USR1)
        env |= {"PYTHONPATH": str(hook), "EXIT_ON_USR1": "3"}
    r = ggen("run", "crash", "-j4", cwd=repo, env=env, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    summary = last_summary(repo)
    tasks = {t["id"]: t for t in summary["tasks"]}
    crashed = tasks["w0:crash"]
    assert crashed["status"] == "failed"
    assert crashed["error"] == f"worker process {crashed['worker']} died running it: {named}"
    assert f"killing my worker {crashed['worker']}" in (repo / crashed["log"]).read_text()
    assert f"w0:crash [failed] worker process {crashed['worker']} died" in r.stdout
    for i in (1, 2, 3):
        task = tasks[f"w{i}:crash"]
        assert task["status"] == "ok", task
        assert (repo / f"runs.w{i}").read_text() == "run\nrun\n"  # killed with the pool, rerun
        assert "second run" in (repo / task["log"]).read_text()
    assert (repo / "runs.w0").read_text() == "run\n"
    # the dead worker's command group (its shell and the orphan sleep) was stopped too
    assert survivors(read_pids([repo / "orphan.pid"])) == []
    assert summary["totals"] | {"cpu_ms": 0} == {
        "tasks": 4,
        "ran": 4,
        "cached": 0,
        "failed": 1,
        "skipped": 0,
        "no_script": 0,
        "interrupted": 0,
        "hit_rate": 0.0,
        "cpu_ms": 0,
    }


RETRIED = """
    [lifecycle.crash]
    command = '''
      root=$GGEN_PROJECT_ROOT
      echo start >> $root/starts.$GGEN_WORKSPACE
      crash() {
        # once the control file names this command's group, and the other tasks are running
        # (not starting: see test_a_worker_killed_while_starting_a_command...), leave an
        # orphan and kill the worker
        control=$root/.ggen/control/$GGEN_WORKSPACE.crash.pid
        until grep -qs " $$ " "$control"; do sleep 0.01; done
        sleep 0.5
        sleep 300 & echo $! >> $root/orphans
        echo "killing my worker $PPID"
        kill -KILL $PPID
        wait
      }
      case $GGEN_WORKSPACE in
        w0) if [ -e $root/crashed.w0 ]; then echo "second start"
            else touch $root/crashed.w0; crash; fi ;;
        w1) crash ;;
        w2) sleep 2; echo fine ;;
      esac
    '''
    retries = 1
    parallel = true
    cache = false
"""


def test_a_phase_with_retries_survives_that_many_worker_deaths(tmp_path: Path) -> None:
    repo = project(tmp_path, 3, RETRIED)
    r = ggen("run", "crash", "-j3", cwd=repo, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    tasks = {t["id"]: t for t in last_summary(repo)["tasks"]}
    # w0: its first start died with its worker, the second succeeded; the log holds both
    survived = tasks["w0:crash"]
    assert (survived["status"], survived["attempts"]) == ("ok", 2), survived
    log = (repo / survived["log"]).read_text()
    assert "killing my worker" in log
    assert "died running it: killed by SIGKILL; starting it again (attempt 2 of 2)" in log
    assert log.rstrip().endswith("second start")
    # w1: it killed its worker at every start; retries = 1 allows two deaths of its own, no
    # more (a start lost when another task's worker broke the pool is not one of them)
    doomed = tasks["w1:crash"]
    assert (doomed["status"], doomed["attempts"]) == ("failed", 2), doomed
    assert doomed["error"] == (
        f"worker process {doomed['worker']} died running it: killed by SIGKILL "
        "(after 2 attempts, every one on a worker that died)"
    )
    assert (repo / "starts.w1").read_text().count("start") >= 2
    assert (tasks["w2:crash"]["status"], tasks["w2:crash"]["attempts"]) == ("ok", 1)
    # what each dead worker's command left running was stopped
    orphans = [int(pid) for pid in (repo / "orphans").read_text().split()]
    assert len(orphans) >= 3
    assert survivors(orphans) == []


def test_a_worker_killed_while_starting_a_command_leaves_nothing_behind(tmp_path: Path) -> None:
    """The command kills its worker at once, maybe before the worker wrote its control file:
    the orphan it leaves is stopped either way (through the control file, or as a stray of
    the project once the run is over)."""
    repo = project(
        tmp_path,
        2,
        """
        [lifecycle.crash]
        command = '''
          if [ $GGEN_WORKSPACE = w0 ]; then
            sleep 300 & echo $! > $GGEN_PROJECT_ROOT/orphan
            kill -KILL $PPID
            wait
          else
            sleep 1
          fi
        '''
        parallel = true
        cache = false
        """,
    )
    r = ggen("run", "crash", "-j2", cwd=repo, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert statuses(last_summary(repo)) == {"w0:crash": "failed", "w1:crash": "ok"}
    (orphan,) = read_pids([repo / "orphan"])
    wait_for(lambda: not survivors([orphan]), 10, "the orphan of the dead worker to be stopped")


def test_a_command_killed_by_a_signal_is_a_plain_failure(tmp_path: Path) -> None:
    repo = project(
        tmp_path,
        1,
        """
        [lifecycle.die]
        command = "kill -KILL $$"
        cache = false
        """,
    )
    r = ggen("run", "die", "-j2", "--parallel", cwd=repo)
    assert r.returncode == 1
    (task,) = last_summary(repo)["tasks"]
    assert task["error"] == "killed by SIGKILL running: kill -KILL $$"
    assert task["exit_code"] == -9 and task["worker"] != "main"


# kill -9 of ggen ----------------------------------------------------------------------------
BUILD = """
    [lifecycle.build]
    commands = [
      "mkdir -p dist",
      "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo $i > dist/part$i.txt; done",
      "cat src/*.txt > dist/out.txt",
    ]
    inputs = ["src/**"]
    outputs = ["dist/**"]

    [lifecycle.pack]
    commands = ["mkdir -p pkg", "tr a-z A-Z < dist/out.txt > pkg/out.txt"]
    depends_on = ["build"]
    inputs = ["dist/**"]
    outputs = ["pkg/**"]
"""


def check_after_recovery(repo: Path, contents: dict[str, str]) -> None:
    for ws, text in contents.items():
        assert (repo / ws / "dist/out.txt").read_text() == text, ws
        assert (repo / ws / "pkg/out.txt").read_text() == text.upper(), ws
    for path in [repo / ".ggen/state.json", *repo.glob("*/.ggen/state.json")]:
        assert isinstance(orjson.loads(path.read_bytes()), dict), path
    for path in (repo / ".ggen/runs").glob("*.json"):
        assert orjson.loads(path.read_bytes())["version"] == 1, path


def clear_outputs(repo: Path) -> None:
    for out in [*repo.glob("*/dist"), *repo.glob("*/pkg")]:
        for f in out.iterdir():
            f.unlink()


def working(run: Run) -> float:
    """Wait until ``run`` holds the project lock (before that it writes nothing: Python starts,
    make.toml is read); return when that was, or the exit if it was too quick to see."""
    owner = run.repo / ".ggen/run.owner"
    wait_for(lambda: owner.exists() or run.proc.poll() is not None, 60)
    return time.monotonic()


def test_kill_9_of_ggen_at_random_moments_never_breaks_the_next_run(
    tmp_path: Path, runs: list[Run]
) -> None:
    repo = project(tmp_path, 6, BUILD)
    contents = {f"w{i}": f"w{i} a\n" for i in range(6)}
    args = ("run", "build", "pack", "-j2")
    assert ggen(*args, cwd=repo).returncode == 0
    work = {}  # how long a run works once it holds the lock, per mode
    for mode in ("uncached", "cached"):
        if mode == "uncached":
            for ws in ("w0", "w1"):
                contents[ws] = f"{ws} changed\n"
                (repo / ws / "src/a.txt").write_text(contents[ws])
        else:
            clear_outputs(repo)
        run = start(runs, repo, *args)
        t0 = working(run)
        assert run.wait() == 0, run.stdout + run.stderr
        work[mode] = time.monotonic() - t0
        check_after_recovery(repo, contents)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed {seed}, working time {work}")
    for i in range(20):
        mode = "uncached" if i % 2 == 0 else "cached"
        if mode == "uncached":
            for ws in rng.sample(sorted(contents), 2):
                contents[ws] = f"{ws} version {i}\n"
                (repo / ws / "src/a.txt").write_text(contents[ws])
        else:
            clear_outputs(repo)
        # stratified: each tenth of the working time gets one kill per mode
        moment = work[mode] * (i // 2 + rng.random()) / 10
        summaries = len(list((repo / ".ggen/runs").glob("*.json")))
        run = start(runs, repo, *args)
        time.sleep(max(0.0, working(run) + moment - time.monotonic()))
        pool = bool(descendants(run.proc.pid))
        run.signal(signal.SIGKILL)
        run.wait()
        finished = len(list((repo / ".ggen/runs").glob("*.json"))) > summaries
        print(f"{i:2} {mode:8} killed at +{moment:.3f}s: pool {pool}, finished {finished}")
        after = ggen(*args, cwd=repo)
        assert after.returncode == 0, (seed, i, after.stdout, after.stderr)
        check_after_recovery(repo, contents)
        verify = ggen("cache", "verify", cwd=repo)
        assert verify.returncode == 0, (seed, i, verify.stdout)
        assert "0 problems" in verify.stdout


def test_kill_9_of_ggen_stops_the_commands_without_another_run(
    tmp_path: Path, runs: list[Run]
) -> None:
    repo = long_repo(tmp_path)
    run = start(runs, repo, "run", "long", "-j4")
    tree = wait_all_running(run, repo)
    t0 = time.monotonic()
    run.signal(signal.SIGKILL)
    run.wait()
    # each worker notices that ggen is gone, stops its command (TERM) and exits
    wait_for(lambda: not survivors(tree), 10, "the workers and commands of a killed ggen to end")
    print(f"kill -9: every process gone {time.monotonic() - t0:.3f}s after")
    r = ggen("run", "long", "--timeout", "0.2", cwd=repo)
    assert "left running" not in r.stderr


INLINE_LONG = """
    [lifecycle.long]
    command = "echo $$ > pid; sleep 300"
    cache = false

    [lifecycle.quick]
    command = "true"
    cache = false
"""


def start_inline_long(tmp_path: Path, runs: list[Run]) -> tuple[Path, Run, int]:
    """A ggen running a long command in its own process: (repo, run, the command's pid)."""
    repo = project(tmp_path, 1, INLINE_LONG)
    run = start(runs, repo, "run", "long", "--executor", "inline")
    wait_for(files_exist(repo / "w0/pid"), 30)
    (left,) = read_pids([repo / "w0/pid"])
    return repo, run, left


def test_a_killed_inline_runs_watchdog_stops_its_command(
    tmp_path: Path, runs: list[Run]
) -> None:
    repo, run, left = start_inline_long(tmp_path, runs)
    run.signal(signal.SIGKILL)
    run.wait()
    # the command ran in ggen's own process; ggen's watchdog stops it, with no other run
    wait_for(lambda: not survivors([left]), 10, "the watchdog to stop the command")
    r = ggen("run", "quick", cwd=repo)
    assert r.returncode == 0
    assert "left running" not in r.stderr


def test_the_next_run_stops_commands_a_killed_inline_run_left(
    tmp_path: Path, runs: list[Run]
) -> None:
    repo, run, left = start_inline_long(tmp_path, runs)
    os.killpg(run.proc.pid, signal.SIGKILL)  # ggen and its watchdog (its process group)
    run.wait()
    time.sleep(0.5)
    assert survivors([left]) == [left]  # nothing of ggen is left to stop it
    r = ggen("run", "quick", "-j2", "--parallel", cwd=repo)
    assert r.returncode == 0
    assert "stopped 1 command(s) left running by a killed run" in r.stderr
    wait_for(lambda: not survivors([left]), 10)


def test_a_killed_runs_lock_is_held_until_its_watchdog_has_stopped_its_command(
    tmp_path: Path, runs: list[Run]
) -> None:
    repo = project(
        tmp_path,
        1,
        """
        [lifecycle.stubborn]
        command = "trap '' TERM; echo $$ > pid; sleep 300"
        cache = false

        [lifecycle.quick]
        command = "true"
        cache = false
        """,
    )
    run = start(runs, repo, "run", "stubborn", "--grace", "3")
    wait_for(files_exist(repo / "w0/pid"), 30)
    (left,) = read_pids([repo / "w0/pid"])
    run.signal(signal.SIGKILL)
    run.wait()
    # the command ignores TERM: the watchdog KILLs it after 3 s, holding the lock meanwhile
    busy = ggen("run", "quick", "--no-wait", cwd=repo)
    assert busy.returncode == 2, busy.stdout + busy.stderr
    assert "another ggen run" in busy.stderr
    wait_for(lambda: not survivors([left]), 15, "the watchdog to kill the command")
    wait_for(lambda: ggen("run", "quick", "--no-wait", cwd=repo).returncode == 0, 10)


def test_a_lone_task_runs_in_ggens_process_and_more_go_to_the_pool(tmp_path: Path) -> None:
    repo = project(
        tmp_path,
        3,
        """
        [lifecycle.build]
        command = "tr '\\\\0' ' ' < /proc/$PPID/cmdline > parent.txt"
        outputs = ["parent.txt"]
        """,
    )
    r = ggen("run", "build", "-j2", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    for i in range(3):  # three tasks to run: they go to the pool's workers
        assert "loky" in (repo / f"w{i}/parent.txt").read_text()
    (repo / "w1/src/a.txt").write_text("changed\n")
    r = ggen("run", "build", "-j2", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(last_summary(repo)) == {
        "w0:build": "cached",
        "w1:build": "ok",
        "w2:build": "cached",
    }
    # the one task to run ran in ggen's own process: no pool was started for it
    parent = (repo / "w1/parent.txt").read_text()
    assert "loky" not in parent
    assert " run build -j2" in parent


# output -------------------------------------------------------------------------------------
STREAM = """
    [lifecycle.talk]
    command = '''
      i=0
      while [ $i -lt 150 ]; do
        printf "%s line %03d " $GGEN_WORKSPACE $i
        [ $((i % 10)) -eq 0 ] && sleep 0.01
        printf "end\\n"
        i=$((i+1))
      done
      printf "%s last words" $GGEN_WORKSPACE
    '''
    cache = false
"""


def test_stream_output_never_cuts_or_mixes_lines(tmp_path: Path) -> None:
    repo = project(tmp_path, 4, STREAM)
    r = ggen("run", "talk", "-j4", "--output", "stream", cwd=repo)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1].startswith("ggen: 4 tasks, 4 ran")
    for i in range(4):
        ws = f"w{i}"
        mine = [line for line in lines if line.startswith(f"{ws}:talk | ")]
        assert mine == [f"{ws}:talk | {ws} line {n:03d} end" for n in range(150)] + [
            f"{ws}:talk | {ws} last words"
        ]
    assert len(lines) == 4 * 151 + 1


def test_a_failed_tasks_log_is_shown_in_every_mode(tmp_path: Path) -> None:
    repo = project(
        tmp_path,
        2,
        """
        [lifecycle.check]
        command = "echo checking $GGEN_WORKSPACE; [ $GGEN_WORKSPACE = w0 ] || exit 7"
        cache = false
        """,
    )
    for mode in ("quiet", "grouped", "stream"):
        r = ggen("run", "check", "-k", "--output", mode, cwd=repo)
        assert r.returncode == 1
        assert "── w1:check [failed] exit code 7 running:" in r.stdout, mode
        assert "w1:check | checking w1\n" in r.stdout, mode
        assert ("w0:check | checking w0" in r.stdout) == (mode != "quiet"), mode
    r = ggen("run", "check", "-k", cwd=repo, env={"GITHUB_ACTIONS": "true"})
    assert "::group::w0:check [ok]\nchecking w0\n::endgroup::\n" in r.stdout
    assert "::group::w1:check [failed] exit code 7 running:" in r.stdout
