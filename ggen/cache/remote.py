"""Client for a remote cache that speaks Bazel's HTTP cache protocol.

Layout on the server, under the base URL::

    BASE/ac/KEY       the manifest of one task key (32 hex digits)
    BASE/cas/DIGEST   one blob, addressed by its xxh3-128 digest (32 hex digits)

read with GET, written with PUT, probed with HEAD, so nginx with WebDAV ``PUT`` (or
bazel-remote, or any such server) serves it. A 404 is a miss; anything else that is not a 2xx
is a fault.

Data flow of a lookup: local store first; on a local miss, ``fetch_into_store`` gets the
manifest, downloads its missing blobs into the local store (each streamed to a temp file next
to its destination, its digest checked while streaming, then renamed into place), and only
when every blob has arrived stores the manifest locally. After a task succeeds,
``push_from_store`` uploads its blobs (skipping those the server has) and then the manifest,
so a reader never sees a manifest whose blobs are not there yet.

Trust: with a signing key, manifests travel in an envelope ``{"v":1,"sig":HEX,
"manifest":BASE64}`` whose HMAC-SHA256 covers a length-prefixed encoding of the key and the
manifest, so an entry cannot be edited or replayed under another key; an unsigned or wrongly
signed manifest is refused as a miss with a warning. Without a signing key, plain manifests
and envelopes are both accepted (an envelope is unwrapped without being checked): a reader
that holds no key has nothing to check with. Manifests are then parsed by the local store's
own validation (path safety included) before anything is stored.

Faults (connection refused, timeouts, 5xx, 413, a truncated body, a blob whose digest is
wrong): the first one is reported once, and the client then behaves as if no remote cache
were configured for the rest of the run (``disabled``), without touching the network again.
A remote cache never fails a build.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.client import RemoteDisconnected
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote

import orjson
import urllib3
import xxhash
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as TransportError
from urllib3.util import Timeout, parse_url

from ggen import __version__
from ggen.cache.digest import hash_fd
from ggen.errors import UsageError

if TYPE_CHECKING:
    from ggen.cache.store import Store

ENV_URL = "GGEN_REMOTE_CACHE"
ENV_TOKEN = "GGEN_REMOTE_CACHE_TOKEN"
ENV_SIGNING_KEY = "GGEN_CACHE_SIGNING_KEY"

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 30.0
CHUNK_SIZE = 1 << 16
MAX_MANIFEST_BYTES = 16 << 20
DRAIN_LIMIT = 64 << 10
SIGNATURE_DOMAIN = b"ggen-manifest-v1"
ENVELOPE_VERSION = 1

_HEX32 = re.compile(r"[0-9a-f]{32}")


def _stderr_warning(message: str) -> None:
    print(f"ggen: warning: {message}", file=sys.stderr)


def check_hex32(value: str, what: str) -> str:
    """Return ``value`` if it is 32 lowercase hex digits, else raise ``ValueError``.

    Keys and digests become URL path segments and file names, so nothing else may pass.
    """
    if not isinstance(value, str) or _HEX32.fullmatch(value) is None:
        raise ValueError(f"invalid {what} {value!r}: expected 32 lowercase hex digits")
    return value


def manifest_signature(signing_key: bytes, key: str, manifest: bytes) -> str:
    """HMAC-SHA256 (hex) of a manifest stored under ``key``.

    The message is ``b"ggen-manifest-v1"`` followed by the key and the manifest, each preceded
    by its length as 8 bytes big-endian, so no two (key, manifest) pairs share an encoding.
    """
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
    """The signed envelope of ``manifest`` as it is stored on the server."""
    return orjson.dumps(
        {
            "v": ENVELOPE_VERSION,
            "sig": manifest_signature(signing_key, key, manifest),
            "manifest": base64.b64encode(manifest).decode("ascii"),
        }
    )


class EnvelopeError(ValueError):
    """A document shaped like a signed envelope that cannot be read."""


def open_envelope(data: bytes) -> tuple[str, bytes] | None:
    """Return ``(signature, manifest)`` if ``data`` is a signed envelope, None if it is not one.

    An envelope is a JSON object with exactly the keys ``v``, ``sig`` and ``manifest``;
    a malformed one raises ``EnvelopeError``.
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or set(doc) != {"v", "sig", "manifest"}:
        return None
    sig, body = doc["sig"], doc["manifest"]
    if doc["v"] != ENVELOPE_VERSION or not isinstance(sig, str) or not isinstance(body, str):
        raise EnvelopeError(f"unsupported envelope (version {doc['v']!r})")
    try:
        return sig, base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"envelope body is not base64: {exc}") from exc


