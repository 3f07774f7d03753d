"""Real HTTP servers on loopback for tests: nginx with WebDAV PUT, and a scripted Python server.

``NginxServer(tmp_dir)`` writes an nginx configuration into ``tmp_dir`` (document root, temp
paths, logs, pid file all inside it), starts the distribution's nginx in the foreground on
127.0.0.1 at a free port, and stops it by pid, checking that the master and its workers are
gone. A missing nginx binary is an error, never a skip.

``ScriptedServer`` is a small threaded HTTP server whose handler is a function, for the faults
nginx will not produce on demand (a body shorter than its Content-Length, a server that never
answers). ``MisbehavingCache`` builds on it: a remote cache that serves manifests honestly and
every blob badly (an endless body, a drip of one byte per second, a stall after the headers).

pytest puts ``tests/`` on ``sys.path``, so a test module imports these with ``from servers
import NginxServer``. The fixture is registered under the name ``nginx_server`` whatever name
it is imported as; import it under another name so that linters do not see the test
parameter as a redefinition::

    from servers import nginx_server as nginx_server_fixture  # noqa: F401

    def test_something(nginx_server: NginxServer) -> None: ...
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import http.server
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType

import psutil
import pytest

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
LOOPBACK = "127.0.0.1"
SYNC_PREFIX = "/.ggen-test-sync-"

# One line per request: method, uri, status, connection serial, request number on it.
ACCESS_LOG_FORMAT = "$request_method $uri $status $connection $connection_requests"


def find_nginx() -> str:
    """Return the path of the nginx binary; raise if it is not installed (tests must fail)."""
    for candidate in NGINX_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("nginx")
    if found is None:
        raise RuntimeError("nginx is not installed (looked in /usr/sbin, /usr/local/sbin, PATH)")
    return found


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], error_log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = error_log.read_text() if error_log.exists() else ""
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{log}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nginx did not listen on {LOOPBACK}:{port} within {START_TIMEOUT_S}s")


class NginxServer:
    """nginx serving ``root`` with WebDAV PUT on loopback, configured and run inside ``tmp_dir``.

    ``locations`` is extra configuration placed in the ``server`` block (for example a location
    with ``client_max_body_size 1k`` or ``return 503``). The port is chosen at the first start
    and kept across ``stop()``/``start()`` so that a client sees the same server come back.
    """

    def __init__(self, tmp_dir: Path, *, locations: str = "") -> None:
        self.dir = Path(tmp_dir) / "nginx"
        self.root = self.dir / "www"
        self.access_log = self.dir / "access.log"
        self.error_log = self.dir / "error.log"
        self.pid_file = self.dir / "nginx.pid"
        self.conf = self.dir / "nginx.conf"
        self.locations = locations
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pids: set[int] = set()
        self._syncs = 0

    @property
    def url(self) -> str:
        """Base URL of the server, ``http://127.0.0.1:PORT``."""
        if self.port is None:
            raise RuntimeError("nginx has not been started")
        return f"http://{LOOPBACK}:{self.port}"

    def _config(self, port: int) -> str:
        d = self.dir
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return f"""{user}worker_processes 1;
daemon off;
pid {self.pid_file};
lock_file {d}/nginx.lock;
error_log {self.error_log} warn;
events {{ worker_connections 128; }}
http {{
    log_format ggen '{ACCESS_LOG_FORMAT}';
    access_log {self.access_log} ggen;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen {LOOPBACK}:{port};
        root {self.root};
        client_max_body_size 0;
        location / {{
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
{self.locations}
    }}
}}
"""

    def start(self) -> NginxServer:
        """Start nginx and wait until it accepts connections."""
        if self._proc is not None:
            raise RuntimeError("nginx is already running")
        binary = find_nginx()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        attempts = 1 if self.port is not None else 5
        for attempt in range(attempts):
            port = self.port if self.port is not None else free_port()
            self.conf.write_text(self._config(port))
            proc = subprocess.Popen(
                [binary, "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.error_log)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                _wait_listening(port, proc, self.error_log)
            except RuntimeError:
                self._kill(proc)
                # Another process may have taken the free port between probe and bind.
                if attempt + 1 < attempts and "Address already in use" in self._log_text():
                    continue
                raise
            self.port = port
            self._proc = proc
            self._pids = {proc.pid, *(c.pid for c in psutil.Process(proc.pid).children())}
            return self
        raise RuntimeError("unreachable")

    def _log_text(self) -> str:
        return self.error_log.read_text() if self.error_log.exists() else ""

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop nginx by the pid in its pid file; raise if any of its processes survives."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        pid = int(self.pid_file.read_text().strip()) if self.pid_file.exists() else proc.pid
        if pid != proc.pid:
            self._kill(proc)
            raise RuntimeError(f"pid file says {pid}, nginx was started as {proc.pid}")
        pids = self._pids | {c.pid for c in _children(pid)}
        # SIGTERM is nginx's fast shutdown: the master stops its workers, then exits.
        os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._kill(proc)
        _, alive = psutil.wait_procs(_existing(pids), timeout=STOP_TIMEOUT_S)
        if alive:
            for p in alive:
                p.kill()
            raise RuntimeError(f"nginx processes survived the stop: {[p.pid for p in alive]}")

    def requests(self) -> list[list[str]]:
        """The access log so far, one ``[method, uri, status, connection, n]`` per request.

        nginx writes a request's log line just after sending its response, so a client can
        see the response before the line exists. While the server runs, this first sends a
        marker request and waits for its line: the single worker finishes requests in order,
        so every earlier request is logged by then. Marker lines are left out.
        """
        marker = None
        if self._proc is not None:
            self._syncs += 1
            marker = f"{SYNC_PREFIX}{self._syncs}"
            conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=START_TIMEOUT_S)
            try:
                conn.request("GET", marker)
                conn.getresponse().read()
            finally:
                conn.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            text = self.access_log.read_text() if self.access_log.exists() else ""
            lines = [line.split() for line in text.splitlines() if line]
            if marker is None or any(line[1] == marker for line in lines):
                return [line for line in lines if not line[1].startswith(SYNC_PREFIX)]
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not log {marker} within {START_TIMEOUT_S}s")
            time.sleep(0.005)

    def files(self) -> dict[str, bytes]:
        """Every file under the document root, by path relative to it."""
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _children(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def _existing(pids: set[int]) -> list[psutil.Process]:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    return procs


@pytest.fixture(name="nginx_server")
def nginx_server(tmp_path: Path) -> Iterator[NginxServer]:
    """A running ``NginxServer`` in the test's temporary directory, stopped after the test."""
    server = NginxServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


Handler = Callable[[http.server.BaseHTTPRequestHandler, threading.Event], None]


class ScriptedServer:
    """A threaded HTTP/1.1 server on loopback whose every request is answered by ``handler``.

    The handler receives the request handler (to write a raw response) and the server's
    ``release`` event, which ``stop()`` sets so a handler that plays a stalled server can end.
    """

    def __init__(self, handler: Handler) -> None:
        self.release = threading.Event()
        self.requests: list[tuple[str, str]] = []
        outer = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                outer.requests.append((self.command, self.path))
                handler(self, outer.release)

            do_GET = do_PUT = do_HEAD = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Release stalled handlers, stop serving and close the socket."""
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT_S)


class Misbehavior(enum.Enum):
    """How ``MisbehavingCache`` answers a blob request."""

    ENDLESS = "endless"  # 200 without a length, then bytes as fast as the client takes them
    DRIP = "drip"  # 200 without a length, then one byte per second
    STALL = "stall"  # 200 without a length, then nothing


class MisbehavingCache:
    """A remote cache answering ``GET /ac/KEY`` from ``manifests`` (KEY -> bytes; else 404),
    ``HEAD`` with 404, ``PUT`` with 201 (the body is read), and every ``GET /cas/...`` as
    ``blobs`` says, until the client goes away or the server stops.

    ``blob_requests`` counts the blob requests received (``wait_blob_requests`` waits for
    some) and ``sent`` the blob bytes written, for tests that bound what a client takes.
    """

    def __init__(self, manifests: Mapping[str, bytes], blobs: Misbehavior) -> None:
        self.manifests = dict(manifests)
        self.blobs = blobs
        self.sent = 0
        self._blob_requests = 0
        self._cond = threading.Condition()
        self._server = ScriptedServer(self._serve)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return self._server.url

    @property
    def blob_requests(self) -> int:
        """How many blob requests arrived so far."""
        with self._cond:
            return self._blob_requests

    def wait_blob_requests(self, count: int, timeout: float = START_TIMEOUT_S) -> None:
        """Return once ``count`` blob requests arrived; raise after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._blob_requests >= count, timeout):
                raise RuntimeError(f"{self._blob_requests} blob request(s), not {count}")

    def _serve(self, req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        path = req.path
        if req.command == "PUT":
            req.rfile.read(int(req.headers.get("Content-Length", "0")))
            _answer(req, 201, b"")
        elif req.command == "GET" and "/ac/" in path:
            body = self.manifests.get(path.rsplit("/", 1)[1])
            _answer(req, 200 if body is not None else 404, body or b"")
        elif req.command == "GET" and "/cas/" in path:
            with self._cond:
                self._blob_requests += 1
                self._cond.notify_all()
            with contextlib.suppress(OSError):  # the client hung up: the end of the fault
                self._misbehave(req, release)
            req.close_connection = True
        else:
            _answer(req, 404, b"")

    def _misbehave(self, req: http.server.BaseHTTPRequestHandler, release: threading.Event) -> None:
        req.send_response(200)
        req.send_header("Connection", "close")  # no length: nothing to refuse up front
        req.end_headers()
        req.wfile.flush()
        if self.blobs is Misbehavior.STALL:
            release.wait()
            return
        chunk = b"\0" * (64 << 10) if self.blobs is Misbehavior.ENDLESS else b"x"
        while not release.is_set():
            req.wfile.write(chunk)
            req.wfile.flush()
            with self._cond:
                self.sent += len(chunk)
            if self.blobs is Misbehavior.DRIP:
                release.wait(1.0)

    def __enter__(self) -> MisbehavingCache:
        self._server.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stop()


def _answer(req: http.server.BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    req.send_response(status)
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)
