"""Sessions: tests, lint (ruff + mypy), bench, bench-peers."""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

TEST_DEPS = ["pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (needs nginx, chromium and node on the machine: see the README)."""
    session.install("-e", ".[dask]", *TEST_DEPS)
    env = {}
    if not shutil.which("tsc"):
        # the TypeScript layout tests need a real tsc: install it next to the session
        prefix = Path(session.cache_dir).resolve() / "node"
        tsc = prefix / "node_modules" / ".bin" / "tsc"
        if not tsc.exists():
            session.run("npm", "install", "--silent", "--prefix", str(prefix), "typescript@5",
                        external=True)
        env["GGEN_TEST_TSC"] = str(tsc)
    session.run("pytest", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) and mypy --strict on the package."""
    session.install("-e", ".", "ruff", "mypy")
    session.run("ruff", "check", "ggen", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "ggen")
    session.run("mypy", "ggen")


@nox.session(name="bench-peers")
def bench_peers(session: nox.Session) -> None:
    """Install the benchmark's peers: turbo (npm), go-task and doit (pip), GNU make and strace
    (apt-get, when missing and root), into $GGEN_BENCH_PEERS or $TMPDIR/ggen-bench-peers."""
    session.install("-e", ".")
    session.run("python", "-m", "bench", "install-peers", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark harness (peers installed when missing): prints the table, writes
    bench/results/<run>.json and .md, and bench/RESULTS.md; then the remote-cache restore
    against cold builds (a real nginx on loopback).

    ggen is installed as users install it, not editable: pip compiles its bytecode, which an
    editable checkout lacks wherever PYTHONDONTWRITEBYTECODE is set, and every run would then
    pay for compiling its modules."""
    session.install(".")
    session.run("python", "-m", "bench", "--install-peers", *session.posargs)
    session.run("python", "-m", "bench.remote")
