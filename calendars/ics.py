"""iCalendar (RFC 5545) export of a care plan, with the `icalendar` library.

Why `icalendar` (7.x) and not `ics` (ics.py), measured here: ics 0.7.3 wrote a zero-offset alarm
as `TRIGGER:P` (ical.js rejects the file), wrote no DTSTAMP and turned zoned times into UTC.
icalendar folds lines, is deterministic, and `caldav` already depends on it; VTIMEZONE comes
from calendars/vtimezone.py (one canonical definition per zone). Its 7.3.2 gaps are worked
around here: durations on X-PUBLISHED-TTL are typed explicitly, REFRESH-INTERVAL gets
VALUE=DURATION, alarms use a relative TRIGGER (never an absolute one, which it writes without
VALUE=DATE-TIME), CATEGORIES is only added when non-empty, and UID / DTSTAMP are always passed.

Rendering once: `render_ics` and `render_event_ics` write the bytes `plan_calendar(...).to_ical()`
and `event_calendar(...).to_ical()` write (tests/test_render_once.py compares them byte for byte),
without parsing and re-serialising the zone's VTIMEZONE for every file: its cached bytes
(`zone_ical`) go where icalendar would write the component, and a line long enough to fold (the
steps' descriptions, the same in every plan) is folded once by icalendar and reused.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from icalendar import Alarm, Calendar, Component, Event, vDuration, vText
from icalendar.parser import Contentline

from calendars.tags import ICAL_HASH, ICAL_PLAN, ICAL_STEP
from calendars.vtimezone import zone_component, zone_ical
from reminders.schedule import CarePlan, Reminder

PRODID = "-//aftercal//aftercal care plans//EN"
# How often subscribers should re-fetch a feed; clients treat it as a hint.
REFRESH = timedelta(hours=12)


def plan_calendar(plan: CarePlan, *, stamp: datetime, status: str = "CONFIRMED") -> Calendar:
    """The plan as an icalendar Calendar. `stamp` (aware) is DTSTAMP and LAST-MODIFIED.

    `status="CANCELLED"` renders every event cancelled, for feeds of cancelled treatments.
    """
    cal = _plan_events(plan, stamp=stamp, status=status)
    add_timezone(cal, plan)
    return cal


def _plan_events(plan: CarePlan, *, stamp: datetime, status: str) -> Calendar:
    """`plan_calendar` without its VTIMEZONE."""
    stamp = stamp.astimezone(UTC).replace(microsecond=0)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    # icalendar 7.3 types NAME and X-WR-CALNAME as unknown and would write them unescaped: a comma
    # cut the name in vobject, a backslash became a newline in libical. Typed as TEXT they are
    # escaped; calendar_name also leaves out the characters ical.js would show escaped.
    cal.add("name", vText(plan.calendar_name))
    cal.add("x-wr-calname", vText(plan.calendar_name))
    cal.add("x-wr-timezone", plan.zone.key)
    cal.add("refresh-interval", vDuration(REFRESH), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(REFRESH))
    for reminder in plan.reminders:
        cal.add_component(reminder_event(plan, reminder, stamp=stamp, status=status))
    return cal


def add_timezone(cal: Calendar, plan: CarePlan) -> None:
    """The zone's one canonical VTIMEZONE (calendars/vtimezone.py), first in the calendar.

    Only when an event names the zone in a TZID: icalendar writes times of zones it deems equal to
    UTC (Africa/Abidjan, Atlantic/Reykjavik...) with Z, and all-day events name no zone.
    """
    if plan.zone.key in cal.get_used_tzids():
        cal.subcomponents.insert(0, zone_component(plan.zone))


def reminder_event(
    plan: CarePlan,
    reminder: Reminder,
    *,
    stamp: datetime,
    status: str = "CONFIRMED",
    sequence: int | None = None,
) -> Event:
    """One VEVENT; CalDAV publishing uploads exactly this, wrapped in its own VCALENDAR.

    `sequence` overrides the plan's SEQUENCE (a channel bumps it past what a server holds).
    """
    event = Event()
    event.add("uid", reminder.uid)
    event.add("dtstamp", stamp)
    event.add("last-modified", stamp)
    event.add("sequence", plan.sequence if sequence is None else sequence)
    event.add("dtstart", reminder.start)
    event.add("dtend", reminder.end)
    event.add("summary", reminder.title)
    event.add("description", reminder.description)
    if reminder.categories:
        event.add("categories", list(reminder.categories))
    event.add("status", status)
    # Reminders should never make a patient look busy, nor leak to people they share with.
    event.add("transp", "TRANSPARENT")
    event.add("class", "PRIVATE")
    if plan.options.clinic.url:
        event.add("url", plan.options.clinic.url)
    event.add(ICAL_PLAN, plan.plan_tag)
    event.add(ICAL_STEP, reminder.key)
    event.add(ICAL_HASH, reminder.content_hash())
    if reminder.alarm_text and status != "CANCELLED":
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", reminder.alarm_text)
        alarm.add("trigger", timedelta(0), parameters={"RELATED": "START"})
        event.add_component(alarm)
    return event


def render_ics(plan: CarePlan, *, stamp: datetime, status: str = "CONFIRMED") -> bytes:
    """The plan as iCalendar bytes (CRLF line ends, folded lines, same bytes for same input).

    Byte for byte `plan_calendar(plan, stamp=stamp, status=status).to_ical()`, written faster.
    """
    cal = _plan_events(plan, stamp=stamp, status=status)
    return _to_ical(cal, plan.zone.key if _names_zone(cal.subcomponents, plan.zone.key) else None)


def event_calendar(
    plan: CarePlan, reminder: Reminder, *, stamp: datetime, sequence: int | None = None, status: str = "CONFIRMED"
) -> Calendar:
    """A VCALENDAR with one event and its VTIMEZONE: the body of one CalDAV resource."""
    cal = _event_only(plan, reminder, stamp=stamp, sequence=sequence, status=status)
    add_timezone(cal, plan)
    return cal


def _event_only(plan: CarePlan, reminder: Reminder, *, stamp: datetime, sequence: int | None, status: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    stamp = stamp.astimezone(UTC).replace(microsecond=0)
    cal.add_component(reminder_event(plan, reminder, stamp=stamp, status=status, sequence=sequence))
    return cal


def render_event_ics(
    plan: CarePlan, reminder: Reminder, *, stamp: datetime, sequence: int | None = None, status: str = "CONFIRMED"
) -> bytes:
    """`event_calendar(...)` as bytes, byte for byte its `to_ical()`, written faster."""
    cal = _event_only(plan, reminder, stamp=stamp, sequence=sequence, status=status)
    return _to_ical(cal, plan.zone.key if _names_zone(cal.subcomponents, plan.zone.key) else None)


# -- Writing the bytes ---------------------------------------------------------------------------


def _names_zone(events: Iterable[Component], key: str) -> bool:
    """What `add_timezone` asks `get_used_tzids`, asked of the only zoned properties we write."""
    return any(event[name].params.get("TZID") == key for event in events for name in ("DTSTART", "DTEND"))


def _to_ical(cal: Calendar, zone_key: str | None) -> bytes:
    """`cal.to_ical()`, with zone `zone_key`'s VTIMEZONE as its first component when given.

    icalendar joins the content lines of `content_lines()`, each folded by `Contentline.to_ical`,
    with CRLF, leaving out empty ones; so does this. The VTIMEZONE `add_timezone` would insert
    first is written before the first line that is exactly BEGIN:VEVENT (a folded continuation
    starts with a space, and text values escape their line breaks, so no property is that line).
    """
    lines: list[bytes] = []
    zone = zone_ical(zone_key).removesuffix(b"\r\n") if zone_key is not None else None
    for line in cal.content_lines():
        if not line:
            continue
        if zone is not None and line == "BEGIN:VEVENT":
            lines.append(zone)
            zone = None
        lines.append(_folded(line))
    if zone is not None:
        raise ValueError("a VTIMEZONE for a calendar without events")
    return b"\r\n".join(lines) + b"\r\n"


def _folded(line: Contentline) -> bytes:
    """`line.to_ical()`: a line of at most 74 bytes and no line break is written as it is."""
    data = line.encode("utf-8")
    if len(data) <= _FOLD_LIMIT and "\n" not in line:
        return data
    return _folded_long(line)


# icalendar folds before a character that would make a line reach 75 bytes.
_FOLD_LIMIT = 74


@functools.lru_cache(maxsize=4096)
def _folded_long(line: Contentline) -> bytes:
    """A long line folded by icalendar, once: the steps' texts repeat in every plan."""
    data: bytes = line.to_ical()  # type: ignore[no-untyped-call]
    return data
