"""The remote cache end to end: two checkouts sharing one real nginx (issue: beyond one machine)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from monorepo import ggen, last_summary, statuses
from servers import NginxServer
from servers import nginx_server as nginx_server_fixture  # noqa: F401

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "monorepo"
PHASES = ("build", "test")


def checkout(tmp_path: Path, name: str) -> Path:
    repo = tmp_path / name / "acme"
    shutil.copytree(EXAMPLE, repo)
    # each checkout has its own local cache; only the remote is shared
    toml = repo / "make.toml"
    toml.write_text(
        toml.read_text().replace('dir = ".ggen/cache"', f'dir = "{tmp_path / name}-cache"')
    )
    return repo


def outputs(repo: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if path.is_file() and any(f"/{d}/" in f"/{rel}" for d in ("dist", "build", "gen")):
            found[rel] = path.read_bytes()
    return found


def run(
    repo: Path, url: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[dict[str, str], str]:
    r = ggen("run", *PHASES, "--parallel", "--remote-cache", url, *extra, cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return statuses(last_summary(repo)), r.stderr


def test_second_checkout_restores_everything_from_the_remote(
    tmp_path: Path, nginx_server: NginxServer
) -> None:
    first = checkout(tmp_path, "one")
    second = checkout(tmp_path, "two")
    url = nginx_server.url + "/ggen"
    st, _ = run(first, url)
    assert set(st.values()) == {"ok"}
    st, err = run(second, url)
    check = st.pop(".:check")  # cache = false: always runs
    assert check == "ok"
    assert set(st.values()) == {"cached"}, st
    summary = last_summary(second)
    caches = {t["id"]: t["cache"] for t in summary["tasks"] if t["id"] != ".:check"}
    assert set(caches.values()) == {"remote-hit"}
    assert outputs(second) == outputs(first)
    assert "warning" not in err
    # a third run of the second checkout is served by its own local store
    st, _ = run(second, url)
    st.pop(".:check")
    assert {t["cache"] for t in last_summary(second)["tasks"] if t["id"] != ".:check"} == {"hit"}


def test_blob_corrupted_on_the_server_is_detected_and_the_task_runs(
    tmp_path: Path, nginx_server: NginxServer
) -> None:
    first = checkout(tmp_path, "one")
    second = checkout(tmp_path, "two")
    url = nginx_server.url + "/ggen"
    run(first, url)
    zip_path = next((first / "libs/core/dist").glob("*.zip"))
    blob_digest = None
    for rel, data in nginx_server.files().items():
        if "/cas/" in rel and data == zip_path.read_bytes():
            blob_digest = rel
    assert blob_digest is not None
    (nginx_server.root / blob_digest).write_bytes(b"tampered")
    st, err = run(second, url)
    assert "warning" in err
    assert st["core:build"] == "ok"  # ran, since the remote entry was refused
    assert outputs(second) == outputs(first)


@pytest.mark.parametrize("writer_key", [None, "another-key"])
def test_signing_refuses_unsigned_or_wrongly_signed_manifests(
    tmp_path: Path, nginx_server: NginxServer, writer_key: str | None
) -> None:
    first = checkout(tmp_path, "one")
    second = checkout(tmp_path, "two")
    url = nginx_server.url + "/ggen"
    run(first, url, env={"GGEN_CACHE_SIGNING_KEY": writer_key} if writer_key else None)
    st, err = run(second, url, env={"GGEN_CACHE_SIGNING_KEY": "the-right-key"})
    st.pop(".:check")
    assert set(st.values()) == {"ok"}
    assert "sign" in err
    # the reader's own signed entries are accepted by a third checkout with the same key
    third = checkout(tmp_path, "three")
    st, _ = run(third, url, env={"GGEN_CACHE_SIGNING_KEY": "the-right-key"})
    st.pop(".:check")
    assert set(st.values()) == {"cached"}


def test_read_only_writes_nothing(tmp_path: Path, nginx_server: NginxServer) -> None:
    repo = checkout(tmp_path, "one")
    run(repo, nginx_server.url + "/ggen", "--remote-read-only")
    assert not [p for p in nginx_server.files() if "/ac/" in p or "/cas/" in p]


def test_nginx_stopped_mid_run_gives_one_warning(tmp_path: Path, nginx_server: NginxServer) -> None:
    repo = checkout(tmp_path, "one")
    toml = repo / "make.toml"
    # the first build stops the server: later uploads and lookups find it gone
    toml.write_text(
        toml.read_text()
        + f"""
[lifecycle.stop-server]
command = "kill -TERM $(cat {nginx_server.pid_file}) || true"
cache = false
workspaces = ["."]
"""
    )
    toml.write_text(
        toml.read_text().replace('before_all = ["check"]', 'before_all = ["check", "stop-server"]')
    )
    r = ggen("run", *PHASES, "--parallel", "--remote-cache", nginx_server.url + "/ggen", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.count("warning") == 1, r.stderr
    assert set(statuses(last_summary(repo)).values()) == {"ok"}
