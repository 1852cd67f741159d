"""What every fault-injecting test proxy shares: pass one request on, hand its answer back."""

from __future__ import annotations

import http.client
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import SplitResult

# Hop-by-hop or recomputed: never copied from the server's answer.
_NOT_PASSED = ("transfer-encoding", "connection", "content-length")


def fetch(
    handler: BaseHTTPRequestHandler, target: SplitResult, body: bytes | None, *, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """Send the handler's request to `target` unchanged (but Host): status, headers and body."""
    conn = http.client.HTTPConnection(target.netloc, timeout=timeout)
    try:
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(handler.command, handler.path, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        passed = {k: v for k, v in answer.getheaders() if k.lower() not in _NOT_PASSED}
        return answer.status, passed, data
    finally:
        conn.close()


def send(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes) -> None:
    """Write an answer with an exact Content-Length."""
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def relay(handler: BaseHTTPRequestHandler, target: SplitResult, body: bytes | None) -> None:
    """Pass the request on and its answer back, unchanged."""
    send(handler, *fetch(handler, target, body))


class LoopbackServer:
    """A ThreadingHTTPServer for `handler` on a free 127.0.0.1 port, served by a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class RecordingProxy:
    """A reverse proxy on 127.0.0.1 in front of `upstream`: passes every request on unchanged
    (after `delay` seconds, to make a race likely) and records its (method, path)."""

    def __init__(self, upstream: str, *, delay: float = 0.0) -> None:
        import threading
        from urllib.parse import urlsplit

        self.requests: list[tuple[str, str]] = []
        lock = threading.Lock()
        target = urlsplit(upstream)
        record = self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one_request(self) -> None:  # every method, one code path
                self.raw_requestline = self.rfile.readline(65537)
                if not self.raw_requestline or not self.parse_request():
                    self.close_connection = True
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with lock:
                    record.append((self.command, self.path))
                if delay:
                    time.sleep(delay)
                relay(self, target, body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = LoopbackServer(Handler)
        self.url = self.server.url

    def close(self) -> None:
        self.server.close()
