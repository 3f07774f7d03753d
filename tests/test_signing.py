"""Signed manifests (ggen.cache.signing) and a local store that holds a signing key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ggen.cache.manifest import Manifest
from ggen.cache.signing import (
    SignatureError,
    check_attested,
    manifest_signature,
    open_envelope,
    open_signed,
    seal_manifest,
    signing_key_from_env,
)
from ggen.cache.store import CorruptEntry, Store

KEY = "0123456789abcdef0123456789abcdef"
SIGNING_KEY = b"correct horse battery staple"
LOG = b"built\n"


class Warnings(list[str]):
    """Collects warnings."""


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "dist").mkdir(parents=True)
    (ws / "dist" / "app.js").write_bytes(b"console.log(1)\n")
    (ws / "dist" / "empty").write_bytes(b"")
    return ws


def saved(tmp_path: Path, signing_key: bytes | None) -> tuple[Store, Warnings, Manifest]:
    warned = Warnings()
    store = Store(tmp_path / "store", warn=warned.append, signing_key=signing_key)
    manifest = store.save(
        KEY,
        workspace="web",
        phase="build",
        ws_dir=workspace(tmp_path),
        outputs=["dist/**"],
        log=LOG,
        exit_code=0,
        duration_ms=3,
    )
    assert manifest is not None
    return store, warned, manifest


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_signing_key_from_env() -> None:
    assert signing_key_from_env({}) is None
    assert signing_key_from_env({"GGEN_CACHE_SIGNING_KEY": ""}) is None
    assert signing_key_from_env({"GGEN_CACHE_SIGNING_KEY": "clé"}) == "clé".encode()


def test_a_signed_store_writes_envelopes_with_sha256_and_reads_them_back(tmp_path: Path) -> None:
    store, warned, manifest = saved(tmp_path, SIGNING_KEY)
    on_disk = store.manifest_path(KEY).read_bytes()
    opened = open_envelope(on_disk)
    assert opened is not None
    assert opened[0] == manifest_signature(SIGNING_KEY, KEY, opened[1])
    assert {o.path: o.sha256 for o in manifest.outputs} == {
        "dist/app.js": sha256(b"console.log(1)\n"),
        "dist/empty": sha256(b""),
    }
    assert manifest.log_sha256 == sha256(LOG)
    assert manifest.log_size == len(LOG)
    assert store.lookup(KEY) == manifest
    out = tmp_path / "out"
    store.restore(manifest, out, outputs=["dist/**"])
    assert (out / "dist" / "app.js").read_bytes() == b"console.log(1)\n"
    assert store.read_log(manifest) == LOG
    assert store.manifest_bytes(KEY) == manifest.to_bytes()
    assert store.verify().ok  # verify and prune read envelopes too
    assert store.prune() == 0
    assert warned == []
    # a reader without the key opens the envelope (it has nothing to check it with)
    assert Store(store.root).lookup(KEY) == manifest


def test_without_a_key_manifests_stay_plain_and_carry_no_sha256(tmp_path: Path) -> None:
    store, _, manifest = saved(tmp_path, None)
    on_disk = store.manifest_path(KEY).read_bytes()
    assert open_envelope(on_disk) is None
    assert b"sha256" not in on_disk
    assert all(o.sha256 is None for o in manifest.outputs)
    assert manifest.log_sha256 is None


@pytest.mark.parametrize("forger", ["unsigned", "another key", "another entry's"])
def test_a_forged_local_manifest_is_refused_with_a_warning(tmp_path: Path, forger: str) -> None:
    store, warned, manifest = saved(tmp_path, SIGNING_KEY)
    evil = store.put_blob_bytes(b"owned")
    forged = Manifest.from_bytes(
        manifest.to_bytes().replace(manifest.outputs[0].digest.encode(), evil.encode())
    ).to_bytes()
    data = {
        "unsigned": forged,
        "another key": seal_manifest(b"guessed", KEY, forged),
        "another entry's": seal_manifest(SIGNING_KEY, "f" * 32, forged),
    }[forger]
    store.manifest_path(KEY).write_bytes(data)
    assert store.lookup(KEY) is None
    assert store.manifest_bytes(KEY) is None  # never published signed either
    assert len(warned) == 1
    assert f"cache entry {KEY} refused" in warned[0]
    assert store.manifest_path(KEY).exists()  # left for the task's own save to replace


def test_a_signed_manifest_without_sha256_is_refused(tmp_path: Path) -> None:
    store, warned, manifest = saved(tmp_path, None)
    store.manifest_path(KEY).write_bytes(seal_manifest(SIGNING_KEY, KEY, manifest.to_bytes()))
    signed = Store(store.root, warn=warned.append, signing_key=SIGNING_KEY)
    assert signed.lookup(KEY) is None
    assert len(warned) == 1
    assert "without the SHA-256" in warned[0]


def test_a_blob_whose_sha256_disagrees_is_refused_and_removed(tmp_path: Path) -> None:
    """What a blob with the same xxh3 digest but other contents would meet: the restore
    hashes it with SHA-256 while copying, refuses it, and writes nothing."""
    store, warned, manifest = saved(tmp_path, SIGNING_KEY)
    entry = next(o for o in manifest.outputs if o.path == "dist/app.js")
    doc = orjson.loads(manifest.to_bytes())
    for item in doc["outputs"]:
        if item["path"] == entry.path:
            item["sha256"] = sha256(b"something else")
    store.put_manifest_bytes(KEY, orjson.dumps(doc))  # signed with the right key
    lied = store.lookup(KEY)
    assert lied is not None
    out = tmp_path / "out"
    with pytest.raises(CorruptEntry, match="SHA-256"):
        store.restore(lied, out, outputs=["dist/**"])
    assert not (out / "dist" / "app.js").exists()
    assert not store.has_blob(entry.digest)
    assert store.manifest_bytes(KEY) is None
    assert warned == []  # the caller reports it


def test_a_log_whose_sha256_disagrees_is_refused(tmp_path: Path) -> None:
    store, _, manifest = saved(tmp_path, SIGNING_KEY)
    doc = orjson.loads(manifest.to_bytes())
    doc["log_sha256"] = sha256(b"another log")
    store.put_manifest_bytes(KEY, orjson.dumps(doc))
    lied = store.lookup(KEY)
    assert lied is not None
    with pytest.raises(CorruptEntry, match="SHA-256"):
        store.read_log(lied)


def test_check_attested() -> None:
    plain = Manifest(KEY, "web", "build", (), (), 0, "a" * 32, 1, 1)
    with pytest.raises(SignatureError, match="log"):
        check_attested(plain)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_a_signed_envelope_is_refused(data: st.DataObject) -> None:
    manifest = Manifest(KEY, "web", "build", (), (), 0, "a" * 32, 1, 1, 0, "b" * 64).to_bytes()
    sealed = bytearray(seal_manifest(SIGNING_KEY, KEY, manifest))
    at = data.draw(st.integers(min_value=0, max_value=len(sealed) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    sealed[at] ^= flip
    try:
        opened = open_signed(SIGNING_KEY, KEY, bytes(sealed))
    except SignatureError:
        return
    # base64 may decode two spellings to the same bytes: then nothing was changed
    assert opened == manifest


def test_a_signature_is_bound_to_its_key_and_signing_key() -> None:
    sealed = seal_manifest(SIGNING_KEY, KEY, b"{}")
    assert open_signed(SIGNING_KEY, KEY, sealed) == b"{}"
    for signing_key, key in ((b"other", KEY), (SIGNING_KEY, "f" * 32)):
        with pytest.raises(SignatureError, match="wrong signature"):
            open_signed(signing_key, key, sealed)
    with pytest.raises(SignatureError, match="not signed"):
        open_signed(SIGNING_KEY, KEY, b"{}")
