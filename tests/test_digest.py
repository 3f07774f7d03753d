"""File digests and the stat memo (ggen.cache.digest)."""

from __future__ import annotations

import mmap
import os
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ggen.cache.digest import (
    COARSE_MARGIN_NS,
    FINE_MARGIN_NS,
    MMAP_MIN_SIZE,
    READ_CHUNK,
    DigestMemo,
    FileDigest,
    has_writers,
    hash_bytes,
    hash_file,
    is_trusted,
)
from ggen.cache.files import InputIndex
from ggen.cache.keys import InputFile, Recipe


def _write(path: Path, data: bytes, *, settle: bool = True) -> Path:
    """Write ``data``; with ``settle``, wait until the file is older than the racy margin, so
    that the memo may trust what it records from now on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if settle:
        _settle(path)
    return path


def _settle(path: Path) -> None:
    """Wait until ``path``'s mtime and ctime lie more than the racy margin in the past."""
    st = os.stat(path)
    ready = max(st.st_mtime_ns, st.st_ctime_ns) + FINE_MARGIN_NS
    while (now := time.time_ns()) <= ready:
        time.sleep((ready - now) / 1e9 + 0.001)


@pytest.mark.parametrize("data", [b"", b"x", b"hello world" * 1000, os.urandom(3 * 1024 * 1024)])
def test_hash_bytes_is_xxh3_128(data: bytes) -> None:
    assert hash_bytes(data) == xxhash.xxh3_128_hexdigest(data)
    assert len(hash_bytes(data)) == 32


@pytest.mark.parametrize(
    "size",
    [0, 1, READ_CHUNK - 1, READ_CHUNK, READ_CHUNK + 1, 3 * READ_CHUNK + 7, MMAP_MIN_SIZE + 13],
)
def test_hash_file_equals_hash_of_contents(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = _write(tmp_path / "f.bin", data)
    assert hash_file(path) == xxhash.xxh3_128_hexdigest(data)


def test_hash_file_large_while_another_handle_writes(tmp_path: Path) -> None:
    # an open writer makes the read lease impossible: the plain read loop must take over
    data = os.urandom(MMAP_MIN_SIZE * 2 + 5)
    path = _write(tmp_path / "big.bin", data)
    with open(path, "r+b"):
        assert hash_file(path) == xxhash.xxh3_128_hexdigest(data)


def test_hash_file_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "nope")


def test_memo_does_not_reread_unchanged_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", b"alpha")
    memo_file = tmp_path / "memo.json"
    memo = DigestMemo(memo_file)
    first = memo.digest(path)
    assert first == FileDigest(xxhash.xxh3_128_hexdigest(b"alpha"), 5, False)
    assert memo.files_read == 1
    assert memo.digest(path) == first
    assert memo.files_read == 1
    memo.save()

    again = DigestMemo(memo_file)
    assert again.digest(path) == first
    assert again.files_read == 0


def test_memo_rehashes_recently_modified_file(tmp_path: Path) -> None:
    # a file stamped within the timestamp granularity of its hashing is racy: never trusted
    path = _write(tmp_path / "fresh.txt", b"fresh", settle=False)
    memo_file = tmp_path / "memo.json"
    memo = DigestMemo(memo_file)
    memo.digest(path)
    memo.digest(path)
    assert memo.files_read == 2
    memo.save()
    reloaded = DigestMemo(memo_file)
    assert reloaded.digest(path).digest == xxhash.xxh3_128_hexdigest(b"fresh")
    assert reloaded.files_read == 1


def test_memo_sees_rewrite_within_same_tick(tmp_path: Path) -> None:
    # same size, and the mtime put back to the recorded value: the content must still be re-read
    path = _write(tmp_path / "f.txt", b"aaaa", settle=False)
    stamp = os.stat(path).st_mtime_ns
    memo = DigestMemo(None)
    assert memo.digest(path).digest == xxhash.xxh3_128_hexdigest(b"aaaa")
    path.write_bytes(b"bbbb")
    os.utime(path, ns=(stamp, stamp))
    assert memo.digest(path).digest == xxhash.xxh3_128_hexdigest(b"bbbb")
    assert memo.files_read == 2


def test_memo_sees_old_mtime_restored_after_rewrite(tmp_path: Path) -> None:
    # `cp -p` style: an old, trusted file rewritten, size and mtime unchanged; ctime tells
    path = _write(tmp_path / "f.txt", b"1111")
    memo = DigestMemo(None)
    memo.digest(path)
    memo.digest(path)
    assert memo.files_read == 1
    st = os.stat(path)
    path.write_bytes(b"2222")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns
    assert memo.digest(path).digest == xxhash.xxh3_128_hexdigest(b"2222")
    assert memo.files_read == 2


