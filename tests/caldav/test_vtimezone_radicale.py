"""Treatments in one zone, published to one Radicale calendar in every order, read back right.

The bug this guards against (issue 8): each plan carried a VTIMEZONE cut to its own dates under
the same TZID. Radicale keeps one definition per TZID (vobject registers the first it parses, for
the life of the process, and the whole-calendar export keeps one VTIMEZONE per TZID), so the
order of publishing decided which plan's definition everyone got, and events read an hour off.

Three New York treatments and a Berlin pair go to one calendar of a fresh Radicale (fresh process,
so vobject's registry starts empty) in every order that can differ: definitions are kept per
TZID, so what matters is the order within each zone (3! x 2! = 12 orders; an order of the 120
permutations stands for its class). Then (a) the whole calendar, as Radicale answers a GET on the
collection, read by ical.js: every event at the engine's instant; (b) a time-range REPORT (one
minute either side of each event's instant, evaluated by Radicale) finds each event.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest

from calendars.base import sync_plan
from calendars.caldav import CalDavConnection, CalDavPublisher, Password, event_href
from reminders import load_protocol
from reminders.schedule import CarePlan, build_plan, localize_start
from tests.caldav.conftest import FAST_RETRY, PASSWORD, USER, Server
from tests.test_icaljs import icaljs, read_with_icaljs  # noqa: F401 - icaljs is a fixture

TREATMENTS = {
    "NY-Oct30": ("America/New_York", datetime(2026, 10, 30, 10)),  # noqa: DTZ001 - straddles Nov 1
    "NY-Nov24": ("America/New_York", datetime(2026, 11, 24, 10)),  # noqa: DTZ001
    "NY-Mar01": ("America/New_York", datetime(2026, 3, 1, 10)),  # noqa: DTZ001 - straddles Mar 8
    "BER-Mar20": ("Europe/Berlin", datetime(2026, 3, 20, 10)),  # noqa: DTZ001 - straddles Mar 29
    "BER-Oct20": ("Europe/Berlin", datetime(2026, 10, 20, 10)),  # noqa: DTZ001 - straddles Oct 25
}


def distinct_orders() -> list[tuple[str, ...]]:
    """The first permutation of each class of equal per-zone orders."""
    seen: dict[tuple[tuple[str, ...], ...], tuple[str, ...]] = {}
    for order in itertools.permutations(TREATMENTS):
        zones = sorted({TREATMENTS[name][0] for name in order})
        key = tuple(tuple(n for n in order if TREATMENTS[n][0] == zone) for zone in zones)
        seen.setdefault(key, order)
    return list(seen.values())


PROTOCOL = load_protocol("microneedling")
ORDERS = distinct_orders()
RESULTS: dict[str, tuple[int, int, int, int]] = {}  # order -> GET right, total, REPORT found, total


def plan_for(name: str) -> CarePlan:
    zone, naive = TREATMENTS[name]
    return build_plan(PROTOCOL, f"T-{name}", localize_start(naive, ZoneInfo(zone)))


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    if RESULTS:
        print("\norder | GET via ical.js right/total | time-range REPORT found/total")
        for order, (got, total, found, searched) in RESULTS.items():
            print(f"{order} | {got}/{total} | {found}/{searched}")


def time_range_hrefs(conn: CalDavConnection, url: str, start: datetime, end: datetime) -> set[str]:
    """Paths of the events a calendar-query with this time-range finds (Radicale evaluates it)."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        '<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
        f'<C:comp-filter name="VEVENT"><C:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    response = conn.send("REPORT", url, body=body, headers={"Depth": "1", "Content-Type": "application/xml"})
    assert response.status_code == 207, response.status_code
    root = ElementTree.fromstring(response.content)
    return {unquote(href.text or "") for href in root.iter("{DAV:}href")}


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(order) for order in ORDERS])
def test_every_order_reads_right(order: tuple[str, ...], tmp_path: Path, request: pytest.FixtureRequest) -> None:
    try:
        js: Path | None = request.getfixturevalue("icaljs")
    except pytest.skip.Exception:
        js = None  # no Node.js: the REPORT half still runs
    server = Server("radicale", tmp_path)  # a fresh process: vobject's TZID registry starts empty
    server.start()
    try:
        with CalDavConnection(server.url, USER, Password(PASSWORD, "test"), timeout=10, retry=FAST_RETRY) as conn:
            url = conn.find_calendar("aftercare", create=True)
            assert url is not None
            plans = [plan_for(name) for name in order]
            for plan in plans:
                sync_plan(CalDavPublisher(conn, url), plan)
            timed = {r.uid: r.start for p in plans for r in p.reminders if isinstance(r.start, datetime)}
            # (a) The whole calendar, one VTIMEZONE per TZID, as another client would download it.
            whole = conn.send("GET", url)
            assert whole.status_code == 200 and whole.content.startswith(b"BEGIN:VCALENDAR")
            assert len(re.findall(rb"BEGIN:VTIMEZONE", whole.content)) == 2
            right = -1
            if js is not None:
                events = {e["uid"]: e for e in read_with_icaljs(js, whole.content, tmp_path)["events"]}
                right = sum(events[uid]["utc"] == int(start.timestamp()) for uid, start in timed.items())
            # (b) Radicale's own time-range evaluation finds each event around its instant.
            found = 0
            for uid, start in timed.items():
                instant = start.astimezone(UTC)
                hrefs = time_range_hrefs(conn, url, instant - timedelta(minutes=1), instant + timedelta(minutes=1))
                found += unquote(urlsplit(event_href(url, uid)).path) in hrefs
    finally:
        server.stop()
    RESULTS[" ".join(order)] = (right, len(timed), found, len(timed))
    assert found == len(timed)
    assert right in (len(timed), -1)
