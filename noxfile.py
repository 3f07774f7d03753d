"""Sessions: tests, lint (ruff + mypy), bench, bench-peers."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

TEST_DEPS = ["pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (needs nginx and chromium on the machine: see .ci/run)."""
    session.install("-e", ".[dask]", *TEST_DEPS)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) and mypy --strict on the package."""
    session.install("-e", ".", "ruff", "mypy")
    session.run("ruff", "check", "ggen", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "ggen")
    session.run("mypy", "ggen")
