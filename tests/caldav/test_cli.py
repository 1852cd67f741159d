"""`aftercal publish caldav` / `unpublish caldav` end to end, through the CLI, against Radicale."""

from __future__ import annotations

import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from calendars.caldav import CalDavConnection, Password
from reminders import make_plan
from tests.caldav.conftest import PASSWORD, USER, Server
from tests.caldav.helpers import put_foreign, stored_events

N_EVENTS = len(make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1001").reminders)


@pytest.fixture
def run(radicale: Server, monkeypatch: pytest.MonkeyPatch):
    """Run the CLI against Radicale with the password in the environment; checks it never leaks."""
    monkeypatch.setenv("AFTERCAL_CALDAV_PASSWORD", PASSWORD)
    monkeypatch.setenv("AFTERCAL_CALDAV_BACKOFF", "0.01")

    def invoke(*args: str, url: str | None = None, calendar: str = "aftercare", env: dict[str, str] | None = None):
        command = list(args)
        if "--url" not in command:
            command += ["--url", url or radicale.url, "--user", USER, "--calendar", calendar]
        result = CliRunner().invoke(app, command, env=env)
        assert PASSWORD not in result.stdout + result.stderr
        if "--debug" not in command:
            assert "Traceback" not in result.stdout + result.stderr
        return result

    return invoke


PUBLISH = ("publish", "caldav", "microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Paris", "--id", "T-1001")


def events_on(server: Server, calendar_url: str):
    with CalDavConnection(server.url, USER, Password(PASSWORD, "test")) as conn:
        return stored_events(conn, calendar_url)


def calendar_url(server: Server, name: str = "aftercare") -> str:
    with CalDavConnection(server.url, USER, Password(PASSWORD, "test")) as conn:
        url = conn.find_calendar(name, create=False)
        assert url is not None
        return url


def test_publish_republish_reschedule_unpublish(run, radicale: Server) -> None:
    first = run(*PUBLISH, "--create-calendar")
    assert first.exit_code == 0, first.stderr
    assert first.stdout.strip() == f"T-1001: created {N_EVENTS}, updated 0, deleted 0, unchanged 0"
    url = calendar_url(radicale)
    assert len(events_on(radicale, url)) == N_EVENTS

    again = run(*PUBLISH, "--create-calendar")
    assert again.exit_code == 0
    assert again.stdout.strip() == f"T-1001: created 0, updated 0, deleted 0, unchanged {N_EVENTS}"

    moved = run(*PUBLISH[:4], "2026-11-27T16:00", *PUBLISH[5:])
    assert moved.exit_code == 0
    assert "T-1001: created 0, updated " in moved.stdout and "deleted 0" in moved.stdout
    stored = events_on(radicale, url)
    assert len(stored) == N_EVENTS
    starts = {str(s.event.decoded("DTSTART"))[:10] for s in stored}
    assert "2026-11-27" in starts and "2026-11-24" not in starts

    gone = run("unpublish", "caldav", "--id", "T-1001")
    assert gone.exit_code == 0
    assert gone.stdout.strip() == f"T-1001: created 0, updated 0, deleted {N_EVENTS}, unchanged 0"
    assert events_on(radicale, url) == []


def test_dry_run_changes_nothing(run, radicale: Server) -> None:
    dry = run(*PUBLISH, "--create-calendar", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would create calendar 'aftercare'" in dry.stdout
    assert f"would create {N_EVENTS}, update 0, delete 0, leave 0 unchanged" in dry.stdout
    with CalDavConnection(radicale.url, USER, Password(PASSWORD, "test")) as conn:
        assert conn.calendars() == []  # not even the calendar was made
    assert run(*PUBLISH, "--create-calendar").exit_code == 0
    url = calendar_url(radicale)
    before = events_on(radicale, url)
    dry_unpublish = run("unpublish", "caldav", "--id", "T-1001", "--dry-run")
    assert dry_unpublish.exit_code == 0
    assert f"delete {N_EVENTS}, leave 0 unchanged" in dry_unpublish.stdout
    assert events_on(radicale, url) == before


def test_foreign_event_survives_the_cli_journey(run, radicale: Server) -> None:
    assert run(*PUBLISH, "--create-calendar").exit_code == 0
    url = calendar_url(radicale)
    with CalDavConnection(radicale.url, USER, Password(PASSWORD, "test")) as conn:
        put_foreign(conn, url, "dentist.ics", "dentist@example.com")
    assert run(*PUBLISH[:4], "2026-11-28T10:00", *PUBLISH[5:]).exit_code == 0
    assert run("unpublish", "caldav", "--id", "T-1001").exit_code == 0
    assert [s.uid for s in events_on(radicale, url)] == ["dentist@example.com"]


def test_wrong_password_is_one_line_naming_the_cause(run, radicale: Server) -> None:
    result = run(*PUBLISH, env={"AFTERCAL_CALDAV_PASSWORD": "not-the-password"})
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "401" in lines[0] and "wrong password" in lines[0] and "app-specific password" in lines[0]
    assert "not-the-password" not in result.stderr + result.stdout


def test_debug_traceback_does_not_hold_the_password(run, radicale: Server) -> None:
    result = run("--debug", *PUBLISH, env={"AFTERCAL_CALDAV_PASSWORD": "not-the-password"})
    assert result.exception is not None
    text = "".join(traceback.format_exception(result.exception))
    assert "401" in text
    assert "not-the-password" not in text and PASSWORD not in text


def test_unknown_calendar_is_one_line(run, radicale: Server) -> None:
    assert run(*PUBLISH, "--create-calendar").exit_code == 0
    result = run(*PUBLISH, calendar="Aftercare typo")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"aftercal: error: no calendar named 'Aftercare typo' for user {USER!r} on 127.0.0.1:{radicale.port} "
        "(calendars: 'aftercare'); check --calendar or add --create-calendar"
    ]


def test_server_down_is_one_line_after_bounded_retries(run, radicale: Server) -> None:
    radicale.stop()
    result = run(*PUBLISH, "--retries", "2")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"aftercal: error: CalDAV server 127.0.0.1:{radicale.port} could not connect (2 attempts); "
        "run the same command again later: it picks up where it stopped, without duplicates"
    ]
    radicale.start()


