"""Looking after the local store (ggen.cache.maintenance through Store): stats, verify, prune,
clear. The races of a prune with other processes are in test_store.py."""

from __future__ import annotations

from pathlib import Path

from stores import KEY_A, KEY_B, KEY_C, make_store, save, workspace, write

from ggen.cache.store import Manifest, ProblemKind, Store


def save_sized(store: Store, tmp_path: Path, key: str, size: int) -> Manifest:
    ws = tmp_path / f"ws-{key[0]}"
    write(ws / "out/blob.bin", key.encode() * (size // 32))
    return save(store, ws, key, ("out",))


def test_prune_evicts_least_recently_used(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path)
    a = save_sized(store, tmp_path, KEY_A, 10_000)
    b = save_sized(store, tmp_path, KEY_B, 10_000)
    save_sized(store, tmp_path, KEY_C, 10_000)
    assert store.lookup(KEY_A) is not None  # A is now the most recently used
    total = store.stats().total_bytes
    freed = store.prune(total - 5_000)
    assert store.lookup(KEY_B) is None
    assert store.lookup(KEY_A) is not None and store.lookup(KEY_C) is not None
    assert not store.has_blob(b.outputs[0].digest)
    assert store.has_blob(a.outputs[0].digest)
    assert freed >= 10_000
    assert store.stats().total_bytes == total - freed
    assert store.verify().ok


def test_prune_removes_unreferenced_blobs_only(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path)
    manifest = save(store, workspace(tmp_path))
    orphan = store.put_blob_bytes(b"nobody needs me")
    assert store.prune() == len(b"nobody needs me")
    assert not store.has_blob(orphan)
    assert all(store.has_blob(d) for d in manifest.digests())


def test_max_size_is_enforced_aftersave(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path, max_size=30_000)
    keys = [c * 32 for c in "0123456789"]
    for key in keys:
        save_sized(store, tmp_path, key, 8_000)
        assert store.stats().total_bytes <= 30_000
    assert store.lookup(keys[-1]) is not None
    assert store.lookup(keys[0]) is None
    assert store.verify().ok


def test_verify_finds_and_repairs(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path)
    ws = workspace(tmp_path)
    a = save(store, ws, KEY_A)
    write(ws / "other/x.txt", b"x")
    save(store, ws, KEY_B, ("other",))
    assert store.verify().ok
    store.blob_path(a.outputs[0].digest).write_bytes(b"rotten")
    store.manifest_path(KEY_C).parent.mkdir(parents=True, exist_ok=True)
    store.manifest_path(KEY_C).write_bytes(b"{")
    report = store.verify()
    kinds = sorted(p.kind.name for p in report.problems)
    assert kinds == ["BAD_MANIFEST", "CORRUPT_BLOB", "MISSING_BLOB"]
    assert (report.entries, report.removed) == (3, 0)
    repaired = store.verify(repair=True)
    assert repaired.removed == 3
    after = store.verify()
    assert after.ok and after.entries == 1
    assert store.lookup(KEY_B) is not None
    assert {p.kind for p in repaired.problems} == {
        ProblemKind.BAD_MANIFEST,
        ProblemKind.CORRUPT_BLOB,
        ProblemKind.MISSING_BLOB,
    }


def test_clear_and_stats(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path)
    save(store, workspace(tmp_path))
    stats = store.stats()
    assert stats.entries == 1 and stats.blobs == 4 and stats.total_bytes > 0
    store.clear()
    assert store.stats().entries == store.stats().blobs == store.stats().total_bytes == 0
    assert store.lookup(KEY_A) is None
    save(store, workspace(tmp_path / "again"))
    assert store.stats().entries == 1
