"""The remote cache end to end: two checkouts sharing one real nginx (issue: beyond one machine),
and a server that misbehaves."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import xxhash
from monorepo import ggen, ggen_command, last_summary, statuses, write_tree
from procs import descendants, survivors
from servers import MisbehavingCache, Misbehavior, NginxServer
from servers import nginx_server as nginx_server_fixture  # noqa: F401

from ggen.cache.remote import open_envelope, seal_manifest

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


# A remote cache that misbehaves: every run stays bounded in time, memory and disk, and builds.

DEADLINE_S = 2  # GGEN_REMOTE_CACHE_TIMEOUT in these runs
RUN_LIMIT_S = 25.0  # a run still going after this is stopped and fails its test
RSS_BOUND = 150 << 20
TMP_BOUND = 1 << 20
GRACE_S = 2.0

EMPTY_OUTPUT = "mkdir -p dist && : > dist/empty"  # one blob of 0 bytes, which the log is too
BIG_OUTPUT = "mkdir -p dist && head -c 200000 /dev/zero > dist/big.bin && echo built"


def faults_repo(tmp_path: Path, command: str) -> Path:
    return write_tree(
        tmp_path / "repo",
        {
            "make.toml": f"""
                [project]
                name = "remote-faults"

                [workspace.app]
                path = "app"

                [lifecycle.build]
                command = "{command}"
                inputs = ["src/**"]
                outputs = ["dist/**"]
            """,
            "app/src/in.txt": "v1\n",
        },
    )


def seeded_manifests(repo: Path, tmp_path: Path) -> dict[str, bytes]:
    """Build once with a cache of its own and return its manifests by key; the outputs and
    that cache are then removed, so the next run can only be served by the remote."""
    seed = tmp_path / "seed-cache"
    r = ggen("run", "build", cwd=repo, env={"GGEN_CACHE_DIR": str(seed)})
    assert r.returncode == 0, r.stdout + r.stderr
    manifests = {p.stem: p.read_bytes() for p in (seed / "manifests").rglob("*.json")}
    assert len(manifests) == 1
    shutil.rmtree(seed)
    shutil.rmtree(repo / "app" / "dist")
    return manifests


@dataclass(frozen=True)
class Measured:
    """How a run of ``ggen run build`` went, watched from outside."""

    returncode: int
    elapsed: float
    peak_rss: int
    tmp_peak: int
    stderr: str


def _peak_rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
    return int(kib) * 1024


def _bytes_under(path: Path) -> int:
    total = 0
    for p in path.rglob("*") if path.is_dir() else ():
        with contextlib.suppress(OSError):
            total += p.lstat().st_size
    return total


def start_ggen(repo: Path, url: str, cache: Path, out: Path, **env: str) -> subprocess.Popen[str]:
    full_env = {
        **os.environ,
        "GGEN_CACHE_DIR": str(cache),
        "GGEN_REMOTE_CACHE_TIMEOUT": str(DEADLINE_S),
        **env,
    }
    full_env.pop("GITHUB_ACTIONS", None)
    with open(out, "w") as sink:
        return subprocess.Popen(
            [*ggen_command(), "run", "build", "--remote-cache", url, "--grace", str(GRACE_S)],
            cwd=repo,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            text=True,
            start_new_session=True,
        )


def stop_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def run_measured(repo: Path, url: str, cache: Path, tmp_path: Path) -> Measured:
    """Run the build against ``url`` and watch its peak RSS and the cache's tmp/ while it runs;
    a run that outlives ``RUN_LIMIT_S`` is killed (and reported with returncode -9)."""
    err = tmp_path / "stderr.txt"
    begun = time.monotonic()
    proc = start_ggen(repo, url, cache, err)
    peak_rss = tmp_peak = 0
    try:
        while proc.poll() is None and time.monotonic() - begun < RUN_LIMIT_S:
            peak_rss = max(peak_rss, _peak_rss(proc.pid))
            tmp_peak = max(tmp_peak, _bytes_under(cache / "tmp"))
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            stop_group(proc)
    return Measured(proc.returncode, time.monotonic() - begun, peak_rss, tmp_peak, err.read_text())


@pytest.mark.parametrize(
    ("blobs", "command", "reason"),
    [
        (Misbehavior.ENDLESS, EMPTY_OUTPUT, "the body is longer than the 0 bytes declared"),
        (Misbehavior.DRIP, BIG_OUTPUT, f"not done within {DEADLINE_S}s"),
        (Misbehavior.STALL, BIG_OUTPUT, f"not done within {DEADLINE_S}s"),
    ],
)
def test_misbehaving_remote_is_a_bounded_warning_and_the_task_runs(
    tmp_path: Path, blobs: Misbehavior, command: str, reason: str
) -> None:
    repo = faults_repo(tmp_path, command)
    manifests = seeded_manifests(repo, tmp_path)
    cache = tmp_path / "cache"
    with MisbehavingCache(manifests, blobs) as server:
        got = run_measured(repo, server.url + "/ggen", cache, tmp_path)
        assert server.blob_requests >= 1  # the remote was really asked for the blob
    assert got.returncode == 0, got.stderr
    assert got.elapsed < 4 * DEADLINE_S + 5, got  # the deadline, plus starting and building
    assert got.peak_rss < RSS_BOUND, got
    assert got.tmp_peak < TMP_BOUND, got
    assert _bytes_under(cache / "tmp") == 0
    assert got.stderr.count("warning") == 1, got.stderr
    assert "remote cache" in got.stderr and reason in got.stderr, got.stderr
    assert statuses(last_summary(repo)) == {"app:build": "ok"}  # it ran, and was not cached
    assert (repo / "app" / "dist").is_dir()


def test_sigterm_during_a_dripping_download_exits_within_the_grace_period(
    tmp_path: Path,
) -> None:
    repo = faults_repo(tmp_path, BIG_OUTPUT)
    manifests = seeded_manifests(repo, tmp_path)
    err = tmp_path / "stderr.txt"
    with MisbehavingCache(manifests, Misbehavior.DRIP) as server:
        # a deadline far away: only the signal can end these downloads
        proc = start_ggen(
            repo, server.url + "/ggen", tmp_path / "cache", err, GGEN_REMOTE_CACHE_TIMEOUT="600"
        )
        try:
            server.wait_blob_requests(2)  # the output and the log, downloaded side by side
            family = [proc.pid, *descendants(proc.pid)]
            os.kill(proc.pid, signal.SIGTERM)
            sent = time.monotonic()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(GRACE_S + 10)
            elapsed = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                stop_group(proc)
    assert elapsed < GRACE_S + 1.0, err.read_text()
    assert proc.returncode == 130, err.read_text()
    assert survivors(family) == []
    assert "Traceback" not in err.read_text()


# Signing covers the local store too: a cache directory others can write to forges nothing.

SIGNED = {"GGEN_CACHE_SIGNING_KEY": "the-right-key"}
COPY_BUILD = "mkdir -p dist && cat src/in.txt > dist/out.txt && echo built"


def signed_entry(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """A repository built once with the signing key: (repo, its local manifest file, the
    manifest inside it as a dict); the outputs are then removed."""
    repo = faults_repo(tmp_path, COPY_BUILD)
    r = ggen("run", "build", cwd=repo, env=SIGNED)
    assert r.returncode == 0, r.stdout + r.stderr
    (path,) = (repo / ".ggen-test-cache" / "manifests").rglob("*.json")
    data = path.read_bytes()
    envelope = open_envelope(data)
    manifest = orjson.loads(envelope[1] if envelope is not None else data)
    shutil.rmtree(repo / "app" / "dist")
    return repo, path, manifest


def put_blob(repo: Path, data: bytes) -> str:
    digest = xxhash.xxh3_128(data).hexdigest()
    blob = repo / ".ggen-test-cache" / "blobs" / digest[:2] / digest
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    return digest


@pytest.mark.parametrize("forger", ["unsigned", "another key"])
def test_a_forged_local_manifest_is_refused_and_the_task_runs(tmp_path: Path, forger: str) -> None:
    repo, path, manifest = signed_entry(tmp_path)
    evil = put_blob(repo, b"owned\n")
    (output,) = manifest["outputs"]
    output.update(digest=evil, size=6)
    output.pop("sha256", None)
    forged = orjson.dumps(manifest)
    key = path.stem
    path.write_bytes(forged if forger == "unsigned" else seal_manifest(b"guess", key, forged))
    r = ggen("run", "build", cwd=repo, env=SIGNED)
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(last_summary(repo)) == {"app:build": "ok"}  # ran, not restored
    assert (repo / "app" / "dist" / "out.txt").read_text() == "v1\n"
    assert f"cache entry {key} refused" in r.stderr
    # the task's own save replaced the forgery: the next run is a hit, without a warning
    shutil.rmtree(repo / "app" / "dist")
    r = ggen("run", "build", cwd=repo, env=SIGNED)
    assert statuses(last_summary(repo)) == {"app:build": "cached"}
    assert "warning" not in r.stderr
    assert (repo / "app" / "dist" / "out.txt").read_text() == "v1\n"


def test_a_signed_manifest_whose_sha256_disagrees_with_the_blob_is_refused(
    tmp_path: Path,
) -> None:
    """A blob swapped for another with the same xxh3 digest cannot be made here; the SHA-256
    the signed manifest gives for it is made to disagree instead, which is what the restore
    would see."""
    repo, path, manifest = signed_entry(tmp_path)
    (output,) = manifest["outputs"]
    output["sha256"] = hashlib.sha256(b"v2\n").hexdigest()
    manifest.setdefault("log_size", len(b"built\n"))
    manifest.setdefault("log_sha256", hashlib.sha256(b"built\n").hexdigest())
    key = path.stem
    path.write_bytes(seal_manifest(b"the-right-key", key, orjson.dumps(manifest)))
    r = ggen("run", "build", cwd=repo, env=SIGNED)
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(last_summary(repo)) == {"app:build": "ok"}
    assert (repo / "app" / "dist" / "out.txt").read_text() == "v1\n"
    assert "SHA-256" in r.stderr, r.stderr
    assert not list((repo / "app").rglob(".ggen-restore-*"))


def test_remote_timeout_in_make_toml_is_checked(tmp_path: Path) -> None:
    repo = faults_repo(tmp_path, COPY_BUILD)
    toml = repo / "make.toml"
    base = toml.read_text()
    for bad, said in (('"soon"', "expected a number"), ("0", "above 0"), ("nan", "above 0")):
        toml.write_text(base + f"\n[cache]\nremote_timeout = {bad}\n")
        r = ggen("validate", cwd=repo)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "cache.remote_timeout" in r.stderr and said in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    toml.write_text(base + "\n[cache]\nremote_timeout = 30\n")
    assert ggen("validate", cwd=repo).returncode == 0


def test_explain_asks_the_remote_and_the_run_then_restores_from_it(
    tmp_path: Path, nginx_server: NginxServer
) -> None:
    first = checkout(tmp_path, "one")
    second = checkout(tmp_path, "two")
    url = nginx_server.url + "/ggen"
    run(first, url)
    before = len(nginx_server.requests())
    env = {"GGEN_REMOTE_CACHE": url}
    r = ggen("explain", "codegen", "-w", "core", cwd=second, env=env)
    assert r.returncode == 0, r.stderr
    assert "cached: would be restored from the remote cache, nothing runs" in r.stdout
    key = r.stdout.split("key ", 1)[1].split()[0]
    # explain only asked (HEAD), fetched nothing, and left no .ggen/ behind
    asked = nginx_server.requests()[before:]
    assert asked and {line[0] for line in asked} == {"HEAD"}, asked
    assert not (second / ".ggen").exists()
    assert not (tmp_path / "two-cache").exists()

    st, _ = run(second, url)
    assert st["core:codegen"] == "cached"
    core = next(t for t in last_summary(second)["tasks"] if t["id"] == "core:codegen")
    assert (core["key"], core["cache"]) == (key, "remote-hit")
