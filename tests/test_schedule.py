"""The schedule engine: exact local times, DST, quiet hours, odd zones."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from reminders import PlanOptions, QuietHours, make_plan
from reminders.errors import StartTimeError, ZoneError
from reminders.schedule import CarePlan, Reminder, event_uid


def by_key(plan: CarePlan) -> dict[str, Reminder]:
    return {r.key: r for r in plan.reminders}


def wall(reminder: Reminder) -> str:
    assert isinstance(reminder.start, datetime)
    return reminder.start.strftime("%Y-%m-%d %H:%M %z")


def test_new_york_example_local_times() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-1001")
    r = by_key(plan)
    assert wall(r["cleanse-and-cool"]) == "2026-11-24 10:30 -0500"
    assert wall(r["expect-tonight"]) == "2026-11-24 11:00 -0500"
    assert wall(r["avoid-starts"]) == "2026-11-24 12:00 -0500"  # restrictions ring when they start
    assert wall(r["resume-skincare"]) == "2026-11-25 10:00 -0500"  # 24 h after
    assert wall(r["expect-day-1"]) == "2026-11-25 09:00 -0500"
    assert wall(r["start-spf"]) == "2026-11-26 09:00 -0500"  # day 2, morning
    assert wall(r["activity-allowed"]) == "2026-12-01 09:00 -0500"  # day 7
    assert wall(r["actives-allowed"]) == "2026-12-08 09:00 -0500"  # day 14
    assert wall(r["check-in-1-month"]) == "2026-12-24 09:00 -0500"
    assert wall(r["check-in-3-months"]) == "2027-02-22 09:00 -0500"
    assert wall(r["rebook"]) == "2027-01-05 09:00 -0500"  # first day of week 6
    assert (r["rebook.window"].start, r["rebook.window"].end) == (date(2027, 1, 5), date(2027, 1, 20))
    assert (r["no-harsh-products"].start, r["no-harsh-products"].end) == (date(2026, 11, 24), date(2026, 12, 8))
    assert (r["no-heat-sun-activity"].start, r["no-heat-sun-activity"].end) == (date(2026, 11, 24), date(2026, 12, 1))


def test_windows_never_ring_and_key_days_do() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1")
    for reminder in plan.reminders:
        if reminder.all_day:
            assert reminder.alarm_text is None
        else:
            assert reminder.alarm_text == reminder.title
            assert isinstance(reminder.end, datetime) and isinstance(reminder.start, datetime)
            assert reminder.end - reminder.start == timedelta(minutes=15)


def test_elapsed_hours_cross_spring_forward() -> None:
    # US clocks jump 02:00 -> 03:00 on 2026-03-08: 24 elapsed hours end at 11:00 local.
    r = by_key(make_plan("microneedling", "2026-03-07T10:00", "America/New_York", treatment_id="x"))
    assert wall(r["resume-skincare"]) == "2026-03-08 11:00 -0400"
    assert wall(r["expect-day-1"]) == "2026-03-08 09:00 -0400"  # day reminders keep their wall time


def test_elapsed_hours_cross_fall_back() -> None:
    r = by_key(make_plan("microneedling", "2026-10-31T10:00", "America/New_York", treatment_id="x"))
    assert wall(r["resume-skincare"]) == "2026-11-01 09:00 -0500"
    assert wall(r["expect-day-1"]) == "2026-11-01 09:00 -0500"


def test_lord_howe_half_hour_dst() -> None:
    # Lord Howe Island moves its clocks by 30 minutes (+11:00 -> +10:30 on 2026-04-05).
    r = by_key(make_plan("microneedling", "2026-04-04T10:00", "Australia/Lord_Howe", treatment_id="x"))
    assert wall(r["resume-skincare"]) == "2026-04-05 09:30 +1030"
    assert wall(r["expect-day-1"]) == "2026-04-05 09:00 +1030"


@pytest.mark.parametrize(
    ("zone", "offset"),
    [("Asia/Kathmandu", "+0545"), ("Asia/Kolkata", "+0530"), ("Pacific/Kiritimati", "+1400"),
     ("Pacific/Pago_Pago", "-1100"), ("Pacific/Chatham", "+1245"), ("UTC", "+0000")],
)  # fmt: skip
def test_odd_offsets_keep_morning_time(zone: str, offset: str) -> None:
    r = by_key(make_plan("microneedling", "2026-07-01T10:00", zone, treatment_id="x", allow_fixed_zone=zone == "UTC"))
    assert wall(r["start-spf"]) == f"2026-07-03 09:00 {offset}"


def test_library_callers_get_the_fixed_zone_rule_too() -> None:
    with pytest.raises(ZoneError, match="EST is a fixed offset"):
        make_plan("microneedling", "2026-07-01T10:00", "EST", treatment_id="x")


def test_year_end_late_treatment() -> None:
    r = by_key(make_plan("microneedling", "2026-12-31T23:30", "Asia/Kathmandu", treatment_id="x"))
    # 30 minutes later is past midnight, in quiet hours: the cleanse reminder keeps its time silently.
    assert wall(r["cleanse-and-cool"]) == "2027-01-01 00:00 +0545"
    assert r["cleanse-and-cool"].alarm_text is None
    # 4 hours later is 03:30: deferred to the end of quiet hours, never rung at night.
    assert wall(r["expect-tonight"]) == "2027-01-01 08:00 +0545"
    assert r["expect-tonight"].alarm_text is not None
    assert wall(r["expect-day-1"]) == "2027-01-01 09:00 +0545"
    assert r["no-harsh-products"].start == date(2026, 12, 31)


def test_quiet_hours_are_configurable() -> None:
    options = PlanOptions(morning=time(7, 0), quiet=QuietHours(time(22, 0), time(6, 30)))
    r = by_key(make_plan("microneedling", "2026-11-24T20:30", "Europe/Paris", treatment_id="x", options=options))
    assert wall(r["start-spf"]) == "2026-11-26 07:00 +0100"
    assert wall(r["expect-tonight"]) == "2026-11-24 21:30 +0100"  # before the custom quiet hours
    # 20:30 + 2 h = 22:30 falls in the custom quiet hours: deferred to their end.
    assert wall(r["avoid-starts"]) == "2026-11-25 06:30 +0100"


def test_quiet_hours_off() -> None:
    options = PlanOptions(quiet=QuietHours(time(0), time(0)))
    r = by_key(make_plan("microneedling", "2026-11-24T22:00", "Europe/Paris", treatment_id="x", options=options))
    assert wall(r["avoid-starts"]) == "2026-11-25 00:00 +0100"


def test_nothing_before_the_treatment() -> None:
    # A treatment at 19:00 on day 0: nothing lands before it.
    plan = make_plan("microneedling", "2026-11-24T19:00", "Europe/Paris", treatment_id="x")
    for reminder in plan.reminders:
        if isinstance(reminder.start, datetime):
            assert reminder.start >= plan.start


def test_start_in_dst_gap_is_refused() -> None:
    with pytest.raises(StartTimeError, match=r"does not exist in America/New_York.*03:30"):
        make_plan("microneedling", "2026-03-08T02:30", "America/New_York")


def test_ambiguous_start_means_first_occurrence_unless_offset_given() -> None:
    first = make_plan("microneedling", "2026-11-01T01:30", "America/New_York", treatment_id="x")
    assert first.start.utcoffset() == timedelta(hours=-4)
    second = make_plan("microneedling", "2026-11-01T01:30-05:00", "America/New_York", treatment_id="x")
    assert second.start.utcoffset() == timedelta(hours=-5)
    assert second.start.astimezone(ZoneInfo("UTC")) - first.start.astimezone(ZoneInfo("UTC")) == timedelta(hours=1)
    with pytest.raises(StartTimeError, match="never uses"):
        make_plan("microneedling", "2026-11-01T01:30+02:00", "America/New_York")


@pytest.mark.parametrize("bad", ["2026-02-30T10:00", "tomorrow", "2026-11-24 25:00", ""])
def test_impossible_dates(bad: str) -> None:
    with pytest.raises(StartTimeError):
        make_plan("microneedling", bad, "Europe/Paris")


@pytest.mark.parametrize("bad", ["Mars/Olympus", "", "../etc/passwd", "Europe/Paris ", "/etc/localtime"])
def test_unknown_zones(bad: str) -> None:
    with pytest.raises(ZoneError):
        make_plan("microneedling", "2026-11-24T10:00", bad)


def test_zone_hint_for_case_mistakes() -> None:
    with pytest.raises(ZoneError, match="did you mean Europe/Paris"):
        make_plan("microneedling", "2026-11-24T10:00", "europe/paris")


def test_uids_stable_and_rescheduling_keeps_them() -> None:
    a = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1001")
    b = make_plan("microneedling", "2026-12-02T15:00", "Europe/Paris", treatment_id="T-1001")
    c = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1002")
    assert [r.uid for r in a.reminders if r.key] == [event_uid("T-1001", r.key) for r in a.reminders]
    assert {r.uid for r in a.reminders} == {r.uid for r in b.reminders}
    assert not {r.uid for r in a.reminders} & {r.uid for r in c.reminders}
    assert len({r.uid for r in a.reminders}) == len(a.reminders)
    # The treatment id itself never appears in a UID (feeds must not reveal it).
    assert all("T-1001" not in r.uid for r in a.reminders)


def test_default_id_is_deterministic() -> None:
    a = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris")
    b = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris")
    c = make_plan("microneedling", "2026-11-24T10:05", "Europe/Paris")
    assert a.treatment_id == b.treatment_id != c.treatment_id
    assert a.treatment_id.startswith("auto-")


def test_content_hash_tracks_visible_changes_only() -> None:
    a = by_key(make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="x"))
    b = by_key(make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="x",
                         options=PlanOptions(sequence=5)))  # fmt: skip
    c = by_key(make_plan("microneedling", "2026-11-24T11:00", "Europe/Paris", treatment_id="x"))
    assert a["start-spf"].content_hash() == b["start-spf"].content_hash()
    assert a["cleanse-and-cool"].content_hash() != c["cleanse-and-cool"].content_hash()
    # A day-2 reminder at 09:00 does not move when the treatment moves by an hour.
    assert a["start-spf"].content_hash() == c["start-spf"].content_hash()


def test_discreet_and_patient_name() -> None:
    plain = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="x")
    discreet = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="x",
                         options=PlanOptions(discreet=True, patient_name="Ada Lovelace"))  # fmt: skip
    words = plain.protocol.treatment_words
    for reminder in discreet.reminders:
        assert not any(w in reminder.title.lower() for w in words)
        assert reminder.alarm_text is None or not any(w in reminder.alarm_text.lower() for w in words)
        assert "Ada Lovelace" in reminder.description
    assert not any(w in discreet.calendar_name.lower() for w in words)
    assert "Ada Lovelace" in discreet.calendar_name
    assert all("Ada" not in r.description and "Ada" not in r.title for r in plain.reminders)
    assert [r.uid for r in plain.reminders] == [r.uid for r in discreet.reminders]


def test_day_reminder_in_a_dst_gap_moves_forward_and_says_why() -> None:
    options = PlanOptions(morning=time(2, 30), quiet=QuietHours(time(0), time(0)))
    r = by_key(make_plan("microneedling", "2027-03-12T10:00", "America/New_York", treatment_id="x", options=options))
    assert wall(r["start-spf"]) == "2027-03-14 03:30 -0400"  # 02:30 does not exist on 2027-03-14
    assert "clocks jump forward" in r["start-spf"].note
    assert wall(r["activity-allowed"]) == "2027-03-19 02:30 -0400" and r["activity-allowed"].note == ""
