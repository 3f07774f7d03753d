"""Tests of ggen.cache.remote against a real nginx (WebDAV PUT) and scripted fault servers."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import os
import signal
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import Handler, MisbehavingCache, Misbehavior, NginxServer, ScriptedServer
from servers import nginx_server as nginx_server_fixture  # noqa: F401

from ggen.cache.cache import Cache
from ggen.cache.remote import (
    CHUNK_SIZE,
    TRANSFER_DEADLINE_S,
    RemoteCache,
    deadline_from_env,
    manifest_signature,
    open_envelope,
    seal_manifest,
)
from ggen.cache.store import Manifest, Store
from ggen.errors import UsageError

KEY = "0123456789abcdef0123456789abcdef"
KEY2 = "fedcba9876543210fedcba9876543210"
MANIFEST = b'{"version":1,"outputs":[],"log_digest":"x"}'
SIGNING_KEY = b"correct horse battery staple"

EXTRA_LOCATIONS = """
        location /small/ {{
            client_max_body_size 1k;
            dav_methods PUT;
            create_full_put_path on;
        }}
        location /broken/ {{ return 503; }}
        location /auth/ {{
            auth_basic "cache";
            auth_basic_user_file {htpasswd};
            dav_methods PUT;
            create_full_put_path on;
        }}
        location /bearer/ {{
            if ($http_authorization != "Bearer s3cret") {{ return 401; }}
            dav_methods PUT;
            create_full_put_path on;
        }}
"""


def digest_of(data: bytes) -> str:
    return xxhash.xxh3_128(data).hexdigest()


class Warnings(list[str]):
    """Collects warnings; callable so it can be passed as ``warn``."""

    def __call__(self, message: str) -> None:
        self.append(message)


@pytest.fixture
def warned() -> Warnings:
    return Warnings()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxServer]:
    """nginx with extra locations: /small/ (1k body limit), /broken/ (503), /auth/, /bearer/."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("ci:{PLAIN}p@ss/w%rd\n")
    server = NginxServer(tmp_path, locations=EXTRA_LOCATIONS.format(htpasswd=htpasswd))
    with server:
        yield server


def write_blob(tmp_path: Path, data: bytes) -> tuple[str, Path]:
    digest = digest_of(data)
    src = tmp_path / "src" / digest
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    return digest, src


def server_requests(server: NginxServer) -> list[tuple[str, str, str]]:
    return [(r[0], r[1], r[2]) for r in server.requests()]


# Manifests


def test_manifest_roundtrip_and_miss(nginx_server: NginxServer, warned: Warnings) -> None:
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert remote.get_manifest(KEY) is None
        assert remote.put_manifest(KEY, MANIFEST) is True
        assert remote.get_manifest(KEY) == MANIFEST
    assert nginx_server.files() == {f"ac/{KEY}": MANIFEST}
    assert warned == []
    assert not remote.disabled


def test_requests_reuse_one_keep_alive_connection(nginx_server: NginxServer) -> None:
    with RemoteCache(nginx_server.url) as remote:
        remote.put_manifest(KEY, MANIFEST)
        remote.get_manifest(KEY)
        remote.get_manifest(KEY2)
        remote.has_blob(KEY)
    log = nginx_server.requests()
    assert [r[:3] for r in log] == [
        ["PUT", f"/ac/{KEY}", "201"],
        ["GET", f"/ac/{KEY}", "200"],
        ["GET", f"/ac/{KEY2}", "404"],
        ["HEAD", f"/cas/{KEY}", "404"],
    ]
    assert {r[3] for r in log} == {log[0][3]}  # one connection
    assert [r[4] for r in log] == ["1", "2", "3", "4"]


def test_base_url_path_prefix_is_kept(nginx_server: NginxServer) -> None:
    with RemoteCache(nginx_server.url + "/team/cache/") as remote:
        assert remote.put_manifest(KEY, MANIFEST)
        assert remote.get_manifest(KEY) == MANIFEST
    assert nginx_server.files() == {f"team/cache/ac/{KEY}": MANIFEST}


# Blobs


def test_large_blob_is_streamed_both_ways(
    nginx_server: NginxServer, tmp_path: Path, warned: Warnings
) -> None:
    data = os.urandom(20 << 20)
    digest, src = write_blob(tmp_path, data)
    dest = tmp_path / "out" / "sub" / "blob"
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert remote.has_blob(digest) is False
        tracemalloc.start()
        try:
            assert remote.upload_blob(digest, src) is True
            _, upload_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            assert remote.download_blob(digest, dest) is True
            _, download_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert remote.has_blob(digest) is True
    assert (nginx_server.root / "cas" / digest).read_bytes() == data
    assert dest.read_bytes() == data
    assert upload_peak < 4 << 20, upload_peak
    assert download_peak < 4 << 20, download_peak
    assert os.listdir(dest.parent) == ["blob"]
    assert warned == []


def test_upload_skips_a_blob_the_server_has(nginx_server: NginxServer, tmp_path: Path) -> None:
    digest, src = write_blob(tmp_path, b"hello")
    with RemoteCache(nginx_server.url) as remote:
        assert remote.upload_blob(digest, src)
        assert remote.upload_blob(digest, src)
    assert server_requests(nginx_server) == [
        ("HEAD", f"/cas/{digest}", "404"),
        ("PUT", f"/cas/{digest}", "201"),
        ("HEAD", f"/cas/{digest}", "200"),
    ]


