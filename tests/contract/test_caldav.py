"""The contract on real CalDAV servers, Radicale and Xandikos, through a fault-injecting proxy.

The publisher talks to the server through `FaultProxy` (which counts the writes that reach the
server and fails them on demand); the tests read the calendar directly from the server with one
unfiltered calendar-query REPORT, parsed with vobject (not the icalendar library aftercal uses).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, ClassVar
from xml.etree import ElementTree

import httpx
import pytest
import vobject
from hypothesis import HealthCheck, settings

from tests.caldav.conftest import PASSWORD, USER, Server
from tests.contract.base import PublisherContract, Seen, Stored
from tests.contract.proxy import FaultProxy
from tests.contract.subject import Publisher, caldav_connection, caldav_publisher

ALL_EVENTS = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
    '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter></c:filter>'
    "</c:calendar-query>"
)
NS = {"d": "DAV:", "c": "urn:ietf:params:xml:ns:caldav"}
FOREIGN = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other app//EN\r\nBEGIN:VEVENT\r\n"
    "UID:dentist-1@example.com\r\nDTSTAMP:20261101T090000Z\r\nDTSTART:20261125T090000Z\r\n"
    "DTEND:20261125T100000Z\r\nSUMMARY:Dentist (not aftercal)\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n"
    "DESCRIPTION:Dentist\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def parse_events(multistatus: bytes) -> list[Stored]:
    found = []
    for response in ElementTree.fromstring(multistatus).findall("d:response", NS):
        href = response.findtext("d:href", default="", namespaces=NS).strip()
        etag = response.findtext(".//d:getetag", default="", namespaces=NS).strip()
        text = response.findtext(".//c:calendar-data", default="", namespaces=NS)
        if not text.strip():
            continue
        for event in vobject.readOne(text).vevent_list:
            tag = event.contents.get("x-aftercal-plan")
            seen = Seen(
                start=event.dtstart.value,
                end=event.dtend.value,
                title=event.summary.value,
                has_alarm=bool(event.contents.get("valarm")),
            )
            found.append(Stored(event.uid.value, tag[0].value if tag else None, seen, href, (etag, text)))
    return found


class CalDavContract(PublisherContract):
    kind: ClassVar[str]

    @pytest.fixture(scope="class")
    @classmethod
    def running(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, FaultProxy]]:
        """One server and its proxy per channel class; every test gets its own calendar on it."""
        server = Server(cls.kind, tmp_path_factory.mktemp(cls.kind))
        server.start()
        proxy = FaultProxy(server.port)
        proxy.start()
        try:
            yield server, proxy
        finally:
            proxy.stop()
            server.stop()

    @pytest.fixture(autouse=True)
    def channel(self, running: tuple[Server, FaultProxy]) -> Iterator[None]:
        self.server, self.proxy = running
        self.proxy.heal()
        self.http = httpx.Client(auth=(USER, PASSWORD), timeout=10)
        self.connections: list[Any] = []
        self.setup_conn = caldav_connection(self.server.url, USER, PASSWORD)
        try:
            self.new_calendar()
            yield
        finally:
            for conn in [self.setup_conn, *self.connections]:
                conn.close()
            self.http.close()

    def new_calendar(self) -> None:
        """A new calendar made on the server directly; the publisher reaches it through the proxy."""
        self.calendar_url = self.setup_conn.find_calendar(f"aftercare-{uuid.uuid4().hex[:8]}", create=True)
        direct = f"127.0.0.1:{self.server.port}/"
        assert direct in self.calendar_url
        self.proxied_url = self.calendar_url.replace(direct, f"127.0.0.1:{self.proxy.port}/")

    def publisher(self) -> Publisher:
        proxy_base = f"http://127.0.0.1:{self.proxy.port}/"
        conn = caldav_connection(proxy_base, USER, PASSWORD)
        self.connections.append(conn)
        return caldav_publisher(conn, self.proxied_url)

    def stored_events(self) -> list[Stored]:
        headers = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}
        response = self.http.request("REPORT", self.calendar_url, content=ALL_EVENTS, headers=headers)
        assert response.status_code == 207, response.status_code
        return parse_events(response.content)

    def add_foreign_event(self) -> None:
        response = self.http.put(
            self.calendar_url + "dentist.ics", content=FOREIGN, headers={"Content-Type": "text/calendar"}
        )
        assert response.status_code in (201, 204), response.status_code

    def break_after(self, n: int) -> None:
        self.proxy.break_after(n)

    def heal(self) -> None:
        self.proxy.heal()

    def server_writes(self) -> int:
        return self.proxy.writes + self.proxy.refused


class TestRadicale(CalDavContract):
    kind = "radicale"
    # Few examples: every step is real HTTP to Radicale (6-11 s on 2 cores).
    machine_settings = settings(
        max_examples=12, stateful_step_count=6, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


class TestXandikos(CalDavContract):
    kind = "xandikos"
