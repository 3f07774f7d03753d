"""The tools being compared: how to find each one, start a build, and wipe its state.

ggen is always present (the ``ggen`` executable on PATH, else ``python -m ggen`` from this
checkout). Peers are found in the peers folder written by ``python -m bench install-peers``
(see ``bench.peers``) and then on PATH: turbo (its native binary, not the npm launcher),
go-task, doit and GNU make.
"""

from __future__ import annotations

import enum
import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GGEN_CACHE = ".ggen/cache"
TURBO_ENV = (
    ("TURBO_TELEMETRY_DISABLED", "1"),
    ("DO_NOT_TRACK", "1"),
    ("TURBO_NO_UPDATE_NOTIFIER", "1"),
    ("TURBO_UI", "false"),
)


class ToolName(enum.Enum):
    """The tools the harness knows, in the order of the report's columns."""

    GGEN = "ggen"
    TURBO = "turbo"
    TASK = "go-task"
    DOIT = "doit"
    MAKE = "make"


@dataclass(frozen=True)
class Tool:
    """One runnable tool: its start command, version and extra environment."""

    name: ToolName
    exe: tuple[str, ...]
    version: str
    env: tuple[tuple[str, str], ...] = ()

    def build_argv(self, root: Path, jobs: int, *, force: bool = False) -> list[str]:
        """The command that builds every workspace of the tree at ``root`` with ``jobs`` jobs.

        ``force`` runs every task regardless of caches (for the parallel-speedup scenarios).
        """
        exe = list(self.exe)
        if self.name is ToolName.GGEN:
            argv = [*exe, "-C", str(root), "run", "build", "-j", str(jobs), "--json"]
            argv += ["--cache-dir", str(root / GGEN_CACHE)]
            return [*argv, "--no-cache"] if force else argv
        if self.name is ToolName.TURBO:
            argv = [*exe, "run", "build", f"--concurrency={jobs}", "--output-logs=errors-only"]
            return [*argv, "--force"] if force else argv
        if self.name is ToolName.TASK:
            argv = [*exe, "build", "--concurrency", str(jobs), "--silent"]
            return [*argv, "--force"] if force else argv
        if self.name is ToolName.DOIT:
            argv = [*exe, "run", "-n", str(jobs), "-P", "thread"] if jobs > 1 else [*exe, "run"]
            return [*argv, "--always-execute"] if force else argv
        argv = [*exe, "-j", str(jobs), "build"]
        return [*argv, "-B"] if force else argv

    def state_paths(self, root: Path) -> list[Path]:
        """What a cold start removes besides the outputs: the tool's cache and state."""
        if self.name is ToolName.GGEN:
            return [root / ".ggen"]
        if self.name is ToolName.TURBO:
            return [root / ".turbo", root / "node_modules" / ".cache" / "turbo"]
        if self.name is ToolName.TASK:
            return [root / ".task"]
        if self.name is ToolName.DOIT:
            return [Path(p) for p in glob.glob(str(root / ".doit.db*"))]
        return []


def _version_number(line: str) -> str:
    """The version number in a ``--version`` line ("GNU Make 4.3" -> "4.3"), else the line."""
    m = re.search(r"\d+(?:\.\d+)+\S*", line)
    return m.group(0) if m else line


def _first_line(argv: list[str], env: dict[str, str] | None = None) -> str:
    """The first non-empty output line of a version command ('' if it cannot run)."""
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=30, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if proc.returncode != 0:
        return ""
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return _version_number(lines[0]) if lines else ""


def find_ggen() -> Tool:
    """ggen: the executable of this Python environment or on PATH, else ``python -m ggen``.

    A version manager's shim on PATH (pyenv) is skipped for the script it would run, so that
    the shim's own start-up is not counted as ggen's.
    """
    beside = Path(sys.executable).parent / "ggen"
    exe = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("ggen")
    env: tuple[tuple[str, str], ...] = ()
    if exe is not None:
        argv: tuple[str, ...] = (exe,)
    else:
        argv = (sys.executable, "-m", "ggen")
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
        env = (("PYTHONPATH", path),)
    version = _first_line([*argv, "--version"], {**os.environ, **dict(env)})
    if not version:
        try:
            from ggen import __version__

            version = __version__
        except ImportError:
            version = "unknown"
    return Tool(ToolName.GGEN, argv, version, env)


