"""One canonical VTIMEZONE per zone (calendars/vtimezone.py), read back by independent parsers.

In process: dateutil's tzical (what vobject, hence Radicale, evaluates; reached through icalendar's
`Timezone.to_tz`) and icalendar's own transition list. Out of process, every zone in one or few
calls: libical (Debian's ICalGLib under /usr/bin/python3, tests/libical/read.py) and ical.js
(tests/icaljs/sweep.cjs). Radicale: tests/caldav/test_vtimezone_radicale.py.

Expected offsets come from zoneinfo. A wall time written in a file is read as RFC 5545 says: its
first occurrence when the clocks go back (fold=0). libical and ical.js take the second one there;
that is their reading of an ambiguous wall time, not our VTIMEZONE, so both are accepted for
those clients (and counted).
"""

from __future__ import annotations

import bisect
import json
import re
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Timezone

from calendars.ics import reminder_event, render_event_ics, render_ics
from calendars.vtimezone import LAST_YEAR, covered_onsets, zone_component, zone_ical
from reminders import load_protocol
from reminders.errors import StartTimeError
from reminders.schedule import MAX_YEAR, MIN_YEAR, CarePlan, build_plan, localize_start
from tests.test_icaljs import icaljs  # noqa: F401 - the fixture that installs ical.js

PROTOCOL = load_protocol("microneedling")
ALL_ZONES = sorted(available_timezones())
STAMP = datetime(2026, 1, 1, tzinfo=UTC)
HERE = Path(__file__).resolve().parent
DEBIAN_PYTHON = "/usr/bin/python3"
# Years whose changes the libical and ical.js sweeps probe: all changes written from explicit
# tzdata (to 2037; Morocco's and Palestine's to 2087 are covered per decade), a year per decade of
# the rule in force, and the years the engine's last plans reach.
PROBE_YEARS = {*range(1969, 2041), *range(2040, 2198, 10), *range(2198, LAST_YEAR + 1)}
# Starts of the swept plans: each plan's events straddle a DST change in most DST zones.
# Naive on purpose: local wall times, attached to each zone in turn.
SWEEP_STARTS = [
    datetime(year, month, day, 10)  # noqa: DTZ001
    for year, month, day in ((1970, 3, 20), (2026, 10, 20), (2038, 3, 1), (2199, 10, 20))
]
VTIMEZONE_RE = re.compile(rb"BEGIN:VTIMEZONE\r\n.*?END:VTIMEZONE\r\n", re.S)


def plan_at(zone: str, naive: datetime) -> CarePlan | None:
    """The microneedling plan starting at a local wall time; None inside a DST gap (refused).

    Built with the engine directly: every IANA zone, also those the CLI refuses for patients.
    """
    try:
        start = localize_start(naive.replace(second=0, microsecond=0), ZoneInfo(zone))
    except StartTimeError:
        return None
    return build_plan(PROTOCOL, "T-tz", start)


def timed_walls(plan: CarePlan) -> list[tuple[str, datetime]]:
    """(uid, wall time as the file writes it) of every timed event."""
    return [(r.uid, r.start.replace(tzinfo=None, fold=0)) for r in plan.reminders if isinstance(r.start, datetime)]


def offsets(wall: datetime, zone: ZoneInfo) -> tuple[int, int]:
    """zoneinfo's UTC offsets (seconds) of a wall time: first and second occurrence."""
    first, second = (wall.replace(tzinfo=zone, fold=f).utcoffset() for f in (0, 1))
    assert first is not None and second is not None
    return int(first.total_seconds()), int(second.total_seconds())


def around_onsets(key: str, years: Iterable[int], deltas: Iterable[int] = (-3600, -1, 0, 3600)) -> list[datetime]:
    """UTC instants just before, at and after every change the VTIMEZONE writes in those years."""
    wanted = set(years)
    return [utc + timedelta(seconds=d) for utc, _b, _a in covered_onsets(key) if utc.year in wanted for d in deltas]