def test_trust_rule_margins() -> None:
    now = time.time_ns() // 1000 * 1000 + 7  # not a whole millisecond: a fine filesystem
    recent = now - FINE_MARGIN_NS // 2
    old = now - FINE_MARGIN_NS * 2
    assert not is_trusted(recent, old, now)
    assert not is_trusted(old, recent, now)  # ctime counts too
    assert is_trusted(old, old, now)
    # whole-second stamps betray a coarse filesystem: a 2 s margin applies
    second = now // 1_000_000_000 * 1_000_000_000
    assert not is_trusted(second, second, second + COARSE_MARGIN_NS // 2)
    assert is_trusted(second, second, second + COARSE_MARGIN_NS + 1)


def test_memo_reports_executable_bit_from_current_mode(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.sh", b"#!/bin/sh\n")
    memo = DigestMemo(None)
    assert memo.digest(path).executable is False
    path.chmod(0o755)
    assert memo.digest(path).executable is True


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xffgarbage",
        b'{"version": 1, "entries": {"/x": [1, 2',
        b'{"version": 99, "entries": {}}',
        b'{"version": 1, "entries": []}',
        b"[1, 2, 3]",
    ],
)
def test_corrupt_memo_file_counts_as_empty(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path / "a.txt", b"alpha")
    memo_file = tmp_path / "memo.json"
    memo_file.write_bytes(content)
    memo = DigestMemo(memo_file)
    assert len(memo) == 0
    assert memo.digest(path).digest == xxhash.xxh3_128_hexdigest(b"alpha")
    memo.save()
    assert orjson.loads(memo_file.read_bytes())["version"] == 1


def test_malformed_entries_are_read_again(tmp_path: Path) -> None:
    files = [_write(tmp_path / f"{name}.txt", name.encode(), settle=False) for name in "abcd"]
    _settle(files[-1])
    st = os.stat(files[0])
    recorded = max(st.st_mtime_ns, st.st_ctime_ns) + 2 * FINE_MARGIN_NS
    good = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, recorded, "f" * 32]
    entries = {
        str(files[0]): good,
        str(files[1]): ["x", *good[1:]],
        str(files[2]): good[:3],
        str(files[3]): "garbage",
    }
    memo_file = tmp_path / "memo.json"
    memo_file.write_bytes(orjson.dumps({"version": 1, "entries": entries}))
    memo = DigestMemo(memo_file)
    assert memo.digest(files[0]).digest == "f" * 32  # trusted: it is the memo's word
    assert memo.files_read == 0
    for f in files[1:]:
        assert memo.digest(f).digest == xxhash.xxh3_128_hexdigest(f.read_bytes())
    assert memo.files_read == 3