def default_peers_dir() -> Path:
    """Where ``install-peers`` puts the peers unless told otherwise (``GGEN_BENCH_PEERS``)."""
    env = os.environ.get("GGEN_BENCH_PEERS")
    if env:
        return Path(env)
    import tempfile

    return Path(tempfile.gettempdir()) / "ggen-bench-peers"


def _turbo_native(launcher: Path) -> Path | None:
    """The native turbo binary next to an npm-installed launcher, if there is one."""
    real = launcher.resolve()
    for parent in real.parents:
        if parent.name == "node_modules":
            for cand in sorted(parent.glob("@turbo/*/bin/turbo")) + sorted(
                parent.glob("turbo-*/bin/turbo")
            ):
                if cand.is_file() and os.access(cand, os.X_OK):
                    return cand
    return None


def _candidates(peers_dir: Path | None, name: str, *inside: str) -> list[Path]:
    out = [peers_dir / rel for rel in inside] if peers_dir is not None else []
    on_path = shutil.which(name)
    if on_path is not None:
        out.append(Path(on_path))
    return out


def find_turbo(peers_dir: Path | None) -> Tool | None:
    """turbo's native binary (the npm launcher costs a node start on every run)."""
    native = "node/node_modules/@turbo/linux-64/bin/turbo"
    for cand in _candidates(peers_dir, "turbo", native, "node/node_modules/.bin/turbo"):
        if not cand.is_file():
            continue
        exe = cand if cand.name == "turbo" and "@turbo" in cand.parts else _turbo_native(cand)
        exe = exe or cand
        version = _first_line([str(exe), "--version"])
        if version:
            return Tool(ToolName.TURBO, (str(exe),), version, TURBO_ENV)
    return None


def find_task(peers_dir: Path | None) -> Tool | None:
    """go-task (not taskwarrior, which is also called ``task``)."""
    for cand in _candidates(peers_dir, "task", "venv/bin/task"):
        if not cand.is_file():
            continue
        if "Taskfile" not in _first_line_help(cand):
            continue
        version = _first_line([str(cand), "--version"])
        if version:
            return Tool(ToolName.TASK, (str(cand),), version)
    return None


def _first_line_help(exe: Path) -> str:
    try:
        proc = subprocess.run(
            [str(exe), "--help"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout + proc.stderr


def find_doit(peers_dir: Path | None) -> Tool | None:
    """doit, as installed in the peers' virtual environment or on PATH."""
    for cand in _candidates(peers_dir, "doit", "venv/bin/doit"):
        if cand.is_file():
            version = _first_line([str(cand), "--version"])
            if version:
                return Tool(ToolName.DOIT, (str(cand),), version)
    return None


def find_make() -> Tool | None:
    """GNU make on PATH."""
    exe = shutil.which("make")
    if exe is None:
        return None
    version = _first_line([exe, "--version"])
    banner = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return Tool(ToolName.MAKE, (exe,), version) if "GNU Make" in banner.stdout else None


def find_tools(peers_dir: Path | None, wanted: tuple[ToolName, ...]) -> list[Tool]:
    """ggen and every wanted peer that can be found, in report order."""
    found: list[Tool] = []
    for name in ToolName:
        if name not in wanted:
            continue
        tool: Tool | None
        if name is ToolName.GGEN:
            tool = find_ggen()
        elif name is ToolName.TURBO:
            tool = find_turbo(peers_dir)
        elif name is ToolName.TASK:
            tool = find_task(peers_dir)
        elif name is ToolName.DOIT:
            tool = find_doit(peers_dir)
        else:
            tool = find_make()
        if tool is not None:
            found.append(tool)
    return found