def test_no_password_anywhere(radicale: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, [*PUBLISH, "--url", radicale.url, "--user", USER, "--calendar", "aftercare"])
    assert result.exit_code == 1
    assert "no CalDAV password" in result.stderr and "AFTERCAL_CALDAV_PASSWORD" in result.stderr


def test_password_from_netrc_file(radicale: Server, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n", encoding="utf-8")
    netrc.chmod(0o600)
    args = [*PUBLISH, "--url", radicale.url, "--user", USER, "--calendar", "c", "--create-calendar"]
    result = CliRunner().invoke(app, [*args, "--netrc", str(netrc)])
    assert result.exit_code == 0, result.stderr
    assert f"created {N_EVENTS}" in result.stdout


def test_password_given_in_url_is_refused(radicale: Server) -> None:
    url = radicale.url.replace("http://", f"http://{USER}:{PASSWORD}@")
    result = CliRunner().invoke(app, [*PUBLISH, "--url", url, "--user", USER, "--calendar", "c"])
    assert result.exit_code == 2
    assert "must not contain a user name or password" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_csv_batch_with_one_bad_row(run, radicale: Server, tmp_path: Path) -> None:
    csv = tmp_path / "day.csv"
    csv.write_text(
        "id,protocol,start,zone,calendar\n"
        "T-1,microneedling,2026-11-24T10:00,Europe/Paris,\n"
        "T-2,microneedling,2026-11-24T11:00,Mars/Olympus,\n"
        "T-3,microneedling,2026-11-24T12:00,America/New_York,second\n",
        encoding="utf-8",
    )
    result = run("publish", "caldav", "--from", str(csv), "--create-calendar")
    assert result.exit_code == 1
    assert "line 3" in result.stderr and "Mars/Olympus" in result.stderr
    assert f"T-1: created {N_EVENTS}," in result.stdout
    assert f"T-3: created {N_EVENTS}," in result.stdout
    assert f"total: 2 treatment(s) done, 1 failed: created {2 * N_EVENTS}," in result.stdout
    assert len(events_on(radicale, calendar_url(radicale, "aftercare"))) == N_EVENTS
    assert len(events_on(radicale, calendar_url(radicale, "second"))) == N_EVENTS
    rerun = run("publish", "caldav", "--from", str(csv), "--create-calendar")
    assert (
        f"total: 2 treatment(s) done, 1 failed: created 0, updated 0, deleted 0, unchanged {2 * N_EVENTS}"
        in rerun.stdout
    )


def test_cli_module_does_not_import_caldav() -> None:
    code = "import sys, aftercal.cli; print('caldav' in sys.modules, 'calendars.caldav' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
