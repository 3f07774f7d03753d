"""Blobs of the local store (ggen.cache.blobs): written once, read back only when intact."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import xxhash

from ggen.cache.blobs import open_blob, put_bytes, put_file, put_log_file, sha256_checked
from ggen.cache.layout import blob_path
from ggen.cache.manifest import CorruptEntry

DATA = b"contents of a blob\n" * 1000


def test_a_blob_is_written_once_then_only_touched(tmp_path: Path) -> None:
    digest = xxhash.xxh3_128_hexdigest(DATA)
    assert put_bytes(tmp_path, digest, DATA) == len(DATA)
    os.utime(blob_path(tmp_path, digest), ns=(0, 0))
    assert put_bytes(tmp_path, digest, DATA) == 0
    assert blob_path(tmp_path, digest).stat().st_mtime_ns > 0  # spared by a concurrent prune
    assert b"".join(open_blob(tmp_path, digest)) == DATA
    assert list((tmp_path / "tmp").iterdir()) == []


def test_files_and_logs_are_stored_under_their_digest(tmp_path: Path) -> None:
    source = tmp_path / "out.bin"
    source.write_bytes(DATA)
    digest = xxhash.xxh3_128_hexdigest(DATA)
    assert put_file(tmp_path / "s", source) == (digest, len(DATA), len(DATA))
    assert put_file(tmp_path / "s", source) == (digest, len(DATA), 0)
    assert put_log_file(tmp_path / "s", source) == (digest, 0, len(DATA))
    assert put_log_file(tmp_path / "t", source) == (digest, len(DATA), len(DATA))


def test_a_corrupt_blob_is_refused_and_removed_after_reading(tmp_path: Path) -> None:
    digest = xxhash.xxh3_128_hexdigest(DATA)
    put_bytes(tmp_path, digest, DATA)
    blob_path(tmp_path, digest).write_bytes(b"rotten")
    with pytest.raises(CorruptEntry, match="is corrupt"):
        b"".join(open_blob(tmp_path, digest))
    assert not blob_path(tmp_path, digest).exists()
    with pytest.raises(CorruptEntry, match="is missing"):
        b"".join(open_blob(tmp_path, digest))


def test_a_symlinked_blob_is_never_followed(tmp_path: Path) -> None:
    digest = xxhash.xxh3_128_hexdigest(DATA)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(DATA)
    path = blob_path(tmp_path, digest)
    path.parent.mkdir(parents=True)
    path.symlink_to(elsewhere)
    with pytest.raises(CorruptEntry, match="is a symlink"):
        b"".join(open_blob(tmp_path, digest))
    assert not path.is_symlink() and elsewhere.read_bytes() == DATA


def test_sha256_must_be_given_and_match(tmp_path: Path) -> None:
    digest = xxhash.xxh3_128_hexdigest(DATA)
    put_bytes(tmp_path, digest, DATA)
    right = hashlib.sha256(DATA).hexdigest()
    assert b"".join(sha256_checked(tmp_path, digest, right)) == DATA
    with pytest.raises(CorruptEntry, match="has no SHA-256"):
        b"".join(sha256_checked(tmp_path, digest, None))
    with pytest.raises(CorruptEntry, match="does not match the SHA-256"):
        b"".join(sha256_checked(tmp_path, digest, "0" * 64))
    assert not blob_path(tmp_path, digest).exists()
