"""Malformed answers from a CalDAV server (issue 14): the server's fault, never an "internal error".

A proxy in front of Radicale answers chosen requests itself, 207 with a body that is not XML (or
is cut short). Reads (PROPFIND, REPORT) are retried; an answer that stays malformed ends the run
with one line naming the server and what was wrong, exit 1.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from calendars.base import sync_plan
from calendars.caldav import CalDavConnection, CalDavPublisher, Password
from calendars.http import RetryPolicy
from reminders import make_plan
from reminders.errors import ChannelError
from tests.caldav.conftest import PASSWORD, USER, Server
from tests.relay import LoopbackServer, relay

GARBAGE = b"<html><body>Service temporarily replaced by a captive portal</body></html"
TRUNCATED = b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/clinic/'

# (method, Depth header) -> should the proxy answer it with a malformed 207?
Rule = Callable[[str, str], bool]


class MalformingProxy:
    """Forwards to a server, but answers the first `times` requests `rule` picks with 207 `body`."""

    def __init__(self, target: str, rule: Rule, body: bytes, times: int) -> None:
        self.target = urlsplit(target)
        self.rule = rule
        self.body = body
        self.times = times
        self.malformed: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def handle_one(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    bad = len(proxy.malformed) < proxy.times and proxy.rule(self.command, self.headers.get("Depth", ""))
                    if bad:
                        proxy.malformed.append(self.command)
                if bad:
                    self.send_response(207)
                    self.send_header("Content-Type", "application/xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(proxy.body)))
                    self.end_headers()
                    self.wfile.write(proxy.body)
                    return
                relay(self, proxy.target, body)

            do_GET = do_PUT = do_DELETE = do_REPORT = do_PROPFIND = do_MKCALENDAR = do_PROPPATCH = handle_one

        self.server = LoopbackServer(Handler)
        self.url = self.server.url

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def malforming(radicale: Server) -> Iterator[Callable[..., MalformingProxy]]:
    made: list[MalformingProxy] = []

    def factory(rule: Rule, body: bytes = GARBAGE, times: int = 1000) -> MalformingProxy:
        proxy = MalformingProxy(radicale.url, rule, body, times)
        made.append(proxy)
        return proxy

    yield factory
    for proxy in made:
        proxy.close()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERCAL_CALDAV_PASSWORD", PASSWORD)
    monkeypatch.setenv("AFTERCAL_CALDAV_BACKOFF", "0")


FAST = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)
START = ["microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Paris", "--id", "T-1"]


def _calendar(server: Server) -> str:
    with CalDavConnection(server.url, USER, Password(PASSWORD, "t")) as conn:
        url = conn.find_calendar("aftercare", create=True)
        assert url is not None
        return url


def publish(url: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["publish", "caldav", *START, "--url", url, "--user", USER, "--retries", "3", *extra]
    )
    return result.exit_code, result.stderr


def is_report(method: str, depth: str) -> bool:
    return method == "REPORT"


def is_listing(method: str, depth: str) -> bool:
    return method == "PROPFIND" and depth == "1"


@pytest.mark.parametrize("body", [GARBAGE, TRUNCATED], ids=["not-xml", "truncated"])
@pytest.mark.parametrize(
    ("rule", "what"),
    [(is_report, "answer to REPORT (not XML"), (is_listing, "answer (not XML")],
    ids=["report", "listing"],
)
def test_malformed_read_that_stays_malformed_is_one_line_naming_the_server(
    radicale: Server, malforming: Callable[..., MalformingProxy], rule: Rule, what: str, body: bytes
) -> None:
    _calendar(radicale)
    proxy = malforming(rule, body)
    code, err = publish(proxy.url, "--calendar", "aftercare")
    assert code == 1, err
    assert "internal error" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    host = urlsplit(proxy.url).netloc
    assert f"CalDAV server {host} sent a malformed {what}" in err and "3 attempts" in err, err
    assert len(proxy.malformed) == 3  # a read is retried, up to --retries


@pytest.mark.parametrize(("rule", "what"), [(is_report, "REPORT"), (is_listing, "PROPFIND")], ids=["report", "listing"])
def test_one_malformed_read_is_retried_and_the_run_succeeds(
    radicale: Server, malforming: Callable[..., MalformingProxy], rule: Rule, what: str
) -> None:
    _calendar(radicale)
    proxy = malforming(rule, times=1)
    code, err = publish(proxy.url, "--calendar", "aftercare")
    assert code == 0, err
    assert proxy.malformed == [what]


def test_library_report_with_bad_xml_is_a_channel_error(
    radicale: Server, malforming: Callable[..., MalformingProxy]
) -> None:
    url = _calendar(radicale)
    proxy = malforming(is_report)
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1")
    with CalDavConnection(proxy.url, USER, Password(PASSWORD, "t"), retry=FAST) as conn:
        publisher = CalDavPublisher(conn, url.replace(radicale.url, proxy.url))
        with pytest.raises(ChannelError, match=r"malformed answer to REPORT \(not XML"):
            sync_plan(publisher, plan)


def test_malformed_discovery_is_not_taken_for_no_service(
    radicale: Server, malforming: Callable[..., MalformingProxy], tmp_path: Path
) -> None:
    # The first PROPFIND (current-user-principal, Depth 0) answered with garbage: not "no CalDAV service".
    proxy = malforming(lambda method, depth: method == "PROPFIND" and depth == "0")
    code, err = publish(proxy.url, "--calendar", "aftercare", "--create-calendar")
    assert code == 1, err
    assert "malformed answer to PROPFIND" in err and "no CalDAV service" not in err, err
