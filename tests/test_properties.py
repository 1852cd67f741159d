"""Property-based tests over every IANA zone, dates across decades, and any time of day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendars.ics import render_ics
from reminders import PlanOptions, QuietHours, load_protocol
from reminders.errors import InputError, StartTimeError
from reminders.schedule import build_plan, exists, localize_start
from tests.helpers import local_start, raw_events_by_uid

PROTOCOL = load_protocol("microneedling")
ZONES = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
STAMP = datetime(2026, 1, 1, tzinfo=UTC)

zones = st.sampled_from(ZONES)
# Naive on purpose: local wall times, attached to a zone per example.
local_starts = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2037, 12, 31, 23, 59))  # noqa: DTZ001
clock_times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


def start_in(naive: datetime, zone_name: str) -> datetime | None:
    try:
        return localize_start(naive.replace(second=0, microsecond=0), ZoneInfo(zone_name))
    except StartTimeError:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone=zones, naive=local_starts, morning=clock_times, q_start=clock_times, q_end=clock_times)
def test_invariants_in_every_zone(zone: str, naive: datetime, morning: time, q_start: time, q_end: time) -> None:
    start = start_in(naive, zone)
    if start is None:  # a DST gap: refused, and tested elsewhere
        assert not exists(naive.replace(second=0, microsecond=0, tzinfo=ZoneInfo(zone)))
        return
    quiet = QuietHours(q_start, q_end)
    if quiet.contains(morning):  # every day reminder would move a day: refused
        with pytest.raises(InputError, match="inside the quiet hours"):
            build_plan(PROTOCOL, "T-prop", start, PlanOptions(morning=morning, quiet=quiet))
        return
    plan = build_plan(PROTOCOL, "T-prop", start, PlanOptions(morning=morning, quiet=quiet))
    assert len({r.uid for r in plan.reminders}) == len(plan.reminders)
    for reminder in plan.reminders:
        if reminder.all_day:
            assert isinstance(reminder.start, date) and isinstance(reminder.end, date)
            assert reminder.start >= start.date() and reminder.end > reminder.start
            assert reminder.alarm_text is None
            continue
        assert isinstance(reminder.start, datetime) and isinstance(reminder.end, datetime)
        assert reminder.start.tzinfo is start.tzinfo
        # Never before the treatment; never an alarm in quiet hours (local wall time).
        assert reminder.start >= start
        assert reminder.end > reminder.start
        if reminder.alarm_text is not None:
            assert not quiet.contains(reminder.start.time()), (reminder.key, reminder.start)
        step = next(s for s in PROTOCOL.steps if s.id == reminder.step_id)
        if step.after_minutes is not None and not reminder.note:
            # Elapsed-time steps are exact to the minute in absolute time.
            assert reminder.start.astimezone(UTC) - start.astimezone(UTC) == timedelta(minutes=step.after_minutes)
        if step.day is not None and not reminder.note:
            assert reminder.start.date() == start.date() + timedelta(days=step.day)


@settings(max_examples=60, deadline=None)
@given(zone=zones, naive=local_starts)
def test_ics_round_trip_keeps_local_times(zone: str, naive: datetime) -> None:
    start = start_in(naive, zone)
    if start is None:
        return
    plan = build_plan(PROTOCOL, "T-ics", start)
    events = raw_events_by_uid(render_ics(plan, stamp=STAMP))
    tz = ZoneInfo(zone)
    assert set(events) == {r.uid for r in plan.reminders}
    for reminder in plan.reminders:
        got = local_start(events[reminder.uid], tz)
        assert got == reminder.start
        if isinstance(got, datetime):
            assert isinstance(reminder.start, datetime)
            assert got.utcoffset() == reminder.start.utcoffset()


@settings(max_examples=100, deadline=None)
@given(zone=zones, naive=local_starts, shift=st.integers(min_value=-500, max_value=500))
def test_reschedule_keeps_uids(zone: str, naive: datetime, shift: int) -> None:
    a = start_in(naive, zone)
    b = start_in(naive + timedelta(hours=shift), zone)
    if a is None or b is None:
        return
    first = build_plan(PROTOCOL, "T-r", a)
    second = build_plan(PROTOCOL, "T-r", b)
    assert [r.uid for r in sorted(first.reminders, key=lambda r: r.key)] == [
        r.uid for r in sorted(second.reminders, key=lambda r: r.key)
    ]
