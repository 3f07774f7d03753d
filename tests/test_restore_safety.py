"""What a restore may touch (ggen.cache.store.Store.restore), tested as classes of entries.

A restore writes and deletes only paths that the task's output globs match, whatever the entry
names; afterwards what the globs match is exactly the entry; any name the file system allows
comes back; an interrupt at any point leaves no staged file; an error writing the workspace is
a ``RestoreFailed`` naming the path, never another exception.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from ggen.cache.store import (
    CorruptEntry,
    Manifest,
    ProblemKind,
    Store,
)

KEY = "a" * 32
TESTS = Path(__file__).resolve().parent

Snapshot = dict[str, tuple[str, Any]]


def _snapshot(top: Path) -> Snapshot:
    """Every path below ``top`` (relative, as text): its kind and contents, mode or target."""
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            st_ = os.lstat(path)
            if stat.S_ISLNK(st_.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st_.st_mode):
                found[rel] = ("dir", None)
            else:
                found[rel] = ("file", (Path(path).read_bytes(), stat.S_IMODE(st_.st_mode)))
    return found


def _store(root: Path) -> Store:
    return Store(root / "store", warn=lambda message: None)


# ---- item 8: blobs are regular files, never followed ---------------------------------------


def _saved(root: Path, data: bytes = b"secret contents\n") -> tuple[Store, Manifest, Path]:
    store = _store(root)
    ws = root / "ws"
    (ws / "dist").mkdir(parents=True)
    (ws / "dist/app.txt").write_bytes(data)
    manifest = store.save(
        KEY,
        workspace="w",
        phase="build",
        ws_dir=ws,
        outputs=["dist/**"],
        log=b"log",
        exit_code=0,
        duration_ms=1,
    )
    assert manifest is not None
    return store, manifest, ws


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_a_blob_that_is_not_a_regular_file_is_never_read(tmp_path: Path, kind: str) -> None:
    store, manifest, ws = _saved(tmp_path)
    blob = store.blob_path(manifest.outputs[0].digest)
    # a file elsewhere with exactly the blob's contents: following the link would "work"
    elsewhere = tmp_path / "private.txt"
    elsewhere.write_bytes(b"secret contents\n")
    blob.unlink()
    if kind == "symlink":
        os.symlink(elsewhere, blob)
    elif kind == "fifo":
        os.mkfifo(blob)
    else:
        blob.mkdir()
    shutil.rmtree(ws / "dist")
    assert not store.has_blob(manifest.outputs[0].digest)
    with pytest.raises(CorruptEntry, match=r"symlink|not a regular file"):
        store.restore(manifest, ws)
    assert not (ws / "dist/app.txt").exists()
    assert elsewhere.read_bytes() == b"secret contents\n"


def test_verify_reports_and_repair_removes_what_is_not_a_regular_file(tmp_path: Path) -> None:
    store, manifest, _ = _saved(tmp_path)
    target = tmp_path / "target.txt"
    target.write_bytes(b"not the store's")
    blob = store.blob_path(manifest.outputs[0].digest)
    blob.unlink()
    os.symlink(target, blob)
    fifo = store.blob_path("f" * 32)
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    linked_group = store.root / "blobs" / "ee"
    os.symlink(tmp_path, linked_group)
    odd_manifest = store.manifest_path("d" * 32)
    odd_manifest.parent.mkdir(parents=True, exist_ok=True)
    odd_manifest.mkdir()
    report = store.verify()
    odd = {p.path: p.detail for p in report.problems if p.kind is ProblemKind.NOT_A_FILE}
    assert odd == {
        str(blob): f"a symlink to {target}",
        str(fifo): "a fifo",
        str(linked_group): f"a symlink to {tmp_path}",
        str(odd_manifest): "a directory",
    }
    assert ProblemKind.MISSING_BLOB in {p.kind for p in report.problems}
    repaired = store.verify(repair=True)
    assert repaired.removed == 5  # the four, and the manifest that needed the blob
    assert not any(os.path.lexists(p) for p in (blob, fifo, linked_group, odd_manifest))
    assert target.read_bytes() == b"not the store's" and tmp_path.is_dir()
    assert store.verify().ok
