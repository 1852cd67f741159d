"""Shared test helpers: reading calendars back with an independent parser (vobject)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import vobject


def parse_ics(data: bytes | str) -> Any:
    """Parse with vobject (the parser Radicale uses) with validation on."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return vobject.readOne(text, validate=True)


def events_by_uid(data: bytes | str) -> dict[str, Any]:
    return {event.uid.value: event for event in parse_ics(data).vevent_list}


def local_start(event: Any, zone: ZoneInfo) -> datetime | date:
    """DTSTART as written (wall time + TZID), resolved with zoneinfo as phones do.

    Takes an event from `raw_events_by_uid`. dateutil's VTIMEZONE evaluation (behind vobject's
    transformed values) caches per-date results and was seen here to answer an hour off when
    dates are queried out of order, so the wall time and TZID are read untransformed.
    """
    line = event.dtstart
    text = str(line.value)
    if line.params.get("VALUE") == ["DATE"]:
        return datetime.strptime(text, "%Y%m%d").date()  # noqa: DTZ007 - a date, no zone
    if text.endswith("Z") and "TZID" not in line.params:
        # icalendar writes zones it deems equal to UTC (Africa/Abidjan, Atlantic/Reykjavik...)
        # as UTC: the same instant, allowed only where the zone's offset is zero.
        instant = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).astimezone(zone)
        assert instant.utcoffset() == timedelta(0), f"UTC time written for {zone.key}"
        return instant
    (tzid,) = line.params.get("TZID", ["missing TZID"])
    assert tzid == zone.key, f"event written in {tzid}, expected {zone.key}"
    return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=ZoneInfo(tzid))


def raw_events_by_uid(data: bytes | str) -> dict[str, Any]:
    """Events validated by vobject, then re-read untransformed (values as written)."""
    events_by_uid(data)  # validation
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    raw = vobject.readOne(text, transform=False)
    return {event.uid.value: event for event in raw.vevent_list}


def normalize_calendar(data: bytes | str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """A calendar's meaning: components and their properties, minus volatile stamps, sorted."""
    volatile = {"DTSTAMP", "LAST-MODIFIED", "COMMENT"}
    out = []

    def walk(component: Any) -> None:
        props = []
        for line in component.lines():
            if line.name in volatile:
                continue
            params = ";".join(f"{k}={','.join(v)}" for k, v in sorted(line.params.items()))
            props.append((f"{line.name};{params}", str(line.value)))
        out.append((component.name, tuple(sorted(props))))
        for child in component.components():
            walk(child)

    walk(parse_ics(data))
    return sorted(out)


def new_store(path: Any, secret: bytes | None = None) -> str:
    """Make a treatment store as `aftercal init` does (a command never makes one by accident);
    returns its path as text, for `--db`. Without `secret` its ids stay unkeyed."""
    from aftercal.feeds import init_store

    init_store(str(path), secret)
    return str(path)
