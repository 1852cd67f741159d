"""A second independent parser: ical.js, which Thunderbird uses and which rejects invalid triggers.

Needs Node.js and the npm registry; the package is installed once per machine into a cache
folder. Without node the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from calendars.ics import render_ics
from reminders import PlanOptions, make_plan

HERE = Path(__file__).resolve().parent / "icaljs"
CACHE = Path(os.environ.get("AFTERCAL_ICALJS_DIR", Path.home() / ".cache" / "aftercal-test-icaljs"))
STAMP = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def icaljs() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("Node.js and npm are needed to read calendars with ical.js")
    if not (CACHE / "node_modules" / "ical.js" / "dist" / "ical.es5.cjs").is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(CACHE), "ical.js@2"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return CACHE


def read_with_icaljs(icaljs: Path, data: bytes, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    file = tmp_path / "care.ics"
    file.write_bytes(data)
    proc = subprocess.run(
        ["node", str(HERE / "read.cjs"), str(icaljs), str(file)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("at", "zone"),
    [("2026-11-24T10:00", "America/New_York"), ("2026-03-07T22:30", "America/New_York"),
     ("2026-04-04T10:00", "Australia/Lord_Howe"), ("2026-12-31T23:30", "Asia/Kathmandu"),
     ("2026-10-24T09:00", "Europe/Paris"), ("2026-12-31T20:00", "Pacific/Kiritimati")],
)  # fmt: skip
def test_icaljs_reads_every_event_at_the_right_instant(icaljs: Path, tmp_path: Path, at: str, zone: str) -> None:
    plan = make_plan("microneedling", at, zone, treatment_id="T-js", options=PlanOptions(discreet=True))
    got = read_with_icaljs(icaljs, render_ics(plan, stamp=STAMP), tmp_path)
    assert got["name"] == plan.calendar_name
    assert got["refresh"] == "PT12H"
    events = {e["uid"]: e for e in got["events"]}
    assert set(events) == {r.uid for r in plan.reminders}
    for reminder in plan.reminders:
        event = events[reminder.uid]
        assert event["summary"] == reminder.title
        if reminder.all_day:
            assert event["isDate"] and event["local"] == reminder.start.isoformat()
            assert event["alarms"] == []
            continue
        assert isinstance(reminder.start, datetime)
        assert event["zone"] == zone
        assert event["local"] == reminder.start.strftime("%Y-%m-%dT%H:%M:%S")
        # The instant ical.js derives from our VTIMEZONE is the engine's instant.
        assert event["utc"] == int(reminder.start.timestamp())
        alarm = {"action": "DISPLAY", "description": reminder.alarm_text, "trigger": 0}
        assert event["alarms"] == ([alarm] if reminder.alarm_text else [])
