"""The manifest format and its pure checks (ggen.cache.manifest): what a stored entry may say.

The store's handling of bad manifests on disk is in test_store.py, restores in test_restore.py.
"""

from __future__ import annotations

import orjson
import pytest

from ggen.cache.manifest import (
    CorruptEntry,
    Manifest,
    OutputEntry,
    SymlinkEntry,
    UnsafeEntry,
    check_outputs,
    check_paths,
)

KEY = "a" * 32
DIGEST = "1" * 32


def manifest(
    outputs: tuple[OutputEntry, ...] = (),
    symlinks: tuple[SymlinkEntry, ...] = (),
    dirs: tuple[str, ...] = (),
) -> Manifest:
    return Manifest(
        key=KEY,
        workspace="web",
        phase="build",
        outputs=outputs,
        symlinks=symlinks,
        exit_code=0,
        log_digest="0" * 32,
        duration_ms=1,
        created_ms=1,
        dirs=dirs,
    )


def test_a_manifest_round_trips_through_its_bytes() -> None:
    m = manifest(
        outputs=(OutputEntry("dist/a.js", DIGEST, 10, 0o755),),
        symlinks=(SymlinkEntry("dist/b.js", "a.js"),),
        dirs=("dist/empty",),
    )
    assert Manifest.from_bytes(m.to_bytes()) == m
    assert m.digests() == {DIGEST, "0" * 32}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"version": 99}', "unknown manifest version"),
    ],
)
def test_what_is_not_a_manifest_is_a_corrupt_entry(data: bytes, error: str) -> None:
    with pytest.raises(CorruptEntry, match=error):
        Manifest.from_bytes(data)


def test_a_wrong_field_is_a_corrupt_entry() -> None:
    doc = orjson.loads(manifest(outputs=(OutputEntry("a", DIGEST, 1, 0o644),)).to_bytes())
    doc["outputs"][0]["digest"] = "not hex"
    with pytest.raises(CorruptEntry):
        Manifest.from_bytes(orjson.dumps(doc))


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../up", "a/../../up", ".git/hooks/x", "a/.GGEN/x", "a//b", "a\0b"]
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafeEntry):
        check_paths(manifest(outputs=(OutputEntry(path, DIGEST, 1, 0o644),)))


def test_a_path_listed_twice_or_below_another_entry_is_refused() -> None:
    twice = (OutputEntry("a", DIGEST, 1, 0o644), OutputEntry("a", DIGEST, 1, 0o644))
    with pytest.raises(UnsafeEntry, match="listed twice"):
        check_paths(manifest(outputs=twice))
    below = (OutputEntry("a/b", DIGEST, 1, 0o644),)
    with pytest.raises(UnsafeEntry, match="below another entry"):
        check_paths(manifest(outputs=below, symlinks=(SymlinkEntry("a", "x"),)))


@pytest.mark.parametrize("target", ["/etc", "../../out", "a/../../../out"])
def test_a_symlink_leading_out_of_the_workspace_is_refused(target: str) -> None:
    with pytest.raises(UnsafeEntry):
        check_paths(manifest(symlinks=(SymlinkEntry("dist/link", target),)))


def test_only_the_tasks_own_outputs_may_be_named() -> None:
    m = manifest(outputs=(OutputEntry("dist/a.js", DIGEST, 1, 0o644),))
    check_outputs(m, ["dist"])
    with pytest.raises(UnsafeEntry):
        check_outputs(m, ["build"])
    staged = manifest(outputs=(OutputEntry("dist/.ggen-restore-x", DIGEST, 1, 0o644),))
    with pytest.raises(UnsafeEntry):
        check_outputs(staged, ["dist"])
