"""Malformed answers from the Calendar API (issue 14): the server's fault, never an "internal error".

The stand-in does the call and spoils its answer (Fault answer=): "not-json" (a 200 HTML page,
also as one part of a batch: googleapiclient raised a ValueError out of the whole batch),
"truncated" (cut half-way: http.client's IncompleteRead). Reads and event writes (idempotent by
event id) are retried; an answer that stays malformed ends with one line naming the server.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from reminders import make_plan
from tests.google.standin import CalendarStandin

START = ["microneedling", "--at", "2026-11-24T10:00", "--tz", "America/Chicago", "--id", "T-1"]
EVENTS = "/calendar/v3/calendars/primary/events"


@pytest.fixture(autouse=True)
def _env(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERCAL_GOOGLE_BACKOFF", "0")
    monkeypatch.delenv("AFTERCAL_GOOGLE_CALENDAR_ID", raising=False)


def run(standin: CalendarStandin, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["publish", "google", *args, "--api-endpoint", standin.url, "--no-auth"])
    return result.exit_code, result.stdout, result.stderr


def errors(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if not line.startswith("aftercal: warning:")]


def count(treatment_id: str = "T-1") -> int:
    return len(make_plan("microneedling", "2026-11-24T10:00", "America/Chicago", treatment_id=treatment_id).reminders)


@pytest.mark.parametrize("answer", ["not-json", "truncated"])
def test_malformed_list_answer_is_retried(standin: CalendarStandin, answer: str) -> None:
    standin.inject(200, method="GET", path=EVENTS, answer=answer, times=2)
    code, out, err = run(standin, *START)
    assert code == 0, err
    assert out.strip() == f"T-1: created {count()}, updated 0, deleted 0, unchanged 0"


@pytest.mark.parametrize("answer", ["not-json", "truncated"])
def test_list_answer_that_stays_malformed_is_one_line_naming_the_server(standin: CalendarStandin, answer: str) -> None:
    standin.inject(200, method="GET", path=EVENTS, answer=answer, times=-1)
    code, _, err = run(standin, *START)
    assert code == 1
    lines = errors(err)
    assert len(lines) == 1 and "internal error" not in err, err
    host = urlsplit(standin.url).netloc
    if answer == "not-json":
        assert f"the Calendar API at {host} kept sending answers that are not what the API documents" in lines[0]
        assert "while trying to list events" in lines[0] and "6 attempts" in lines[0]
    else:  # a cut answer is a transport error: the connection, not the API, failed
        assert "cannot reach the Calendar API to list events (IncompleteRead" in lines[0]
    assert standin.events() == []


@pytest.mark.parametrize("answer", ["not-json", "bad-part"])
def test_batch_part_that_is_not_json_is_retried(standin: CalendarStandin, tmp_path: Path, answer: str) -> None:
    csv = tmp_path / "day.csv"
    csv.write_text(
        "id,protocol,start,zone\nT-1,microneedling,2026-11-24T10:00,America/Chicago\n"
        "T-2,microneedling,2026-11-24T11:00,America/Chicago\n",
        encoding="utf-8",
    )
    # Three inserts done by the stand-in whose batch parts come back as HTML: asked again (409 -> update).
    standin.inject(200, method="POST", path=EVENTS, answer=answer, times=3)
    code, out, err = run(standin, "--from", str(csv))
    assert code == 0, err
    assert "internal error" not in err
    assert len(standin.events()) == count("T-1") + count("T-2")
    assert f"total: 2 treatment(s) done, 0 failed: created {count('T-1') + count('T-2')}" in out


@pytest.mark.parametrize("answer", ["not-json", "bad-part"])
def test_batch_part_that_stays_malformed_fails_its_treatment_in_one_line(
    standin: CalendarStandin, tmp_path: Path, answer: str
) -> None:
    csv = tmp_path / "day.csv"
    csv.write_text(
        "id,protocol,start,zone,calendar\nT-1,microneedling,2026-11-24T10:00,America/Chicago,\n"
        "T-2,microneedling,2026-11-24T11:00,America/Chicago,other@group.calendar.google.com\n",
        encoding="utf-8",
    )
    standin.add_calendar("other@group.calendar.google.com", "Other")
    # Every write to primary is done, and answered with HTML (an insert asked again meets 409 and
    # becomes an update: spoiled too).
    standin.inject(200, method="POST", path=EVENTS, answer=answer, times=-1)
    standin.inject(200, method="PUT", path=EVENTS, answer=answer, times=-1)
    code, out, err = run(standin, "--from", str(csv))
    assert code == 1
    lines = errors(err)
    host = urlsplit(standin.url).netloc
    why = f"last: the Calendar API at {host} answered with a body that is not JSON); run the same command again later"
    assert lines[0].startswith("aftercal: error: T-1: Google kept failing (") and lines[0].endswith(why), err
    if answer == "not-json":  # only T-1's parts are spoiled: T-2, in another calendar, is done
        assert len(lines) == 1 and "T-2: created" in out and "1 failed" in out
    else:  # googleapiclient cannot read such a batch at all: every part of it is asked again, in vain
        assert len(lines) == 2 and lines[1].startswith("aftercal: error: T-2: ") and lines[1].endswith(why)


def test_calendar_get_that_is_not_json_is_retried(standin: CalendarStandin) -> None:
    assert run(standin, *START, "--calendar", "Aftercare", "--create-calendar")[0] == 0
    standin.inject(200, method="GET", path="/calendar/v3/calendars/", answer="not-json", times=1)
    code, out, err = run(standin, *START, "--calendar", "Aftercare", "--create-calendar")
    assert code == 0 and "created 0" in out, err
    assert len(standin.named("Aftercare")) == 1