def test_missing_blob_is_a_quiet_miss(
    nginx_server: NginxServer, tmp_path: Path, warned: Warnings
) -> None:
    dest = tmp_path / "out" / "blob"
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert remote.has_blob(KEY) is False
        assert remote.download_blob(KEY, dest) is False
        assert not remote.disabled
    assert not dest.exists()
    assert warned == []


def test_corrupt_local_blob_is_not_uploaded(
    nginx_server: NginxServer, tmp_path: Path, warned: Warnings
) -> None:
    digest, src = write_blob(tmp_path, b"original")
    src.write_bytes(b"tampered")
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert remote.upload_blob(digest, src) is False
        assert not remote.disabled
    assert nginx_server.files() == {}
    assert len(warned) == 1
    assert "not uploading" in warned[0]
    assert digest_of(b"tampered") in warned[0]


def test_blob_corrupted_on_the_server_is_detected(
    nginx_server: NginxServer, tmp_path: Path, warned: Warnings
) -> None:
    digest, src = write_blob(tmp_path, b"good content" * 1000)
    dest = tmp_path / "out" / "blob"
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert remote.upload_blob(digest, src)
        (nginx_server.root / "cas" / digest).write_bytes(b"evil content" * 1000)
        assert remote.download_blob(digest, dest) is False
        assert remote.disabled
    assert not dest.exists()
    assert os.listdir(dest.parent) == []
    assert len(warned) == 1
    assert digest_of(b"evil content" * 1000) in warned[0]
    assert "continuing without the remote cache" in warned[0]


def test_many_transfers_roundtrip(nginx_server: NginxServer, tmp_path: Path) -> None:
    blobs = [write_blob(tmp_path, f"blob {i}".encode() * (i + 1)) for i in range(12)]
    with RemoteCache(nginx_server.url, max_parallel=3) as remote:
        assert remote.upload_many(blobs + blobs[:2]) is True
        dests = [(d, tmp_path / "out" / d) for d, _ in blobs]
        assert remote.download_many(dests) is True
        assert remote.download_many([]) is True
    for (_, src), (_, dest) in zip(blobs, dests, strict=True):
        assert dest.read_bytes() == src.read_bytes()
    puts = [r for r in server_requests(nginx_server) if r[0] == "PUT"]
    assert len(puts) == 12  # duplicates were uploaded once


