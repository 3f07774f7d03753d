"""Helpers shared by the tests of the local store: a store, a workspace with outputs, a save."""

from __future__ import annotations

import os
from pathlib import Path

from ggen.cache.store import Manifest, Store

KEY_A = "a" * 32
KEY_B = "b" * 32
KEY_C = "c" * 32


class Warnings(list[str]):
    """Collects the store's warnings."""


def make_store(tmp_path: Path, **kwargs: int) -> tuple[Store, Warnings]:
    warnings = Warnings()
    return Store(tmp_path / "store", warn=warnings.append, **kwargs), warnings


def write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    write(ws / "dist/app.js", b"console.log('app')\n")
    write(ws / "dist/bin/run", b"#!/bin/sh\necho run\n", 0o755)
    write(ws / "dist/empty.txt", b"")
    os.symlink("app.js", ws / "dist/link.js")
    os.symlink("../src", ws / "dist/srclink")
    write(ws / "src/main.ts", b"main")
    return ws


def save(
    store: Store, ws: Path, key: str = KEY_A, outputs: tuple[str, ...] = ("dist",)
) -> Manifest:
    manifest = store.save(
        key,
        workspace="web",
        phase="build",
        ws_dir=ws,
        outputs=outputs,
        log=b"building...\ndone\n",
        exit_code=0,
        duration_ms=1234,
    )
    assert manifest is not None
    return manifest
