"""One run at a time per project: a second waits (saying so) or, with --no-wait, fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from monorepo import ggen_command, write_tree
from procs import wait_for

from ggen.errors import LockBusyError
from ggen.make import Hooks, Make, Project
from ggen.runner.lock import project_lock


def make_at(root: Path) -> Make:
    return Make(root=str(root), project=Project("p"), workspaces=(), lifecycle=(), hooks=Hooks())


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock until a line is written to its stdin."""
    script = textwrap.dedent(
        f"""
        import sys
        from ggen.make import Hooks, Make, Project
        from ggen.runner.lock import project_lock
        make = Make(root={str(tmp_path)!r}, project=Project("p"), workspaces=(), lifecycle=(),
                    hooks=Hooks())
        with project_lock(make, wait=False, notify=print):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    yield proc
    proc.kill()
    proc.communicate()


def test_no_wait_fails_naming_the_holder(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with (
        pytest.raises(LockBusyError, match=f"another ggen run \\(pid {holder.pid}\\) holds"),
        project_lock(make_at(tmp_path), wait=False, notify=print),
    ):
        pass


def test_waiting_says_so_once_and_gets_the_lock_when_released(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    said: list[str] = []
    got = threading.Event()

    def second() -> None:
        with project_lock(make_at(tmp_path), wait=True, notify=said.append):
            got.set()

    thread = threading.Thread(target=second)
    thread.start()
    wait_for(lambda: bool(said), 10)
    assert said == [
        f"another ggen run (pid {holder.pid}) is using this project; waiting for it to finish"
    ]
    assert not got.is_set()
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    thread.join(30)
    holder.communicate(timeout=10)
    assert got.is_set() and holder.returncode == 0
    assert not (tmp_path / ".ggen" / "run.owner").exists()


def test_the_lock_dies_with_its_holder(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.communicate()
    with project_lock(make_at(tmp_path), wait=False, notify=print):
        assert (tmp_path / ".ggen" / "run.owner").read_text() == f"{os.getpid()}\n"


def test_two_ggen_runs_never_interleave(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "repo",
        {
            "make.toml": """
                [project]
                name = "locked"

                [lifecycle.work]
                command = '''
                  echo start $RUN >> journal
                  while [ ! -e release.$RUN ]; do sleep 0.02; done
                  echo end $RUN >> journal
                '''
                cache = false
            """
        },
    )
    journal = repo / "journal"
    env = {**os.environ, "GGEN_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("GITHUB_ACTIONS", None)

    def start(run: str, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*ggen_command(), "run", "work", *extra],
            cwd=repo,
            env={**env, "RUN": run},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    first = start("1")
    wait_for(lambda: journal.exists() and journal.read_text() == "start 1\n", 30)
    second = start("2")
    assert second.stderr is not None
    waiting = second.stderr.readline()
    assert waiting == (
        f"ggen: warning: another ggen run (pid {first.pid}) is using this project; "
        "waiting for it to finish\n"
    )
    third = start("3", "--no-wait")
    _, err = third.communicate(timeout=60)
    assert third.returncode == 2
    assert f"another ggen run (pid {first.pid}) holds" in err
    assert journal.read_text() == "start 1\n"
    (repo / "release.2").touch()
    (repo / "release.1").touch()
    first.communicate(timeout=60)
    assert first.returncode == 0
    second.communicate(timeout=60)
    assert second.returncode == 0
    assert journal.read_text() == "start 1\nend 1\nstart 2\nend 2\n"
