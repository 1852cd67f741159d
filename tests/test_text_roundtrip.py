"""Every text value reads back unchanged in the parsers real clients use.

vobject (inside Radicale), icalendar (inside caldav), ical.js (Thunderbird, web calendars) and
libical (Evolution, via Debian's gir1.2-ical-3.0 under /usr/bin/python3). Calendar names are
written without the characters ical.js and icalendar would show escaped (see `plain_name`);
SUMMARY, DESCRIPTION and alarm texts keep commas, semicolons and backslashes, escaped per RFC 5545.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from calendars.ics import render_ics
from reminders import PlanOptions, make_plan
from reminders.errors import InputError
from reminders.schedule import CarePlan, Clinic
from tests.helpers import parse_ics
from tests.test_icaljs import icaljs  # noqa: F401 - the fixture that installs ical.js

HERE = Path(__file__).resolve().parent / "textread"
STAMP = datetime(2026, 11, 20, tzinfo=UTC)
SYSTEM_PYTHON = "/usr/bin/python3"
HOSTILE = [
    "Zoë O'Brien; test, ok",
    "C:\\new\\temp",
    'Anne-Marie "Nini" Núñez, jr.; \\; \\\\ ,,;;',
    "Ünïcödé 漢字 🙂 emoji",
]


def plan_with(name: str, discreet: bool = False) -> CarePlan:
    clinic = Clinic(name=f"Clinic; {name}", phone="+1 (555) 0100, ext. 7", url="https://example.org/a,b;c")
    options = PlanOptions(patient_name=name, clinic=clinic, discreet=discreet)
    return make_plan("microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-txt", options=options)


def expected(plan: CarePlan) -> dict[str, Any]:
    return {
        "name": plan.calendar_name,
        "calname": plan.calendar_name,
        "events": {
            r.uid: {"summary": r.title, "description": r.description, "alarms": [r.alarm_text] if r.alarm_text else []}
            for r in plan.reminders
        },
    }


def normalised(read: dict[str, Any]) -> dict[str, Any]:
    events = {e["uid"]: {k: e[k] for k in ("summary", "description", "alarms")} for e in read["events"]}
    return {"name": read["name"], "calname": read["calname"], "events": events}


def read_vobject(data: bytes) -> dict[str, Any]:
    cal = parse_ics(data)
    return {
        "name": cal.contents["name"][0].value,
        "calname": cal.contents["x-wr-calname"][0].value,
        "events": [
            {
                "uid": e.uid.value,
                "summary": e.summary.value,
                "description": e.description.value,
                "alarms": [a.description.value for a in e.contents.get("valarm", [])],
            }
            for e in cal.vevent_list
        ],
    }


def read_icalendar(data: bytes) -> dict[str, Any]:
    cal = Calendar.from_ical(data)
    return {
        "name": str(cal["NAME"]),
        "calname": str(cal["X-WR-CALNAME"]),
        "events": [
            {
                "uid": str(e["UID"]),
                "summary": str(e["SUMMARY"]),
                "description": str(e["DESCRIPTION"]),
                "alarms": [str(a["DESCRIPTION"]) for a in e.walk("VALARM")],
            }
            for e in cal.walk("VEVENT")
        ],
    }


def run_reader(command: list[str]) -> dict[str, Any]:
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def libical_available() -> bool:
    probe = "import gi; gi.require_version('ICalGLib', '3.0'); from gi.repository import ICalGLib"
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("discreet", [False, True])
def test_python_parsers_read_every_text_back(name: str, discreet: bool) -> None:
    plan = plan_with(name, discreet)
    data = render_ics(plan, stamp=STAMP)
    assert normalised(read_vobject(data)) == expected(plan)
    assert normalised(read_icalendar(data)) == expected(plan)


@pytest.mark.parametrize("name", HOSTILE)
def test_icaljs_reads_every_text_back(icaljs: Path, tmp_path: Path, name: str) -> None:  # noqa: F811
    plan = plan_with(name)
    file = tmp_path / "care.ics"
    file.write_bytes(render_ics(plan, stamp=STAMP))
    read = run_reader(["node", str(HERE / "icaljs_texts.cjs"), str(icaljs), str(file)])
    assert normalised(read) == expected(plan)


@pytest.mark.parametrize("name", HOSTILE)
def test_libical_reads_every_text_back(tmp_path: Path, name: str) -> None:
    if not libical_available():
        pytest.skip("Debian's python3-gi and gir1.2-ical-3.0 are needed (scripts/test.sh installs them as root)")
    plan = plan_with(name)
    file = tmp_path / "care.ics"
    file.write_bytes(render_ics(plan, stamp=STAMP))
    read = run_reader([SYSTEM_PYTHON, str(HERE / "libical_texts.py"), str(file)])
    assert normalised(read) == expected(plan)


def test_the_patient_name_is_kept_whole_where_it_is_text() -> None:
    plan = plan_with("Zoë O'Brien; test, ok")
    assert plan.calendar_name == "Microneedling aftercare - Zoë O'Brien test ok"
    assert all(r.description.startswith("For Zoë O'Brien; test, ok.") for r in plan.reminders)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\t", "\n", "\r", "\x7f", "\x9b"])
@pytest.mark.parametrize("field", ["patient_name", "clinic_name", "treatment_id"])
def test_control_characters_in_options_are_refused(char: str, field: str) -> None:
    options = PlanOptions(
        patient_name=f"Zoë{char}x" if field == "patient_name" else None,
        clinic=Clinic(name=f"Skin{char}Co" if field == "clinic_name" else None),
    )
    treatment_id = f"T{char}1" if field == "treatment_id" else "T-1"
    with pytest.raises(InputError):
        make_plan("microneedling", "2026-11-24T10:00", "America/New_York", treatment_id=treatment_id, options=options)
