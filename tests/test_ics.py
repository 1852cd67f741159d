"""iCalendar export, read back with vobject (an independent parser) with validation on."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from calendars.ics import render_event_ics, render_ics
from reminders import Clinic, PlanOptions, make_plan
from tests.helpers import events_by_uid, local_start, parse_ics, raw_events_by_uid

STAMP = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_every_event_parses_with_the_right_local_time() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-1001")
    data = render_ics(plan, stamp=STAMP)
    events = events_by_uid(data)
    raw = raw_events_by_uid(data)
    assert set(events) == {r.uid for r in plan.reminders}
    zone = ZoneInfo("America/New_York")
    for reminder in plan.reminders:
        event = events[reminder.uid]
        assert local_start(raw[reminder.uid], zone) == reminder.start
        assert event.summary.value == reminder.title
        assert event.description.value == reminder.description
        assert event.dtstamp.value == STAMP
        assert event.last_modified.value == STAMP
        assert int(event.sequence.value) == 0
        assert event.transp.value == "TRANSPARENT"
        assert event.dtend.value == reminder.end or event.dtend.value.astimezone(zone) == reminder.end


def test_key_days_are_timed_with_display_alarm_at_start() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Madrid", treatment_id="T-1")
    events = events_by_uid(render_ics(plan, stamp=STAMP))
    rung = 0
    for reminder in plan.reminders:
        event = events[reminder.uid]
        alarms = getattr(event, "valarm_list", [])
        if reminder.all_day:
            assert isinstance(event.dtstart.value, date) and not isinstance(event.dtstart.value, datetime)
            assert alarms == []
            continue
        assert isinstance(event.dtstart.value, datetime) and isinstance(reminder.start, datetime)
        assert event.dtstart.value.utcoffset() == reminder.start.utcoffset()
        if reminder.alarm_text:
            rung += 1
            (alarm,) = alarms
            assert alarm.action.value == "DISPLAY"
            assert alarm.description.value == reminder.alarm_text
            assert alarm.trigger.value == timedelta(0)
            assert alarm.trigger.params.get("RELATED", ["START"]) == ["START"]
    assert rung >= 10


def test_calendar_properties_and_vtimezone() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "Asia/Kathmandu", treatment_id="T-1")
    data = render_ics(plan, stamp=STAMP)
    cal = parse_ics(data)
    assert cal.x_wr_calname.value == "Microneedling aftercare"
    assert cal.contents["name"][0].value == "Microneedling aftercare"
    refresh = cal.contents["refresh-interval"][0]
    assert refresh.params["VALUE"] == ["DURATION"] and refresh.value == "PT12H"
    assert cal.contents["x-published-ttl"][0].value == "PT12H"
    tzids = {tz.tzid.value for tz in cal.vtimezone_list}
    used = set(re.findall(rb";TZID=([^:;]+)[:;]", data))
    used = {tzid.decode() for tzid in used}
    assert used == tzids == {"Asia/Kathmandu"}
    # Lines are folded at 75 octets and end in CRLF, as RFC 5545 requires.
    lines = data.split(b"\r\n")
    assert all(len(line) <= 75 for line in lines)
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_output_is_deterministic() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1")
    assert render_ics(plan, stamp=STAMP) == render_ics(plan, stamp=STAMP)


def test_reschedule_same_uids_and_sequence() -> None:
    before = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-9")
    after = make_plan("microneedling", "2026-12-01T16:00", "Europe/Paris", treatment_id="T-9",
                      options=PlanOptions(sequence=1))  # fmt: skip
    a = events_by_uid(render_ics(before, stamp=STAMP))
    b = events_by_uid(render_ics(after, stamp=STAMP))
    assert set(a) == set(b)
    assert all(int(e.sequence.value) == 1 for e in b.values())


def test_clinic_details_and_categories() -> None:
    clinic = Clinic(name="Rue Clinic", phone="+33 1 23 45 67 89", url="https://clinic.example/care")
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1",
                     options=PlanOptions(clinic=clinic))  # fmt: skip
    for event in events_by_uid(render_ics(plan, stamp=STAMP)).values():
        assert "Rue Clinic" in event.description.value and "+33 1 23 45 67 89" in event.description.value
        assert event.url.value == "https://clinic.example/care"
        assert event.categories.value  # never an empty CATEGORIES line
        assert event.contents["class"][0].value == "PRIVATE"


def test_discreet_calendar_hides_the_treatment_on_lock_screens() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1",
                     options=PlanOptions(discreet=True))  # fmt: skip
    cal = parse_ics(render_ics(plan, stamp=STAMP))
    words = plan.protocol.treatment_words
    visible = [cal.x_wr_calname.value]
    for event in cal.vevent_list:
        visible.append(event.summary.value)
        visible += [a.description.value for a in getattr(event, "valarm_list", [])]
    assert visible and not [v for v in visible if any(w in v.lower() for w in words)]


def test_no_patient_name_unless_asked() -> None:
    plain = render_ics(make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1"), stamp=STAMP)
    named = render_ics(
        make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1",
                  options=PlanOptions(patient_name="Grace Hopper")),
        stamp=STAMP,
    )  # fmt: skip
    assert b"Grace" not in plain
    assert b"Grace Hopper" in named.replace(b"\r\n ", b"")


def test_cancelled_rendering_has_no_alarms() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1")
    for event in parse_ics(render_ics(plan, stamp=STAMP, status="CANCELLED")).vevent_list:
        assert event.status.value == "CANCELLED"
        assert not getattr(event, "valarm_list", [])


def test_single_event_resource() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1")
    reminder = next(r for r in plan.reminders if r.key == "start-spf")
    cal = parse_ics(render_event_ics(plan, reminder, stamp=STAMP, sequence=3))
    (event,) = cal.vevent_list
    assert event.uid.value == reminder.uid and int(event.sequence.value) == 3
    assert [tz.tzid.value for tz in cal.vtimezone_list] == ["Europe/Paris"]
