"""Inputs that used to give a wrong plan without a word (issue 8, part 5).

* A patient's zone must be a place: EST (-05:00 all year) put a New York patient's reminders an
  hour off all summer. Offsets and abbreviations are refused by the engine, with a city to use
  instead, unless explicitly allowed (`allow_fixed=True`, `--allow-fixed-zone`).
* A morning time inside the quiet hours moved every "day N" reminder to day N+1: refused.
* Without --tz the machine's zone is said on stderr; a start in the past is a warning there.
  Standard output stays the calendar alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from reminders import PlanOptions, QuietHours, load_protocol
from reminders.errors import InputError, ZoneError
from reminders.schedule import build_plan, get_patient_zone
from tests.helpers import events_by_uid, new_store

runner = CliRunner()
PROTOCOL = load_protocol("microneedling")
FUTURE = "2099-06-01T10:00"
PAST = "2020-01-06T10:00"

REFUSED = [
    "EST", "MST", "HST", "EST5EDT", "CST6CDT", "MST7MDT", "PST8PDT", "CET", "WET",
    "UTC", "Etc/UTC", "GMT", "GMT+0", "GMT0", "UCT", "Zulu", "Universal", "Etc/GMT+5", "Etc/GMT-14",
    "est", "utc", "GMT+5", "UTC+01:00",
]  # fmt: skip


# ---- the engine ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REFUSED)
def test_offsets_and_abbreviations_are_refused_with_a_city_hint(name: str) -> None:
    with pytest.raises(ZoneError) as info:
        get_patient_zone(name)
    message = str(info.value)
    assert "\n" not in message
    assert "city zone" in message and "--allow-fixed-zone" in message


@pytest.mark.parametrize(
    ("name", "hints"),
    [
        ("EST", ["fixed offset without daylight saving time", "America/New_York"]),
        ("MST", ["America/Denver", "America/Phoenix"]),
        ("PST8PDT", ["America/Los_Angeles"]),
        ("Etc/GMT+5", ["UTC-05:00", "inverted", "America/New_York"]),
        ("Etc/GMT-1", ["UTC+01:00", "inverted", "Europe/Paris"]),
        ("UTC", ["not a place", "Africa/Abidjan", "Atlantic/Reykjavik"]),
    ],
)
def test_the_hint_names_a_city_and_the_inverted_sign(name: str, hints: list[str]) -> None:
    with pytest.raises(ZoneError) as info:
        get_patient_zone(name)
    for hint in hints:
        assert hint in str(info.value)


def test_allowed_explicitly_they_are_used_as_they_are() -> None:
    for name in ("EST", "UTC", "Etc/GMT+5", "PST8PDT"):
        assert get_patient_zone(name, allow_fixed=True) == ZoneInfo(name)


def test_every_place_is_accepted_and_only_non_places_are_refused() -> None:
    refused = set()
    for name in available_timezones():
        try:
            get_patient_zone(name)
        except ZoneError:
            refused.add(name)
    assert all(name.startswith("Etc/") or "/" not in name for name in refused)
    # Backward-compatible names of places follow their city's rules: accepted.
    for place in ("US/Eastern", "Japan", "GB", "NZ", "Africa/Abidjan", "Atlantic/Reykjavik", "Asia/Kolkata"):
        assert place not in refused
        assert get_patient_zone(place).key == place
    assert {"EST", "UTC", "Etc/GMT+5", "Etc/UTC", "PST8PDT"} <= refused


def test_a_morning_time_inside_quiet_hours_is_refused_by_the_engine() -> None:
    start = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    with pytest.raises(InputError) as info:
        build_plan(PROTOCOL, "T-1", start, PlanOptions(morning=time(23, 0)))
    assert "23:00" in str(info.value) and "21:00-08:00" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="06:30"):
        build_plan(PROTOCOL, "T-1", start, PlanOptions(morning=time(6, 30), quiet=QuietHours(time(22), time(7))))
    # The end of the quiet hours is outside them, and without quiet hours any time goes.
    assert build_plan(PROTOCOL, "T-1", start, PlanOptions(morning=time(8, 0))).reminders
    assert build_plan(PROTOCOL, "T-1", start, PlanOptions(morning=time(23), quiet=QuietHours(time(0), time(0))))


# ---- the command line ------------------------------------------------------------------------------


def zone_commands(tmp_path: Path) -> dict[str, list[str]]:
    """Every command that takes --tz, ready to run but for the --tz option (nothing reaches a server)."""
    db = new_store(tmp_path / "clinic.db") if tmp_path.is_dir() else "clinic.db"  # not a folder: names only
    return {
        "plan": ["plan", "microneedling", "--at", FUTURE, "-o", str(tmp_path / "care.ics")],
        "show": ["show", "microneedling", "--at", FUTURE],
        "publish caldav": ["publish", "caldav", "microneedling", "--at", FUTURE, "--url", "http://127.0.0.1:9/",
                           "--user", "u", "--calendar", "c", "--retries", "1", "--timeout", "1"],
        "publish google": ["publish", "google", "microneedling", "--at", FUTURE,
                           "--api-endpoint", "http://127.0.0.1:9/", "--no-auth"],
        "treatments add": ["treatments", "add", "microneedling", "--at", FUTURE, "--id", "T-1", "--db", db, "--no-qr"],
        "treatments reschedule": ["treatments", "reschedule", "T-1", "--at", FUTURE, "--db", db],
    }  # fmt: skip


COMMANDS = list(zone_commands(Path("x")))
ENV = {"AFTERCAL_CALDAV_PASSWORD": "x", "AFTERCAL_GOOGLE_BACKOFF": "0", "AFTERCAL_CALDAV_BACKOFF": "0"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_tz_option_refuses_a_fixed_zone(command: str, tmp_path: Path) -> None:
    argv = zone_commands(tmp_path)[command]
    result = runner.invoke(app, [*argv, "--tz", "EST"], env=ENV)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "EST is a fixed offset without daylight saving time; use a city zone such as America/New_York" in (
        result.stderr
    )
    assert not (tmp_path / "care.ics").exists()
    forced = runner.invoke(app, [*argv, "--tz", "EST", "--allow-fixed-zone"], env=ENV)
    assert "fixed offset" not in forced.stderr
    if command in ("plan", "show", "treatments add"):
        assert forced.exit_code == 0, forced.output


def test_csv_rows_follow_the_same_rule(tmp_path: Path) -> None:
    csv = tmp_path / "day.csv"
    csv.write_text(f"id,protocol,start,zone\nT-1,microneedling,{FUTURE},EST\nT-2,microneedling,{FUTURE},Etc/GMT+5\n")
    argv = ["publish", "caldav", "--from", str(csv), "--url", "http://127.0.0.1:9/", "--user", "u", "--calendar", "c",
            "--retries", "1", "--timeout", "1"]  # fmt: skip
    result = runner.invoke(app, argv, env=ENV)
    assert result.exit_code == 1
    assert f"{csv}: line 2: EST is a fixed offset" in result.stderr
    assert f"{csv}: line 3: Etc/GMT+5 is a fixed offset of UTC-05:00" in result.stderr
    assert result.stderr.count("(row skipped)") == 2
    forced = runner.invoke(app, [*argv, "--allow-fixed-zone"], env=ENV)
    assert "row skipped" not in forced.stderr and "fixed offset" not in forced.stderr


def test_morning_inside_quiet_hours_is_one_line_and_stores_nothing(tmp_path: Path) -> None:
    plan = runner.invoke(app, ["plan", "microneedling", "--at", FUTURE, "--tz", "Europe/Paris", "--morning", "23:00"])
    assert plan.exit_code == 2 and plan.stdout == ""
    assert plan.stderr.count("\n") == 1 and "23:00" in plan.stderr and "21:00-08:00" in plan.stderr
    db = new_store(tmp_path / "clinic.db")
    add = runner.invoke(app, ["treatments", "add", "microneedling", "--at", FUTURE, "--tz", "Europe/Paris",
                                 "--db", db, "--no-qr", "--morning", "07:00", "--quiet", "22:00-07:30"])  # fmt: skip
    assert add.exit_code == 2 and "07:00" in add.stderr and "22:00-07:30" in add.stderr
    assert "No treatments stored yet" in runner.invoke(app, ["treatments", "list", "--db", db]).stderr


def test_without_tz_the_machine_zone_is_said_on_stderr_only() -> None:
    result = runner.invoke(app, ["plan", "microneedling", "--at", FUTURE, "-o", "-"], env={"TZ": "Europe/Paris"})
    assert result.exit_code == 0, result.output
    assert result.stderr == "aftercal: no --tz given; using this machine's zone Europe/Paris\n"
    assert result.stdout.startswith("BEGIN:VCALENDAR") and events_by_uid(result.stdout_bytes)
    given = runner.invoke(app, ["plan", "microneedling", "--at", FUTURE, "--tz", "Europe/Paris"])
    assert given.stderr == ""


def test_a_machine_on_utc_is_not_taken_for_the_patient_zone() -> None:
    result = runner.invoke(app, ["plan", "microneedling", "--at", FUTURE], env={"TZ": "Etc/UTC"})
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "Etc/UTC is a fixed offset" in result.stderr and "machine's zone" in result.stderr
    assert "pass --tz" in result.stderr
    forced = runner.invoke(app, ["plan", "microneedling", "--at", FUTURE, "--allow-fixed-zone"], env={"TZ": "UTC"})
    assert forced.exit_code == 0 and "using this machine's zone UTC" in forced.stderr


def test_a_start_in_the_past_is_a_warning_not_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", "microneedling", "--at", PAST, "--tz", "Europe/Paris", "-o", "-"])
    assert result.exit_code == 0
    assert result.stdout.startswith("BEGIN:VCALENDAR") and events_by_uid(result.stdout_bytes)
    count = len(events_by_uid(result.stdout_bytes))
    assert result.stderr == (
        "aftercal: warning: the treatment start 2020-01-06 10:00 Europe/Paris is in the past: "
        f"{count} of {count} reminders are already over (check --at if that is a typo)\n"
    )
    show = runner.invoke(app, ["show", "microneedling", "--at", PAST, "--tz", "Europe/Paris"])
    assert show.exit_code == 0 and "in the past" in show.stderr and "in the past" not in show.stdout
    db = new_store(tmp_path / "clinic.db")
    add = runner.invoke(app, ["treatments", "add", "microneedling", "--at", PAST, "--tz", "Europe/Madrid",
                                 "--id", "T-1", "--db", db, "--no-qr"])  # fmt: skip
    assert add.exit_code == 0 and "2020-01-06 10:00 Europe/Madrid is in the past" in add.stderr
    moved = runner.invoke(app, ["treatments", "reschedule", "T-1", "--at", FUTURE, "--db", db])
    assert moved.exit_code == 0 and "in the past" not in moved.stderr
    back = runner.invoke(app, ["treatments", "reschedule", "T-1", "--at", "2020-01-07T09:00", "--db", db])
    assert back.exit_code == 0 and "2020-01-07 09:00 Europe/Madrid is in the past" in back.stderr
    csv = tmp_path / "day.csv"
    csv.write_text(f"id,protocol,start,zone\nT-1,microneedling,{PAST},Europe/Paris\n")
    batch_argv = ["publish", "caldav", "--from", str(csv), "--url", "http://127.0.0.1:9/", "--user", "u",
                  "--calendar", "c", "--retries", "1", "--timeout", "1"]  # fmt: skip
    batch = runner.invoke(app, batch_argv, env=ENV)
    assert f"aftercal: warning: {csv}: line 2: the treatment start 2020-01-06 10:00 Europe/Paris is in the past" in (
        batch.stderr
    )


def test_real_process_keeps_stdout_the_calendar_alone(tmp_path: Path) -> None:
    env = {**os.environ, "TZ": "Europe/Paris", "SOURCE_DATE_EPOCH": "1700000000"}
    argv = [sys.executable, "-m", "aftercal.cli", "plan", "microneedling", "--at", PAST, "-o", "-"]
    proc = subprocess.run(argv, capture_output=True, env=env, check=False, cwd=tmp_path)
    assert proc.returncode == 0
    explicit = subprocess.run([*argv, "--tz", "Europe/Paris"], capture_output=True, env=env, check=False)
    assert proc.stdout == explicit.stdout and proc.stdout.startswith(b"BEGIN:VCALENDAR")
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == "aftercal: no --tz given; using this machine's zone Europe/Paris"
    assert lines[1].startswith("aftercal: warning: the treatment start 2020-01-06 10:00 Europe/Paris is in the past")
    assert len(lines) == 2
