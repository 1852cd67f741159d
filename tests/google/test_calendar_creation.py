"""A Google calendar is made once even when the answer to its creation is lost (issue 14).

Google chooses calendar ids, so calendars.insert cannot be idempotent. The stand-in makes the
calendar and then closes the connection without answering (Fault answer="lost"). httplib2 used
to send the insert again by itself (it takes a connection closed before any answer for a stale
one): two calendars. Now nothing is sent twice; aftercal looks for the calendar in the account's
calendar list (name + the tag it writes in the description) and uses it; with the
calendar.app.created scope, which may not read that list, the run stops with one line instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from calendars.gcal import CALENDARS_FILE
from calendars.tags import GOOGLE_UID
from reminders import make_plan
from tests.google.standin import CalendarStandin

START = ["microneedling", "--at", "2026-11-24T10:00", "--tz", "America/Chicago", "--id", "T-1"]
NAME = "Aftercare"


@pytest.fixture(autouse=True)
def _env(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERCAL_GOOGLE_BACKOFF", "0")


def publish(standin: CalendarStandin, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["publish", "google", *START, "--calendar", NAME, "--create-calendar", *extra,
              "--api-endpoint", standin.url, "--no-auth"],
    )  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def inserts(standin: CalendarStandin) -> int:
    return sum(1 for call in standin.calls if call.method == "POST" and call.path.endswith("/calendar/v3/calendars"))


def count() -> int:
    return len(make_plan("microneedling", "2026-11-24T10:00", "America/Chicago", treatment_id="T-1").reminders)


@pytest.mark.parametrize("answer", ["lost", "truncated", "not-json"])
def test_lost_answer_to_calendar_insert_makes_one_calendar(standin: CalendarStandin, answer: str) -> None:
    standin.inject(200, method="POST", path="/calendar/v3/calendars", answer=answer)
    code, out, err = publish(standin)
    assert code == 0, err
    made = standin.named(NAME)
    assert len(made) == 1, [c.id for c in made]
    assert inserts(standin) == 1  # never sent twice: found in the calendar list instead
    assert made[0].id in err and out.strip() == f"T-1: created {count()}, updated 0, deleted 0, unchanged 0"
    assert {e["extendedProperties"]["private"][GOOGLE_UID] for e in standin.events(made[0].id)}
    # and remembered, as a calendar made without incident is
    code, out, err = publish(standin)
    assert code == 0 and "created 0" in out, err
    assert len(standin.named(NAME)) == 1


def test_lost_answer_without_the_calendar_list_stops_with_one_line(standin: CalendarStandin) -> None:
    """calendar.app.created may not list calendars: aftercal cannot look, so it does not insert again."""
    standin.calendar_list_refused = True
    standin.inject(200, method="POST", path="/calendar/v3/calendars", answer="lost")
    code, _, err = publish(standin)
    assert code == 1
    assert len(standin.named(NAME)) == 1 and inserts(standin) == 1
    lines = [line for line in err.strip().splitlines() if not line.startswith("aftercal: warning:")]
    assert len(lines) == 1, err
    assert "Google may have made calendar 'Aftercare' but its answer was lost" in lines[0]
    assert "delete an empty calendar 'Aftercare'" in lines[0] and "internal error" not in err


def test_calendar_made_elsewhere_is_found_by_its_tag(standin: CalendarStandin, config_dir: Path) -> None:
    """Another machine (or a lost config folder): the calendar list leads to the calendar aftercal made."""
    assert publish(standin)[0] == 0
    (config_dir / CALENDARS_FILE).unlink()
    code, out, err = publish(standin)
    assert code == 0 and "created 0" in out, err
    assert len(standin.named(NAME)) == 1
    # A calendar of the same name that aftercal did not make (no tag) is never taken for it.
    standin.add_calendar("mine@group.calendar.google.com", NAME)
    (config_dir / CALENDARS_FILE).unlink()
    assert publish(standin)[0] == 0
    ours = [c.id for c in standin.named(NAME) if c.id != "mine@group.calendar.google.com"]
    assert list(json.loads((config_dir / CALENDARS_FILE).read_text()).values()) == ours
    assert len(standin.named(NAME)) == 2


def test_rate_limited_insert_is_retried(standin: CalendarStandin) -> None:
    """A 429 or 403 rateLimitExceeded means Google did nothing: asking again is safe."""
    standin.calendar_list_refused = True
    standin.inject(429, method="POST", path="/calendar/v3/calendars")
    standin.inject(403, "rateLimitExceeded", method="POST", path="/calendar/v3/calendars")
    code, _, err = publish(standin)
    assert code == 0, err
    assert len(standin.named(NAME)) == 1