def _describe(exc: BaseException) -> str:
    """A short, credential-free reason for a transport error."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        return _describe(exc.reason)
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError
        return str(exc).rsplit(": ", 1)[-1]
    if isinstance(exc, ConnectTimeoutError):
        return "connection timed out"
    if isinstance(exc, ReadTimeoutError):
        return "read timed out"
    if isinstance(exc, ProtocolError) and exc.args and isinstance(exc.args[0], str):
        if len(exc.args) > 1 and exc.args[0].endswith("."):  # "Connection aborted."
            return f"{exc.args[0].rstrip('.')}: {exc.args[1]!r}"
        return exc.args[0]
    return f"{type(exc).__name__}: {exc}"


def _closed_without_response(exc: BaseException) -> bool:
    """Whether the server dropped the connection before answering (a stale keep-alive)."""
    return (
        isinstance(exc, ProtocolError)
        and len(exc.args) > 1
        and isinstance(exc.args[1], (RemoteDisconnected, ConnectionResetError, BrokenPipeError))
    )


class RemoteCache:
    """A connection-pooled client of one remote cache, for one run.

    ``url`` may carry Basic credentials (``https://user:pass@host/cache``); they are removed
    from the URL and sent as an ``Authorization`` header. ``token`` sends ``Bearer TOKEN``
    instead and takes precedence over URL credentials. ``timeout`` is the read timeout in
    seconds (the longest silence tolerated while waiting for bytes); ``connect_timeout`` bounds
    connecting. ``max_parallel`` bounds concurrent transfers of ``download_many`` and
    ``upload_many``. ``warn`` receives every warning (default: standard error).
    """

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        token: str | None = None,
        signing_key: bytes | None = None,
        timeout: float = READ_TIMEOUT_S,
        max_parallel: int = 8,
        warn: Callable[[str], None] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, not {max_parallel}")
        self._base, basic = _split_url(url)
        self._read_only = read_only
        self._signing_key = signing_key
        self._max_parallel = max_parallel
        self._warn = warn if warn is not None else _stderr_warning
        self._lock = threading.Lock()
        self._disabled = False
        headers = {"User-Agent": f"ggen/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif basic is not None:
            headers.update(urllib3.make_headers(basic_auth=basic))
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=max_parallel,
            headers=headers,
            timeout=Timeout(connect=connect_timeout, read=timeout),
            retries=False,
            blocksize=CHUNK_SIZE,
        )

    @classmethod
    def from_env(
        cls,
        url: str | None,
        read_only: bool,
        warn: Callable[[str], None] | None = None,
        *,
        config_url: str | None = None,
        environ: Mapping[str, str] | None = None,
        timeout: float = READ_TIMEOUT_S,
        max_parallel: int = 8,
    ) -> RemoteCache | None:
        """The client a run should use, or None when no remote cache is configured.

        The URL is the first of ``url`` (``--remote-cache``), ``GGEN_REMOTE_CACHE``, and
        ``config_url`` (``[cache] remote``) that is set; an empty string there means "no remote
        cache" and stops the search. ``GGEN_REMOTE_CACHE_TOKEN`` gives a bearer token and
        ``GGEN_CACHE_SIGNING_KEY`` the manifest signing key (UTF-8). An invalid URL raises
        ``UsageError``.
        """
        env = os.environ if environ is None else environ
        chosen = next((u for u in (url, env.get(ENV_URL), config_url) if u is not None), None)
        if not chosen:
            return None
        raw_key = env.get(ENV_SIGNING_KEY)
        if raw_key == "":
            (warn if warn is not None else _stderr_warning)(
                f"{ENV_SIGNING_KEY} is set but empty: remote manifests will not be verified"
            )
        return cls(
            chosen,
            read_only=read_only,
            token=env.get(ENV_TOKEN) or None,
            signing_key=raw_key.encode("utf-8") if raw_key else None,
            timeout=timeout,
            max_parallel=max_parallel,
            warn=warn,
        )

    @property
    def url(self) -> str:
        """The base URL without credentials."""
        return self._base

    @property
    def read_only(self) -> bool:
        """True when this client never writes (untrusted jobs)."""
        return self._read_only

    @property
    def disabled(self) -> bool:
        """True once a fault was seen: the remote is then treated as absent for the run."""
        return self._disabled

    def warn(self, message: str) -> None:
        """Pass a warning about this remote cache to the run's warning sink."""
        self._warn(f"remote cache {self._base}: {message}")

    def _fault(self, reason: str) -> None:
        with self._lock:
            if self._disabled:
                return
            self._disabled = True
        self.warn(f"{reason}; continuing without the remote cache for this run")

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse | None:
        if self._disabled:
            return None
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        for attempt in (1, 2):
            try:
                return self._pool.request(
                    method,
                    self._base + path,
                    body=body,
                    headers={**self._pool.headers, **(headers or {})},
                    preload_content=not stream,
                    redirect=False,
                )
            except TransportError as exc:
                # A keep-alive connection that the server closes just as it is reused fails
                # before any response; every method used here is idempotent, so try once more
                # on a new connection.
                if attempt == 1 and _closed_without_response(exc):
                    if body is not None and not isinstance(body, bytes):
                        body.seek(start)
                    continue
                self._fault(f"{method} {path}: {_describe(exc)}")
                return None
        return None

    def _unexpected(self, method: str, path: str, response: urllib3.BaseHTTPResponse) -> None:
        self._fault(f"{method} {path}: HTTP {response.status} {response.reason or ''}".rstrip())

    # Manifests

    def get_manifest(self, key: str) -> bytes | None:
        """The manifest stored under ``key``, or None on a miss, a refusal or a fault.

        With a signing key, only an envelope with a valid signature for this key is accepted;
        without one, a plain manifest is returned as is and an envelope is unwrapped unchecked.
        """
        path = f"/ac/{check_hex32(key, 'key')}"
        response = self._request("GET", path, stream=True)
        if response is None:
            return None
        try:
            if response.status == 404:
                return None
            if response.status != 200:
                self._unexpected("GET", path, response)
                return None
            data = bytearray()
            for chunk in response.stream(CHUNK_SIZE):
                data += chunk
                if len(data) > MAX_MANIFEST_BYTES:
                    self.warn(f"refused manifest {key}: larger than {MAX_MANIFEST_BYTES} bytes")
                    return None
        except TransportError as exc:
            self._fault(f"GET {path}: {_describe(exc)}")
            return None
        finally:
            _finish(response)
        return self._open(key, bytes(data))

    def _open(self, key: str, data: bytes) -> bytes | None:
        try:
            envelope = open_envelope(data)
        except EnvelopeError as exc:
            self.warn(f"refused manifest {key}: {exc}")
            return None
        if self._signing_key is None:
            return data if envelope is None else envelope[1]
        if envelope is None:
            self.warn(f"refused manifest {key}: it is not signed")
            return None
        sig, manifest = envelope
        expected = manifest_signature(self._signing_key, key, manifest)
        if not hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8")):
            self.warn(f"refused manifest {key}: wrong signature")
            return None
        return manifest

    def put_manifest(self, key: str, manifest: bytes) -> bool:
        """Store ``manifest`` under ``key`` (signed when a signing key is set).

        Returns False without any request in read-only mode or once disabled.
        """
        path = f"/ac/{check_hex32(key, 'key')}"
        if self.read_only or self._disabled:
            return False
        body = manifest
        if self._signing_key is not None:
            body = seal_manifest(self._signing_key, key, manifest)
        headers = {"Content-Type": "application/octet-stream"}
        response = self._request("PUT", path, body=body, headers=headers)
        if response is None:
            return False
        if 200 <= response.status < 300:
            return True
        self._unexpected("PUT", path, response)
        return False

    # Blobs

    def has_blob(self, digest: str) -> bool:
        """Whether the server holds the blob ``digest`` (HEAD); False on a fault."""
        path = f"/cas/{check_hex32(digest, 'digest')}"
        response = self._request("HEAD", path)
        if response is None:
            return False
        if response.status == 200:
            return True
        if response.status != 404:
            self._unexpected("HEAD", path, response)
        return False

    def download_blob(self, digest: str, dest: Path, *, tmp_dir: Path | None = None) -> bool:
        """Download blob ``digest`` to ``dest``, atomically and verified; False if not done.

        The body is streamed into a temp file (in ``tmp_dir``, which must be on the same file
        system as ``dest``; default: beside ``dest``) while its xxh3-128 digest is computed;
        only a complete body with the right digest is renamed to ``dest``. A blob the server
        lacks is a quiet False; a wrong digest or a broken transfer is a fault.
        """
        path = f"/cas/{check_hex32(digest, 'digest')}"
        response = self._request("GET", path, stream=True)
        if response is None:
            return False
        tmp: str | None = None
        try:
            if response.status == 404:
                return False
            if response.status != 200:
                self._unexpected("GET", path, response)
                return False
            dest.parent.mkdir(parents=True, exist_ok=True)
            where = dest.parent if tmp_dir is None else tmp_dir
            where.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=where, prefix=f".{dest.name}.", suffix=".part")
            hasher = xxhash.xxh3_128()
            with os.fdopen(fd, "wb") as out:
                for chunk in response.stream(CHUNK_SIZE):
                    if self._disabled:  # a fault elsewhere, or an interrupted run
                        return False
                    hasher.update(chunk)
                    out.write(chunk)
            actual = hasher.hexdigest()
            if actual != digest:
                self._fault(f"GET {path}: received a blob whose digest is {actual}")
                return False
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
            tmp = None
            return True
        except TransportError as exc:
            self._fault(f"GET {path}: {_describe(exc)}")
            return False
        except OSError as exc:
            self.warn(f"cannot write {dest}: {exc}")
            return False
        finally:
            _finish(response)
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def upload_blob(self, digest: str, src: Path) -> bool:
        """Upload ``src`` as blob ``digest`` unless the server already has it.

        The file is hashed first, so a corrupt local blob is never published, then streamed
        as the request body. Returns True when the server holds the blob afterwards; False in
        read-only mode, once disabled, or on any failure.
        """
        path = f"/cas/{check_hex32(digest, 'digest')}"
        if self.read_only or self._disabled:
            return False
        if self.has_blob(digest):
            return True
        if self._disabled:
            return False
        try:
            with src.open("rb") as f:
                actual, size = hash_fd(f.fileno())
                if actual != digest:
                    self.warn(f"not uploading {src}: its digest is {actual}, not {digest}")
                    return False
                f.seek(0)
                headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
                response = self._request("PUT", path, body=f, headers=headers)
        except OSError as exc:
            self.warn(f"cannot read {src}: {exc}")
            return False
        if response is None:
            return False
        if 200 <= response.status < 300:
            return True
        self._unexpected("PUT", path, response)
        return False

    def download_many(
        self, items: Sequence[tuple[str, Path]], *, tmp_dir: Path | None = None
    ) -> bool:
        """Download every ``(digest, dest)`` pair, at most ``max_parallel`` at a time.

        True when every blob arrived. ``tmp_dir`` is passed on to ``download_blob``.
        """
        return self._each(lambda d, p: self.download_blob(d, p, tmp_dir=tmp_dir), items)

    def upload_many(self, items: Sequence[tuple[str, Path]]) -> bool:
        """Upload every ``(digest, src)`` pair, at most ``max_parallel`` at a time.

        True when the server holds every blob afterwards.
        """
        return self._each(self.upload_blob, items)

    def _each(self, action: Callable[[str, Path], bool], items: Sequence[tuple[str, Path]]) -> bool:
        unique = list(dict.fromkeys((check_hex32(d, "digest"), Path(p)) for d, p in items))
        if not unique:
            return True
        if len(unique) == 1:
            return action(*unique[0])
        workers = min(self._max_parallel, len(unique))
        pool = ThreadPoolExecutor(workers, thread_name_prefix="ggen-remote")
        try:
            results = list(pool.map(lambda item: action(*item), unique))
        except BaseException:
            # Interrupted (Ctrl-C): do not wait for queued transfers; running downloads stop
            # at their next chunk and remove their temp files.
            self._disabled = True
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return all(results)

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.clear()

    def __enter__(self) -> RemoteCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _split_url(url: str) -> tuple[str, str | None]:
    """(base URL without credentials, ``user:password`` or None)."""
    try:
        parsed = parse_url(url)
    except LocationParseError as exc:
        raise UsageError(f"invalid remote cache URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(
            f"invalid remote cache URL {parsed._replace(auth=None).url!r}: "
            "expected http://HOST[:PORT][/PATH] or https://..."
        )
    if parsed.query is not None or parsed.fragment is not None:
        raise UsageError("invalid remote cache URL: it may not have a query or a fragment")
    base = parsed._replace(auth=None).url.rstrip("/")
    basic = None
    if parsed.auth is not None:
        user, _, password = parsed.auth.partition(":")
        basic = f"{unquote(user)}:{unquote(password)}"
    return base, basic


