"""``ggen audit`` end to end: the real command, the real strace, a temporary monorepo."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
from monorepo import ggen, ggen_command, write_tree


@pytest.fixture(autouse=True)
def _strace_is_installed() -> None:
    """These tests need the real strace: without it they fail (CI installs it), never skip."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed: apt-get install strace")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "monorepo"

TREE = {
    "make.toml": """
        [project]
        name = "audit-me"

        [workspace.shared]
        path = "packages/shared"

        [workspace.web]
        path = "packages/web"

        [workspace.api]
        path = "packages/api"
        depends_on = ["shared"]

        [lifecycle.build]
        command = "sh build.sh"
        depends_on = ["^build"]
        inputs = ["build.sh", "src/**"]
        outputs = ["dist/**"]
    """,
    "tsconfig.base.json": "{}\n",
    "données.json": "{}\n",
    "packages/shared/build.sh": """
        mkdir -p dist
        cat src/index.txt > dist/out.txt
        echo run >> dist/runs.txt
    """,
    "packages/shared/src/index.txt": "shared\n",
    # reads a root config and a sibling's source it does not declare, from a subdirectory
    "packages/web/build.sh": """
        mkdir -p dist
        cd src
        cat ../../../tsconfig.base.json ../../../données.json ../../shared/src/index.txt \\
            main.txt > ../dist/out.txt
        # a sibling's output, without depending on it (there when shared:build ran first)
        cat ../../shared/dist/out.txt 2>/dev/null || true
    """,
    "packages/web/src/main.txt": "web\n",
    # reads its dependency's output (declared by depends_on), writes outside its outputs
    "packages/api/build.sh": """
        mkdir -p dist
        cat ../shared/dist/out.txt src/api.txt > dist/out.txt
        echo checked > report.txt
        echo oops > ../shared/leak.txt
    """,
    "packages/api/src/api.txt": "api\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", TREE)


