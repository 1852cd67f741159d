"""Retries and password sources: a flaky proxy in front of Radicale, and the password precedence."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from calendars.base import sync_plan, unpublish_treatment
from calendars.caldav import CalDavConnection, CalDavPublisher, Password, resolve_password
from calendars.http import RetryPolicy
from reminders import make_plan
from reminders.errors import AuthError, InputError, TransientError
from tests.caldav.conftest import PASSWORD, USER, Server
from tests.relay import LoopbackServer, relay


class FlakyProxy:
    """Forwards to a server, but first answers `failures` requests with `status` (or stalls)."""

    def __init__(
        self, target: str, failures: int, status: int = 503, stall: float = 0.0, refuse_filters: bool = False
    ) -> None:
        self.target = urlsplit(target)
        self.refuse_filters = refuse_filters
        self.refused = 0
        self.failures = failures
        self.status = status
        self.stall = stall
        self.seen = 0
        self.failed = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def handle_one(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    proxy.seen += 1
                    fail = proxy.failed < proxy.failures
                    if fail:
                        proxy.failed += 1
                if proxy.refuse_filters and b"prop-filter" in body:
                    # Like a server without text-match on X- properties: 403 supported-filter.
                    with proxy.lock:
                        proxy.refused += 1
                    data = b'<?xml version="1.0"?><d:error xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
                    data += b"<c:supported-filter/></d:error>"
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if fail and proxy.stall:
                    time.sleep(proxy.stall)
                if fail:
                    self.send_response(proxy.status)
                    if proxy.status == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                relay(self, proxy.target, body)

            do_GET = do_PUT = do_DELETE = do_REPORT = do_PROPFIND = do_MKCALENDAR = do_PROPPATCH = handle_one

        self.server = LoopbackServer(Handler)
        self.url = self.server.url

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def proxy_to(radicale: Server) -> Iterator[object]:
    made: list[FlakyProxy] = []

    def factory(failures: int, status: int = 503, stall: float = 0.0, refuse_filters: bool = False) -> FlakyProxy:
        proxy = FlakyProxy(radicale.url, failures, status, stall, refuse_filters)
        made.append(proxy)
        return proxy

    yield factory
    for proxy in made:
        proxy.close()


def _calendar(server: Server) -> str:
    with CalDavConnection(server.url, USER, Password(PASSWORD, "t")) as conn:
        url = conn.find_calendar("aftercare", create=True)
        assert url is not None
        return url


FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_are_retried(radicale: Server, proxy_to, status: int) -> None:
    cal = _calendar(radicale)
    proxy = proxy_to(failures=3, status=status)
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-9")
    with CalDavConnection(proxy.url, USER, Password(PASSWORD, "t"), retry=FAST) as conn:
        url = cal.replace(radicale.url, proxy.url)
        _actions, summary = sync_plan(CalDavPublisher(conn, url), plan)
    assert summary.created == len(plan.reminders)
    assert proxy.failed == 3
    assert proxy.seen == 3 + 1 + len(plan.reminders)


def test_retries_are_bounded(radicale: Server, proxy_to) -> None:
    cal = _calendar(radicale)
    proxy = proxy_to(failures=1000, status=500)
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-9")
    with CalDavConnection(proxy.url, USER, Password(PASSWORD, "t"), retry=FAST) as conn:
        url = cal.replace(radicale.url, proxy.url)
        with pytest.raises(TransientError, match=r"answered 500 \(4 attempts\)"):
            sync_plan(CalDavPublisher(conn, url), plan)
    assert proxy.seen == 4


def test_timeouts_are_retried(radicale: Server, proxy_to) -> None:
    cal = _calendar(radicale)
    proxy = proxy_to(failures=1, status=503, stall=1.5)
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-9")
    with CalDavConnection(proxy.url, USER, Password(PASSWORD, "t"), retry=FAST, timeout=0.5) as conn:
        url = cal.replace(radicale.url, proxy.url)
        _actions, summary = sync_plan(CalDavPublisher(conn, url), plan)
    assert summary.created == len(plan.reminders)
    assert proxy.failed == 1


def test_discovery_is_retried_too(radicale: Server, proxy_to) -> None:
    proxy = proxy_to(failures=2, status=503)
    with CalDavConnection(proxy.url, USER, Password(PASSWORD, "t"), retry=FAST) as conn:
        assert conn.find_calendar("aftercare", create=True) is not None
    assert proxy.failed == 2


def test_server_without_property_filters_gets_an_unfiltered_query(radicale: Server, proxy_to) -> None:
    """A 403 supported-filter answer: aftercal lists the calendar and filters on its side."""
    from tests.caldav.helpers import put_foreign, stored_events

    cal = _calendar(radicale)
    proxy = proxy_to(failures=0, refuse_filters=True)
    url = cal.replace(radicale.url, proxy.url)
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-9")
    moved = make_plan("microneedling", "2026-11-25T10:00", "Europe/Paris", treatment_id="T-9")
    with CalDavConnection(proxy.url, USER, Password(PASSWORD, "t"), retry=FAST) as conn:
        put_foreign(conn, url, "dentist.ics", "dentist@example.com")
        put_foreign(conn, url, "other.ics", "other@example.com", "X-AFTERCAL-PLAN:0123\r\n")
        assert sync_plan(CalDavPublisher(conn, url), plan)[1].created == len(plan.reminders)
        assert sync_plan(CalDavPublisher(conn, url), plan)[1].unchanged == len(plan.reminders)
        assert sync_plan(CalDavPublisher(conn, url), moved)[1].updated == len(plan.reminders)
        assert unpublish_treatment(CalDavPublisher(conn, url), "T-9")[1].deleted == len(plan.reminders)
        left = sorted(s.uid for s in stored_events(conn, url))
    assert left == ["dentist@example.com", "other@example.com"]
    assert proxy.refused == 4  # once per publisher, then it stops asking


def test_backoff_grows_and_is_capped() -> None:
    # Full jitter (calendars/http.py): attempt n waits in [0, min(max_delay, base_delay * 2**n)].
    highest = RetryPolicy(attempts=6, base_delay=0.5, max_delay=4.0, uniform=lambda low, high: high)
    assert [highest.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=4.0)
    assert all(0 <= policy.delay(n) <= 4.0 for n in range(6))
    assert policy.delay(0, retry_after=100.0) == 4.0


# ---- password sources --------------------------------------------------------------------------


class MemoryKeyring:
    """A real keyring backend that keeps passwords in memory."""

    def __init__(self) -> None:
        from keyring.backend import KeyringBackend

        store: dict[tuple[str, str], str] = {}

        class Backend(KeyringBackend):
            priority = 1

            def get_password(self, service: str, username: str) -> str | None:
                return store.get((service, username))

            def set_password(self, service: str, username: str, password: str) -> None:
                store[(service, username)] = password

            def delete_password(self, service: str, username: str) -> None:
                store.pop((service, username), None)

        self.backend = Backend()


@pytest.fixture
def memory_keyring() -> Iterator[object]:
    import keyring

    previous = keyring.get_keyring()
    ring = MemoryKeyring().backend
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


def _netrc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "netrc"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_password_precedence_env_then_keyring_then_netrc(tmp_path: Path, memory_keyring) -> None:
    netrc = _netrc(tmp_path, "machine cal.example.com login clinic password from-netrc\n")
    url = "https://cal.example.com/dav/"
    assert resolve_password("clinic", url, netrc_file=netrc, environ={}).source.startswith("netrc")
    memory_keyring.set_password("aftercal-caldav", "clinic", "from-keyring")
    found = resolve_password("clinic", url, netrc_file=netrc, environ={})
    assert (found.value, found.source) == ("from-keyring", "keyring")
    found = resolve_password("clinic", url, netrc_file=netrc, environ={"AFTERCAL_CALDAV_PASSWORD": "from-env"})
    assert (found.value, found.source) == ("from-env", "environment")
    assert "from-env" not in repr(found)


def test_netrc_needs_matching_host_and_login(tmp_path: Path) -> None:
    netrc = _netrc(tmp_path, "machine cal.example.com login someone-else password x\n")
    with pytest.raises(AuthError, match="no CalDAV password for 'clinic'"):
        resolve_password("clinic", "https://cal.example.com/", netrc_file=netrc, environ={})
    with pytest.raises(AuthError):
        resolve_password("someone-else", "https://other.example.com/", netrc_file=netrc, environ={})


def test_broken_netrc_does_not_echo_its_content(tmp_path: Path) -> None:
    netrc = _netrc(tmp_path, "machine cal.example.com login clinic password hunter2 bogus-token-hunter2\n")
    with pytest.raises(InputError) as info:
        resolve_password("clinic", "https://cal.example.com/", netrc_file=netrc, environ={})
    assert "hunter2" not in str(info.value)
    assert "not a valid netrc file" in str(info.value)


def test_missing_keyring_backend_degrades_to_netrc(tmp_path: Path) -> None:
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        netrc = _netrc(tmp_path, "machine cal.example.com login clinic password p\n")
        assert resolve_password("clinic", "https://cal.example.com/", netrc_file=netrc, environ={}).value == "p"
    finally:
        keyring.set_keyring(previous)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://clinic:pw@cal.example.com/", "must not contain a user name or password"),
        ("http://cal.example.com/", "must use https://"),
        ("ftp://cal.example.com/", "must be an http"),
    ],
)
def test_unsafe_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        CalDavConnection(url, USER, Password("pw", "t"))