def plan_in(zone: str, naive: datetime) -> CarePlan:
    plan = plan_at(zone, naive)
    assert plan is not None
    return plan


def vtimezone_of(data: bytes) -> bytes:
    blocks: list[bytes] = VTIMEZONE_RE.findall(data)
    (block,) = blocks
    return block


# -- The same bytes everywhere ------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Africa/Casablanca"])
def test_one_definition_per_zone_in_every_file(zone: str) -> None:
    early = plan_in(zone, datetime(2026, 3, 1, 10))  # noqa: DTZ001
    late = plan_in(zone, datetime(2199, 10, 30, 10))  # noqa: DTZ001
    text = vtimezone_of(render_ics(early, stamp=STAMP))
    assert text == vtimezone_of(render_ics(late, stamp=STAMP)) == zone_ical(zone)
    # The CalDAV resource of one event carries the very same definition.
    reminder = next(r for r in late.reminders if not r.all_day)
    assert vtimezone_of(render_event_ics(late, reminder, stamp=STAMP)) == text


def test_zone_component_is_a_fresh_copy() -> None:
    zone = ZoneInfo("America/New_York")
    first = zone_component(zone)
    first.subcomponents.clear()
    first["TZID"] = "changed"
    assert zone_component(zone).to_ical() == zone_ical("America/New_York")


def test_utc_equal_zones_are_written_in_utc_without_vtimezone() -> None:
    # icalendar writes times of zones equal to UTC with Z; a VTIMEZONE nobody names is left out.
    plan = plan_in("Africa/Abidjan", datetime(2026, 11, 24, 10))  # noqa: DTZ001
    data = render_ics(plan, stamp=STAMP)
    assert b"BEGIN:VTIMEZONE" not in data and b"TZID=" not in data
    assert b"DTSTART:20261124T103000Z" in data


def test_new_york_definition() -> None:
    text = zone_ical("America/New_York").decode()
    assert text.startswith("BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19681231T000000\r\n")
    # Today's rule, open-ended, as Apple and vzic write it.
    assert "DTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\nTZNAME:EDT\r\n" in text
    assert "DTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\nTZNAME:EST\r\n" in text
    # A closed run ends with UNTIL in UTC at its last onset (2006-10-29 02:00 EDT).
    assert "RRULE:FREQ=YEARLY;UNTIL=20061029T060000Z;BYDAY=-1SU;BYMONTH=10\r\n" in text
    # The 1974/1975 energy-crisis changes fit no yearly rule: observances of their own.
    assert "DTSTART:19740106T020000\r\nTZNAME:EDT\r\n" in text
    assert "DTSTART:19750223T020000\r\nTZNAME:EDT\r\n" in text


def test_every_zone_is_well_formed() -> None:
    open_rules = {}
    for key in ALL_ZONES:
        text = zone_ical(key).decode()
        assert zone_component(ZoneInfo(key)).to_ical().decode() == text
        lines = text.split("\r\n")
        assert all(len(line.encode()) <= 75 for line in lines)
        names = {line.split(":")[0].split(";")[0] for line in lines if line and not line.startswith(" ")}
        # Nothing RFC 5545 forbids under VTIMEZONE (icalendar's from_tzinfo writes COMMENT), and no
        # RDATE (ical.js reads only the first value of one).
        assert names <= {"BEGIN", "END", "TZID", "DTSTART", "TZOFFSETFROM", "TZOFFSETTO", "TZNAME", "RRULE"}, key
        observances = Calendar.from_ical("BEGIN:VCALENDAR\r\n" + text + "END:VCALENDAR\r\n").timezones[0].subcomponents
        assert observances and all(o.name in ("STANDARD", "DAYLIGHT") for o in observances)
        open_rules[key] = 0
        for observance in observances:
            assert {"DTSTART", "TZOFFSETFROM", "TZOFFSETTO", "TZNAME"} <= set(observance), key
            rule = observance.get("RRULE")
            if rule is None:
                continue
            assert rule["FREQ"] == ["YEARLY"] and "BYMONTH" in rule and ("BYDAY" in rule or "BYMONTHDAY" in rule)
            assert set(rule) <= {"FREQ", "UNTIL", "BYMONTH", "BYDAY", "BYMONTHDAY"}
            if "UNTIL" in rule:
                assert rule["UNTIL"][0].tzinfo is not None and rule["UNTIL"][0].utcoffset() == timedelta(0)
            else:
                open_rules[key] += 1
        for line in lines:
            if line.startswith("TZOFFSET") and len(line.split(":")[1]) > 5:
                # Seconds in an offset: only Monrovia's -00:44:30, which ended in 1972.
                assert key in ("Africa/Monrovia",), line
        # Open-ended rules exactly where the clocks still change in the last year covered.
        zone = ZoneInfo(key)
        changes = len({datetime(LAST_YEAR, m, 1, tzinfo=zone).utcoffset() for m in range(1, 13)}) > 1
        assert open_rules[key] == (2 if changes else 0), key