def audit_json(repo: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = ggen("audit", *args, "--json", cwd=repo)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, orjson.loads(done.stdout)


def findings(report: dict[str, Any], task: str) -> list[tuple[str, str, str | None]]:
    (entry,) = [t for t in report["tasks"] if t["id"] == task]
    return [(f["path"], f["access"], f["glob"]) for f in entry["findings"]]


def test_undeclared_reads_and_writes_are_found_with_their_globs(repo: Path) -> None:
    code, report = audit_json(repo, "build")
    assert code == 1
    verdicts = {t["id"]: t["verdict"] for t in report["tasks"]}
    assert verdicts == {
        "shared:build": "clean",
        "web:build": "undeclared",
        "api:build": "undeclared",
    }
    assert findings(report, "web:build") == [
        ("données.json", "read", "//données.json"),
        ("packages/shared/dist/out.txt", "read", None),
        ("packages/shared/src/index.txt", "read", "//packages/shared/src/**"),
        ("tsconfig.base.json", "read", "//tsconfig.base.json"),
    ]
    (web,) = [t for t in report["tasks"] if t["id"] == "web:build"]
    made = [f["made_by"] for f in web["findings"]]
    assert made == [None, "shared:build", None, None]
    assert findings(report, "api:build") == [
        ("packages/api/report.txt", "write", "report.txt"),
        ("packages/shared/leak.txt", "write", None),
    ]
    assert web["suggested_inputs"] == [
        "//données.json",
        "//packages/shared/src/**",
        "//tsconfig.base.json",
    ]
    assert report["exit_code"] == 1


def test_the_text_report_names_each_file_and_the_pattern_to_add(repo: Path) -> None:
    done = ggen("audit", "build", "-w", "web", cwd=repo)
    assert done.returncode == 1, done.stderr
    assert '  read   tsconfig.base.json  (inputs: "//tsconfig.base.json")' in done.stdout
    assert (
        '  add to inputs:  "//données.json", "//packages/shared/src/**", "//tsconfig.base.json"'
        in done.stdout
    )
    assert done.stdout.rstrip().endswith("1 with undeclared files (3 read, 0 written)")


def test_a_name_that_is_not_utf8_is_reported_with_its_bytes_escaped(repo: Path) -> None:
    (repo / os.fsdecode(b"odd-\xff.cfg")).write_bytes(b"x")
    (repo / "packages/shared/build.sh").write_text("cat ../../odd-* > /dev/null\n")
    code, report = audit_json(repo, "build", "-w", "shared")
    assert code == 1
    assert findings(report, "shared:build") == [("odd-\\xff.cfg", "read", "//odd-\\xff.cfg")]
    done = ggen("audit", "build", "-w", "shared", cwd=repo)
    assert "  read   odd-\\xff.cfg  (inputs: " in done.stdout


def test_a_clean_task_reports_nothing_and_exits_0(repo: Path) -> None:
    done = ggen("audit", "build", "-w", "shared", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == "shared:build: clean"


def test_declaring_the_suggested_globs_makes_the_task_clean(repo: Path) -> None:
    _, report = audit_json(repo, "build", "-w", "web")
    (web,) = [t for t in report["tasks"] if t["id"] == "web:build"]
    inputs = ["build.sh", "src/**", *web["suggested_inputs"]]
    write_tree(
        repo,
        {
            "packages/web/make.toml": f"""
                [lifecycle.build]
                command = "sh build.sh"
                inputs = {orjson.dumps(inputs).decode()}
                outputs = ["dist/**"]
            """
        },
    )
    done = ggen("audit", "build", "-w", "web", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "web:build: clean" in done.stdout


def test_audit_runs_every_task_without_reading_or_writing_the_cache(repo: Path) -> None:
    assert ggen("run", "build", "-w", "shared", cwd=repo).returncode == 0
    stats = ggen("cache", "stats", cwd=repo).stdout
    runs = sorted((repo / ".ggen" / "runs").iterdir())
    done = ggen("audit", "build", "-w", "shared", cwd=repo)
    assert done.returncode == 0, done.stderr
    # it ran (a hit would have restored the one line) and stored nothing, recorded no run
    assert (repo / "packages/shared/dist/runs.txt").read_text() == "run\nrun\n"
    assert ggen("cache", "stats", cwd=repo).stdout == stats
    assert sorted((repo / ".ggen" / "runs").iterdir()) == runs


def test_a_failed_task_stops_the_audit_and_exits_1(repo: Path) -> None:
    (repo / "packages/shared/build.sh").write_text("echo broken; exit 4\n")
    code, report = audit_json(repo, "build", "-w", "api")
    assert code == 1
    verdicts = {t["id"]: t["verdict"] for t in report["tasks"]}
    assert verdicts == {"shared:build": "failed", "api:build": "not-run"}
    (shared,) = [t for t in report["tasks"] if t["id"] == "shared:build"]
    assert "exit code 4" in shared["error"]


def test_sigterm_stops_the_traced_command_and_exits_130(repo: Path) -> None:
    (repo / "packages/shared/build.sh").write_text("touch started; sleep 60\n")
    env = {**os.environ, "GGEN_CACHE_DIR": str(repo / ".ggen-test-cache")}
    proc = subprocess.Popen(
        [*ggen_command(), "audit", "build", "-w", "shared"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not (repo / "packages/shared/started").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    here = str(repo / "packages/shared")
    sleepers = [
        p
        for p in psutil.process_iter(["cmdline", "cwd"])
        if p.info["cmdline"] == ["sleep", "60"] and p.info["cwd"] == here
    ]
    assert len(sleepers) == 1
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 10
    assert "interrupted" in err
    psutil.wait_procs(sleepers, timeout=5)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in sleepers)


def test_without_strace_it_says_which_package_to_install_and_exits_3(repo: Path) -> None:
    done = ggen("audit", "build", cwd=repo, env={"GGEN_STRACE": str(repo / "no-strace")})
    assert done.returncode == 3
    assert "strace not found" in done.stderr
    assert "apt-get install strace" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_strace_that_cannot_trace_here_exits_3_with_its_reason(repo: Path) -> None:
    fake = repo / "fake-strace"
    fake.write_text(
        "#!/bin/sh\necho 'strace: PTRACE_TRACEME: Operation not permitted' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    done = ggen("audit", "build", cwd=repo, env={"GGEN_STRACE": str(fake)})
    assert done.returncode == 3
    assert "cannot trace commands here: strace: PTRACE_TRACEME: Operation not permitted" in (
        done.stderr
    )
    assert not (repo / "packages/shared/dist").exists()  # nothing ran


def test_a_task_over_its_timeout_is_stopped_and_fails_the_audit(repo: Path) -> None:
    (repo / "packages/shared/build.sh").write_text("sleep 30\n")
    t0 = time.monotonic()
    done = ggen("audit", "build", "-w", "shared", "--timeout", "0.5", cwd=repo)
    assert done.returncode == 1
    assert time.monotonic() - t0 < 15
    assert "shared:build: FAILED: timed out after 0.5 s" in done.stdout


def test_bad_usage_exits_2(repo: Path) -> None:
    done = ggen("audit", "biuld", cwd=repo)
    assert done.returncode == 2
    assert 'unknown phase "biuld", did you mean "build"?' in done.stderr
    assert ggen("audit", cwd=repo).returncode == 2


def test_the_example_monorepo_declares_everything_its_tasks_touch(tmp_path: Path) -> None:
    copy = tmp_path / "example"
    generated = ("dist", "build", "gen", "__pycache__", ".ggen")
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(*generated))
    done = ggen("-C", str(copy), "audit", "build", "test", "lint", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("audit: 29 task(s) traced, 0 with undeclared files")
    assert all(line.endswith(("clean", "not judged")) for line in lines[:-1]), done.stdout


def test_the_traced_command_is_the_task_command_quoted_intact(tmp_path: Path) -> None:
    from ggen.runner.audit import traced_command

    # a stand-in for strace: drops its options, runs what follows "--"
    fake = tmp_path / "strace"
    fake.write_text('#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n')
    fake.chmod(0o755)
    command = "printf '%s|' \"it's\" $HOME '$HOME' 'a\nb' \\; `echo x`"
    direct = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    wrapped = traced_command(str(fake), ("-f", "-e", "trace=open"), "/dev/null", command)
    traced = subprocess.run(["sh", "-c", wrapped], capture_output=True, text=True, check=True)
    assert traced.stdout == direct.stdout
    assert "it's|" in direct.stdout


def test_the_report_text_and_json_say_what_to_do_for_each_kind_of_finding() -> None:
    from ggen.runner.audit import AuditReport, TaskAudit, Verdict
    from ggen.runner.audit_report import report_json, report_text
    from ggen.runner.audit_rules import Finding
    from ggen.runner.audit_trace import Access

    report = AuditReport(
        (
            TaskAudit(".:check", Verdict.NOT_CACHED),
            TaskAudit(
                "web:build",
                Verdict.UNDECLARED,
                (
                    Finding(
                        "packages/shared/dist/a.js",
                        Access.READ,
                        None,
                        "shared",
                        False,
                        "shared:build",
                    ),
                    Finding("packages/shared/x.txt", Access.WRITE, None, "shared"),
                    Finding("/home/u/out.txt", Access.WRITE, None, None, outside=True),
                ),
            ),
            TaskAudit("api:build", Verdict.FAILED, (), "exit code 2 running: make", "boom"),
            TaskAudit("api:test", Verdict.NOT_RUN),
        )
    )
    assert report.exit_code == 1
    assert report_text(report).splitlines() == [
        ".:check: not cached (cache = false), not judged",
        "web:build: 3 undeclared",
        "  read   packages/shared/dist/a.js  (an output of shared:build: add a dependency on it)",
        "  wrote  packages/shared/x.txt  (outside the workspace: no outputs pattern can name it)",
        "  wrote  /home/u/out.txt  (outside the project)",
        "api:build: FAILED: exit code 2 running: make; the audit stopped here",
        "  | boom",
        "api:test: not run (a task before it failed)",
        "audit: 3 task(s) traced, 1 with undeclared files (1 read, 2 written)",
    ]
    doc = report_json(report)
    assert [t["verdict"] for t in doc["tasks"]] == ["not-cached", "undeclared", "failed", "not-run"]
    assert doc["tasks"][1]["findings"][0]["made_by"] == "shared:build"
    assert doc["tasks"][1]["findings"][2]["outside_project"] is True
    assert (
        AuditReport(
            (TaskAudit("a:b", Verdict.CLEAN), TaskAudit(".:c", Verdict.NOT_CACHED))
        ).exit_code
        == 0
    )
