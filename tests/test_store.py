"""The local content-addressed store (ggen.cache.store)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import xxhash
from stores import KEY_A, KEY_B, Warnings
from stores import make_store as _store
from stores import save as _save
from stores import workspace as _workspace
from stores import write as _write

from ggen.cache.digest import DigestMemo
from ggen.cache.store import (
    CorruptEntry,
    Manifest,
    OutputEntry,
    RestoreResult,
    Store,
    SymlinkEntry,
    UnsafeEntry,
    default_cache_dir,
)

OLD_NS = 946684800 * 1_000_000_000  # 2000-01-01
TESTS = Path(__file__).resolve().parent
DIST = ("dist",)


def _snapshot(root: Path) -> dict[str, tuple[str, int | str]]:
    """Every file and symlink below ``root``: (kind, mode or target) and contents digest."""
    found: dict[str, tuple[str, int | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            else:
                data = Path(path).read_bytes()
                found[rel] = (xxhash.xxh3_128_hexdigest(data), os.stat(path).st_mode & 0o777)
    return found


def test_save_and_restore_round_trip(tmp_path: Path) -> None:
    store, warnings = _store(tmp_path)
    ws = _workspace(tmp_path)
    before = _snapshot(ws / "dist")
    manifest = _save(store, ws)
    assert [o.path for o in manifest.outputs] == ["dist/app.js", "dist/bin/run", "dist/empty.txt"]
    assert manifest.symlinks == (
        SymlinkEntry("dist/link.js", "app.js"),
        SymlinkEntry("dist/srclink", "../src"),
    )
    assert store.lookup(KEY_A) == manifest
    assert store.read_log(manifest) == b"building...\ndone\n"

    shutil.rmtree(ws / "dist")
    result = store.restore(manifest, ws, outputs=DIST)
    assert result == RestoreResult(written=5, unchanged=0)
    assert _snapshot(ws / "dist") == before
    assert (ws / "dist/bin/run").stat().st_mode & 0o777 == 0o755
    assert warnings == []


def test_restore_into_another_checkout(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    manifest = _save(store, _workspace(tmp_path))
    other = tmp_path / "elsewhere/ws"
    assert store.restore(manifest, other, outputs=DIST).written == 5
    assert (other / "dist/app.js").read_bytes() == b"console.log('app')\n"
    assert os.readlink(other / "dist/link.js") == "app.js"


def test_matching_outputs_are_not_rewritten(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    ws = _workspace(tmp_path)
    manifest = _save(store, ws)
    stamps = {p: (os.lstat(p).st_ino, os.lstat(p).st_mtime_ns) for p in (ws / "dist").rglob("*")}
    assert store.restore(manifest, ws, outputs=DIST) == RestoreResult(written=0, unchanged=5)
    memo = DigestMemo(None)
    result = store.restore(manifest, ws, memo=memo, outputs=DIST)
    assert result == RestoreResult(written=0, unchanged=5)
    assert stamps == {
        p: (os.lstat(p).st_ino, os.lstat(p).st_mtime_ns) for p in (ws / "dist").rglob("*")
    }


def test_restored_files_get_fresh_mtime(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    ws = _workspace(tmp_path)
    os.utime(ws / "dist/app.js", ns=(OLD_NS, OLD_NS))
    manifest = _save(store, ws)
    (ws / "dist/app.js").write_bytes(b"changed!")
    (ws / "dist/bin/run").chmod(0o644)  # same contents, lost its executable bit
    started = time.time_ns() - 1_000_000_000
    result = store.restore(manifest, ws, outputs=DIST)
    assert result == RestoreResult(written=2, unchanged=3)
    assert (ws / "dist/app.js").read_bytes() == b"console.log('app')\n"
    assert os.stat(ws / "dist/app.js").st_mtime_ns > started
    assert (ws / "dist/bin/run").stat().st_mode & 0o777 == 0o755
    assert not [p for p in (ws / "dist").rglob(".ggen-*")]


def test_restore_replaces_what_stands_in_the_way(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    ws = tmp_path / "ws"
    _write(ws / "out/a.txt", b"a")
    _write(ws / "out/b/c.txt", b"c")
    manifest = _save(store, ws, outputs=("out",))
    shutil.rmtree(ws / "out")
    _write(ws / "out/a.txt/inner", b"a directory where a file belongs")
    _write(ws / "out/b", b"a file where a directory belongs")
    assert store.restore(manifest, ws, outputs=["out"]).written == 2
    assert (ws / "out/a.txt").read_bytes() == b"a"
    assert (ws / "out/b/c.txt").read_bytes() == b"c"


def test_output_symlink_replacing_file_is_not_followed(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    ws = tmp_path / "ws"
    _write(ws / "out/a.txt", b"a")
    manifest = _save(store, ws, outputs=("out",))
    victim = _write(tmp_path / "victim.txt", b"precious")
    (ws / "out/a.txt").unlink()
    os.symlink(victim, ws / "out/a.txt")
    assert store.restore(manifest, ws, outputs=["out"]).written == 1
    assert victim.read_bytes() == b"precious"
    assert not (ws / "out/a.txt").is_symlink()


def test_blobs_are_deduplicated(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    ws = tmp_path / "ws"
    _write(ws / "a/x.txt", b"same")
    _write(ws / "b/y.txt", b"same")
    _save(store, ws, KEY_A, ("a",))
    _save(store, ws, KEY_B, ("b",))
    stats = store.stats()
    assert (stats.entries, stats.blobs) == (2, 2)  # one contents blob, one log blob


def test_corrupt_blob_is_detected_and_removed(tmp_path: Path) -> None:
    store, warnings = _store(tmp_path)
    ws = _workspace(tmp_path)
    manifest = _save(store, ws)
    app = next(o for o in manifest.outputs if o.path == "dist/app.js")
    blob = store.blob_path(app.digest)
    blob.write_bytes(b"X" * app.size)  # same size, wrong contents
    (ws / "dist/app.js").write_bytes(b"local edit")
    (ws / "dist/empty.txt").write_bytes(b"also edited")
    with pytest.raises(CorruptEntry, match=f"blob {app.digest} is corrupt"):
        store.restore(manifest, ws, outputs=DIST)
    assert not blob.exists()
    assert store.lookup(KEY_A) is None
    assert warnings == []  # the exception is the report; the caller shows it
    # nothing was replaced and no temp file is left
    assert (ws / "dist/app.js").read_bytes() == b"local edit"
    assert (ws / "dist/empty.txt").read_bytes() == b"also edited"
    assert not [p for p in ws.rglob(".ggen-*")]


def test_missing_blob_is_a_miss(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    ws = _workspace(tmp_path)
    manifest = _save(store, ws)
    store.blob_path(manifest.outputs[0].digest).unlink()
    shutil.rmtree(ws / "dist")
    with pytest.raises(CorruptEntry, match="missing"):
        store.restore(manifest, ws, outputs=DIST)
    assert store.lookup(KEY_A) is None


def test_corrupt_log_is_detected(tmp_path: Path) -> None:
    store, warnings = _store(tmp_path)
    manifest = _save(store, _workspace(tmp_path))
    store.blob_path(manifest.log_digest).write_bytes(b"truncat")
    with pytest.raises(CorruptEntry, match="corrupt"):
        store.read_log(manifest)
    assert not store.blob_path(manifest.log_digest).exists()
    assert store.lookup(KEY_A) is None
    assert warnings == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: b"",
        lambda data: b"\x00\x01 not json",
        lambda data: data.replace(b'"size":', b'"size":-', 1),
        lambda data: orjson.dumps({**orjson.loads(data), "version": 7}),
        lambda data: orjson.dumps({**orjson.loads(data), "key": KEY_B}),
        lambda data: orjson.dumps({**orjson.loads(data), "exit_code": True}),
        lambda data: orjson.dumps({**orjson.loads(data), "log_digest": "zz"}),
        lambda data: orjson.dumps({**orjson.loads(data), "outputs": [{"path": "x"}]}),
        lambda data: orjson.dumps([1, 2]),
    ],
)
def test_bad_manifest_is_detected_removed_and_reported(tmp_path: Path, damage: object) -> None:
    store, warnings = _store(tmp_path)
    _save(store, _workspace(tmp_path))
    path = store.manifest_path(KEY_A)
    assert callable(damage)
    path.write_bytes(damage(path.read_bytes()))
    assert store.lookup(KEY_A) is None
    assert not path.exists()
    assert len(warnings) == 1 and KEY_A in warnings[0]


def _manifest(
    outputs: tuple[OutputEntry, ...] = (), symlinks: tuple[SymlinkEntry, ...] = ()
) -> Manifest:
    return Manifest(
        key=KEY_A,
        workspace="web",
        phase="build",
        outputs=outputs,
        symlinks=symlinks,
        exit_code=0,
        log_digest="0" * 32,
        duration_ms=1,
        created_ms=1,
    )


UNSAFE = [
    _manifest(outputs=(OutputEntry("/tmp/evil", "0" * 32, 1, 0o644),)),
    _manifest(outputs=(OutputEntry("../evil", "0" * 32, 1, 0o644),)),
    _manifest(outputs=(OutputEntry("a/../../evil", "0" * 32, 1, 0o644),)),
    _manifest(outputs=(OutputEntry(".git/hooks/pre-commit", "0" * 32, 1, 0o755),)),
    _manifest(outputs=(OutputEntry("a//b", "0" * 32, 1, 0o644),)),
    _manifest(outputs=(OutputEntry("x", "0" * 32, 1, 0o644), OutputEntry("x", "0" * 32, 1, 0))),
    _manifest(symlinks=(SymlinkEntry("link", "/etc/passwd"),)),
    _manifest(symlinks=(SymlinkEntry("link", "../outside"),)),
    _manifest(symlinks=(SymlinkEntry("a/link", "../../outside"),)),
    _manifest(symlinks=(SymlinkEntry("link", "sub/../../outside"),)),
    _manifest(
        outputs=(OutputEntry("d/x", "0" * 32, 1, 0o644),), symlinks=(SymlinkEntry("d", "."),)
    ),
]


@pytest.mark.parametrize("manifest", UNSAFE)
def test_unsafe_manifest_is_refused_before_writing(tmp_path: Path, manifest: Manifest) -> None:
    store, _ = _store(tmp_path)
    ws = tmp_path / "deep/ws"
    ws.mkdir(parents=True)
    digest = store.put_blob_bytes(b"x")
    safe = OutputEntry("first.txt", digest, 1, 0o644)  # listed first, must not be written
    bad = Manifest(**{**manifest.__dict__, "outputs": (safe, *manifest.outputs)})
    with pytest.raises(UnsafeEntry):
        store.restore(bad, ws, outputs=["**"])
    assert list((tmp_path / "deep").rglob("*")) == [ws]
    with pytest.raises(UnsafeEntry):
        Manifest.from_bytes(bad.to_bytes())


def test_unsafe_manifest_on_disk_is_removed(tmp_path: Path) -> None:
    store, warnings = _store(tmp_path)
    _save(store, _workspace(tmp_path))
    path = store.manifest_path(KEY_A)
    raw = orjson.loads(path.read_bytes())
    raw["outputs"][0]["path"] = "../../etc/cron.d/evil"
    path.write_bytes(orjson.dumps(raw))
    assert store.lookup(KEY_A) is None
    assert not path.exists()
    assert "unsafe" in warnings[0]


def test_restore_never_writes_through_a_symlinked_directory(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    src = tmp_path / "src-ws"
    _write(src / "ok.txt", b"ok")
    _write(src / "sub/evil.txt", b"evil")
    manifest = _save(store, src, outputs=("ok.txt", "sub/**"))
    outside = tmp_path / "outside"
    outside.mkdir()
    ws = tmp_path / "ws"
    (ws / "real").mkdir(parents=True)
    for target in (outside, Path("real")):
        os.symlink(target, ws / "sub")
        # "sub" itself is not an output: the symlink may be neither followed nor replaced
        with pytest.raises(UnsafeEntry, match="'sub', a symlink that is not an output"):
            store.restore(manifest, ws, outputs=("ok.txt", "sub/**"))
        assert list(outside.iterdir()) == list((ws / "real").iterdir()) == []
        assert not (ws / "ok.txt").exists()
        (ws / "sub").unlink()
    # where "sub" is an output, a symlink there is a stale output: replaced by the directory
    os.symlink(outside, ws / "sub")
    result = store.restore(manifest, ws, outputs=("ok.txt", "sub"))
    assert (result.written, result.removed) == (2, 1)
    assert list(outside.iterdir()) == []
    assert not (ws / "sub").is_symlink() and (ws / "sub/evil.txt").read_bytes() == b"evil"


def test_absolute_symlink_inside_workspace_is_stored_relative(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    ws = tmp_path / "ws"
    _write(ws / "lib/a.so", b"elf")
    os.symlink(ws / "lib/a.so", ws / "lib/current.so")
    manifest = _save(store, ws, outputs=("lib",))
    assert manifest.symlinks == (SymlinkEntry("lib/current.so", "a.so"),)
    assert store.restore(manifest, ws, outputs=["lib"]) == RestoreResult(written=1, unchanged=1)
    assert os.readlink(ws / "lib/current.so") == "a.so"


def test_output_symlink_leaving_workspace_is_not_cached(tmp_path: Path) -> None:
    store, warnings = _store(tmp_path)
    ws = tmp_path / "ws"
    _write(ws / "dist/a.txt", b"a")
    os.symlink("/etc/hostname", ws / "dist/host")
    assert (
        store.save(
            KEY_A,
            workspace="web",
            phase="build",
            ws_dir=ws,
            outputs=["dist"],
            log=b"",
            exit_code=0,
            duration_ms=1,
        )
        is None
    )
    assert len(warnings) == 1 and "outside the workspace" in warnings[0]
    assert store.lookup(KEY_A) is None


def test_unwritable_store_warns_once_and_returns_none(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    warnings = Warnings()
    store = Store(blocker / "store", warn=warnings.append)
    ws = _workspace(tmp_path)
    for key in (KEY_A, KEY_B):
        assert (
            store.save(
                key,
                workspace="web",
                phase="build",
                ws_dir=ws,
                outputs=["dist"],
                log=b"log",
                exit_code=0,
                duration_ms=1,
            )
            is None
        )
    assert len(warnings) == 1 and "cannot save web:build" in warnings[0]
    assert store.lookup(KEY_A) is None
    assert blocker.read_text() == "in the way"


def test_lookup_of_missing_key(tmp_path: Path) -> None:
    store, warnings = _store(tmp_path)
    assert store.lookup(KEY_A) is None
    assert warnings == []
    with pytest.raises(ValueError):
        store.lookup("../../etc/passwd")


def test_blob_and_manifest_api_for_remote(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    source, _ = _store(tmp_path / "other")
    manifest = _save(source, _workspace(tmp_path))
    data = source.manifest_bytes(KEY_A)
    assert data is not None and Manifest.from_bytes(data) == manifest
    assert store.manifest_bytes(KEY_A) is None
    with pytest.raises(CorruptEntry, match="absent blobs"):
        store.put_manifest_bytes(KEY_A, data)
    for digest in manifest.digests():
        assert store.put_blob_file(source.blob_path(digest)) == digest
        assert store.has_blob(digest)
    with pytest.raises(CorruptEntry):
        store.put_manifest_bytes(KEY_B, data)
    with pytest.raises(CorruptEntry):
        store.put_manifest_bytes(KEY_A, data[:-3])
    store.put_manifest_bytes(KEY_A, data)
    assert store.lookup(KEY_A) == manifest
    assert store.put_blob_bytes(b"abc") == xxhash.xxh3_128_hexdigest(b"abc")
    assert store.blob_path(xxhash.xxh3_128_hexdigest(b"abc")).read_bytes() == b"abc"


def test_default_cache_dir() -> None:
    assert default_cache_dir().name == "ggen"
    assert default_cache_dir().is_absolute()


def _hammer(root: str, worker: int, rounds: int) -> int:
    """Save, look up and restore entries sharing blobs with the other workers'."""
    store = Store(Path(root), warn=lambda message: None)
    ws = Path(root).parent / f"ws-{worker}"
    done = 0
    for i in range(rounds):
        _write(ws / "out/shared.txt", b"shared by everyone")
        _write(ws / "out/mine.txt", f"round {i % 5}".encode())
        key = xxhash.xxh3_128_hexdigest(f"{worker % 2}-{i}".encode())
        saved = store.save(
            key,
            workspace="w",
            phase="build",
            ws_dir=ws,
            outputs=["out"],
            log=b"log",
            exit_code=0,
            duration_ms=1,
        )
        found = store.lookup(key)
        if saved is not None and found is not None:
            store.restore(found, ws, outputs=["out"])
            done += 1
    return done


