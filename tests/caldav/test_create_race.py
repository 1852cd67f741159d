"""Concurrent first runs make one calendar (issue 14): `--create-calendar` is idempotent.

Four `publish caldav --create-calendar` processes start at once; a proxy holds each one's calendar
listing until all four have asked, so all four see no calendar and all four try to make it (the
race that made two "Race Cal" calendars). The calendar's path comes from its name, so the server
accepts one MKCALENDAR and refuses the others, which then use the calendar that is there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from calendars.caldav import CalDavConnection, Password, calendar_segment
from reminders import make_plan
from tests.caldav.conftest import PASSWORD, USER, Server
from tests.caldav.helpers import stored_events
from tests.relay import LoopbackServer, fetch, send

RUNS = 4
NAME = "Race Cal"


class GatheringProxy:
    """Forwards to a server; the first `parties` calendar listings (PROPFIND Depth 1) wait for each other."""

    def __init__(self, target: str, parties: int) -> None:
        self.target = urlsplit(target)
        self.barrier = threading.Barrier(parties, timeout=30)
        self.waiting = parties
        self.lock = threading.Lock()
        self.methods: list[tuple[str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def handle_one(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "PROPFIND" and self.headers.get("Depth") == "1":
                    with proxy.lock:
                        gather = proxy.waiting > 0
                        proxy.waiting -= 1
                    if gather:
                        proxy.barrier.wait()
                status, headers, data = fetch(self, proxy.target, body, timeout=30)
                with proxy.lock:
                    proxy.methods.append((self.command, status))
                send(self, status, headers, data)

            do_GET = do_PUT = do_DELETE = do_REPORT = do_PROPFIND = do_MKCALENDAR = do_PROPPATCH = handle_one

        self.server = LoopbackServer(Handler)
        self.url = self.server.url

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def gathering(radicale: Server) -> Iterator[GatheringProxy]:
    proxy = GatheringProxy(radicale.url, RUNS)
    yield proxy
    proxy.close()


def calendars_named(server: Server, name: str) -> list[str]:
    with CalDavConnection(server.url, USER, Password(PASSWORD, "t")) as conn:
        return [c.url for c in conn.calendars() if c.name == name]


def test_four_concurrent_first_runs_make_one_calendar(radicale: Server, gathering: GatheringProxy) -> None:
    env = {**os.environ, "AFTERCAL_CALDAV_PASSWORD": PASSWORD, "AFTERCAL_CALDAV_BACKOFF": "0"}
    command = [
        sys.executable, "-m", "aftercal.cli", "publish", "caldav", "microneedling", "--at", "2026-11-24T10:00",
        "--tz", "Europe/Paris", "--url", gathering.url, "--user", USER, "--calendar", NAME, "--create-calendar",
    ]  # fmt: skip
    runs = [
        subprocess.Popen(
            [*command, "--id", f"T-{n}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
        )
        for n in range(RUNS)
    ]
    outcomes = [(run.wait(timeout=120), run.stderr.read() if run.stderr else "") for run in runs]
    for run in runs:
        for stream in (run.stdout, run.stderr):
            if stream:
                stream.close()
    assert [code for code, _ in outcomes] == [0] * RUNS, outcomes
    mkcalendars = [status for method, status in gathering.methods if method == "MKCALENDAR"]
    assert sorted(mkcalendars) == [201] + [409] * (RUNS - 1)  # all four tried: the race happened
    found = calendars_named(radicale, NAME)
    assert len(found) == 1, found
    assert found[0].rstrip("/").endswith(calendar_segment(NAME))
    per_run = len(make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-0").reminders)
    with CalDavConnection(radicale.url, USER, Password(PASSWORD, "t")) as conn:
        assert len(stored_events(conn, found[0])) == RUNS * per_run


def test_second_creation_uses_the_calendar_there(server: Server, tmp_path: Path) -> None:
    """Each server's refusal of a second MKCALENDAR (Radicale 409, Xandikos 403) leads to the calendar there."""
    with CalDavConnection(server.url, USER, Password(PASSWORD, "t")) as first:
        made = first._make_calendar(NAME)
    with CalDavConnection(server.url, USER, Password(PASSWORD, "t")) as second:
        again = second._make_calendar("race cal")  # names match case-insensitively, as lookups do
        assert again.url == made.url
        assert [c.url for c in second.calendars() if c.name == NAME] == [made.url]


def test_address_holding_another_calendar_is_refused(radicale: Server) -> None:
    from reminders.errors import ChannelError

    with CalDavConnection(radicale.url, USER, Password(PASSWORD, "t")) as conn:
        made = conn._make_calendar(NAME)
        conn.client.session.request(
            "PROPPATCH", made.url, auth=conn.client.auth, headers={"Content-Type": "application/xml"},
            data=(
                '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
                "<d:displayname>Renamed</d:displayname></d:prop></d:set></d:propertyupdate>"
            ),
        ).raise_for_status()  # fmt: skip
        with pytest.raises(ChannelError, match=r"holds calendar 'Renamed'; rename that one back to 'Race Cal'"):
            conn._make_calendar(NAME)


def test_calendar_segment_is_stable_and_url_safe() -> None:
    assert calendar_segment("Race Cal") == calendar_segment("race cal")
    assert calendar_segment("Race Cal") != calendar_segment("Race Cal 2")
    assert calendar_segment("Race Cal").startswith("race-cal-")
    assert calendar_segment("Суппорт").startswith("calendar-")
    for name in ("Race Cal", "Суппорт / ½", "../..", "a" * 300):
        segment = calendar_segment(name)
        assert segment.replace("-", "").isalnum() and segment.isascii() and len(segment) <= 53