def test_parallel_transfers_are_bounded(tmp_path: Path) -> None:
    bound = 4
    blobs = {digest_of(f"{i}".encode()): f"{i}".encode() for i in range(2 * bound)}
    barrier = threading.Barrier(bound, timeout=5)
    lock = threading.Lock()
    in_flight = [0, 0]  # now, highest

    def serve(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            barrier.wait()  # trips only when `bound` requests are served at once
        finally:
            with lock:
                in_flight[0] -= 1
        body = blobs[req.path.rsplit("/", 1)[1]]
        req.send_response(200)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    items = [(d, tmp_path / d) for d in blobs]
    with ScriptedServer(serve) as server, RemoteCache(server.url, max_parallel=bound) as remote:
        assert remote.download_many(items) is True
    assert in_flight[1] == bound
    assert all((tmp_path / d).read_bytes() == body for d, body in blobs.items())


def test_empty_blob_roundtrip(nginx_server: NginxServer, tmp_path: Path) -> None:
    digest, src = write_blob(tmp_path, b"")
    dest = tmp_path / "out" / "empty"
    with RemoteCache(nginx_server.url) as remote:
        assert remote.upload_blob(digest, src)
        assert remote.download_blob(digest, dest)
    assert dest.read_bytes() == b""
    assert nginx_server.files() == {f"cas/{digest}": b""}


def test_interrupted_transfers_stop_without_leftovers(tmp_path: Path, warned: Warnings) -> None:
    bound = 2
    streaming = threading.Semaphore(0)

    def stall_mid_body(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        req.send_response(200)
        req.send_header("Content-Length", str(1 << 20))
        req.end_headers()
        req.wfile.write(b"x" * (64 << 10))
        req.wfile.flush()
        streaming.release()
        release.wait(30)
        req.close_connection = True

    def interrupt() -> None:
        if all(streaming.acquire(timeout=10) for _ in range(bound)):
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "out"
    items = [(digest_of(bytes([i])), out / str(i)) for i in range(6)]
    with ScriptedServer(stall_mid_body) as server:
        remote = RemoteCache(server.url, max_parallel=bound, timeout=5, warn=warned)
        threading.Thread(target=interrupt).start()
        begun = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            remote.download_many(items)
        assert time.monotonic() - begun < 5
        assert remote.disabled
    # The server let go of the stalled transfers; they end and clean up after themselves.
    deadline = time.monotonic() + 10
    while any(t.name.startswith("ggen-remote") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "transfer threads did not end"
        time.sleep(0.01)
    remote.close()
    assert len(server.requests) == bound  # the queued transfers never started
    assert os.listdir(out) == []
    assert warned == []


# Bounds: sizes, deadlines, interrupts


def _body_server(body: bytes, *, announce: bool) -> Handler:
    """A handler answering every GET with ``body``, with or without a Content-Length."""

    def serve(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        req.send_response(200)
        if announce:
            req.send_header("Content-Length", str(len(body)))
        else:
            req.send_header("Connection", "close")
        req.end_headers()
        req.wfile.write(body)
        req.close_connection = True

    return serve


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    declared=st.integers(min_value=0, max_value=3 * CHUNK_SIZE),
    delta=st.integers(min_value=-3, max_value=3),
    announce=st.booleans(),
)
def test_a_blob_is_accepted_only_at_its_declared_size(
    tmp_path: Path, declared: int, delta: int, announce: bool
) -> None:
    actual = max(0, declared + delta)
    body = os.urandom(actual)
    warned = Warnings()
    dest = tmp_path / f"{declared}-{delta}-{announce}" / "blob"
    with (
        ScriptedServer(_body_server(body, announce=announce)) as server,
        RemoteCache(server.url, warn=warned) as remote,
    ):
        ok = remote.download_blob(digest_of(body), dest, size=declared)
    assert ok is (actual == declared)
    assert dest.exists() is ok
    assert os.listdir(dest.parent) == (["blob"] if ok else [])
    assert len(warned) == (0 if ok else 1)


def test_an_endless_blob_declared_empty_is_cut_at_one_byte(tmp_path: Path) -> None:
    warned = Warnings()
    with (
        MisbehavingCache({}, Misbehavior.ENDLESS) as server,
        RemoteCache(server.url, warn=warned) as remote,
    ):
        begun = time.monotonic()
        assert remote.download_blob(digest_of(b""), tmp_path / "out" / "blob", size=0) is False
        assert time.monotonic() - begun < 2
    assert os.listdir(tmp_path / "out") == []
    assert len(warned) == 1
    assert "the body is longer than the 0 bytes declared" in warned[0]


def test_a_blob_of_undeclared_size_is_cut_at_its_bound(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, warned: Warnings
) -> None:
    import ggen.cache.remote as remote_module

    monkeypatch.setattr(remote_module, "UNDECLARED_BLOB_BYTES", 5000)
    with (
        MisbehavingCache({}, Misbehavior.ENDLESS) as server,
        RemoteCache(server.url, warn=warned) as remote,
    ):
        assert remote.download_blob(KEY, tmp_path / "out" / "blob") is False
    assert os.listdir(tmp_path / "out") == []
    assert len(warned) == 1
    assert "longer than the 5000-byte bound of a blob of undeclared size" in warned[0]


def test_an_endless_manifest_is_cut_at_its_bound(
    monkeypatch: pytest.MonkeyPatch, warned: Warnings
) -> None:
    import ggen.cache.remote as remote_module

    monkeypatch.setattr(remote_module, "MAX_MANIFEST_BYTES", 1000)

    def endless(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        req.send_response(200)
        req.send_header("Connection", "close")
        req.end_headers()
        with contextlib.suppress(OSError):
            while not release.is_set():
                req.wfile.write(b"{" * 4096)
        req.close_connection = True

    with ScriptedServer(endless) as server, RemoteCache(server.url, warn=warned) as remote:
        begun = time.monotonic()
        assert remote.get_manifest(KEY) is None
        assert time.monotonic() - begun < 2
    assert len(warned) == 1
    assert "the body is longer than the 1000-byte bound of a manifest" in warned[0]


@pytest.mark.parametrize("blobs", [Misbehavior.DRIP, Misbehavior.STALL])
def test_every_transfer_has_a_deadline(tmp_path: Path, blobs: Misbehavior) -> None:
    warned = Warnings()
    with (
        MisbehavingCache({}, blobs) as server,
        RemoteCache(server.url, warn=warned, deadline=1.0) as remote,
    ):
        begun = time.monotonic()
        assert remote.download_blob(KEY, tmp_path / "out" / "blob", size=1 << 20) is False
        elapsed = time.monotonic() - begun
    assert 1.0 <= elapsed < 3.0
    assert os.listdir(tmp_path / "out") == []
    assert len(warned) == 1
    assert "not done within 1s" in warned[0]
    assert "GGEN_REMOTE_CACHE_TIMEOUT" in warned[0]


def test_a_manifest_that_drips_meets_the_deadline(warned: Warnings) -> None:
    def drip(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        req.send_response(200)
        req.send_header("Content-Length", "100")
        req.end_headers()
        with contextlib.suppress(OSError):
            while not release.wait(0.2):
                req.wfile.write(b" ")
                req.wfile.flush()
        req.close_connection = True

    with ScriptedServer(drip) as server, RemoteCache(server.url, deadline=1, warn=warned) as remote:
        begun = time.monotonic()
        assert remote.get_manifest(KEY) is None
        assert time.monotonic() - begun < 3
    assert len(warned) == 1
    assert "not done within 1s" in warned[0]


def test_an_upload_the_server_never_reads_meets_the_deadline(
    tmp_path: Path, warned: Warnings
) -> None:
    def never_read(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        if req.command == "HEAD":  # "not here yet", then the PUT is never read
            req.send_response(404)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        release.wait(30)
        req.close_connection = True

    digest, src = write_blob(tmp_path, os.urandom(16 << 20))  # more than socket buffers hold
    with ScriptedServer(never_read) as server:
        remote = RemoteCache(server.url, deadline=1, warn=warned)
        begun = time.monotonic()
        assert remote.upload_blob(digest, src) is False
        elapsed = time.monotonic() - begun
        remote.close()
        assert [m for m, _ in server.requests] == ["HEAD", "PUT"]
    assert elapsed < 3.0
    assert len(warned) == 1
    assert "not done within 1s" in warned[0]


def test_an_interrupt_wakes_transfers_blocked_before_any_answer(
    tmp_path: Path, warned: Warnings
) -> None:
    arrived = threading.Semaphore(0)

    def silent(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        arrived.release()
        release.wait(60)
        req.close_connection = True

    def interrupt() -> None:
        if all(arrived.acquire(timeout=10) for _ in range(2)):
            os.kill(os.getpid(), signal.SIGINT)

    items = [(digest_of(bytes([i])), tmp_path / "out" / str(i)) for i in range(2)]
    with ScriptedServer(silent) as server:
        remote = RemoteCache(server.url, max_parallel=2, warn=warned)  # 30 s read timeout
        threading.Thread(target=interrupt).start()
        with pytest.raises(KeyboardInterrupt):
            remote.download_many(items)
        begun = time.monotonic()
        # the server still holds both requests: only the client can end them
        while any(t.name.startswith("ggen-remote") for t in threading.enumerate()):
            assert time.monotonic() - begun < 2, "transfer threads did not end"
            time.sleep(0.01)
        remote.close()
    assert warned == []
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e10", "soon"])
def test_an_invalid_deadline_in_the_environment_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="GGEN_REMOTE_CACHE_TIMEOUT"):
        RemoteCache.from_env(
            "http://127.0.0.1:1", False, environ={"GGEN_REMOTE_CACHE_TIMEOUT": value}
        )


def test_deadline_from_the_environment_then_the_configuration() -> None:
    assert deadline_from_env({}) is None
    assert deadline_from_env({"GGEN_REMOTE_CACHE_TIMEOUT": "2.5"}) == 2.5
    url = "http://127.0.0.1:1"
    env = {"GGEN_REMOTE_CACHE_TIMEOUT": "7"}
    chosen = RemoteCache.from_env(url, False, environ=env, config_deadline=9)
    assert chosen is not None and chosen.deadline == 7
    chosen = RemoteCache.from_env(url, False, environ={}, config_deadline=9)
    assert chosen is not None and chosen.deadline == 9
    chosen = RemoteCache.from_env(url, False, environ={})
    assert chosen is not None and chosen.deadline == TRANSFER_DEADLINE_S


# Signing


def test_signed_manifest_roundtrip(nginx_server: NginxServer) -> None:
    with RemoteCache(nginx_server.url, signing_key=SIGNING_KEY) as remote:
        assert remote.put_manifest(KEY, MANIFEST)
        assert remote.get_manifest(KEY) == MANIFEST
    stored = orjson.loads((nginx_server.root / "ac" / KEY).read_bytes())
    assert set(stored) == {"v", "sig", "manifest"}
    assert stored["v"] == 1
    assert stored["sig"] == manifest_signature(SIGNING_KEY, KEY, MANIFEST)


def test_signature_covers_length_prefixed_key_and_manifest() -> None:
    message = (
        b"ggen-manifest-v1"
        + len(KEY).to_bytes(8, "big")
        + KEY.encode()
        + len(MANIFEST).to_bytes(8, "big")
        + MANIFEST
    )
    expected = hmac.new(SIGNING_KEY, message, hashlib.sha256).hexdigest()
    assert manifest_signature(SIGNING_KEY, KEY, MANIFEST) == expected
    assert open_envelope(seal_manifest(SIGNING_KEY, KEY, MANIFEST)) == (expected, MANIFEST)
    assert open_envelope(MANIFEST) is None


def test_unsigned_manifest_is_refused(nginx_server: NginxServer, warned: Warnings) -> None:
    with RemoteCache(nginx_server.url) as writer:
        writer.put_manifest(KEY, MANIFEST)
    with RemoteCache(nginx_server.url, signing_key=SIGNING_KEY, warn=warned) as reader:
        assert reader.get_manifest(KEY) is None
        assert not reader.disabled
    assert warned == [f"remote cache {nginx_server.url}: refused manifest {KEY}: it is not signed"]


def test_manifest_signed_with_another_key_is_refused(
    nginx_server: NginxServer, warned: Warnings
) -> None:
    with RemoteCache(nginx_server.url, signing_key=b"someone else") as writer:
        writer.put_manifest(KEY, MANIFEST)
    with RemoteCache(nginx_server.url, signing_key=SIGNING_KEY, warn=warned) as reader:
        assert reader.get_manifest(KEY) is None
    assert len(warned) == 1
    assert "wrong signature" in warned[0]


def test_signed_manifest_replayed_under_another_key_is_refused(
    nginx_server: NginxServer, warned: Warnings
) -> None:
    with RemoteCache(nginx_server.url, signing_key=SIGNING_KEY, warn=warned) as remote:
        remote.put_manifest(KEY, MANIFEST)
        ac = nginx_server.root / "ac"
        (ac / KEY2).write_bytes((ac / KEY).read_bytes())
        assert remote.get_manifest(KEY2) is None
        assert remote.get_manifest(KEY) == MANIFEST
    assert len(warned) == 1
    assert f"refused manifest {KEY2}: wrong signature" in warned[0]


def test_tampered_or_malformed_envelopes_are_refused(
    nginx_server: NginxServer, warned: Warnings
) -> None:
    envelope = orjson.loads(seal_manifest(SIGNING_KEY, KEY, MANIFEST))
    ac = nginx_server.root / "ac"
    ac.mkdir()
    tampered = {**envelope, "manifest": "eyJldmlsIjp0cnVlfQ=="}
    (ac / KEY).write_bytes(orjson.dumps(tampered))
    (ac / KEY2).write_bytes(orjson.dumps({**envelope, "manifest": "not base64!"}))
    with RemoteCache(nginx_server.url, signing_key=SIGNING_KEY, warn=warned) as remote:
        assert remote.get_manifest(KEY) is None
        assert remote.get_manifest(KEY2) is None
    assert len(warned) == 2
    assert "wrong signature" in warned[0]
    assert "not base64" in warned[1]


def test_reader_without_key_unwraps_envelopes(nginx_server: NginxServer) -> None:
    with RemoteCache(nginx_server.url, signing_key=SIGNING_KEY) as writer:
        writer.put_manifest(KEY, MANIFEST)
    with RemoteCache(nginx_server.url) as reader:
        assert reader.get_manifest(KEY) == MANIFEST


# Read-only


def test_read_only_never_writes(nginx_server: NginxServer, tmp_path: Path) -> None:
    digest, src = write_blob(tmp_path, b"payload")
    with RemoteCache(nginx_server.url) as writer:
        writer.put_manifest(KEY, MANIFEST)
    before = nginx_server.files()
    requests_before = len(nginx_server.requests())
    with RemoteCache(nginx_server.url, read_only=True) as remote:
        assert remote.put_manifest(KEY2, MANIFEST) is False
        assert remote.upload_blob(digest, src) is False
        assert remote.upload_many([(digest, src)]) is False
        assert len(nginx_server.requests()) == requests_before  # not even a HEAD
        assert remote.get_manifest(KEY) == MANIFEST
    assert nginx_server.files() == before
    assert [r[0] for r in nginx_server.requests()[requests_before:]] == ["GET"]


# Faults


def test_stopped_server_warns_once_then_is_not_contacted(
    nginx_server: NginxServer, tmp_path: Path, warned: Warnings
) -> None:
    digest, src = write_blob(tmp_path, b"x")
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert remote.put_manifest(KEY, MANIFEST)
        master = nginx_server.pid_file.read_text().strip()
        nginx_server.stop()
        assert not psutil.pid_exists(int(master))
        started = time.monotonic()
        assert remote.get_manifest(KEY) is None
        assert remote.disabled
        assert remote.has_blob(digest) is False
        assert remote.download_blob(digest, tmp_path / "dest") is False
        assert remote.upload_blob(digest, src) is False
        assert remote.put_manifest(KEY, MANIFEST) is False
        assert remote.download_many([(digest, tmp_path / "d1"), (KEY, tmp_path / "d2")]) is False
        assert time.monotonic() - started < 2.0
        nginx_server.start()  # back on the same port: the client must still stay away
        assert remote.get_manifest(KEY) is None
    assert len(nginx_server.requests()) == 1  # only the first PUT
    assert len(warned) == 1
    assert warned[0].startswith(f"remote cache {nginx_server.url}: GET /ac/{KEY}: ")
    assert "Connection refused" in warned[0]
    assert not (tmp_path / "dest").exists()


def test_server_error_disables_the_remote(nginx: NginxServer, warned: Warnings) -> None:
    with RemoteCache(nginx.url + "/broken", warn=warned) as remote:
        assert remote.get_manifest(KEY) is None
        assert remote.disabled
        assert remote.get_manifest(KEY) is None
    assert warned == [
        f"remote cache {nginx.url}/broken: GET /ac/{KEY}: HTTP 503 Service Temporarily "
        "Unavailable; continuing without the remote cache for this run"
    ]


def test_payload_too_large_disables_the_remote(
    nginx: NginxServer, tmp_path: Path, warned: Warnings
) -> None:
    small_digest, small = write_blob(tmp_path, b"s" * 100)
    big_digest, big = write_blob(tmp_path, b"b" * 4096)
    with RemoteCache(nginx.url + "/small", warn=warned) as remote:
        assert remote.upload_blob(small_digest, small) is True
        assert remote.upload_blob(big_digest, big) is False
        assert remote.disabled
    assert nginx.files() == {f"small/cas/{small_digest}": b"s" * 100}
    assert len(warned) == 1
    assert f"PUT /cas/{big_digest}: HTTP 413" in warned[0]


def _short_body(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
    req.send_response(200)
    req.send_header("Content-Length", "100000")
    req.end_headers()
    req.wfile.write(b"only the beginning")
    req.wfile.flush()
    req.close_connection = True


def test_truncated_blob_leaves_nothing(tmp_path: Path, warned: Warnings) -> None:
    dest = tmp_path / "out" / "blob"
    with ScriptedServer(_short_body) as server, RemoteCache(server.url, warn=warned) as remote:
        assert remote.download_blob(KEY, dest) is False
        assert remote.disabled
    assert os.listdir(dest.parent) == []
    assert len(warned) == 1
    assert "IncompleteRead" in warned[0]


def test_truncated_manifest_is_a_fault(warned: Warnings) -> None:
    with ScriptedServer(_short_body) as server, RemoteCache(server.url, warn=warned) as remote:
        assert remote.get_manifest(KEY) is None
        assert remote.disabled
    assert len(warned) == 1
    assert "IncompleteRead" in warned[0]


def test_silent_server_times_out(tmp_path: Path, warned: Warnings) -> None:
    def stall(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        release.wait(30)
        req.close_connection = True

    with ScriptedServer(stall) as server:
        remote = RemoteCache(server.url, timeout=0.3, warn=warned)
        started = time.monotonic()
        assert remote.download_blob(KEY, tmp_path / "blob") is False
        assert remote.has_blob(KEY) is False
        elapsed = time.monotonic() - started
        remote.close()
        assert server.requests == [("GET", f"/cas/{KEY}")]
    assert 0.3 <= elapsed < 3.0
    assert len(warned) == 1
    assert "read timed out" in warned[0]


def test_connection_dropped_before_an_answer_is_tried_once_more(warned: Warnings) -> None:
    answered: list[str] = []

    def drop_first(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        if not answered:
            answered.append("dropped")
            req.close_connection = True  # no response at all, as a stale keep-alive
            return
        req.send_response(200)
        req.send_header("Content-Length", str(len(MANIFEST)))
        req.end_headers()
        req.wfile.write(MANIFEST)

    with ScriptedServer(drop_first) as server, RemoteCache(server.url, warn=warned) as remote:
        assert remote.get_manifest(KEY) == MANIFEST
        assert server.requests == [("GET", f"/ac/{KEY}")] * 2
    assert warned == []


def test_server_that_always_drops_is_a_fault_after_one_retry(
    tmp_path: Path, warned: Warnings
) -> None:
    def drop(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        req.close_connection = True

    digest, src = write_blob(tmp_path, b"payload" * 100)
    with ScriptedServer(drop) as server, RemoteCache(server.url, warn=warned) as remote:
        assert remote.upload_blob(digest, src) is False
        assert server.requests == [("HEAD", f"/cas/{digest}")] * 2
    assert len(warned) == 1
    assert "RemoteDisconnected" in warned[0]


# Authentication


def test_basic_auth_from_the_url(nginx: NginxServer, warned: Warnings) -> None:
    host = nginx.url.removeprefix("http://")
    with RemoteCache(f"http://ci:p%40ss%2Fw%25rd@{host}/auth", warn=warned) as remote:
        assert remote.url == f"{nginx.url}/auth"
        assert remote.put_manifest(KEY, MANIFEST)
        assert remote.get_manifest(KEY) == MANIFEST
    with RemoteCache(f"http://ci:wrong@{host}/auth", warn=warned) as remote:
        assert remote.get_manifest(KEY) is None
    assert len(warned) == 1
    assert "HTTP 401" in warned[0]
    assert "wrong" not in warned[0]
    assert "ci:" not in warned[0]


def test_bearer_token(nginx: NginxServer, warned: Warnings) -> None:
    with RemoteCache(nginx.url + "/bearer", token="s3cret") as remote:
        assert remote.put_manifest(KEY, MANIFEST)
        assert remote.get_manifest(KEY) == MANIFEST
    with RemoteCache(nginx.url + "/bearer", token="guess", warn=warned) as remote:
        assert remote.get_manifest(KEY) is None
    assert len(warned) == 1
    assert "HTTP 401" in warned[0]
    assert "guess" not in warned[0]


# Configuration and validation


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", KEY.upper(), KEY[:-1], KEY + "0", f"{KEY[:-1]}/", "", f"{KEY}\n"],
)
def test_keys_and_digests_are_validated_before_any_request(
    nginx_server: NginxServer, tmp_path: Path, bad: str
) -> None:
    with RemoteCache(nginx_server.url) as remote:
        for call in (
            lambda: remote.get_manifest(bad),
            lambda: remote.put_manifest(bad, MANIFEST),
            lambda: remote.has_blob(bad),
            lambda: remote.download_blob(bad, tmp_path / "x"),
            lambda: remote.upload_blob(bad, tmp_path / "x"),
            lambda: remote.download_many([(KEY, tmp_path / "y"), (bad, tmp_path / "x")]),
        ):
            with pytest.raises(ValueError, match="expected 32 lowercase hex digits"):
                call()
    assert nginx_server.requests() == []


@pytest.mark.parametrize(
    "url", ["ftp://host/cache", "http://", "host:8080", "http://h/c?x=1", "http://h/c#top"]
)
def test_invalid_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError, match="invalid remote cache URL"):
        RemoteCache(url)


def test_from_env_precedence_token_and_key(warned: Warnings) -> None:
    env = {
        "GGEN_REMOTE_CACHE": "http://env.example:8080/c",
        "GGEN_REMOTE_CACHE_TOKEN": "tok",
        "GGEN_CACHE_SIGNING_KEY": "k",
    }
    assert RemoteCache.from_env(None, False, warned, environ={}) is None
    assert RemoteCache.from_env(None, False, environ={}, config_url="http://cfg/") is not None
    from_flag = RemoteCache.from_env("http://flag/", True, warned, environ=env)
    assert from_flag is not None
    assert from_flag.url == "http://flag"
    assert from_flag.read_only
    from_env = RemoteCache.from_env(None, False, warned, environ=env, config_url="http://cfg")
    assert from_env is not None
    assert from_env.url == "http://env.example:8080/c"
    assert not from_env.read_only
    # An empty value switches the remote cache off, even over the configuration.
    assert RemoteCache.from_env("", False, environ=env) is None
    off = {"GGEN_REMOTE_CACHE": ""}
    assert RemoteCache.from_env(None, False, environ=off, config_url="http://cfg") is None
    assert warned == []
    RemoteCache.from_env("http://h", False, warned, environ={"GGEN_CACHE_SIGNING_KEY": ""})
    assert warned == [
        "GGEN_CACHE_SIGNING_KEY is set but empty: remote manifests will not be verified"
    ]


def test_from_env_passes_token_and_signing_key(nginx: NginxServer) -> None:
    env = {"GGEN_REMOTE_CACHE_TOKEN": "s3cret", "GGEN_CACHE_SIGNING_KEY": "k"}
    remote = RemoteCache.from_env(nginx.url + "/bearer", False, environ=env)
    assert remote is not None
    with remote:
        assert remote.put_manifest(KEY, MANIFEST)
    stored = (nginx.root / "bearer" / "ac" / KEY).read_bytes()
    assert open_envelope(stored) == (manifest_signature(b"k", KEY, MANIFEST), MANIFEST)


# Moving entries between a local store and the remote


LOG = b"building...\ndone\n"


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Store, Manifest]:
    """A local store holding one entry with two outputs (one executable) and a log."""
    ws = tmp_path / "ws"
    (ws / "dist" / "bin").mkdir(parents=True)
    (ws / "dist" / "app.js").write_bytes(b"console.log(1)\n" * 1000)
    (ws / "dist" / "bin" / "run").write_bytes(b"#!/bin/sh\necho hi\n")
    (ws / "dist" / "bin" / "run").chmod(0o755)
    store = Store(tmp_path / "store-a")
    manifest = store.save(
        KEY,
        workspace="web",
        phase="build",
        ws_dir=ws,
        outputs=["dist/**"],
        log=LOG,
        exit_code=0,
        duration_ms=12,
    )
    assert manifest is not None
    return store, manifest


def test_push_then_fetch_restores_the_entry(
    nginx_server: NginxServer, tmp_path: Path, saved: tuple[Store, Manifest], warned: Warnings
) -> None:
    source, manifest = saved
    target = Store(tmp_path / "store-b")
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert Cache(source, remote).push(KEY) is True
        assert Cache(target, remote).fetch(KEY) is True
        assert Cache(target, remote).fetch(KEY2) is False  # a remote miss
    files = nginx_server.files()
    assert files[f"ac/{KEY}"] == source.manifest_bytes(KEY)
    assert {f"cas/{d}" for d in manifest.digests()} == set(files) - {f"ac/{KEY}"}
    fetched = target.lookup(KEY)
    assert fetched == manifest
    out = tmp_path / "restored"
    target.restore(fetched, out, outputs=["dist/**"])
    assert (out / "dist" / "app.js").read_bytes() == b"console.log(1)\n" * 1000
    assert os.access(out / "dist" / "bin" / "run", os.X_OK)
    assert target.read_log(fetched) == LOG
    assert target.verify().ok
    assert os.listdir(target.root / "tmp") == []
    assert warned == []


def test_fetch_downloads_only_missing_blobs(
    nginx_server: NginxServer, tmp_path: Path, saved: tuple[Store, Manifest]
) -> None:
    source, manifest = saved
    target = Store(tmp_path / "store-b")
    target.put_blob_bytes(LOG)
    with RemoteCache(nginx_server.url) as remote:
        assert Cache(source, remote).push(KEY)
        assert Cache(target, remote).fetch(KEY)
    gets = sorted(r[1] for r in nginx_server.requests() if r[0] == "GET")
    wanted = sorted(f"/cas/{d}" for d in manifest.digests() - {manifest.log_digest})
    assert gets == sorted([f"/ac/{KEY}", *wanted])


def test_fetch_with_a_blob_missing_on_the_server_stores_no_entry(
    nginx_server: NginxServer, tmp_path: Path, saved: tuple[Store, Manifest]
) -> None:
    source, manifest = saved
    target = Store(tmp_path / "store-b")
    with RemoteCache(nginx_server.url) as remote:
        assert Cache(source, remote).push(KEY)
        (nginx_server.root / "cas" / manifest.log_digest).unlink()
        assert Cache(target, remote).fetch(KEY) is False
        assert not remote.disabled  # an incomplete entry is a miss, not a fault
    assert target.manifest_bytes(KEY) is None
    assert target.lookup(KEY) is None


@pytest.mark.parametrize("change", ["same size", "shorter", "longer"])
def test_fetch_with_a_corrupt_blob_on_the_server_stores_nothing(
    nginx_server: NginxServer,
    tmp_path: Path,
    saved: tuple[Store, Manifest],
    warned: Warnings,
    change: str,
) -> None:
    source, manifest = saved
    target = Store(tmp_path / "store-b")
    entry = manifest.outputs[0]
    tampered = {
        "same size": b"?" * entry.size,
        "shorter": b"not what you think",
        "longer": b"!" * (entry.size + 1),
    }[change]
    with RemoteCache(nginx_server.url, warn=warned, max_parallel=1) as remote:
        assert Cache(source, remote).push(KEY)
        (nginx_server.root / "cas" / entry.digest).write_bytes(tampered)
        assert Cache(target, remote).fetch(KEY) is False
        assert remote.disabled
    assert target.manifest_bytes(KEY) is None
    assert not target.has_blob(entry.digest)
    assert os.listdir(target.root / "tmp") == []
    assert len(warned) == 1
    expected = {
        "same size": f"received a blob whose digest is {digest_of(tampered)}",
        "shorter": f"the body ends at {len(tampered)} of {entry.size} bytes",
        # nginx announces the length: refused before the body is read
        "longer": f"the server announces {entry.size + 1} bytes, more than the {entry.size} bytes",
    }[change]
    assert expected in warned[0]


def test_fetch_refuses_an_unsafe_manifest_before_downloading(
    nginx_server: NginxServer, tmp_path: Path, warned: Warnings
) -> None:
    evil_blob = b"owned"
    digest = digest_of(evil_blob)
    evil = orjson.dumps(
        {
            "version": 1,
            "key": KEY,
            "workspace": "web",
            "phase": "build",
            "outputs": [{"path": "../../.bashrc", "digest": digest, "size": 5, "mode": 420}],
            "symlinks": [],
            "exit_code": 0,
            "log_digest": digest,
            "duration_ms": 1,
            "created_ms": 1,
        }
    )
    target = Store(tmp_path / "store-b")
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert remote.put_manifest(KEY, evil)
        (nginx_server.root / "cas").mkdir()
        (nginx_server.root / "cas" / digest).write_bytes(evil_blob)
        assert Cache(target, remote).fetch(KEY) is False
        assert not remote.disabled
    assert [r[1] for r in nginx_server.requests() if r[0] == "GET"] == [f"/ac/{KEY}"]
    assert target.manifest_bytes(KEY) is None
    assert not target.has_blob(digest)
    assert len(warned) == 1
    assert f"refused manifest {KEY}" in warned[0]
    assert "../../.bashrc" in warned[0]


def test_fetch_refuses_an_entry_replayed_under_another_key(
    nginx_server: NginxServer, tmp_path: Path, saved: tuple[Store, Manifest], warned: Warnings
) -> None:
    source, _ = saved
    target = Store(tmp_path / "store-b")
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert Cache(source, remote).push(KEY)
        data = source.manifest_bytes(KEY)
        assert data is not None
        assert remote.put_manifest(KEY2, data)
        assert Cache(target, remote).fetch(KEY2) is False
    assert [r[1] for r in nginx_server.requests() if r[0] == "GET"] == [f"/ac/{KEY2}"]
    assert warned == [
        f"remote cache {nginx_server.url}: refused manifest {KEY2}: it is the entry of {KEY}"
    ]


@pytest.mark.usefixtures("saved")
def test_signed_push_and_fetch(nginx_server: NginxServer, tmp_path: Path, warned: Warnings) -> None:
    source = Store(tmp_path / "signed", signing_key=SIGNING_KEY)  # the workspace of `saved`
    manifest = source.save(
        KEY,
        workspace="web",
        phase="build",
        ws_dir=tmp_path / "ws",
        outputs=["dist/**"],
        log=LOG,
        exit_code=0,
        duration_ms=12,
    )
    assert manifest is not None
    assert manifest.log_sha256 is not None
    with RemoteCache(nginx_server.url, signing_key=SIGNING_KEY) as remote:
        assert Cache(source, remote).push(KEY)
    good, bad = Store(tmp_path / "good"), Store(tmp_path / "bad")
    with RemoteCache(nginx_server.url, signing_key=SIGNING_KEY) as remote:
        assert Cache(good, remote).fetch(KEY)
    with RemoteCache(nginx_server.url, signing_key=b"other", warn=warned) as remote:
        assert Cache(bad, remote).fetch(KEY) is False
    assert good.lookup(KEY) == manifest
    assert bad.manifest_bytes(KEY) is None
    assert bad.stats().blobs == 0
    assert len(warned) == 1
    assert "wrong signature" in warned[0]


def test_push_read_only_or_with_a_corrupt_local_blob_publishes_nothing(
    nginx_server: NginxServer, saved: tuple[Store, Manifest], warned: Warnings
) -> None:
    source, manifest = saved
    with RemoteCache(nginx_server.url, read_only=True) as remote:
        assert Cache(source, remote).push(KEY) is False
    assert nginx_server.files() == {}
    source.blob_path(manifest.log_digest).write_bytes(b"bit rot")
    with RemoteCache(nginx_server.url, warn=warned) as remote:
        assert Cache(source, remote).push(KEY) is False
        assert Cache(source, remote).push(KEY2) is False  # no such local entry
    assert f"ac/{KEY}" not in nginx_server.files()
    assert f"cas/{manifest.log_digest}" not in nginx_server.files()
    assert len(warned) == 1
    assert "not uploading" in warned[0]
