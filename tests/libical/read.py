"""Reads calendars with libical (ICalGLib, Debian's gir1.2-ical-3.0) for tests/test_vtimezone.py.

Runs under Debian's /usr/bin/python3, not the venv (PyGObject comes from python3-gi). Reads a JSON
list of jobs on stdin and writes one JSON answer per job to stdout, so one process serves many
calendars:

    job:    {"ics": "BEGIN:VCALENDAR...", "tzid": "America/New_York",
             "local": ["20261124T100000", ...], "utc": [1795000000, ...]}
    answer: {"errors": ["X-LIC-ERROR lines after the restriction check"],
             "local": [[utc offset, is_daylight], ...],   # offsets for the wall times, in tzid
             "utc": [utc offset, ...],                     # offsets at the Unix instants
             "events": {"uid": unix instant of DTSTART}}   # timed events, as libical reads them
"""

from __future__ import annotations

import json
import sys
from typing import Any

import gi

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib as I  # noqa: E402


def errors(component) -> list[str]:
    found = []
    prop = component.get_first_property(I.PropertyKind.XLICERROR_PROPERTY)
    while prop is not None:
        found.append(prop.as_ical_string().strip())
        prop = component.get_next_property(I.PropertyKind.XLICERROR_PROPERTY)
    sub = component.get_first_component(I.ComponentKind.ANY_COMPONENT)
    while sub is not None:
        found += errors(sub)
        sub = component.get_next_component(I.ComponentKind.ANY_COMPONENT)
    return found


def answer(job: dict[str, Any]) -> dict[str, Any]:
    cal = I.Component.new_from_string(job["ics"])
    if cal is None:
        return {"errors": ["libical could not parse the calendar"], "local": [], "utc": [], "events": {}}
    # Adds X-LIC-ERROR properties where RFC 5545's property counts are broken (COMMENT in VTIMEZONE...).
    I.restriction_check(cal)
    out: dict[str, Any] = {"errors": errors(cal), "local": [], "utc": [], "events": {}}
    zone = cal.get_timezone(job["tzid"]) if job.get("tzid") else None
    if zone is not None:
        # libical expands a zone's changes up to the latest year asked for, again each time a
        # later year comes: asking for the last year first expands once (5x faster here).
        zone.get_utc_offset(I.Time.new_from_string("22101231T000000"))
        for text in job.get("local", []):
            offset, is_daylight = zone.get_utc_offset(I.Time.new_from_string(text))
            out["local"].append([offset, bool(is_daylight)])
        for instant in job.get("utc", []):
            moment = I.Time.new_from_timet_with_zone(instant, 0, I.Timezone.get_utc_timezone())
            out["utc"].append(zone.get_utc_offset_of_utc_time(moment)[0])
    elif job.get("local") or job.get("utc"):
        raise ValueError(f"no VTIMEZONE {job.get('tzid')!r} in the calendar to answer the local and utc questions")
    event = cal.get_first_component(I.ComponentKind.VEVENT_COMPONENT)
    while event is not None:
        prop = event.get_first_property(I.PropertyKind.DTSTART_PROPERTY)
        start = prop.get_dtstart()
        if not start.is_date():
            tzid = prop.get_first_parameter(I.ParameterKind.TZID_PARAMETER)
            where = cal.get_timezone(tzid.get_tzid()) if tzid is not None else I.Timezone.get_utc_timezone()
            out["events"][event.get_uid()] = start.as_timet_with_zone(where)
        event = cal.get_next_component(I.ComponentKind.VEVENT_COMPONENT)
    return out


def main() -> None:
    jobs = json.load(sys.stdin)
    json.dump([answer(job) for job in jobs], sys.stdout)


if __name__ == "__main__":
    main()