# -- dateutil (vobject, Radicale) and icalendar, in process -----------------------------------


def icalendar_offsets(vtimezone: Timezone) -> tuple[list[datetime], list[int]]:
    """icalendar's own reading: UTC transition times and the offsets after them.

    icalendar expands open-ended rules only to 2038 and rounds offsets to whole minutes.
    """
    times, infos = vtimezone.get_transitions()
    return times, [int(info[0].total_seconds()) for info in infos]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone=st.sampled_from(ALL_ZONES),
    naive=st.datetimes(min_value=datetime(MIN_YEAR, 1, 1), max_value=datetime(MAX_YEAR, 12, 31, 23, 59)),  # noqa: DTZ001
)
def test_dateutil_and_icalendar_read_zoneinfo_offsets(zone: str, naive: datetime) -> None:
    plan = plan_at(zone, naive)
    if plan is None:
        return  # a start inside a DST gap is refused (tested elsewhere)
    data = render_ics(plan, stamp=STAMP)
    tz = ZoneInfo(zone)
    timezones = Calendar.from_ical(data).timezones
    if not timezones:  # written in UTC: only right if the zone is UTC then
        assert all(r.start.utcoffset() == timedelta(0) for r in plan.reminders if isinstance(r.start, datetime))
        return
    (vtimezone,) = timezones
    reader = vtimezone.to_tz(lookup_tzid=False)  # dateutil.tz.tzical, as vobject builds it
    walls = [wall for _uid, wall in timed_walls(plan)]
    instants = around_onsets(zone, range(naive.year - 1, naive.year + 3))
    walls += [u.astimezone(tz).replace(tzinfo=None, fold=0) for u in instants]
    for wall in walls:
        got = wall.replace(tzinfo=reader).utcoffset()
        assert got is not None
        assert int(got.total_seconds()) == offsets(wall, tz)[0], (zone, wall)
    # icalendar's transition list, in the UTC direction (fold included), before its 2038 horizon.
    times, after = icalendar_offsets(vtimezone)
    for moment in [*instants, *(r.start.astimezone(UTC) for r in plan.reminders if isinstance(r.start, datetime))]:
        if moment.year >= 2038 or zone == "Africa/Monrovia":  # see icalendar_offsets
            continue
        index = bisect.bisect_right(times, moment.replace(tzinfo=None)) - 1
        expected = moment.astimezone(tz).utcoffset()
        assert expected is not None
        assert after[index] == int(expected.total_seconds()), (zone, moment)


# -- libical and ical.js, every zone ----------------------------------------------------------


