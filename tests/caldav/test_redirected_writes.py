"""A write that did not happen is never reported as done (issue 8, part 3).

A proxy on 127.0.0.1 in front of a real Radicale answers PUT and DELETE with a redirect to a page
that answers 200 to anything. HTTP libraries follow such redirects (302/303 even turn the PUT into
a GET), and the page's 200 used to be taken as the write's result: `created 16` while the calendar
held nothing. Now the run stops with one line naming the redirect, and the server (read directly,
not through the proxy) holds exactly what it held before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from calendars.caldav import CalDavConnection, Password
from tests.caldav.conftest import PASSWORD, USER, Server
from tests.caldav.test_cli import N_EVENTS, PUBLISH, calendar_url, events_on
from tests.relay import LoopbackServer, fetch

REDIRECTS = [301, 302, 303, 307, 308]
LANDING = "/landing"


class RedirectingProxy:
    """Forwards every request to `target`, except `methods`, answered with `status` to /landing.

    /landing (on the proxy) answers `landing_status` (200) to any method, like a moved-site notice
    (or, with 401, a login page).
    """

    def __init__(self, target: str, status: int, methods: frozenset[str], landing_status: int = 200) -> None:
        self.target = urlsplit(target)
        self.status = status
        self.landing_status = landing_status
        self.methods = methods
        self.redirected: list[str] = []  # "METHOD path" of each request answered with a redirect
        self.landed: list[str] = []  # methods that reached /landing
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_one(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith(LANDING):
                    with proxy.lock:
                        proxy.landed.append(self.command)
                    self._answer(proxy.landing_status, {"Content-Type": "text/html"}, b"<html><body>OK</body></html>")
                    return
                if self.command in proxy.methods:
                    with proxy.lock:
                        proxy.redirected.append(f"{self.command} {self.path}")
                    self._answer(proxy.status, {"Location": proxy.landing}, b"")
                    return
                self._answer(*fetch(self, proxy.target, body))

            do_GET = do_HEAD = do_PUT = do_DELETE = do_REPORT = do_PROPFIND = do_MKCALENDAR = handle_one
            do_PROPPATCH = do_POST = do_OPTIONS = handle_one

        self.server = LoopbackServer(Handler)
        self.url = self.server.url
        self.landing = self.url.rstrip("/") + LANDING

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def proxy_to(radicale: Server) -> Iterator[object]:
    made: list[RedirectingProxy] = []

    def factory(
        status: int, methods: frozenset[str] = frozenset({"PUT", "DELETE"}), landing_status: int = 200
    ) -> RedirectingProxy:
        proxy = RedirectingProxy(radicale.url, status, methods, landing_status)
        made.append(proxy)
        return proxy

    yield factory
    for proxy in made:
        proxy.close()


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AFTERCAL_CALDAV_PASSWORD", PASSWORD)
    monkeypatch.setenv("AFTERCAL_CALDAV_BACKOFF", "0.01")

    def invoke(*args: str, url: str, calendar: str = "aftercare"):
        result = CliRunner().invoke(app, [*args, "--url", url, "--user", USER, "--calendar", calendar])
        assert PASSWORD not in result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        return result

    return invoke


def snapshot(server: Server, url: str) -> list[tuple[str, str]]:
    """What the server holds, read directly (not through the proxy): (href, full text) of each event."""
    return sorted((s.href, s.text) for s in events_on(server, url))


def error_lines(result) -> list[str]:
    """stderr without warnings (e.g. a start date in the past): the lines that report the failure."""
    return [line for line in result.stderr.strip().splitlines() if not line.startswith("aftercal: warning:")]


def assert_refused(result, status: int, method: str, proxy: RedirectingProxy) -> None:
    assert result.exit_code != 0, result.stdout
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert f"answered {method} " in line and f"with {status} redirect to {proxy.landing}" in line, line
    assert "does not follow redirects" in line and "wrong password" not in line, line
    assert "created" not in result.stdout and "deleted" not in result.stdout, result.stdout


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirected_create_is_an_error(run, radicale: Server, proxy_to, status: int) -> None:
    assert run(*PUBLISH, "--id", "T-0", "--create-calendar", url=radicale.url).exit_code == 0  # not redirected
    url = calendar_url(radicale)
    before = snapshot(radicale, url)
    assert len(before) == N_EVENTS
    proxy = proxy_to(status)

    result = run(*PUBLISH, url=proxy.url)  # T-1001: 16 new events

    assert_refused(result, status, "PUT", proxy)
    assert proxy.redirected and proxy.redirected[0].startswith("PUT ")
    assert proxy.landed == []  # the redirect was not followed at all
    assert snapshot(radicale, url) == before


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirected_update_is_an_error(run, radicale: Server, proxy_to, status: int) -> None:
    assert run(*PUBLISH, "--create-calendar", url=radicale.url).exit_code == 0
    url = calendar_url(radicale)
    before = snapshot(radicale, url)
    proxy = proxy_to(status)

    result = run(*PUBLISH[:4], "2026-11-27T16:00", *PUBLISH[5:], url=proxy.url)  # rescheduled: 16 updates

    assert_refused(result, status, "PUT", proxy)
    assert proxy.landed == []
    assert snapshot(radicale, url) == before


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirected_delete_is_an_error(run, radicale: Server, proxy_to, status: int) -> None:
    assert run(*PUBLISH, "--create-calendar", url=radicale.url).exit_code == 0
    url = calendar_url(radicale)
    before = snapshot(radicale, url)
    assert len(before) == N_EVENTS
    proxy = proxy_to(status)

    result = run("unpublish", "caldav", "--id", "T-1001", url=proxy.url)

    assert_refused(result, status, "DELETE", proxy)
    assert proxy.redirected and proxy.redirected[0].startswith("DELETE ")
    assert proxy.landed == []
    assert snapshot(radicale, url) == before


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirected_calendar_creation_is_an_error(run, radicale: Server, proxy_to, status: int) -> None:
    """MKCALENDAR (sent by aftercal, at the address derived from the name) must not follow a redirect either."""
    proxy = proxy_to(status, frozenset({"MKCALENDAR", "PUT", "DELETE"}))

    result = run(*PUBLISH, "--create-calendar", url=proxy.url)

    assert_refused(result, status, "MKCALENDAR", proxy)
    assert proxy.landed == []
    with CalDavConnection(radicale.url, USER, Password(PASSWORD, "test")) as conn:
        assert conn.calendars() == []  # nothing was made


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirected_calendar_query_is_an_error(run, radicale: Server, proxy_to, status: int) -> None:
    """A calendar whose REPORT is redirected: event hrefs would be relative to another address."""
    assert run(*PUBLISH, "--create-calendar", url=radicale.url).exit_code == 0
    url = calendar_url(radicale)
    before = snapshot(radicale, url)
    proxy = proxy_to(status, frozenset({"REPORT", "PUT", "DELETE"}))

    result = run("unpublish", "caldav", "--id", "T-1001", url=proxy.url)

    assert result.exit_code != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "answered REPORT " in lines[0] and f"{status} redirect to {proxy.landing}" in lines[0]
    assert "wrong password" not in lines[0]
    assert proxy.landed == []
    assert snapshot(radicale, url) == before


@pytest.mark.parametrize("status", [301, 308])
def test_write_redirected_to_a_login_page_is_not_a_wrong_password(run, radicale: Server, proxy_to, status: int) -> None:
    """301/308 keep the method: the PUT used to reach a page answering 401, reported as "wrong password?"."""
    assert run(*PUBLISH, "--create-calendar", url=radicale.url).exit_code == 0
    url = calendar_url(radicale)
    before = snapshot(radicale, url)
    proxy = proxy_to(status, landing_status=401)

    result = run(*PUBLISH[:4], "2026-11-27T16:00", *PUBLISH[5:], url=proxy.url)

    assert_refused(result, status, "PUT", proxy)
    assert snapshot(radicale, url) == before


@pytest.mark.parametrize("status", REDIRECTS)
def test_discovery_redirect_to_a_page_names_the_redirect(run, radicale: Server, proxy_to, status: int) -> None:
    """Discovery follows redirects (by hand, PROPFIND kept); where they led is in the message."""
    proxy = proxy_to(status, frozenset({"PROPFIND", "PUT", "DELETE"}))

    result = run(*PUBLISH, "--create-calendar", url=proxy.url)

    assert result.exit_code != 0
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "no CalDAV service found" in lines[0] and f"{proxy.url} -> {proxy.landing}" in lines[0], lines[0]
    assert proxy.landed == ["PROPFIND", "PROPFIND"]  # the method was kept (302/303 would make it a GET)


@pytest.mark.parametrize("status", REDIRECTS)
def test_discovery_still_follows_redirects_to_the_service(radicale: Server, status: int) -> None:
    """/.well-known/caldav style: a redirect from the --url to the real service is followed."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Front(BaseHTTPRequestHandler):
        def do_PROPFIND(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Location", radicale.url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    front = HTTPServer(("127.0.0.1", 0), Front)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    try:
        with CalDavConnection(f"http://localhost:{front.server_address[1]}/", USER, Password(PASSWORD, "t")) as conn:
            assert conn.principal_url() == f"{radicale.url}{USER}/"
    finally:
        front.shutdown()
        front.server_close()
