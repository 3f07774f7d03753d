"""The store's layout (ggen.cache.layout): where blobs and manifests go, and file operations
that never follow a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ggen.cache.layout import blob_path, files_in, is_regular, manifest_path, touch, unlink

DIGEST = "ab" + "0" * 30


def test_paths_fan_out_by_the_first_two_hex_digits(tmp_path: Path) -> None:
    assert blob_path(tmp_path, DIGEST) == tmp_path / "blobs" / "ab" / DIGEST
    assert manifest_path(tmp_path, DIGEST) == tmp_path / "manifests" / "ab" / f"{DIGEST}.json"


@pytest.mark.parametrize("bad", ["", "AB" + "0" * 30, "../" + "0" * 29, "0" * 31, "g" * 32])
def test_a_name_that_is_not_a_digest_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="not a digest"):
        blob_path(tmp_path, bad)
    with pytest.raises(ValueError, match="not a cache key"):
        manifest_path(tmp_path, bad)


def test_symlinks_are_not_regular_files_and_are_never_touched_through(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"x")
    os.utime(target, ns=(0, 0))
    link = tmp_path / "link"
    link.symlink_to(target)
    assert is_regular(target) and not is_regular(link) and not is_regular(tmp_path / "none")
    assert touch(link) is False
    assert target.stat().st_mtime_ns == 0
    assert touch(target) is True
    assert target.stat().st_mtime_ns > 0


def test_unlink_says_whether_it_removed(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    assert unlink(path) is True
    assert not path.exists()
    assert unlink(path) is False
    assert unlink("") is False


def test_files_in_lists_regular_files_one_level_down_and_skips_symlinks(tmp_path: Path) -> None:
    top = tmp_path / "blobs"
    (top / "ab").mkdir(parents=True)
    (top / "ab" / "one").write_bytes(b"1")
    (top / "stray").write_bytes(b"22")
    (top / "ab" / "sub").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret").write_bytes(b"333")
    (top / "cd").symlink_to(elsewhere)
    (top / "ab" / "link").symlink_to(elsewhere / "secret")
    found = {os.path.relpath(p, top): st.st_size for p, st in files_in(top)}
    assert found == {os.path.join("ab", "one"): 1, "stray": 2}
    assert list(files_in(tmp_path / "missing")) == []
