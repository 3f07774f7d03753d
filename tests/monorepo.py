"""Helpers for end-to-end tests: temporary monorepos and the real ``ggen`` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson


def ggen_command() -> list[str]:
    """The installed ``ggen`` script next to this Python, else ``python -m ggen``."""
    script = Path(sys.executable).with_name("ggen")
    if script.exists():
        return [str(script)]
    found = shutil.which("ggen")
    return [found] if found else [sys.executable, "-m", "ggen"]


def ggen(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``ggen ARGS`` in ``cwd``; output captured as text."""
    full_env = {**os.environ, "GGEN_CACHE_DIR": str(cwd / ".ggen-test-cache")}
    full_env.pop("GITHUB_ACTIONS", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [*ggen_command(), *args],
        cwd=cwd,
        env=full_env,
        text=True,
        capture_output=True,
        timeout=timeout,
        start_new_session=True,
    )


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Create ``files`` (relative path -> text, dedented) under ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def last_summary(root: Path) -> dict[str, Any]:
    runs = sorted((root / ".ggen" / "runs").glob("*.json"))
    assert runs, "no run summary written"
    data = orjson.loads(runs[-1].read_bytes())
    assert isinstance(data, dict)
    return data


def statuses(summary: Mapping[str, Any]) -> dict[str, str]:
    return {t["id"]: t["status"] for t in summary["tasks"]}


SMALL = {
    "make.toml": """
        [project]
        name = "small"

        [workspace.core]
        path = "libs/core"

        [workspace.utils]
        path = "libs/utils"
        depends_on = ["core"]

        [workspace.api]
        path = "services/api"
        depends_on = ["core", "utils"]

        [workspace."@acme/ui"]
        path = "packages/ui"
        depends_on = ["core"]

        [lifecycle.build]
        commands = ["mkdir -p dist", "cat src/*.txt > dist/out.txt", "echo built $GGEN_WORKSPACE"]
        depends_on = ["^build"]
        inputs = ["src/**"]
        outputs = ["dist/**"]
        parallel = true

        [lifecycle.test]
        command = "test -s dist/out.txt && echo tested $GGEN_WORKSPACE"
        depends_on = ["build"]
        outputs = []
        env_inputs = ["FAIL_IN"]
    """,
    "libs/core/src/a.txt": "core a\n",
    "libs/utils/src/a.txt": "utils a\n",
    "services/api/src/a.txt": "api a\n",
    "packages/ui/src/a.txt": "ui a\n",
}
