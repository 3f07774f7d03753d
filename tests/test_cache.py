"""``Cache``: one face over the local store and the remote (finding, peeking, saving off the
dispatch thread). Moving entries to and from a real remote is tested in test_remote.py."""

from __future__ import annotations

import threading
from pathlib import Path

from ggen.cache.cache import Cache, Entry, Location, SaveRequest
from ggen.cache.store import Store

KEY = "ab" * 16


def request(ws: Path, log: Path | None = None) -> SaveRequest:
    return SaveRequest(
        KEY, workspace="w", phase="build", ws_dir=ws, outputs=("dist/**",), log=log,
        exit_code=0, duration_ms=5,
    )  # fmt: skip


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "dist").mkdir(parents=True)
    (ws / "dist/out.txt").write_text("out\n")
    (ws / "task.log").write_text("log\n")
    return ws


def test_save_then_find_restore_and_peek(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    cache = Cache(Store(tmp_path / "store"))
    cache.save(request(ws, ws / "task.log"))
    cache.wait()
    found = cache.find(KEY)
    assert found is not None and found.location is Location.LOCAL and found.manifest
    assert b"".join(cache.log_chunks(found.manifest)) == b"log\n"
    assert cache.peek(KEY) == found
    other = tmp_path / "other"
    other.mkdir()
    from ggen.cache.digest import DigestMemo

    cache.restore(found.manifest, other, ("dist/**",), DigestMemo(None))
    assert (other / "dist/out.txt").read_text() == "out\n"
    assert cache.find("cd" * 16) is None and cache.peek("cd" * 16) is None
    cache.close()


def test_saves_run_off_the_calling_thread_and_wait_waits_for_them(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    store = Store(tmp_path / "store")
    release = threading.Event()
    threads: list[str] = []
    real_save = store.save

    def slow_save(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        release.wait(10)
        return real_save(*args, **kwargs)  # type: ignore[arg-type]

    store.save = slow_save  # type: ignore[method-assign]
    cache = Cache(store)
    cache.save(request(ws))  # returns at once: the store is still waiting
    assert store.lookup(KEY) is None
    release.set()
    cache.wait()
    assert store.lookup(KEY) is not None
    assert threads and threads[0].startswith("ggen-cache-io")
    cache.close()


def test_peek_changes_nothing_in_the_store(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    store = Store(tmp_path / "store")
    cache = Cache(store)
    cache.save(request(ws))
    cache.wait()
    path = store.manifest_path(KEY)
    before = path.stat().st_mtime_ns
    assert cache.peek(KEY) == Entry(Location.LOCAL, store.lookup(KEY, read_only=True))
    assert path.stat().st_mtime_ns == before
    path.write_bytes(b"not a manifest")
    assert cache.peek(KEY) is None
    assert path.exists()  # a damaged entry is left for a run to remove
    assert cache.find(KEY) is None and not path.exists()


def test_a_save_that_fails_is_a_warning_and_no_entry(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    warnings: list[str] = []
    cache = Cache(Store(tmp_path / "store", warn=warnings.append))
    cache.save(request(ws, ws / "missing.log"))
    cache.close()
    assert cache.store.lookup(KEY) is None
    assert len(warnings) == 1 and "cannot save w:build in the cache" in warnings[0]


def test_abort_stops_a_stalled_upload_so_close_returns_at_once(tmp_path: Path) -> None:
    import http.server
    import time

    from servers import ScriptedServer

    from ggen.cache.remote import RemoteCache

    stalled = threading.Event()

    def stall(req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        if req.command == "HEAD":
            req.send_response(404)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        stalled.set()
        release.wait(30)  # a server that never answers the upload

    ws = workspace(tmp_path)
    with ScriptedServer(stall) as server:
        remote = RemoteCache(server.url, deadline=60, warn=lambda m: None)
        cache = Cache(Store(tmp_path / "store"), remote)
        cache.save(request(ws))
        assert stalled.wait(10)
        t0 = time.monotonic()
        cache.abort()
        cache.close()
        assert time.monotonic() - t0 < 5
        assert cache.store.lookup(KEY) is not None  # the local save is kept
