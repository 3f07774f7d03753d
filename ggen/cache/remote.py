"""Client for a remote cache that speaks Bazel's HTTP cache protocol.

Layout on the server, under the base URL::

    BASE/ac/KEY       the manifest of one task key (32 hex digits)
    BASE/cas/DIGEST   one blob, addressed by its xxh3-128 digest (32 hex digits)

read with GET, written with PUT, probed with HEAD, so nginx with WebDAV ``PUT`` (or
bazel-remote, or any such server) serves it. A 404 is a miss; anything else that is not a 2xx
is a fault.

Data flow of a lookup (``ggen.cache.cache.Cache``: this client never touches the store itself):
local store first; on a local miss, ``Cache.fetch`` gets the manifest, downloads its missing
blobs into the local store (each streamed to a temp file next
to its destination, its digest checked while streaming, then renamed into place), and only
when every blob has arrived stores the manifest locally. After a task succeeds,
``Cache.push`` uploads its blobs (skipping those the server has) and then the manifest,
so a reader never sees a manifest whose blobs are not there yet.

Trust: with a signing key, manifests travel in a signed envelope (``ggen.cache.signing``), so
an entry cannot be edited or replayed under another key; an unsigned or wrongly signed
manifest, or a signed one without the SHA-256 of its blobs, is refused as a miss with a
warning. Without a signing key, plain manifests and envelopes are both accepted (an envelope is
unwrapped without being checked): a reader that holds no key has nothing to check with.
Manifests are then parsed by the local store's own validation (path safety included) before
anything is stored (``ggen.cache.cache``, which moves entries between the store and here).

Bounds: a manifest is read up to ``MAX_MANIFEST_BYTES``; a blob up to the size its manifest
declares (``UNDECLARED_BLOB_BYTES`` for a log whose old manifest gives none), and it is
refused as soon as one byte more arrives, or when it ends short. Every transfer (request,
answer and body) has a total deadline, ``GGEN_REMOTE_CACHE_TIMEOUT`` or ``[cache]
remote_timeout`` seconds, on top of the read timeout that bounds each silence. Reads block in
threads that neither a timeout nor a signal can wake, so the client keeps track of the
connection each transfer uses (``_Transfers``): a watchdog thread shuts the socket of a
transfer past its deadline, and an interrupt (``abort``, ``close``) shuts every one, which
ends the blocked reads at once.

Faults (connection refused, timeouts, a missed deadline, 5xx, 413, a truncated or overlong
body, a blob whose digest is wrong): the first one is reported once, and the client then
behaves as if no remote cache were configured for the rest of the run (``disabled``), without
touching the network again. A remote cache never fails a build.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from http.client import RemoteDisconnected
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import unquote

import urllib3
import xxhash
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
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
from ggen.cache.signing import ENV_SIGNING_KEY, SignatureError, open_signed

# the signing primitives, re-exported: they lived here first
from ggen.cache.signing import ENVELOPE_VERSION as ENVELOPE_VERSION
from ggen.cache.signing import SIGNATURE_DOMAIN as SIGNATURE_DOMAIN
from ggen.cache.signing import EnvelopeError as EnvelopeError
from ggen.cache.signing import manifest_signature as manifest_signature
from ggen.cache.signing import open_envelope as open_envelope
from ggen.cache.signing import seal_manifest as seal_manifest
from ggen.errors import UsageError

ENV_URL = "GGEN_REMOTE_CACHE"
ENV_TOKEN = "GGEN_REMOTE_CACHE_TOKEN"
ENV_TIMEOUT = "GGEN_REMOTE_CACHE_TIMEOUT"

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 30.0
TRANSFER_DEADLINE_S = 120.0  # whole transfer; GGEN_REMOTE_CACHE_TIMEOUT, [cache] remote_timeout
MAX_DEADLINE_S = 86400.0
CHUNK_SIZE = 1 << 16
MAX_MANIFEST_BYTES = 16 << 20
UNDECLARED_BLOB_BYTES = 1 << 30  # a log blob named by a manifest that gives no log_size
DRAIN_LIMIT = 64 << 10

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


class _Transfer:
    """One request with its answer and body, run in one thread: its deadline, the socket it
    uses (once it has one), and whether it was stopped for its deadline or an interrupt."""

    __slots__ = ("aborted", "deadline", "expired", "owner", "sock")

    def __init__(self, owner: _Transfers, deadline: float) -> None:
        self.owner = owner
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.expired = False
        self.aborted = False

    @property
    def stopped(self) -> bool:
        return self.expired or self.aborted

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


_CURRENT: ContextVar[_Transfer | None] = ContextVar("ggen_remote_transfer", default=None)


def _shut(sock: socket.socket) -> None:
    """Shut a socket down: a read or write blocked on it in another thread returns at once
    (closing the descriptor would not wake it)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the raw socket, under any TLS


