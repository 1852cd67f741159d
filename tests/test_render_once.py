"""Rendering once (calendars/ics.py): the fast path writes the very bytes of the straightforward one.

The straightforward path builds the whole icalendar Calendar, the zone's VTIMEZONE parsed afresh
from `zone_ical` and inserted first (`plan_calendar`, `event_calendar`), and lets icalendar
serialise it. `render_ics` and `render_event_ics` splice the cached VTIMEZONE bytes in and fold
repeated long lines once; the output must not differ by a byte, for any plan.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendars.ics import event_calendar, plan_calendar, render_event_ics, render_ics
from calendars.vtimezone import zone_ical
from reminders import PlanOptions, load_protocol
from reminders.errors import StartTimeError
from reminders.schedule import MAX_YEAR, MIN_YEAR, Clinic, EventIds, build_plan, localize_start

PROTOCOL = load_protocol("microneedling")
# As tests/test_properties.py: IANA area/location zones and UTC, not the legacy and fixed aliases.
ZONES = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
STAMP = datetime(2026, 1, 1, tzinfo=UTC)

# Texts that pass the engine's checks; long and non-ASCII ones make lines fold (a multi-byte
# character at the 75-byte boundary, a backslash escape that must not be split).
names = st.sampled_from([None, "Grace Hopper", 'Zoë Quartermain-Øster, née \\Ångström; "Q"', "李" * 40, "x" * 90])
clinics = st.sampled_from([
    Clinic(),
    Clinic(name="Rue Clinic", phone="+33 1 23 45 67 89", url="https://clinic.example/care"),
    Clinic(name="Skin & Co; Dermatology, Ltd.", url="https://clinic.example/" + "a" * 80),
    Clinic(phone="+1 555 0100"),
])  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone=st.sampled_from(ZONES),
    naive=st.datetimes(min_value=datetime(MIN_YEAR, 1, 1), max_value=datetime(MAX_YEAR, 12, 31, 23, 59)),  # noqa: DTZ001
    discreet=st.booleans(),
    patient_name=names,
    clinic=clinics,
    keyed=st.booleans(),
    sequence=st.integers(0, 2**31 - 1),
    status=st.sampled_from(["CONFIRMED", "CANCELLED"]),
    empty=st.integers(0, 9),
)
def test_render_once_is_byte_identical(
    zone: str,
    naive: datetime,
    discreet: bool,
    patient_name: str | None,
    clinic: Clinic,
    keyed: bool,
    sequence: int,
    status: str,
    empty: int,
) -> None:
    try:
        start = localize_start(naive.replace(second=0, microsecond=0), ZoneInfo(zone))
    except StartTimeError:
        return  # inside a DST gap: refused (tested elsewhere)
    options = PlanOptions(
        discreet=discreet,
        patient_name=patient_name,
        clinic=clinic,
        sequence=sequence,
        ids=EventIds(b"secret" if keyed else None),
    )
    plan = build_plan(PROTOCOL, "T-render-once", start, options)
    if empty == 0:
        plan = replace(plan, reminders=())  # what a feed of a forgotten treatment renders
    assert render_ics(plan, stamp=STAMP, status=status) == plan_calendar(plan, stamp=STAMP, status=status).to_ical()
    for reminder in plan.reminders[:: max(1, len(plan.reminders) // 3)]:
        fast = render_event_ics(plan, reminder, stamp=STAMP, sequence=sequence // 2, status=status)
        assert fast == event_calendar(plan, reminder, stamp=STAMP, sequence=sequence // 2, status=status).to_ical()


@pytest.mark.parametrize(
    "zone", ["UTC", "Africa/Abidjan", "Africa/Monrovia", "Africa/Casablanca", "Australia/Lord_Howe", "Asia/Kathmandu"]
)
def test_odd_zones_are_byte_identical(zone: str) -> None:
    """Zones written in UTC, with seconds in an offset, with the longest VTIMEZONE, half-hour DST."""
    for naive in (datetime(1970, 3, 20, 10), datetime(2026, 10, 20, 10), datetime(2199, 10, 20, 10)):  # noqa: DTZ001
        plan = build_plan(PROTOCOL, "T-zones", localize_start(naive, ZoneInfo(zone)))
        data = render_ics(plan, stamp=STAMP)
        assert data == plan_calendar(plan, stamp=STAMP).to_ical()
        assert (zone_ical(zone) in data) == (f";TZID={zone}:".encode() in data)