def _finish(response: urllib3.BaseHTTPResponse) -> None:
    """Give the connection back to the pool for the next request.

    A small unread body (an error page) is read and dropped to keep the connection alive; a
    connection left in the middle of a large or broken body is closed instead.
    """
    if not response.closed:
        remaining = getattr(response, "length_remaining", None)
        if remaining is not None and remaining <= DRAIN_LIMIT:
            response.drain_conn()
        else:
            response.close()
    response.release_conn()


def _entry_digests(remote: RemoteCache, key: str, data: bytes) -> list[str] | None:
    """The blob digests a manifest needs, or None (with a warning) if it is unusable.

    Parsing is the local store's own validation, path-safety rules included.
    """
    from ggen.cache.store import CorruptEntry, Manifest

    try:
        manifest = Manifest.from_bytes(data)
    except CorruptEntry as exc:
        remote.warn(f"refused manifest {key}: {exc}")
        return None
    if manifest.key != key:
        remote.warn(f"refused manifest {key}: it is the entry of {manifest.key}")
        return None
    return sorted(manifest.digests())


def fetch_into_store(remote: RemoteCache, store: Store, key: str) -> bool:
    """Copy the entry ``key`` (manifest, output blobs, log blob) from the remote into ``store``.

    Blobs come first, each verified and renamed into place (through the store's ``tmp/``
    directory, which the store's pruning cleans after a crash); the manifest is stored last
    and only if every blob arrived, so the local store never holds an entry with missing
    blobs. True on a remote hit now present locally.
    """
    from ggen.cache.store import CorruptEntry

    if remote.disabled:
        return False
    data = remote.get_manifest(key)
    if data is None:
        return False
    digests = _entry_digests(remote, key, data)
    if digests is None:
        return False
    missing = [(d, store.blob_path(d)) for d in digests if not store.has_blob(d)]
    if not remote.download_many(missing, tmp_dir=store.root / "tmp"):
        return False
    try:
        store.put_manifest_bytes(key, data)
    except CorruptEntry as exc:
        remote.warn(f"refused manifest {key}: {exc}")
        return False
    return True


def push_from_store(remote: RemoteCache, store: Store, key: str) -> bool:
    """Copy the entry ``key`` from ``store`` to the remote: blobs first, then the manifest.

    A reader therefore never finds a manifest whose blobs are missing. False in read-only
    mode, once the remote is disabled, or when the local entry is absent or unusable.
    """
    if remote.read_only or remote.disabled:
        return False
    data = store.manifest_bytes(key)
    if data is None:
        return False
    digests = _entry_digests(remote, key, data)
    if digests is None:
        return False
    if not remote.upload_many([(d, store.blob_path(d)) for d in digests]):
        return False
    return remote.put_manifest(key, data)