class _Transfers:
    """The live transfers of one client; a watchdog thread stops those past their deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._cond = threading.Condition()
        self._live: set[_Transfer] = set()
        self._aborted = False
        self._closed = False
        self._watchdog: threading.Thread | None = None

    @contextlib.contextmanager
    def track(self) -> Iterator[_Transfer]:
        """Run one transfer in this block: the socket of the connection it opens or reuses is
        attached to it (``_attach``), and it is stopped at its deadline or on ``abort``."""
        transfer = _Transfer(self, time.monotonic() + self.deadline)
        with self._cond:
            transfer.aborted = self._aborted
            self._live.add(transfer)
            if self._watchdog is None and not self._closed:
                self._watchdog = threading.Thread(
                    target=self._watch, name="ggen-transfer-deadlines", daemon=True
                )
                self._watchdog.start()
            self._cond.notify_all()
        token = _CURRENT.set(transfer)
        try:
            yield transfer
        finally:
            _CURRENT.reset(token)
            with self._cond:
                self._live.discard(transfer)

    def attach(self, transfer: _Transfer, sock: socket.socket) -> None:
        with self._cond:
            transfer.sock = sock
            stopped = transfer.stopped
        if stopped:
            _shut(sock)

    def abort(self) -> None:
        """Stop every live transfer now, and every later one as soon as it starts."""
        with self._cond:
            self._aborted = True
            live = list(self._live)
            for transfer in live:
                transfer.aborted = True
        for transfer in live:
            if transfer.sock is not None:
                _shut(transfer.sock)

    def close(self) -> None:
        """Abort what is live and end the watchdog."""
        self.abort()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                waiting = [t for t in self._live if not t.stopped]
                for transfer in waiting:
                    if transfer.deadline <= now:
                        transfer.expired = True
                        if transfer.sock is not None:
                            _shut(transfer.sock)
                pending = [t.deadline for t in waiting if not t.expired]
                self._cond.wait(min(pending) - now if pending else None)


def _attach(conn: HTTPConnection) -> None:
    """Attach the socket of ``conn`` to the transfer running in this thread. The socket, not
    the connection: a response read to the connection's close keeps the socket after the
    connection has let go of it."""
    transfer = _CURRENT.get()
    sock = getattr(conn, "sock", None)
    if transfer is not None and isinstance(sock, socket.socket):
        transfer.owner.attach(transfer, sock)


class _TrackedHTTPConnection(HTTPConnection):
    """A connection that attaches its socket to the current transfer, new or reused."""

    def connect(self) -> None:
        super().connect()
        _attach(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)


class _TrackedHTTPSConnection(HTTPSConnection):
    """``_TrackedHTTPConnection`` over TLS."""

    def connect(self) -> None:
        super().connect()
        _attach(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


def deadline_from_env(environ: Mapping[str, str] | None = None) -> float | None:
    """``GGEN_REMOTE_CACHE_TIMEOUT`` in seconds, or None if unset; ``UsageError`` if it is not
    a positive number of seconds up to a day."""
    raw = (os.environ if environ is None else environ).get(ENV_TIMEOUT)
    if raw is None or raw == "":
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_DEADLINE_S):
        raise UsageError(
            f"{ENV_TIMEOUT}={raw!r}: expected a number of seconds above 0 and at most "
            f"{MAX_DEADLINE_S:g}, e.g. {ENV_TIMEOUT}=120"
        )
    return seconds


class RemoteCache:
    """A connection-pooled client of one remote cache, for one run.

    ``url`` may carry Basic credentials (``https://user:pass@host/cache``); they are removed
    from the URL and sent as an ``Authorization`` header. ``token`` sends ``Bearer TOKEN``
    instead and takes precedence over URL credentials. ``timeout`` is the read timeout in
    seconds (the longest silence tolerated while waiting for bytes); ``connect_timeout`` bounds
    connecting; ``deadline`` bounds each transfer as a whole (request, answer and body).
    ``max_parallel`` bounds concurrent transfers of ``download_many`` and ``upload_many``.
    ``warn`` receives every warning (default: standard error).
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
        deadline: float = TRANSFER_DEADLINE_S,
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
        self._connect_timeout = connect_timeout
        self._read_timeout = timeout
        self._transfers = _Transfers(deadline)
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
        self._pool.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}

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
        config_deadline: float | None = None,
    ) -> RemoteCache | None:
        """The client a run should use, or None when no remote cache is configured.

        The URL is the first of ``url`` (``--remote-cache``), ``GGEN_REMOTE_CACHE``, and
        ``config_url`` (``[cache] remote``) that is set; an empty string there means "no remote
        cache" and stops the search. ``GGEN_REMOTE_CACHE_TOKEN`` gives a bearer token,
        ``GGEN_CACHE_SIGNING_KEY`` the manifest signing key (UTF-8), and
        ``GGEN_REMOTE_CACHE_TIMEOUT`` (else ``config_deadline``, ``[cache] remote_timeout``)
        the deadline of each transfer. An invalid URL or deadline raises ``UsageError``.
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
        deadline = deadline_from_env(env) or config_deadline or TRANSFER_DEADLINE_S
        return cls(
            chosen,
            read_only=read_only,
            token=env.get(ENV_TOKEN) or None,
            signing_key=raw_key.encode("utf-8") if raw_key else None,
            timeout=timeout,
            max_parallel=max_parallel,
            warn=warn,
            deadline=deadline,
        )

    @property
    def url(self) -> str:
        """The base URL without credentials."""
        return self._base

    @property
    def deadline(self) -> float:
        """Seconds each transfer may take as a whole."""
        return self._transfers.deadline

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
        self._transfers.abort()  # the other transfers running now are of no use any more

    def _stopped(self, transfer: _Transfer, method: str, path: str) -> bool:
        """Whether ``transfer`` was stopped (then it is a fault, reported, unless the run was
        interrupted, which has nothing to report)."""
        if not transfer.stopped and transfer.remaining() <= 0:
            # a socket timeout that fires at the deadline, before the watchdog marks the
            # transfer, is the deadline all the same
            transfer.expired = True
        if transfer.aborted:
            self._disabled = True
        elif transfer.expired:
            self._fault(
                f"{method} {path}: not done within {self._transfers.deadline:g}s "
                f"(the deadline of a transfer: {ENV_TIMEOUT}, [cache] remote_timeout)"
            )
        return transfer.stopped

    def _request(
        self,
        transfer: _Transfer,
        method: str,
        path: str,
        *,
        body: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse | None:
        """Send a request within ``transfer`` and return the response with its body unread,
        or None after a fault (reported)."""
        if self._disabled:
            return None
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        for attempt in (1, 2):
            left = transfer.remaining()
            try:
                return self._pool.request(
                    method,
                    self._base + path,
                    body=body,
                    headers={**self._pool.headers, **(headers or {})},
                    preload_content=False,
                    decode_content=False,
                    redirect=False,
                    timeout=Timeout(
                        connect=min(self._connect_timeout, left),
                        read=min(self._read_timeout, left),
                    ),
                )
            except TransportError as exc:
                if self._stopped(transfer, method, path):
                    return None
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

    def _read_body(
        self,
        transfer: _Transfer,
        response: urllib3.BaseHTTPResponse,
        path: str,
        limit: int,
        sink: Callable[[bytes], object],
        bound: str,
    ) -> int | None:
        """Pass the body to ``sink`` in chunks and return its length; None after a fault (a
        broken transfer, a missed deadline, or a body longer than ``limit``, which is read no
        further than ``limit`` + 1 bytes; ``bound`` says what the limit is, for the warning)."""
        announced = response.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and int(announced) > limit:
            self._fault(f"GET {path}: the server announces {announced} bytes, more than {bound}")
            return None
        received = 0
        try:
            while chunk := response.read(min(CHUNK_SIZE, limit + 1 - received)):
                received += len(chunk)
                if received > limit:
                    self._fault(f"GET {path}: the body is longer than {bound}")
                    return None
                sink(chunk)
        except TransportError as exc:
            if not self._stopped(transfer, "GET", path):
                self._fault(f"GET {path}: {_describe(exc)}")
            return None
        if self._stopped(transfer, "GET", path):  # the body may look complete after a stop
            return None
        return received

    def _unexpected(self, method: str, path: str, response: urllib3.BaseHTTPResponse) -> None:
        self._fault(f"{method} {path}: HTTP {response.status} {response.reason or ''}".rstrip())

    # Manifests

    def get_manifest(self, key: str) -> bytes | None:
        """The manifest stored under ``key``, or None on a miss, a refusal or a fault.

        With a signing key, only an envelope with a valid signature for this key is accepted;
        without one, a plain manifest is returned as is and an envelope is unwrapped unchecked.
        """
        path = f"/ac/{check_hex32(key, 'key')}"
        data = bytearray()
        with self._transfers.track() as transfer:
            response = self._request(transfer, "GET", path)
            if response is None:
                return None
            complete = False
            try:
                if response.status == 404:
                    return None
                if response.status != 200:
                    self._unexpected("GET", path, response)
                    return None
                bound = f"the {MAX_MANIFEST_BYTES}-byte bound of a manifest"
                length = self._read_body(
                    transfer, response, path, MAX_MANIFEST_BYTES, data.extend, bound
                )
                complete = length is not None
                if not complete:
                    return None
            finally:
                _finish(response, reuse=_reusable(transfer, response, complete))
        return self._open(key, bytes(data))

    def _open(self, key: str, data: bytes) -> bytes | None:
        if self._signing_key is not None:
            try:
                return open_signed(self._signing_key, key, data)
            except SignatureError as exc:
                self.warn(f"refused manifest {key}: {exc}")
                return None
        try:
            envelope = open_envelope(data)
        except EnvelopeError as exc:
            self.warn(f"refused manifest {key}: {exc}")
            return None
        return data if envelope is None else envelope[1]

    @property
    def signing_key(self) -> bytes | None:
        """The key manifests are signed and checked with, if any."""
        return self._signing_key

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
        status = self._call("PUT", path, body=body, headers=headers)
        return status is not None and 200 <= status < 300

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        quiet: tuple[int, ...] = (),
    ) -> int | None:
        """Send a request whose answer's body does not matter (PUT, HEAD) as one transfer;
        its status, or None after a fault. A status neither 2xx nor ``quiet`` is a fault too."""
        with self._transfers.track() as transfer:
            response = self._request(transfer, method, path, body=body, headers=headers)
            if response is None:
                return None
            try:
                if not 200 <= response.status < 300 and response.status not in quiet:
                    self._unexpected(method, path, response)
                return response.status
            finally:
                _finish(response, reuse=not transfer.stopped)

    # Blobs

    def has_manifest(self, key: str) -> bool:
        """Whether the server holds an entry for ``key`` (HEAD, nothing downloaded); False on
        a fault. ``ggen explain`` asks this: it says what a run would do, fetching nothing."""
        if self._disabled:
            return False
        return self._call("HEAD", f"/ac/{check_hex32(key, 'key')}", quiet=(404,)) == 200

    def has_blob(self, digest: str) -> bool:
        """Whether the server holds the blob ``digest`` (HEAD); False on a fault."""
        path = f"/cas/{check_hex32(digest, 'digest')}"
        return self._call("HEAD", path, quiet=(404,)) == 200

    def download_blob(
        self,
        digest: str,
        dest: Path,
        *,
        tmp_dir: Path | None = None,
        size: int | None = None,
    ) -> bool:
        """Download blob ``digest`` to ``dest``, atomically and verified; False if not done.

        The body is streamed into a temp file (in ``tmp_dir``, which must be on the same file
        system as ``dest``; default: beside ``dest``) while its xxh3-128 digest is computed;
        only a complete body of the declared ``size`` (None: at most ``UNDECLARED_BLOB_BYTES``)
        with the right digest is renamed to ``dest``; reading stops at the first byte past the
        size. A blob the server lacks is a quiet False; a wrong digest or size, a broken
        transfer or a missed deadline is a fault.
        """
        path = f"/cas/{check_hex32(digest, 'digest')}"
        limit = UNDECLARED_BLOB_BYTES if size is None else size
        with self._transfers.track() as transfer:
            response = self._request(transfer, "GET", path)
            if response is None:
                return False
            tmp: str | None = None
            complete = False
            try:
                if response.status == 404:
                    complete = True
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

                    def sink(chunk: bytes) -> None:
                        hasher.update(chunk)
                        out.write(chunk)

                    bound = (
                        f"the {size} bytes declared"
                        if size is not None
                        else f"the {limit}-byte bound of a blob of undeclared size"
                    )
                    received = self._read_body(transfer, response, path, limit, sink, bound)
                if received is None:
                    return False
                complete = True
                if size is not None and received != size:
                    self._fault(f"GET {path}: the body ends at {received} of {size} bytes")
                    return False
                actual = hasher.hexdigest()
                if actual != digest:
                    self._fault(f"GET {path}: received a blob whose digest is {actual}")
                    return False
                os.chmod(tmp, 0o644)
                os.replace(tmp, dest)
                tmp = None
                return True
            except OSError as exc:
                self.warn(f"cannot write {dest}: {exc}")
                return False
            finally:
                _finish(response, reuse=_reusable(transfer, response, complete))
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
                status = self._call("PUT", path, body=f, headers=headers)
        except OSError as exc:
            self.warn(f"cannot read {src}: {exc}")
            return False
        return status is not None and 200 <= status < 300

    def download_many(
        self,
        items: Sequence[tuple[str, Path]],
        *,
        tmp_dir: Path | None = None,
        sizes: Mapping[str, int | None] | None = None,
    ) -> bool:
        """Download every ``(digest, dest)`` pair, at most ``max_parallel`` at a time.

        True when every blob arrived. ``tmp_dir`` and each blob's size in ``sizes`` (by
        digest; absent: undeclared) are passed on to ``download_blob``.
        """
        known = sizes or {}

        def one(digest: str, dest: Path) -> bool:
            return self.download_blob(digest, dest, tmp_dir=tmp_dir, size=known.get(digest))

        return self._each(one, items)

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
            # Interrupted (Ctrl-C): queued transfers never start; running ones have their
            # sockets shut, so their blocked reads end now and they remove their temp files.
            self._disabled = True
            self._transfers.abort()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return all(results)

    def abort(self) -> None:
        """Stop every transfer now (an interrupted run) and start none from now on."""
        self._disabled = True
        self._transfers.abort()

    def close(self) -> None:
        """Stop the transfers still running (an interrupt) and close the pooled connections."""
        self._transfers.close()
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


def _reusable(transfer: _Transfer, response: urllib3.BaseHTTPResponse, complete: bool) -> bool:
    """Whether the connection of ``response`` may serve the next request: not after a stop,
    and for a 200 only once its body was read whole."""
    return not transfer.stopped and (complete or response.status != 200)


def _finish(response: urllib3.BaseHTTPResponse, *, reuse: bool) -> None:
    """Give the connection back to the pool for the next request.

    With ``reuse``, a small unread body (an error page) is read and dropped to keep the
    connection alive; otherwise, or in the middle of a large body, it is closed instead.
    """
    if not response.closed:
        remaining = getattr(response, "length_remaining", None)
        if reuse and remaining is not None and remaining <= DRAIN_LIMIT:
            with contextlib.suppress(TransportError, OSError):
                response.drain_conn()
        else:
            response.close()
    response.release_conn()
