"""End-to-end: make.toml values and command-line options that ggen must refuse or survive
(exit 2 naming file, key and fix; never a traceback or an internal error)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from monorepo import ggen, last_summary, statuses, write_tree


def _no_crash(r: object) -> None:
    text = getattr(r, "stdout", "") + getattr(r, "stderr", "")
    assert "Traceback" not in text and "internal error" not in text, text


def test_a_chain_of_a_thousand_phases_runs_and_a_long_cycle_is_exit_2(tmp_path: Path) -> None:
    n = 1000
    body = ['[project]\nname = "chain"\n']
    body += [
        f'[lifecycle.p{i}]\ncommand = "true"\n'
        + (f'depends_on = ["p{i + 1}"]\n' if i + 1 < n else "")
        for i in range(n)
    ]
    root = write_tree(tmp_path / "chain", {"make.toml": "\n".join(body)})
    r = ggen("run", "p0", "--executor", "inline", "--output", "quiet", cwd=root)
    _no_crash(r)
    assert r.returncode == 0, r.stderr
    assert f"{n} tasks, {n} ran" in r.stdout
    (root / "make.toml").write_text("\n".join(body) + '\n[hooks]\nafter_p0 = ["p999"]\n')
    r = ggen("run", "p0", cwd=root)
    _no_crash(r)
    assert r.returncode == 2
    assert "make.toml: cycle in the task graph: " in r.stderr


def test_a_300_character_workspace_and_phase_name_run_and_hit(tmp_path: Path) -> None:
    ws, phase = "w" * 300, "p" * 300
    root = write_tree(
        tmp_path / "long",
        {
            "make.toml": f"""
                [project]
                name = "long"

                [workspace.{ws}]
                path = "a"

                [lifecycle.{phase}]
                command = "mkdir -p out && echo made > out/f && echo ran $GGEN_PHASE"
                outputs = ["out/**"]
            """,
            "a/src.txt": "x\n",
        },
    )
    r = ggen("run", phase, cwd=root)
    _no_crash(r)
    assert r.returncode == 0, r.stderr
    assert statuses(last_summary(root)) == {f"{ws}:{phase}": "ok"}
    assert f"ran {phase}" in r.stdout
    (root / "a/out/f").unlink()
    r = ggen("run", phase, cwd=root)
    assert r.returncode == 0, r.stderr
    assert statuses(last_summary(root)) == {f"{ws}:{phase}": "cached"}
    assert (root / "a/out/f").read_text() == "made\n"
    assert f"ran {phase}" in r.stdout  # the log replayed from the cache
    for command in (("status",), ("explain", phase, "-w", ws), ("report", "-o", "r.html")):
        r = ggen(*command, cwd=root)
        _no_crash(r)
        assert r.returncode == 0, (command, r.stderr)


ONE_PHASE = {"make.toml": '[project]\nname = "one"\n\n[lifecycle.build]\ncommand = "echo ran"\n'}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--timeout", "nan"), "'--timeout': must be a positive number of seconds up to 604800"),
        (("--timeout", "inf"), "'--timeout': must be a positive number of seconds up to 604800"),
        (("--timeout", "1e10"), "'--timeout': must be a positive number of seconds up to 604800"),
        (("--grace", "nan"), "'--grace': must be between 0 and 3600 seconds"),
        (("--grace", "1e300"), "'--grace': must be between 0 and 3600 seconds"),
        (("-j", "100000000"), "100000000 is not in the range 1<=x<=1024"),
    ],
)
def test_command_line_numbers_out_of_bounds_are_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    root = write_tree(tmp_path / "one", ONE_PHASE)
    r = ggen("run", "build", *args, cwd=root, timeout=60)
    _no_crash(r)
    assert r.returncode == 2
    assert message in r.stderr
    assert not (root / ".ggen" / "runs").exists()  # refused before anything ran


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("timeout = 1e308", "lifecycle.build.timeout: must be a positive number of seconds"),
        ("retries = 100000000000000000", "lifecycle.build.retries: must be between 0 and 100"),
        ('commands = ["echo \\u0000"]', "lifecycle.build.commands[0]: contains a NUL character"),
    ],
)
def test_make_toml_values_out_of_bounds_are_exit_2_at_load(
    tmp_path: Path, line: str, key: str
) -> None:
    text = '[project]\nname = "one"\n\n[lifecycle.build]\n' + line + "\n"
    if not line.startswith("commands"):
        text += 'command = "false"\n'
    root = write_tree(tmp_path / "one", {"make.toml": text})
    r = ggen("run", "build", cwd=root, timeout=60)
    _no_crash(r)
    assert r.returncode == 2
    assert f"make.toml:5: {key}" in r.stderr


# -- files ggen cannot write: "cannot write PATH: reason", exit 3 (infrastructure) ----------

WRITES = {
    "make.toml": """
        [project]
        name = "w"

        [workspace.a]
        path = "a"

        [lifecycle.build]
        command = "echo built"
    """,
    "a/src.txt": "x\n",
}


@contextlib.contextmanager
def _immutable(path: Path) -> Iterator[None]:
    """``chattr +i``: not even root may create or remove files in the directory."""
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.fail("chattr +i failed: these tests need root on a filesystem with immutable files")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextlib.contextmanager
def _tiny_filesystem(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of ``size`` mounted at ``path``: a disk that fills up."""
    path.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.fail("mount -t tmpfs failed: these tests need root allowed to mount")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("where", [".ggen", ".ggen/runs", ".ggen/logs", "a/.ggen"])
def test_a_read_only_ggen_directory_is_named_with_the_reason(tmp_path: Path, where: str) -> None:
    root = write_tree(tmp_path / "repo", WRITES)
    assert ggen("run", "build", cwd=root).returncode == 0
    with _immutable(root / where):
        r = ggen("run", "build", "--force", cwd=root)
    _no_crash(r)
    assert r.returncode == 3
    assert f"ggen: error: cannot write {root / where}/" in r.stderr
    assert r.stderr.rstrip().endswith(": Operation not permitted")


def test_a_file_where_a_directory_belongs_is_named(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", WRITES)
    (root / ".ggen").mkdir()
    (root / ".ggen/runs").write_text("not a directory")
    r = ggen("run", "build", cwd=root)
    _no_crash(r)
    assert r.returncode == 3
    assert f"ggen: error: cannot write {root / '.ggen/runs'}/" in r.stderr


def test_a_full_disk_under_ggen_is_named_with_the_reason(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", WRITES)
    ggen_dir = root / ".ggen"
    with _tiny_filesystem(ggen_dir, "64k"):
        (ggen_dir / "filler").write_bytes(b"\0" * 60_000)
        r = ggen("run", "build", cwd=root)
    _no_crash(r)
    assert r.returncode == 3
    assert f"ggen: error: cannot write {ggen_dir}/runs/" in r.stderr
    assert r.stderr.rstrip().endswith(": No space left on device")
    # the task that could not record itself failed, naming the file too
    assert f"[failed] cannot write {ggen_dir}/" in r.stdout