def sweep_jobs() -> list[dict[str, Any]]:
    """One calendar per zone: its VTIMEZONE and the timed events of four plans (1970 to 2199).

    Rendering 2,400 full plans takes the better part of a minute, so these calendars carry only
    what an offset depends on: the VTIMEZONE bytes zone_ical gives every file, and DTSTART written
    as ics.py writes it (checked on real files in the tests below). Events are keyed by uid.
    """
    jobs = []
    for key in ALL_ZONES:
        zone = ZoneInfo(key)
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//aftercal//tests//EN"]
        probe = plan_in(key, datetime(2026, 11, 24, 10))  # noqa: DTZ001
        one = Calendar()
        one.add_component(reminder_event(probe, next(r for r in probe.reminders if not r.all_day), stamp=STAMP))
        utc_equal = key not in one.get_used_tzids()  # as calendars.ics.add_timezone decides
        expected: dict[str, tuple[int, ...]] = {}
        for index, naive in enumerate(SWEEP_STARTS):
            swept = plan_at(key, naive)
            if swept is None:
                continue
            for uid, wall in timed_walls(swept):
                uid = f"{index}-{uid}"
                first, second = offsets(wall, zone)
                instant = int((wall - datetime(1970, 1, 1)).total_seconds())  # noqa: DTZ001
                expected[uid] = (instant - first, instant - second)
                start = f"DTSTART:{(wall - timedelta(seconds=first)):%Y%m%dT%H%M%SZ}"
                if not utc_equal:
                    start = f"DTSTART;TZID={key}:{wall:%Y%m%dT%H%M%S}"
                lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", start, "END:VEVENT"]
        if not utc_equal:
            lines.insert(3, zone_ical(key).decode().removesuffix("\r\n"))
        text = "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"
        # The edges in UTC (the last second before a change, its first), wall times an hour either side.
        probes = [] if utc_equal else around_onsets(key, PROBE_YEARS, (-3600, -1, 0, 3600))
        edges, hours = probes[1::4] + probes[2::4], probes[0::4] + probes[3::4]
        jobs.append({
            "key": key, "ics": text, "tzid": None if utc_equal else key, "expected": expected,
            "utc": [int(p.timestamp()) for p in edges],
            "walls": [p.astimezone(zone).replace(tzinfo=None, fold=0) for p in hours],
            "wall_utc": [int(p.timestamp()) for p in hours],
        })  # fmt: skip
    return jobs


@pytest.fixture(scope="module")
def jobs() -> list[dict[str, Any]]:
    return sweep_jobs()


def sub_minute(key: str, instant: int) -> bool:
    """Whether the zone's offset at that instant has seconds (Monrovia until 1972)."""
    offset = datetime.fromtimestamp(instant, ZoneInfo(key)).utcoffset()
    return offset is not None and offset.total_seconds() % 60 != 0


def check_events(job: dict[str, Any], got: dict[str, int], reader: str) -> int:
    """Every event at the engine's instant; returns how many were ambiguous wall times."""
    expected = job["expected"]
    assert set(got) == set(expected), (reader, job["key"])
    ambiguous = 0
    for uid, (first, second) in expected.items():
        if reader == "ical.js" and sub_minute(job["key"], first):
            assert abs(got[uid] - first) < 60  # ical.js drops the seconds of TZOFFSETFROM/TO
            continue
        assert got[uid] in (first, second), (reader, job["key"], uid, got[uid], first)
        ambiguous += first != second
    return ambiguous


def libical_available() -> bool:
    if not Path(DEBIAN_PYTHON).is_file():
        return False
    probe = "import gi; gi.require_version('ICalGLib', '3.0'); from gi.repository import ICalGLib"
    return subprocess.run([DEBIAN_PYTHON, "-c", probe], capture_output=True, check=False).returncode == 0


