"""Keys do not drift: a store written by key format 2 (fixture made at f9850a4, see
tests/fixtures/make_key_format_2.py) is hit by today's ggen, with the same keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from monorepo import ggen, last_summary

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "key_format_2"


def test_store_of_key_format_2_is_hit_with_the_same_keys(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(FIXTURE / "tree", root)
    store = tmp_path / "store"
    shutil.copytree(FIXTURE / "store", store)
    keys = orjson.loads((FIXTURE / "keys.json").read_bytes())
    outputs = orjson.loads((FIXTURE / "outputs.json").read_bytes())

    explained = ggen("explain", "build", "-w", "app", cwd=root, env={"GGEN_CACHE_DIR": str(store)})
    assert explained.returncode == 0, explained.stderr
    assert f"key {keys['app:build']}" in explained.stdout
    assert "would be restored from the cache" in explained.stdout

    proc = ggen("run", "build", cwd=root, env={"GGEN_CACHE_DIR": str(store)})
    assert proc.returncode == 0, proc.stderr
    tasks = {t["id"]: t for t in last_summary(root)["tasks"]}
    assert {tid: t["key"] for tid, t in tasks.items()} == keys
    assert {tid: t["status"] for tid, t in tasks.items()} == dict.fromkeys(keys, "cached")
    for rel, text in outputs.items():
        assert (root / rel).read_text() == text
    assert (root / "apps/app/dist/latest").readlink() == Path("out.txt")
