"""The format of a cache entry's manifest: what a task produced, as validated orjson bytes.

Owns ``Manifest`` (with ``OutputEntry`` and ``SymlinkEntry``), its ``to_bytes``/``from_bytes``
encoding and the checks every manifest passes, whether written here or received from a remote
cache: field types and ranges (``CorruptEntry``) and paths (``check_paths``,
``check_symlink_target``: ``UnsafeEntry`` for anything that would write outside the workspace;
``check_outputs``: for any path the task's output globs do not match). These checks are pure;
the store (``ggen.cache.store``) adds those that look at the disk.

Paths are text as Python's ``os`` functions give them: a name that is not UTF-8 holds its odd
bytes as lone surrogates (``surrogateescape``). JSON cannot hold those, so such a path is
written as ``path_hex`` (its bytes in hex) instead of ``path``; likewise ``target_hex``.

Optional fields, written only when known: ``log_size`` (the log blob's size, so that a download
of any blob can be bounded by its declared size) and, in signed entries, ``sha256`` per output
and ``log_sha256`` (see ``ggen.cache.signing``). A signed envelope is opened by ``from_bytes``
without checking its signature: that is the job of whoever holds the key.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ggen.cache.files import is_output, is_staging_name, output_globs
from ggen.cache.signing import ENVELOPE_FIELDS, EnvelopeError, envelope_of

MANIFEST_VERSION = 1
HEX_DIGEST = re.compile(r"[0-9a-f]{32}")  # a blob digest or a task key
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_FORBIDDEN_PARTS = frozenset({"", ".", "..", ".git", ".ggen"})


class CorruptEntry(Exception):
    """A cache entry that cannot be used (malformed, truncated, missing blob); a miss."""


class UnsafeEntry(CorruptEntry):
    """A manifest whose paths would write outside the workspace; refused, a miss."""


@dataclass(frozen=True)
class OutputEntry:
    """One output file: workspace-relative path, content digest, size and permission bits, and
    in a signed entry the SHA-256 of the contents."""

    path: str
    digest: str
    size: int
    mode: int
    sha256: str | None = None


@dataclass(frozen=True)
class SymlinkEntry:
    """One output symlink: workspace-relative path and its (relative) target text."""

    path: str
    target: str


@dataclass(frozen=True)
class Manifest:
    """What a successful task produced: its outputs, its log and how it went."""

    key: str
    workspace: str
    phase: str
    outputs: tuple[OutputEntry, ...]
    symlinks: tuple[SymlinkEntry, ...]
    exit_code: int
    log_digest: str
    duration_ms: int
    created_ms: int
    log_size: int | None = None
    log_sha256: str | None = None
    dirs: tuple[str, ...] = ()  # empty output directories

    def digests(self) -> set[str]:
        """Every blob this manifest needs: its outputs' and its log's."""
        return {o.digest for o in self.outputs} | {self.log_digest}

    def blob_sizes(self) -> dict[str, int | None]:
        """Every blob this manifest needs with its declared size (None: not declared)."""
        sizes: dict[str, int | None] = {self.log_digest: self.log_size}
        for entry in self.outputs:
            sizes[entry.digest] = entry.size
        return sizes

    def to_bytes(self) -> bytes:
        """The manifest as orjson bytes (the format ``from_bytes`` reads)."""
        return orjson.dumps(
            {
                "version": MANIFEST_VERSION,
                "key": self.key,
                "workspace": self.workspace,
                "phase": self.phase,
                "outputs": [_output_dict(o) for o in self.outputs],
                "symlinks": [
                    {**_text("path", s.path), **_text("target", s.target)} for s in self.symlinks
                ],
                **({"dirs": [_text("path", d) for d in self.dirs]} if self.dirs else {}),
                "exit_code": self.exit_code,
                "log_digest": self.log_digest,
                "duration_ms": self.duration_ms,
                "created_ms": self.created_ms,
                **({} if self.log_size is None else {"log_size": self.log_size}),
                **({} if self.log_sha256 is None else {"log_sha256": self.log_sha256}),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, envelope: bool = True) -> Manifest:
        """Parse and validate a manifest (inside its signed envelope, unchecked, if it is in
        one and ``envelope``); ``CorruptEntry`` (``UnsafeEntry`` for dangerous paths) on
        anything malformed."""
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CorruptEntry(f"not valid JSON ({exc})") from None
        if envelope and isinstance(raw, dict) and raw.keys() == ENVELOPE_FIELDS:
            try:
                opened = envelope_of(raw)
            except EnvelopeError as exc:
                raise CorruptEntry(str(exc)) from None
            if opened is not None:
                return cls.from_bytes(opened[1], envelope=False)
        if not isinstance(raw, dict):
            raise CorruptEntry("not a JSON object")
        if raw.get("version") != MANIFEST_VERSION:
            raise CorruptEntry(f"unknown manifest version {raw.get('version')!r}")
        outputs = tuple(
            OutputEntry(
                path=_text_field(item, "path"),
                digest=_digest_field(item, "digest"),
                size=_int_field(item, "size"),
                mode=_int_field(item, "mode", high=0o777),
                sha256=_sha256_field(item, "sha256"),
            )
            for item in _list_field(raw, "outputs")
        )
        symlinks = tuple(
            SymlinkEntry(path=_text_field(item, "path"), target=_text_field(item, "target"))
            for item in _list_field(raw, "symlinks")
        )
        raw_dirs = _list_field(raw, "dirs") if "dirs" in raw else []
        dirs = tuple(_text_field(item, "path") for item in raw_dirs)
        manifest = cls(
            key=_key_field(raw),
            workspace=_field(raw, "workspace", str),
            phase=_field(raw, "phase", str),
            outputs=outputs,
            symlinks=symlinks,
            exit_code=_int_field(raw, "exit_code", low=-(2**31)),
            log_digest=_digest_field(raw, "log_digest"),
            duration_ms=_int_field(raw, "duration_ms"),
            created_ms=_int_field(raw, "created_ms"),
            log_size=_int_field(raw, "log_size") if "log_size" in raw else None,
            log_sha256=_sha256_field(raw, "log_sha256"),
            dirs=dirs,
        )
        check_paths(manifest)
        _check_sizes(manifest)
        return manifest


def _output_dict(entry: OutputEntry) -> dict[str, object]:
    out: dict[str, object] = {
        **_text("path", entry.path),
        "digest": entry.digest,
        "size": entry.size,
        "mode": entry.mode,
    }
    if entry.sha256 is not None:
        out["sha256"] = entry.sha256
    return out


def _check_sizes(manifest: Manifest) -> None:
    """Refuse a manifest that gives one blob two sizes: a download is bounded by the size."""
    sizes: dict[str, int] = {}
    declared = [(o.digest, o.size) for o in manifest.outputs]
    if manifest.log_size is not None:
        declared.append((manifest.log_digest, manifest.log_size))
    for digest, size in declared:
        if sizes.setdefault(digest, size) != size:
            raise CorruptEntry(f"blob {digest} is given two sizes, {sizes[digest]} and {size}")


def _sha256_field(obj: object, name: str) -> str | None:
    if not isinstance(obj, dict) or name not in obj:
        return None
    value: str = _field(obj, name, str)
    if not HEX_SHA256.fullmatch(value):
        raise CorruptEntry(f"field {name!r} is not a SHA-256: {value!r}")
    return value


def _field(obj: object, name: str, kind: type[Any]) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise CorruptEntry(f"missing field {name!r}")
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CorruptEntry(f"field {name!r} is not a {kind.__name__}")
    return value


def _text(name: str, value: str) -> dict[str, str]:
    """``{name: value}``, or ``{name_hex: bytes}`` for text that is not UTF-8 (see module doc)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return {f"{name}_hex": value.encode("utf-8", "surrogateescape").hex()}
    return {name: value}


