"""What a run prints in each output mode."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ggen.runner.console import Console, OutputMode
from ggen.runner.results import CacheStatus, Status, TaskResult


def result(
    tid: str, status: Status, log: str | None = None, error: str | None = None
) -> TaskResult:
    ws, phase = tid.split(":")
    return TaskResult(tid, ws, phase, status, log=log, error=error, cache=CacheStatus.MISS)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    (tmp_path / "ok.log").write_text("built it\nall good\n")
    (tmp_path / "bad.log").write_text("compiling\nerror: nope")
    return tmp_path


def console(root: Path, mode: OutputMode) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(str(root), mode, out=out, err=io.StringIO()), out


@pytest.fixture(autouse=True)
def no_github(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def test_grouped_prints_each_finished_task_as_one_prefixed_block(logs: Path) -> None:
    c, out = console(logs, OutputMode.GROUPED)
    c.begin(3)
    c.finished(result("a:build", Status.OK, "ok.log"))
    c.finished(result("b:build", Status.FAILED, "bad.log", "exit code 1 running: make"))
    c.finished(result("c:build", Status.SKIPPED, error="not started"))
    assert out.getvalue() == (
        "── a:build [ok]\n"
        "a:build | built it\n"
        "a:build | all good\n"
        "── b:build [failed] exit code 1 running: make\n"
        "b:build | compiling\n"
        "b:build | error: nope\n"
    )


def test_github_actions_gets_group_blocks(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    c, out = console(logs, OutputMode.GROUPED)
    c.finished(result("a:build", Status.OK, "ok.log"))
    c.finished(result("b:build", Status.TIMEOUT, "bad.log", "timed out after 1 s running: x"))
    assert out.getvalue() == (
        "::group::a:build [ok]\nbuilt it\nall good\n::endgroup::\n"
        "::group::b:build [timeout] timed out after 1 s running: x\n"
        "compiling\nerror: nope\n::endgroup::\n"
    )


def test_quiet_shows_only_failed_logs_and_the_summary(logs: Path) -> None:
    c, out = console(logs, OutputMode.QUIET)
    ok = result("a:build", Status.OK, "ok.log")
    bad = result("b:build", Status.FAILED, "bad.log", "exit code 2 running: make")
    c.finished(ok)
    c.finished(bad)
    c.summary([ok, bad], 1.5)
    text = out.getvalue()
    assert "built it" not in text
    assert "── b:build [failed] exit code 2 running: make\nb:build | compiling\n" in text
    assert text.endswith("ggen: 2 tasks, 2 ran, 0 cached, 1 failed in 1.50s\n")


def test_stream_prints_lines_as_they_come_and_a_failed_log_again(logs: Path) -> None:
    c, out = console(logs, OutputMode.STREAM)
    log = logs / "run.log"
    c.started("a:build", log=str(log))
    with open(log, "wb") as f:
        f.write(b"one\ntwo without end")
    c.finished(result("a:build", Status.OK, "run.log"))
    c.started("b:test", log=str(logs / "bad.log"))
    c.finished(result("b:test", Status.FAILED, "bad.log", "exit code 1 running: t"))
    assert out.getvalue() == (
        "a:build | one\n"
        "a:build | two without end\n"
        "b:test | compiling\n"
        "b:test | error: nope\n"
        "── b:test [failed] exit code 1 running: t\n"
        "b:test | compiling\n"
        "b:test | error: nope\n"
    )
    c.summary([], 0.1)


def test_warnings_go_to_stderr() -> None:
    err = io.StringIO()
    c = Console("/", OutputMode.QUIET, out=io.StringIO(), err=err)
    c.warn("careful")
    assert err.getvalue() == "ggen: warning: careful\n"


def test_stream_replays_a_cached_tasks_log_as_grouped_does(logs: Path) -> None:
    c, out = console(logs, OutputMode.STREAM)
    c.finished(result("a:build", Status.CACHED, "ok.log"))
    c.finished(result("b:build", Status.SKIPPED, error="not started"))
    assert out.getvalue() == ("── a:build [cached]\na:build | built it\na:build | all good\n")
