"""A write that did not happen is never reported as done (issue 8, part 3), Google side.

A proxy on 127.0.0.1 in front of the Calendar v3 stand-in answers some requests with a redirect
to a page that answers 200 (JSON `{}`, as deceptive as a page can be for a JSON client), or
answers a batch itself with parts that are redirects. httplib2 follows redirects for GET, and for
303/308 whatever the method; followed, the page's 200 passed for the API's answer. Now publish and
unpublish stop with one line naming the redirect, and the stand-in (read directly) is unchanged.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from tests.google.standin import CalendarStandin
from tests.relay import LoopbackServer, fetch

REDIRECTS = [301, 302, 303, 307, 308]
LANDING = "/landing"
START = ["microneedling", "--at", "2026-11-24T10:00", "--tz", "America/Chicago", "--id", "T-1001"]
BATCH = "/batch/calendar/v3"

Rule = Callable[[str, str], bool]  # (method, path) -> answer with a redirect?


class RedirectingProxy:
    """Forwards to the stand-in, except requests `rule` picks, answered with `status` to /landing.

    With `parts`, batch requests are answered by the proxy itself: 200, every part a redirect.
    With `html_batch`, they are answered 200 with an HTML page (what a followed redirect gave).
    """

    def __init__(self, target: str, status: int, rule: Rule, *, parts: bool = False, html_batch: bool = False) -> None:
        self.target = urlsplit(target)
        self.status = status
        self.rule = rule
        self.parts = parts
        self.html_batch = html_batch
        self.batches = 0
        self.redirected: list[str] = []
        self.landed: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

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
                path = urlsplit(self.path).path
                if path.startswith(LANDING):
                    with proxy.lock:
                        proxy.landed.append(self.command)
                    self._answer(200, {"Content-Type": "application/json"}, b"{}")
                    return
                if proxy.html_batch and path == BATCH:
                    with proxy.lock:
                        proxy.batches += 1
                    self._answer(200, {"Content-Type": "text/html"}, b"<html><body>OK</body></html>")
                    return
                if proxy.parts and path == BATCH:
                    with proxy.lock:
                        proxy.redirected.append(f"{self.command} {path} (parts)")
                    content_type, data = proxy.redirect_parts(self.headers.get("Content-Type", ""), body)
                    self._answer(200, {"Content-Type": content_type}, data)
                    return
                if proxy.rule(self.command, path):
                    with proxy.lock:
                        proxy.redirected.append(f"{self.command} {path}")
                    self._answer(proxy.status, {"Location": proxy.landing}, b"")
                    return
                self._answer(*fetch(self, proxy.target, body))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        self.server = LoopbackServer(Handler)
        self.url = self.server.url
        self.landing = self.url.rstrip("/") + LANDING

    def redirect_parts(self, content_type: str, body: bytes) -> tuple[str, bytes]:
        """A batch answer whose every part is `status` with a Location (nothing is forwarded)."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        boundary = "batch_redirects"
        out: list[str] = []
        for part in message.iter_parts():
            content_id = str(part.get("Content-ID", "<>")).strip("<>")
            out.append(f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{content_id}>\r\n\r\n")
            out.append(f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}\r\n")
            out.append(f"Location: {self.landing}\r\nContent-Length: 0\r\n\r\n\r\n")
        out.append(f"--{boundary}--\r\n")
        return f"multipart/mixed; boundary={boundary}", "".join(out).encode()

    def close(self) -> None:
        self.server.close()


@pytest.fixture(autouse=True)
def _env(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERCAL_GOOGLE_BACKOFF", "0")
    monkeypatch.delenv("AFTERCAL_GOOGLE_CALENDAR_ID", raising=False)


@pytest.fixture
def proxy_to(standin: CalendarStandin) -> Iterator[Callable[..., RedirectingProxy]]:
    made: list[RedirectingProxy] = []

    def factory(
        status: int, rule: Rule = lambda method, path: False, *, parts: bool = False, html_batch: bool = False
    ) -> RedirectingProxy:
        proxy = RedirectingProxy(standin.url, status, rule, parts=parts, html_batch=html_batch)
        made.append(proxy)
        return proxy

    yield factory
    for proxy in made:
        proxy.close()


def run(*args: str, endpoint: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--api-endpoint", endpoint, "--no-auth"])
    assert "Traceback" not in result.stdout + result.stderr
    return result


def state(standin: CalendarStandin) -> dict[str, Any]:
    """Everything the stand-in holds, read directly: calendars and every event (cancelled too)."""
    return {cid: copy.deepcopy(standin.events(cid, include_cancelled=True)) for cid in standin.calendars}


def error_lines(result: Any) -> list[str]:
    """stderr without warnings (e.g. a start date in the past): the lines that report the failure."""
    return [line for line in result.stderr.strip().splitlines() if not line.startswith("aftercal: warning:")]


def assert_refused(result: Any, status: int, request: str, proxy: RedirectingProxy) -> None:
    assert result.exit_code != 0, result.stdout
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert f"answered {request}" in line and f"with {status} redirect to {proxy.landing}" in line, line
    assert "does not follow redirects" in line, line
    assert "created" not in result.stdout and "deleted" not in result.stdout, result.stdout


def is_batch(method: str, path: str) -> bool:
    return method == "POST" and path == BATCH


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirected_batch_publish_is_an_error(
    standin: CalendarStandin, proxy_to: Callable[..., RedirectingProxy], status: int
) -> None:
    before = state(standin)
    proxy = proxy_to(status, is_batch)

    result = run("publish", "google", *START, endpoint=proxy.url)

    assert_refused(result, status, f"POST {proxy.url.rstrip('/')}{BATCH}", proxy)
    assert proxy.landed == []  # not followed
    assert standin.writes() == []
    assert state(standin) == before


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirected_batch_unpublish_is_an_error(
    standin: CalendarStandin, proxy_to: Callable[..., RedirectingProxy], status: int
) -> None:
    assert run("publish", "google", *START, endpoint=standin.url).exit_code == 0
    before = state(standin)
    standin.reset_counts()
    proxy = proxy_to(status, is_batch)

    result = run("unpublish", "google", "--id", "T-1001", endpoint=proxy.url)

    assert_refused(result, status, f"POST {proxy.url.rstrip('/')}{BATCH}", proxy)
    assert proxy.landed == []
    assert standin.writes() == []
    assert state(standin) == before


@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize("command", ["publish", "unpublish"])
def test_batch_parts_answering_redirects_are_errors(
    standin: CalendarStandin, proxy_to: Callable[..., RedirectingProxy], status: int, command: str
) -> None:
    """A batch answered 200 whose parts are redirects: no part counts as done."""
    assert run("publish", "google", *START[:2], "2026-12-24T10:00", *START[3:], endpoint=standin.url).exit_code == 0
    before = state(standin)
    standin.reset_counts()
    proxy = proxy_to(status, parts=True)

    if command == "publish":  # rescheduled: every part is an update (PUT)
        result = run("publish", "google", *START, endpoint=proxy.url)
        request = "PUT "
    else:
        result = run("unpublish", "google", "--id", "T-1001", endpoint=proxy.url)
        request = "DELETE "

    assert_refused(result, status, request, proxy)
    assert standin.writes() == []
    assert state(standin) == before


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirected_list_is_an_error_not_an_empty_calendar(
    standin: CalendarStandin, proxy_to: Callable[..., RedirectingProxy], status: int
) -> None:
    """httplib2 follows any redirect of a GET: the page's `{}` read as "no events", so "deleted 0"."""
    assert run("publish", "google", *START, endpoint=standin.url).exit_code == 0
    before = state(standin)
    standin.reset_counts()
    proxy = proxy_to(status, lambda method, path: method == "GET" and path.endswith("/events"))

    result = run("unpublish", "google", "--id", "T-1001", endpoint=proxy.url)

    assert result.exit_code != 0, result.stdout
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "answered GET " in lines[0] and f"with {status} redirect to {proxy.landing}" in lines[0], lines[0]
    assert proxy.landed == []
    assert state(standin) == before


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirected_calendar_creation_is_an_error(
    standin: CalendarStandin, proxy_to: Callable[..., RedirectingProxy], status: int
) -> None:
    before = state(standin)
    proxy = proxy_to(status, lambda method, path: method == "POST" and path.endswith("/calendars"))

    result = run("publish", "google", *START, "--calendar", "Aftercare", "--create-calendar", endpoint=proxy.url)

    assert_refused(result, status, "POST ", proxy)
    assert proxy.landed == []
    assert state(standin) == before


def test_batch_answered_with_a_page_is_retried_then_fails(
    standin: CalendarStandin, proxy_to: Callable[..., RedirectingProxy]
) -> None:
    """A 200 that is not a batch answer: sent again (bounded), then one line; nothing counted.

    googleapiclient's BatchError is an HttpError: caught as one, it read as "Google answered 200".
    """
    before = state(standin)
    proxy = proxy_to(200, html_batch=True)

    result = run("publish", "google", *START, endpoint=proxy.url)

    assert result.exit_code != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "Google kept failing" in lines[0] and "answered 200" not in lines[0], lines
    assert "created" not in result.stdout
    assert proxy.batches == 6  # MAX_ATTEMPTS rounds
    assert state(standin) == before