def read_with_libical(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payload = [
        {"ics": j["ics"], "tzid": j["tzid"], "utc": j["utc"], "local": [f"{w:%Y%m%dT%H%M%S}" for w in j["walls"]]}
        for j in jobs
    ]
    proc = subprocess.run(
        [DEBIAN_PYTHON, str(HERE / "libical" / "read.py")], input=json.dumps(payload), capture_output=True,
        text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def libical() -> None:
    if not libical_available():
        pytest.skip(
            f"libical is read through Debian's {DEBIAN_PYTHON} with gir1.2-ical-3.0 and python3-gi "
            "(scripts/test.sh installs them as root); not importable here"
        )


def test_libical_reads_every_zone(libical: None, jobs: list[dict[str, Any]]) -> None:
    answers = read_with_libical(jobs)
    ambiguous = 0
    for job, answer in zip(jobs, answers, strict=True):
        key = job["key"]
        assert answer["errors"] == [], (key, answer["errors"])
        ambiguous += check_events(job, answer["events"], "libical")
        zone = ZoneInfo(key)
        for instant, got in zip(job["utc"], answer["utc"], strict=True):
            expected = datetime.fromtimestamp(instant, zone).utcoffset()
            assert expected is not None and got == expected.total_seconds(), (key, instant)
        for wall, (got, _daylight) in zip(job["walls"], answer["local"], strict=True):
            assert got in offsets(wall, zone), (key, wall)
    print(f"libical: {len(jobs)} zones, {sum(len(j['expected']) for j in jobs)} events ({ambiguous} ambiguous)")


def test_libical_finds_no_error_in_real_files(libical: None) -> None:
    """Whole rendered calendars and CalDAV resources, after libical's restriction check."""
    jobs: list[dict[str, Any]] = []
    for key in ["America/New_York", "Europe/Dublin", "Africa/Casablanca", "Africa/Monrovia", "Australia/Lord_Howe",
                "Asia/Kathmandu", "Pacific/Apia", "Africa/Abidjan", "America/Santiago", "Asia/Gaza"]:  # fmt: skip
        plan = plan_in(key, datetime(2026, 10, 20, 10))  # noqa: DTZ001
        data = render_ics(plan, stamp=STAMP)
        reminder = next(r for r in plan.reminders if not r.all_day)
        resource = render_event_ics(plan, reminder, stamp=STAMP)
        # The sweep's hand-made events write DTSTART exactly as the real files do.
        assert isinstance(reminder.start, datetime)
        utc = reminder.start.astimezone(UTC)
        written = (
            f"DTSTART:{utc:%Y%m%dT%H%M%SZ}"
            if key == "Africa/Abidjan"
            else f"DTSTART;TZID={key}:{reminder.start:%Y%m%dT%H%M%S}"
        )
        assert f"\r\n{written}\r\n".encode() in resource
        for ics in (data, resource):
            jobs.append({"ics": ics.decode(), "tzid": None, "utc": [], "local": []})
        expected = {r.uid: int(r.start.timestamp()) for r in plan.reminders if isinstance(r.start, datetime)}
        jobs[-2]["expected"] = expected
    proc = subprocess.run(
        [DEBIAN_PYTHON, str(HERE / "libical" / "read.py")], input=json.dumps([{k: v for k, v in j.items()
        if k != "expected"} for j in jobs]), capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job, answer in zip(jobs, json.loads(proc.stdout), strict=True):
        assert answer["errors"] == []
        if "expected" in job:
            assert answer["events"] == job["expected"]


def test_icaljs_reads_every_zone(jobs: list[dict[str, Any]], tmp_path: Path, request: pytest.FixtureRequest) -> None:
    icaljs_dir = request.getfixturevalue("icaljs")  # skips without Node.js and npm
    file = tmp_path / "jobs.json"
    payload = [{"ics": j["ics"], "tzid": j["tzid"], "local": [w.isoformat() for w in j["walls"]]} for j in jobs]
    file.write_text(json.dumps(payload), encoding="utf-8")
    proc = subprocess.run(
        ["node", str(HERE / "icaljs" / "sweep.cjs"), str(icaljs_dir), str(file)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ambiguous = 0
    for job, answer in zip(jobs, json.loads(proc.stdout), strict=True):
        key = job["key"]
        ambiguous += check_events(job, answer["events"], "ical.js")
        zone = ZoneInfo(key)
        for wall, utc, got in zip(job["walls"], job["wall_utc"], answer["local"], strict=True):
            if sub_minute(key, utc):
                continue  # ical.js drops the seconds of Monrovia's -00:44:30
            assert got in offsets(wall, zone), (key, wall, got)
    print(f"ical.js: {len(jobs)} zones, {sum(len(j['expected']) for j in jobs)} events ({ambiguous} ambiguous)")
