"""A patient connects their own Google Calendar from their page, in headless Chromium, against the
Google stand-in (authorization page, token and revocation endpoints, Calendar v3): connect, the
plan with popups in the patient's calendar, reschedule and cancel follow, disconnect empties it,
a replayed or foreign `state` attaches nothing, the refresh token is unreadable in the database."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from aftercal.feeds import add_treatment, cancel_treatment, reschedule_treatment
from aftercal.sync import sync_store
from calendars.feeds.app import create_app
from calendars.feeds.connect import CALLBACK_PATH
from calendars.feeds.store import open_store
from calendars.gcal_web import CALENDAR_NAME, WebClient
from reminders import make_plan
from tests.google.standin import DEFAULT_USER, CalendarStandin
from tests.helpers import new_store

SECRET = b"\x07" * 32
CLIENT_ID, CLIENT_SECRET = "web-client.apps.example", "web-client-secret"
START, ZONE = "2027-03-16T10:00", "America/Chicago"
N = len(make_plan("microneedling", START, ZONE, treatment_id="T-1").reminders)


@dataclass
class Site:
    base: str
    db: str
    google: CalendarStandin
    client: WebClient
    tokens: dict[str, str]  # treatment id -> link token

    def page(self, treatment_id: str = "T-1") -> str:
        return f"{self.base}/f/{self.tokens[treatment_id]}"

    def patient_events(self) -> list[dict[str, Any]]:
        calendars = [c for c in self.google.calendars.values() if c.summary == CALENDAR_NAME]
        assert len(calendars) <= 1, "one calendar per connect"
        if not calendars:
            return []
        return [e for e in calendars[0].events.values() if e.get("status") != "cancelled"]

    def patient_calendars(self) -> list[Any]:
        return [c for c in self.google.calendars.values() if c.summary == CALENDAR_NAME]

    def sync(self) -> None:
        report = sync_store(db=self.db, secret=SECRET, google_web=self.client)
        assert not report.failed, [o.line() for o in report.failed]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    import uvicorn

    google = CalendarStandin(consent_page=True)
    google.start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    google.register_client(CLIENT_ID, CLIENT_SECRET, kind="web", redirect_uris=(base + CALLBACK_PATH,))
    client = WebClient(
        CLIENT_ID, CLIENT_SECRET, auth_uri=google.auth_url, token_uri=google.token_url,
        revoke_uri=google.revoke_url, api_endpoint=google.url,
    )  # fmt: skip
    db = new_store(tmp_path / "clinic.db", SECRET)
    tokens = {}
    for treatment_id in ("T-1", "T-2"):
        tokens[treatment_id] = add_treatment("microneedling", START, ZONE, treatment_id, db=db, secret=SECRET).token
    app = create_app(open_store(db, secret=SECRET), base_url=base, google_web=client)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield Site(base, db, google, client, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        google.stop()


@pytest.fixture
def patient(phone: Any) -> Any:
    """The phone of conftest (390 px, JavaScript off, nothing leaves 127.0.0.1), also noting every
    request it makes, redirects included."""
    seen: list[str] = []
    phone.context.on("request", lambda request: seen.append(request.url))
    phone.seen = seen
    return phone


def connect(page: Any, site: Site, *, allow: bool = True) -> str:
    """Click connect, then Allow (or Deny) on the consent page; returns the callback URL used."""
    page.goto(site.page())
    page.get_by_role("link", name="Connect Google Calendar").click()
    assert urlsplit(page.url).path.endswith("/auth"), page.url
    page.get_by_role("button", name="Allow" if allow else "Deny").click()
    page.wait_for_url(f"{site.page()}?google=*")
    return str(next(url for url in page.seen if CALLBACK_PATH in url))


def test_connect_push_follow_and_disconnect(site: Site, patient: Any) -> None:
    site.google.reset_counts()
    callback = connect(patient, site)
    assert "Connected" in patient.content()
    # consent page, decision, then aftercal: token, calendars.insert, one batch of lists, one of inserts
    assert site.google.http_requests == 6, site.google.requests
    events = site.patient_events()
    assert len(events) == N
    assert any(e["reminders"].get("overrides") == [{"method": "popup", "minutes": 0}] for e in events)
    (calendar,) = site.patient_calendars()
    assert calendar.owner == DEFAULT_USER and calendar.made_by == CLIENT_ID
    query = parse_qs(urlsplit(next(u for u in patient.seen if "/auth?" in u)).query)
    assert query["scope"] == ["https://www.googleapis.com/auth/calendar.app.created"]
    assert query["code_challenge_method"] == ["S256"] and query["access_type"] == ["offline"]

    # The refresh token is sealed: not in the database file, in any form.
    raw = b"".join(p.read_bytes() for p in Path(site.db).parent.glob("clinic.db*"))
    for refresh in site.google.refresh_tokens:
        assert refresh.encode() not in raw

    # A replayed callback (the same state again) attaches nothing and says so.
    replay = patient.goto(callback)
    assert replay is not None and replay.status == 400
    assert len(site.patient_calendars()) == 1

    reschedule_treatment("T-1", "2027-03-18T15:00", db=site.db, secret=SECRET)
    site.sync()
    starts = sorted(e["start"].get("dateTime", "") for e in site.patient_events())
    assert "2027-03-18T15:30:00-05:00" in starts, starts  # the first reminder, 30 minutes after

    cancel_treatment("T-1", db=site.db, secret=SECRET)
    site.sync()
    assert site.patient_events() == []

    patient.goto(site.page())
    patient.get_by_role("button", name="Disconnect Google Calendar").click()
    patient.wait_for_url(f"{site.page()}?google=disconnected")
    assert site.patient_calendars() == []  # the calendar is deleted
    assert site.google.refresh_tokens == {}  # and the grant revoked
    store = open_store(site.db, secret=SECRET)
    try:
        assert store.channels(store.get("T-1").pk) == []
    finally:
        store.close()


def test_a_foreign_or_stolen_state_attaches_nothing(site: Site, patient: Any) -> None:
    # Patient 2 starts a connect and stops at Google's page: that state is bound to their browser.
    patient.goto(site.page("T-2"))
    patient.get_by_role("link", name="Connect Google Calendar").click()
    state = parse_qs(urlsplit(patient.url).query)["state"][0]
    # Another browser (no cookie of that flow) bringing that state back gets nothing.
    answer = httpx.get(f"{site.base}{CALLBACK_PATH}", params={"state": state, "code": "stolen"})
    assert answer.status_code == 400 and "not valid" in answer.text
    assert httpx.get(f"{site.base}{CALLBACK_PATH}", params={"state": "made-up", "code": "x"}).status_code == 400
    assert site.patient_calendars() == []
    # A disconnect posted from elsewhere (no form token, another origin) is refused.
    forged = httpx.post(f"{site.page('T-2')}/google/disconnect", data={"csrf": "x"}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403


def test_a_patient_who_revokes_access_is_shown_disconnected_not_retried(site: Site, patient: Any) -> None:
    connect(patient, site)
    site.google.revoke_all(DEFAULT_USER)
    reschedule_treatment("T-1", "2027-03-18T15:00", db=site.db, secret=SECRET)
    report = sync_store(db=site.db, secret=SECRET, google_web=site.client)
    assert [o.line() for o in report.outcomes] == [
        "T-1 patient_google: disconnected: the patient's Google account no longer grants access"
    ]
    again = sync_store(db=site.db, secret=SECRET, google_web=site.client)
    assert again.outcomes == [] and again.looked_at == 0  # not retried forever
    patient.goto(site.page())
    assert "Connect Google Calendar" in patient.content()
