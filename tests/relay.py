"""What every fault-injecting test proxy shares: pass one request on, hand its answer back."""

from __future__ import annotations

import http.client
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