def _text_field(obj: object, name: str) -> str:
    if isinstance(obj, dict) and name not in obj and f"{name}_hex" in obj:
        raw: str = _field(obj, f"{name}_hex", str)
        try:
            return bytes.fromhex(raw).decode("utf-8", "surrogateescape")
        except ValueError:
            raise CorruptEntry(f"field {name + '_hex'!r} is not hex bytes") from None
    value: str = _field(obj, name, str)
    return value


def _int_field(obj: object, name: str, *, low: int = 0, high: int = 2**63 - 1) -> int:
    value: int = _field(obj, name, int)
    if not low <= value <= high:
        raise CorruptEntry(f"field {name!r} out of range: {value}")
    return value


def _digest_field(obj: object, name: str) -> str:
    value: str = _field(obj, name, str)
    if not HEX_DIGEST.fullmatch(value):
        raise CorruptEntry(f"field {name!r} is not a digest: {value!r}")
    return value


def _key_field(obj: object) -> str:
    return _digest_field(obj, "key")


def _list_field(obj: object, name: str) -> list[object]:
    value: list[object] = _field(obj, name, list)
    return value


def entry_paths(manifest: Manifest) -> list[str]:
    """Every path a manifest names: files, symlinks and empty directories."""
    return (
        [o.path for o in manifest.outputs]
        + [s.path for s in manifest.symlinks]
        + list(manifest.dirs)
    )


def check_paths(manifest: Manifest) -> None:
    """Refuse (``UnsafeEntry``) paths that are absolute, climb with ``..``, enter ``.git`` or
    ``.ggen``, repeat, or lie below another entry; and symlink targets that are absolute or
    lead outside the workspace. Pure: looks at the manifest only."""
    paths = entry_paths(manifest)
    seen: set[str] = set()
    for path in paths:
        if path.startswith("/") or "\0" in path:
            raise UnsafeEntry(f"unsafe path {path!r}")
        parts = path.split("/")
        if any(part.lower() in _FORBIDDEN_PARTS for part in parts):
            raise UnsafeEntry(f"unsafe path {path!r}")
        if path in seen:
            raise UnsafeEntry(f"path {path!r} listed twice")
        seen.add(path)
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in seen:
                raise UnsafeEntry(f"path {path!r} lies below another entry")
    for link in manifest.symlinks:
        check_symlink_target(link.path, link.target)


def check_outputs(manifest: Manifest, outputs: Sequence[str]) -> None:
    """Refuse (``UnsafeEntry``) a manifest naming any path that the task's ``outputs`` globs do
    not match, or a restore's staging name: a restore writes and deletes only the task's own
    outputs. The key covers the globs, so such a manifest was not made by this task. Pure."""
    globs = output_globs(outputs)
    for path in entry_paths(manifest):
        if not is_output(path, globs) or is_staging_name(path):
            raise UnsafeEntry(f"path {path!r} is not one of the task's outputs")


def check_symlink_target(path: str, target: str) -> None:
    """Refuse a symlink target that is absolute or leads outside the workspace.

    ``..`` may only lead the target: after a component that could itself be a symlink on
    disk, ``..`` would climb from wherever that symlink points.
    """
    if not target or target.startswith("/") or "\0" in target:
        raise UnsafeEntry(f"symlink {path!r} -> {target!r} is not a relative target")
    parts = target.split("/")
    leading = 0
    while leading < len(parts) and parts[leading] == "..":
        leading += 1
    if ".." in parts[leading:]:
        raise UnsafeEntry(f"symlink {path!r} -> {target!r} has '..' after a name")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeEntry(f"symlink {path!r} -> {target!r} leads outside the workspace")
