"""A reverse proxy in front of a CalDAV server: counts what reaches the server, fails writes on demand.

The publisher talks to the proxy; the tests read the server directly. `writes` counts the writes
the server really received (PUT, DELETE, ...), whatever the publisher believes it sent. After
`break_after(n)`, every further write is answered 503 without reaching the server (a server that
falls over half-way), until `heal()`.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

READS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT"})
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade", "proxy-connection"}
)


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.methods: Counter[str] = Counter()  # requests forwarded to the server, by method
        self.writes = 0  # writes forwarded to the server
        self.refused = 0  # writes answered 503 by the proxy
        self.fail_after: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def break_after(self, n: int) -> None:
        """Let `n` more writes through, then answer 503 to every write."""
        with self.lock:
            self.fail_after = self.writes + n

    def heal(self) -> None:
        with self.lock:
            self.fail_after = None

    def start(self) -> None:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def admit(self, method: str) -> bool:
        """Whether this request may go to the server (and count it)."""
        with self.lock:
            if method in READS:
                self.methods[method] += 1
                return True
            if self.fail_after is not None and self.writes >= self.fail_after:
                self.refused += 1
                return False
            self.writes += 1
            self.methods[method] += 1
            return True


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not self.owner.admit(self.command):
            self._reply(503, [("Retry-After", "0")], b"injected failure\n")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.owner.upstream_port, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            self._reply(response.status, kept, data)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_OPTIONS = do_PROPFIND = do_REPORT = _forward
    do_PUT = do_DELETE = do_POST = do_MKCALENDAR = do_MKCOL = do_PROPPATCH = do_MOVE = do_COPY = _forward