def test_save_writes_only_when_changed(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", b"alpha")
    memo_file = tmp_path / "memo.json"
    memo = DigestMemo(memo_file)
    memo.digest(path)
    memo.save()
    before = os.stat(memo_file)
    quiet = DigestMemo(memo_file)
    quiet.digest(path)
    quiet.save()
    after = os.stat(memo_file)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_concurrent_savers_merge(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.txt", b"alpha")
    b = _write(tmp_path / "b.txt", b"beta")
    memo_file = tmp_path / "memo.json"
    first, second = DigestMemo(memo_file), DigestMemo(memo_file)
    first.digest(a)
    second.digest(b)
    first.save()
    second.save()
    merged = DigestMemo(memo_file)
    merged.digest(a)
    merged.digest(b)
    assert merged.files_read == 0


def test_missing_file_raises_and_is_forgotten(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", b"alpha")
    memo_file = tmp_path / "memo.json"
    memo = DigestMemo(memo_file)
    memo.digest(path)
    memo.save()
    path.unlink()
    reloaded = DigestMemo(memo_file)
    with pytest.raises(FileNotFoundError):
        reloaded.digest(path)
    reloaded.save()
    assert str(path) not in orjson.loads(memo_file.read_bytes())["entries"]


def test_memo_is_bounded_keeping_used_entries(tmp_path: Path) -> None:
    files = [_write(tmp_path / f"f{i}.txt", b"x" * i, settle=False) for i in range(6)]
    _settle(files[-1])
    memo_file = tmp_path / "memo.json"
    memo = DigestMemo(memo_file)
    for f in files[:5]:
        memo.digest(f)
    memo.save()

    bounded = DigestMemo(memo_file, max_entries=3)
    for f in files[3:]:  # two known, one new: something changed, so it saves
        bounded.digest(f)
    bounded.save()
    kept = orjson.loads(memo_file.read_bytes())["entries"]
    assert len(kept) == 3
    assert {str(f) for f in files[3:]} <= set(kept)


def test_save_to_unwritable_place_does_not_raise(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    memo = DigestMemo(blocker / "memo.json")
    memo.digest(_write(tmp_path / "a.txt", b"alpha"))
    memo.save()
    assert blocker.read_text() == "not a directory"


def test_relative_paths_are_keyed_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "a.txt", b"alpha")
    monkeypatch.chdir(tmp_path)
    memo_file = tmp_path / "memo.json"
    memo = DigestMemo(memo_file)
    memo.digest(Path("a.txt"))
    memo.save()
    assert list(orjson.loads(memo_file.read_bytes())["entries"]) == [str(tmp_path / "a.txt")]


# -- what the memo can see: writes through a shared mapping ---------------------------------
def test_memo_sees_writes_through_a_shared_mapping(tmp_path: Path) -> None:
    """Writes through a writable shared mapping change mtime only at the first write to a clean
    page: later ones change the bytes with every stat field unchanged. The memo never records
    a digest while the file is mapped (or open) for writing, so it reads such a file again."""
    path = _write(tmp_path / "mapped.bin", b"a" * 4096)
    fd = os.open(path, os.O_RDWR)
    try:
        with mmap.mmap(fd, 4096) as mapped:
            mapped[0:1] = b"b"  # the first write: mtime moves now, and only now
            _settle(path)
            memo = DigestMemo(None)
            assert memo.digest(path).digest == hash_bytes(b"b" + b"a" * 4095)
            before = os.stat(path)
            mapped[1:2] = b"c"
            after = os.stat(path)
            unchanged = (before.st_size, before.st_mtime_ns, before.st_ctime_ns, before.st_ino)
            assert unchanged == (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino)
            assert memo.digest(path).digest == hash_bytes(b"bc" + b"a" * 4094)
    finally:
        os.close(fd)
    # once no one can write it any more, it is memoised again
    memo.digest(path)
    read = memo.files_read
    assert memo.digest(path).digest == hash_bytes(b"bc" + b"a" * 4094)
    assert memo.files_read == read


def test_a_file_open_for_writing_is_read_every_time(tmp_path: Path) -> None:
    path = _write(tmp_path / "open.txt", b"data")
    with open(path, "r+b"):
        memo = DigestMemo(None)
        memo.digest(path)
        memo.digest(path)
        assert memo.files_read == 2
    assert has_writers_of(path) is False


def has_writers_of(path: Path) -> bool | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return has_writers(fd)
    finally:
        os.close(fd)


# -- any name the filesystem allows ------------------------------------------------------------
byte_names = (
    st.binary(min_size=1, max_size=10)
    .map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_"))
    .filter(lambda b: b not in (b".", b"..", b".git", b".ggen"))
)
special = st.sampled_from(
    [b"new\nline", b"\xff\xfe", b"sp ace", b"quo\"te's", b"caf\xc3\xa9", b"\x00bytes:41"]
)
name_sets = st.lists(
    st.one_of(special.map(lambda b: b.replace(b"\0", b"_")), byte_names),
    min_size=1,
    max_size=6,
    unique=True,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=name_sets, use_git=st.booleans())
def test_any_file_name_is_listed_keyed_and_memoised(names: list[bytes], use_git: bool) -> None:
    """Byte file names (newlines, not UTF-8, spaces, quotes): listed as inputs, keyed by their
    bytes, memoised; the memo and the key recipe survive being saved and loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = os.path.join(os.fsencode(root), b"src")
        os.mkdir(src)
        for i, name in enumerate(names):
            with open(os.path.join(src, name), "wb") as f:
                f.write(b"content %d" % i)
        if use_git:
            subprocess.run(["git", "init", "-q", str(root)], check=True)
        index = InputIndex(root)
        pairs = index.task_inputs(".", ["src/**"], ())
        assert sorted(os.fsencode(k) for k, _ in pairs) == sorted(b"src/" + n for n in names)
        _settle(Path(os.fsdecode(os.path.join(src, names[-1]))))
        memo_file = root / ".ggen" / "digests.json"
        memo = DigestMemo(memo_file)
        inputs = tuple(InputFile(k, memo.digest(p).digest, False) for k, p in pairs)
        recipe = Recipe("build", ".", ("cat src/*",), (), (), inputs, ())
        memo.save()
        assert memo_file.exists()
        again = DigestMemo(memo_file)
        for key_path, path in pairs:
            assert again.digest(path).digest == dict((f.path, f.digest) for f in inputs)[key_path]
        assert again.files_read == 0
        data = orjson.loads(orjson.dumps(recipe.to_json()))
        assert Recipe.from_json(data) == recipe and Recipe.from_json(data).key() == recipe.key()
        # every name is keyed by its own bytes: renaming one file changes the key
        first = os.path.join(src, names[0])
        os.rename(first, first + b"~")
        moved = tuple(
            InputFile(
                os.fsdecode(b"src/" + names[0] + b"~") if f.path == pairs[0][0] else f.path,
                f.digest,
                False,
            )
            for f in inputs
        )
        assert Recipe("build", ".", ("cat src/*",), (), (), moved, ()).key() != recipe.key()
