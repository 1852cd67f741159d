"""The password never follows a server's redirect to plain http on another host."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from calendars.caldav import CalDavConnection, Password, RetryPolicy, check_base_url
from reminders.errors import ChannelError, InputError


@pytest.fixture()
def servers() -> Iterator[tuple[HTTPServer, list[str | None]]]:
    seen: list[str | None] = []

    class Foreign(BaseHTTPRequestHandler):
        def do_PROPFIND(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    foreign = HTTPServer(("127.0.0.2", 0), Foreign)
    target = f"http://127.0.0.2:{foreign.server_address[1]}/dav/"

    class Redirecting(BaseHTTPRequestHandler):
        def do_PROPFIND(self) -> None:
            self.send_response(301)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    local = HTTPServer(("127.0.0.1", 0), Redirecting)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (local, foreign)]
    for thread in threads:
        thread.start()
    yield local, seen
    for server in (local, foreign):
        server.shutdown()
        server.server_close()


def test_redirect_to_plain_http_elsewhere_gets_no_password(servers: tuple[HTTPServer, list[str | None]]) -> None:
    local, seen = servers
    url = f"http://localhost:{local.server_address[1]}/"
    conn = CalDavConnection(url, "clinic", Password("hunter2", "environment"), retry=RetryPolicy(attempts=1))
    with pytest.raises(ChannelError, match="refusing to send the password") as info:
        conn.principal_url()
    assert "hunter2" not in str(info.value)
    assert seen == []


@pytest.mark.parametrize("bad", ["https://[bad/", "https://host:99999/", "http://caldav.example.com/"])
def test_bad_or_unsafe_urls_are_input_errors(bad: str) -> None:
    with pytest.raises(InputError):
        check_base_url(bad)