def _spawn(call: str) -> subprocess.Popen[str]:
    """Run ``test_store.<call>`` in a fresh Python process; it prints the result."""
    code = f"import test_store; print(test_store.{call})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    )


def _results(procs: list[subprocess.Popen[str]]) -> list[str]:
    outs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        outs.append(out.strip())
    return outs


def test_concurrent_saves_from_processes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    procs = [_spawn(f"_hammer({str(root)!r}, {w}, 25)") for w in range(4)]
    assert _results(procs) == ["25", "25", "25", "25"]
    store = Store(root)
    report = store.verify()
    assert report.ok, report.problems
    assert report.entries == 50
    assert list((root / "tmp").iterdir()) == []


def _prune_loop(root: str, rounds: int) -> int:
    store = Store(Path(root), warn=lambda message: None)
    return sum(store.prune(0) for _ in range(rounds))


def test_concurrent_prune_turns_restores_into_misses(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    ws = tmp_path / "ws"
    _write(ws / "out/big.bin", os.urandom(2_000_000))
    outcomes = {"restored": 0, "miss": 0}
    pruner = _spawn(f"_prune_loop({str(store.root)!r}, 200)")
    while pruner.poll() is None:
        manifest = store.save(
            KEY_A,
            workspace="w",
            phase="build",
            ws_dir=ws,
            outputs=["out"],
            log=b"log",
            exit_code=0,
            duration_ms=1,
        )
        if manifest is None:
            continue
        (ws / "out/big.bin").unlink()
        try:
            store.restore(manifest, ws, outputs=["out"])
            outcomes["restored"] += 1
            data = (ws / "out/big.bin").read_bytes()
            assert xxhash.xxh3_128_hexdigest(data) == manifest.outputs[0].digest
        except CorruptEntry:
            outcomes["miss"] += 1
            _write(ws / "out/big.bin", os.urandom(2_000_000))
    _results([pruner])
    assert outcomes["restored"] + outcomes["miss"] > 0
