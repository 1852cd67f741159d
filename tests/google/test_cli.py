"""`aftercal publish google` / `unpublish google` end to end: CLI -> real client -> stand-in."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from calendars.gcal import event_id
from calendars.tags import GOOGLE_UID
from reminders import make_plan
from tests.google.standin import CalendarStandin

START = ["microneedling", "--at", "2026-11-24T10:00", "--tz", "America/Chicago"]


@pytest.fixture(autouse=True)
def _env(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERCAL_GOOGLE_BACKOFF", "0")
    monkeypatch.delenv("AFTERCAL_GOOGLE_CALENDAR_ID", raising=False)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def publish(standin: CalendarStandin, *args: str) -> tuple[int, str, str]:
    return run("publish", "google", *args, "--api-endpoint", standin.url, "--no-auth")


def test_publish_republish_unpublish(standin: CalendarStandin) -> None:
    count = len(make_plan("microneedling", "2026-11-24T10:00", "America/Chicago", treatment_id="T-1001").reminders)

    code, out, err = publish(standin, *START, "--id", "T-1001", "--calendar-id", "primary")
    assert code == 0, err
    assert out.strip() == f"T-1001: created {count}, updated 0, deleted 0, unchanged 0"
    assert len(standin.events()) == count

    standin.reset_counts()
    code, out, _ = publish(standin, *START, "--id", "T-1001")
    assert code == 0
    assert out.strip() == f"T-1001: created 0, updated 0, deleted 0, unchanged {count}"
    assert standin.writes() == []

    code, out, _ = run("unpublish", "google", "--id", "T-1001", "--api-endpoint", standin.url, "--no-auth")
    assert code == 0
    assert out.strip() == f"T-1001: created 0, updated 0, deleted {count}, unchanged 0"
    assert standin.events() == []


def test_endpoint_from_environment(standin: CalendarStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERCAL_GOOGLE_API_ENDPOINT", standin.url)
    code, out, err = run("publish", "google", *START, "--id", "T-env", "--no-auth")
    assert code == 0, err
    assert out.startswith("T-env: created ")
    assert standin.http_requests == 2


def test_dry_run_writes_nothing(standin: CalendarStandin) -> None:
    count = len(make_plan("microneedling", "2026-11-24T10:00", "America/Chicago", treatment_id="T-1").reminders)
    code, out, _ = publish(standin, *START, "--id", "T-1", "--dry-run")
    assert code == 0
    assert len(re.findall(r"^T-1: would create \S+$", out, flags=re.MULTILINE)) == count
    assert out.strip().splitlines()[-1] == f"T-1: would create {count}, update 0, delete 0, leave 0 unchanged"
    assert standin.writes() == [] and standin.events() == []


def test_no_auth_refused_off_loopback() -> None:
    code, _, err = run("publish", "google", *START, "--api-endpoint", "https://calendar.example.com/", "--no-auth")
    assert code == 2
    assert err.strip().startswith("aftercal: error: --no-auth is only allowed")
    assert "Traceback" not in err


def test_permanent_error_is_one_line(standin: CalendarStandin) -> None:
    standin.inject(403, "forbidden", method="POST", times=-1)
    code, out, err = publish(standin, *START, "--id", "T-1")
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "403 forbidden" in lines[0] and "Traceback" not in err


def test_unknown_calendar(standin: CalendarStandin) -> None:
    code, _, err = publish(standin, *START, "--id", "T-1", "--calendar-id", "nobody@example.com")
    assert code == 1
    assert "does not know calendar 'nobody@example.com'" in err


def test_csv_batch_with_a_bad_row(standin: CalendarStandin, tmp_path: Path) -> None:
    standin.add_calendar("room2@group.calendar.google.com", "Room 2")
    csv = tmp_path / "appointments.csv"
    csv.write_text(
        "id,protocol,start,zone,calendar\n"
        "T-2001,microneedling,2026-11-24T09:00,America/Chicago,\n"
        "T-2002,microneedling,2026-11-24T10:30,Mars/Olympus,\n"
        "T-2003,microneedling,2026-11-24T11:00,Europe/Paris,room2@group.calendar.google.com\n",
        encoding="utf-8",
    )

    code, out, err = publish(standin, "--from", str(csv))

    assert code == 1  # a row failed
    assert "line 3" in err and "Mars/Olympus" in err and "row skipped" in err
    assert "T-2002" not in out
    lines = out.strip().splitlines()
    assert lines[0].startswith("T-2001: created ")
    assert lines[1].startswith("T-2003: created ")
    assert lines[2].startswith("total: 2 treatment(s) done, 1 failed: created ")
    primary_ids = {e["id"] for e in standin.events("primary")}
    room_ids = {e["id"] for e in standin.events("room2@group.calendar.google.com")}
    first = make_plan("microneedling", "2026-11-24T09:00", "America/Chicago", treatment_id="T-2001")
    third = make_plan("microneedling", "2026-11-24T11:00", "Europe/Paris", treatment_id="T-2003")
    assert primary_ids == {event_id("T-2001", r.key) for r in first.reminders}
    assert room_ids == {event_id("T-2003", r.key) for r in third.reminders}

    # The same file again: nothing to write.
    standin.reset_counts()
    code, out, _ = publish(standin, "--from", str(csv))
    assert code == 1
    assert "updated 0, deleted 0" in out.strip().splitlines()[-1] and standin.writes() == []


def test_csv_batch_goes_on_after_a_failing_treatment(standin: CalendarStandin, tmp_path: Path) -> None:
    csv = tmp_path / "appointments.csv"
    csv.write_text(
        "id,protocol,start,zone,calendar\n"
        "T-1,microneedling,2026-11-24T09:00,America/Chicago,missing@example.com\n"
        "T-2,microneedling,2026-11-24T10:00,America/Chicago,\n",
        encoding="utf-8",
    )
    code, out, err = publish(standin, "--from", str(csv))
    assert code == 1
    assert "T-1:" in err and "missing@example.com" in err
    assert "T-2: created" in out and "total: 1 treatment(s) done, 1 failed" in out


def test_example_appointments_file_publishes(standin: CalendarStandin) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "appointments.csv"
    code, out, err = publish(standin, "--from", str(example))
    assert code == 0, err
    assert "failed" in out and "0 failed" in out


def test_create_calendar_is_made_once_and_reused(standin: CalendarStandin) -> None:
    code, _, err = publish(standin, *START, "--id", "T-1", "--calendar", "Aftercare", "--create-calendar")
    assert code == 0, err
    created = [cid for cid in standin.calendars if cid != "primary"]
    assert len(created) == 1 and created[0] in err
    assert {e["extendedProperties"]["private"][GOOGLE_UID] for e in standin.events(created[0])}
    code, out, _ = publish(standin, *START, "--id", "T-1", "--calendar", "Aftercare", "--create-calendar")
    assert code == 0 and "created 0" in out
    assert len(standin.calendars) == 2


def test_help_states_the_service_account_catch() -> None:
    for command in (["publish", "google", "--help"], ["google", "login", "--help"]):
        code, out, _ = run(*command)
        flat = " ".join(out.split())
        assert code == 0
        assert "Reminders belong to the signed-in account" in flat
        assert "Example:" in flat
    code, out, _ = run("unpublish", "google", "--help")
    assert code == 0 and "aftercal unpublish google --id T-1001" in " ".join(out.split())


def test_not_signed_in_is_one_line(standin: CalendarStandin) -> None:
    code, _, err = run("publish", "google", *START, "--api-endpoint", standin.url)
    assert code == 1
    assert err.strip() == (
        "aftercal: error: not signed in to Google: run `aftercal google login --client-secrets client_secret.json`"
    )


def test_unreachable_endpoint_is_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run("publish", "google", *START, "--api-endpoint", f"http://127.0.0.1:{port}/", "--no-auth")
    assert code == 1
    assert err.startswith("aftercal: error: cannot reach the Calendar API to list events (")
    assert len(err.strip().splitlines()) == 1


def test_create_calendar_is_a_flag_that_needs_a_calendar_name(standin: CalendarStandin) -> None:
    # The same names mean the same thing as for CalDAV: --calendar NAME, --create-calendar flag.
    code, _, err = publish(standin, *START, "--id", "T-1", "--create-calendar")
    assert code == 2 and "--create-calendar needs --calendar NAME" in err
    code, _, err = publish(standin, *START, "--id", "T-1", "--calendar", "Never made")
    assert code == 1 and "aftercal has made no Google calendar named 'Never made'" in err
    assert publish(standin, *START, "--id", "T-1", "--calendar", "Kept", "--create-calendar")[0] == 0
    code, out, _ = publish(standin, *START, "--id", "T-1", "--calendar", "Kept")  # found again, no flag
    assert code == 0 and "unchanged" in out
