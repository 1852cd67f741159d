"""Independent views of a CalDAV calendar for the tests (through the `caldav` library, not aftercal)."""

from __future__ import annotations

from dataclasses import dataclass

from caldav.collection import Calendar as DavCalendar  # `caldav.Calendar` is a lazy attribute typed `object`
from icalendar import Calendar, Component

from calendars.caldav import CalDavConnection


@dataclass(frozen=True)
class Stored:
    href: str
    uid: str
    text: str

    @property
    def event(self) -> Component:
        cal = Calendar.from_ical(self.text)
        return next(iter(cal.walk("VEVENT")))


def stored_events(conn: CalDavConnection, calendar_url: str) -> list[Stored]:
    """Every event in the calendar, as the server gives it to a plain CalDAV client."""
    cal = DavCalendar(client=conn.client, url=calendar_url)
    events = cal.get_events()
    assert isinstance(events, list)  # a coroutine only with an async client
    found = []
    for obj in events:
        text = obj.get_data()
        event = next(iter(Calendar.from_ical(text).walk("VEVENT")))
        found.append(Stored(str(obj.url), str(event["UID"]), text))
    return found


def put_foreign(conn: CalDavConnection, calendar_url: str, name: str, uid: str, extra: str = "") -> str:
    """An event another app made (no aftercal tag unless `extra` adds one). Returns its href."""
    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other app//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T090000Z\r\nDTSTART:20261125T090000Z\r\nDTEND:20261125T100000Z\r\n"
        f"SUMMARY:Dentist (not aftercal)\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    href = calendar_url + name
    response = conn.client.session.request(
        "PUT", href, data=body.encode(), headers={"Content-Type": "text/calendar"}, auth=conn.client.auth
    )
    assert response.status_code in (201, 204), response.status_code
    return href
