"""Signed manifests: the envelope, its HMAC, and what a signed entry must carry.

With ``GGEN_CACHE_SIGNING_KEY`` set, every manifest ggen writes, to the local store or to a
remote cache, travels in an envelope ``{"v":1,"sig":HEX,"manifest":BASE64}`` whose HMAC-SHA256
covers a length-prefixed encoding of the task key and the manifest, so an entry can be neither
edited nor replayed under another key. Every manifest ggen reads is then checked
(``open_signed``) wherever it comes from: a cache directory shared with others is no more
trusted than a remote server. Blobs are named by xxh3-128, which is fast but not
collision-resistant, so a signed manifest also carries the SHA-256 of each blob it names
(``check_attested``), which the restore checks while copying the blob.

Without a key nothing here runs on the hot path: manifests are written plain, and an envelope
met on reading is opened without a check (``ggen.cache.manifest`` does it), since a reader
without the key has nothing to check with. The hashing modules are imported when first used,
so that reading the key costs a run without one nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from ggen.cache.manifest import Manifest

ENV_SIGNING_KEY = "GGEN_CACHE_SIGNING_KEY"
SIGNATURE_DOMAIN = b"ggen-manifest-v1"
ENVELOPE_VERSION = 1
ENVELOPE_FIELDS = frozenset({"v", "sig", "manifest"})  # the keys of a signed envelope
_CHUNK = 1 << 20


class EnvelopeError(ValueError):
    """A document shaped like a signed envelope that cannot be read."""


class SignatureError(ValueError):
    """A manifest refused under a signing key: unsigned, wrongly signed, or without the
    SHA-256 digests a signed entry carries."""


def signing_key_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key (UTF-8 bytes of ``GGEN_CACHE_SIGNING_KEY``), or None if unset or empty."""
    raw = (os.environ if environ is None else environ).get(ENV_SIGNING_KEY)
    return raw.encode("utf-8") if raw else None


def manifest_signature(signing_key: bytes, key: str, manifest: bytes) -> str:
    """HMAC-SHA256 (hex) of a manifest stored under ``key``.

    The message is ``b"ggen-manifest-v1"`` followed by the key and the manifest, each preceded
    by its length as 8 bytes big-endian, so no two (key, manifest) pairs share an encoding.
    """
    import hashlib
    import hmac

    key_bytes = key.encode("ascii")
    message = b"".join(
        (
            SIGNATURE_DOMAIN,
            len(key_bytes).to_bytes(8, "big"),
            key_bytes,
            len(manifest).to_bytes(8, "big"),
            manifest,
        )
    )
    return hmac.new(signing_key, message, hashlib.sha256).hexdigest()


def seal_manifest(signing_key: bytes, key: str, manifest: bytes) -> bytes:
    """The signed envelope of ``manifest`` as it is stored."""
    import base64

    return orjson.dumps(
        {
            "v": ENVELOPE_VERSION,
            "sig": manifest_signature(signing_key, key, manifest),
            "manifest": base64.b64encode(manifest).decode("ascii"),
        }
    )


def envelope_of(doc: object) -> tuple[str, bytes] | None:
    """``(signature, manifest)`` if the parsed JSON ``doc`` is an envelope, else None.

    An envelope is a JSON object with exactly the keys ``v``, ``sig`` and ``manifest``; a
    malformed one raises ``EnvelopeError``.
    """
    if not isinstance(doc, dict) or doc.keys() != ENVELOPE_FIELDS:
        return None
    sig, body = doc["sig"], doc["manifest"]
    if doc["v"] != ENVELOPE_VERSION or not isinstance(sig, str) or not isinstance(body, str):
        raise EnvelopeError(f"unsupported envelope (version {doc['v']!r})")
    import base64
    import binascii

    try:
        return sig, base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"envelope body is not base64: {exc}") from exc


def open_envelope(data: bytes) -> tuple[str, bytes] | None:
    """Return ``(signature, manifest)`` if ``data`` is a signed envelope, None if it is not one
    (``EnvelopeError`` if it is a malformed one)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return envelope_of(doc)


def open_signed(signing_key: bytes, key: str, data: bytes) -> bytes:
    """The manifest inside ``data`` if it is an envelope signed with ``signing_key`` for
    ``key``; ``SignatureError`` otherwise."""
    try:
        envelope = open_envelope(data)
    except EnvelopeError as exc:
        raise SignatureError(str(exc)) from None
    if envelope is None:
        raise SignatureError("it is not signed")
    import hmac

    sig, manifest = envelope
    expected = manifest_signature(signing_key, key, manifest)
    if not hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8")):
        raise SignatureError("wrong signature")
    return manifest


def check_attested(manifest: Manifest) -> None:
    """Refuse (``SignatureError``) a signed manifest that does not give the size and SHA-256
    of every blob it names (one signed by a ggen older than these fields)."""
    if manifest.log_sha256 is None or manifest.log_size is None:
        raise SignatureError("signed without the SHA-256 of its log (an older ggen wrote it)")
    for entry in manifest.outputs:
        if entry.sha256 is None:
            raise SignatureError(f"signed without the SHA-256 of {entry.path!r}")


def sha256_file(path: Path) -> str:
    """The SHA-256 (hex) of a file's contents."""
    import hashlib

    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()
