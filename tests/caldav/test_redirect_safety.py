"""The password never follows a server's redirect to plain http on another host.

"Another host" is calendars/http.py's one loopback rule: plain http may carry the password only to
localhost, 127.0.0.0/8 or [::1] as written in the URL, never to a name, whatever it resolves to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from calendars.caldav import CalDavConnection, Password, server_url
from calendars.http import RetryPolicy
from reminders.errors import ChannelError, InputError

# (redirecting server, where it points to the foreign server, Authorization headers the foreign one saw)
Servers = tuple[HTTPServer, list[str | None]]


@pytest.fixture()
def servers() -> Iterator[Callable[[str], Servers]]:
    """Factory: a server on 127.0.0.1 that redirects every PROPFIND to a server on 127.0.0.2.

    The argument is the host the redirect names for 127.0.0.2 (an address, or a name that DNS
    resolves to it, such as 127.0.0.2.nip.io).
    """
    started: list[HTTPServer] = []

    def make(foreign_host: str) -> Servers:
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
        target = f"http://{foreign_host}:{foreign.server_address[1]}/dav/"

        class Redirecting(BaseHTTPRequestHandler):
            def do_PROPFIND(self) -> None:
                self.send_response(301)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        local = HTTPServer(("127.0.0.1", 0), Redirecting)
        for server in (local, foreign):
            started.append(server)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return local, seen

    yield make
    for server in started:
        server.shutdown()
        server.server_close()


def test_redirect_to_plain_http_elsewhere_gets_no_password(servers: Callable[[str], Servers]) -> None:
    # A name is never loopback, even one whose DNS answer is 127.0.0.2 (nip.io): refused before any connection.
    local, seen = servers("127.0.0.2.nip.io")
    url = f"http://localhost:{local.server_address[1]}/"
    conn = CalDavConnection(url, "clinic", Password("hunter2", "environment"), retry=RetryPolicy(attempts=1))
    with pytest.raises(ChannelError, match="refusing to send the password") as info:
        conn.principal_url()
    assert "hunter2" not in str(info.value)
    assert seen == []


def test_redirect_to_plain_http_on_loopback_is_followed(servers: Callable[[str], Servers]) -> None:
    # 127.0.0.2 is this machine (the whole 127.0.0.0/8 is loopback): the same rule as Google's endpoint.
    local, seen = servers("127.0.0.2")
    url = f"http://localhost:{local.server_address[1]}/"
    conn = CalDavConnection(url, "clinic", Password("hunter2", "environment"), retry=RetryPolicy(attempts=1))
    with pytest.raises(ChannelError, match="no CalDAV service found"):
        conn.principal_url()
    assert len(seen) == 2 and all(header and header.startswith("Basic ") for header in seen)


@pytest.mark.parametrize(
    "bad",
    [
        "https://[bad/",
        "https://host:99999/",
        "http://caldav.example.com/",
        "http://127.0.0.1.nip.io/",
        "https://user:s3cret@caldav.example.com/",
        "https://caldav.example.com/?x=1",
    ],
)
def test_bad_or_unsafe_urls_are_input_errors(bad: str) -> None:
    with pytest.raises(InputError) as info:
        server_url(bad)
    assert str(info.value).startswith("--url ") and "\n" not in str(info.value) and "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.2:5232", "http://127.0.0.2:5232/"),
        ("http://[::1]:5232/dav", "http://[::1]:5232/dav"),
        (" https://caldav.example.com ", "https://caldav.example.com/"),
    ],
)
def test_server_urls_on_https_or_loopback_are_accepted(url: str, expected: str) -> None:
    assert server_url(url) == expected
