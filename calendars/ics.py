"""iCalendar (RFC 5545) export of a care plan, with the `icalendar` library.

Why `icalendar` (7.x) and not `ics` (ics.py), measured here: ics 0.7.3 wrote a zero-offset alarm
as `TRIGGER:P` (ical.js rejects the file), wrote no DTSTAMP and turned zoned times into UTC.
icalendar folds lines, is deterministic, and `caldav` already depends on it; VTIMEZONE comes
from calendars/vtimezone.py (one canonical definition per zone). Its 7.3.2 gaps are worked
around here: durations on X-PUBLISHED-TTL are typed explicitly, REFRESH-INTERVAL gets
VALUE=DURATION, alarms use a relative TRIGGER (never an absolute one, which it writes without
VALUE=DATE-TIME), CATEGORIES is only added when non-empty, and UID / DTSTAMP are always passed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Alarm, Calendar, Event, vDuration, vText

from calendars.tags import ICAL_HASH, ICAL_PLAN, ICAL_STEP
from calendars.vtimezone import zone_component
from reminders.schedule import CarePlan, Reminder

PRODID = "-//aftercal//aftercal care plans//EN"
# How often subscribers should re-fetch a feed; clients treat it as a hint.
REFRESH = timedelta(hours=12)


def plan_calendar(plan: CarePlan, *, stamp: datetime, status: str = "CONFIRMED") -> Calendar:
    """The plan as an icalendar Calendar. `stamp` (aware) is DTSTAMP and LAST-MODIFIED.

    `status="CANCELLED"` renders every event cancelled, for feeds of cancelled treatments.
    """
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
    add_timezone(cal, plan)
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
    """The plan as iCalendar bytes (CRLF line ends, folded lines, same bytes for same input)."""
    data: bytes = plan_calendar(plan, stamp=stamp, status=status).to_ical()
    return data


def render_event_ics(
    plan: CarePlan, reminder: Reminder, *, stamp: datetime, sequence: int | None = None, status: str = "CONFIRMED"
) -> bytes:
    """A VCALENDAR with one event and its VTIMEZONE: the body of one CalDAV resource."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    stamp = stamp.astimezone(UTC).replace(microsecond=0)
    cal.add_component(reminder_event(plan, reminder, stamp=stamp, status=status, sequence=sequence))
    add_timezone(cal, plan)
    data: bytes = cal.to_ical()
    return data
