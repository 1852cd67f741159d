"""The library API: whatever a command does, `import aftercal` does, without printing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import aftercal
from tests.helpers import events_by_uid

START = ("microneedling", "2026-11-24T10:00", "America/New_York")
STAMP = datetime(2026, 11, 1, tzinfo=UTC)


def test_plan_is_the_same_as_the_command_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options = aftercal.plan_options(morning="08:30", quiet="22:00-07:00", discreet=True, sequence=2)
    plan = aftercal.make_plan(*START, treatment_id="T-1", options=options)
    data = aftercal.render_plan(plan, stamp=STAMP)
    aftercal.write_plan(plan, tmp_path / "care.ics", stamp=STAMP)
    assert (tmp_path / "care.ics").read_bytes() == data
    assert len(events_by_uid(data)) == len(plan.reminders)
    assert capsys.readouterr() == ("", "")  # the library never prints


def test_bad_options_are_input_errors() -> None:
    with pytest.raises(aftercal.InputError, match="--morning '9am'"):
        aftercal.plan_options(morning="9am")
    with pytest.raises(aftercal.InputError, match="--name-in-feed needs --patient-name"):
        aftercal.treatment_options(name_in_feed=True)


def test_timeline_and_past_start() -> None:
    plan = aftercal.make_plan(*START, treatment_id="T-1")
    rows = aftercal.timeline(plan)
    assert len(rows) == len(plan.reminders)
    assert any(row.day == "2" and "09:00" in row.when for row in rows)
    assert aftercal.past_start(plan, now=datetime(2026, 1, 1, tzinfo=UTC)) is None
    past = aftercal.past_start(plan, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert past is not None and past.over == past.total == len(plan.reminders)


def test_protocols_check_and_trace() -> None:
    assert [p.id for p in aftercal.list_protocols()] == ["microneedling"]
    proto = aftercal.check_protocol("microneedling")
    trace = aftercal.trace_protocol("microneedling")
    assert [item.key for item in trace] == list(proto.seed)
    assert all(item.steps for item in trace)


def test_jobs_from_csv_reports_bad_rows(tmp_path: Path) -> None:
    csv = tmp_path / "day.csv"
    csv.write_text(
        "id,protocol,start,zone\nT-1,microneedling,2026-11-24T10:00,Europe/Paris\nT-2,microneedling,2026-11-24T10:00,Mars/Base\n",
        encoding="utf-8",
    )
    rows = list(aftercal.jobs_from_csv(csv))
    assert isinstance(rows[0], aftercal.JobRow) and rows[0].line == 2 and rows[0].job.label == "T-1"
    assert isinstance(rows[1], aftercal.BadRow) and rows[1].line == 3 and "Mars/Base" in rows[1].message


def test_feed_store_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    with pytest.raises(aftercal.InputError, match="no treatment store there"):
        aftercal.add_treatment(*START, "T-1", db=db)
    assert not db.exists()
    aftercal.init_store(db, None)
    link = aftercal.add_treatment(*START, "T-1", options=aftercal.treatment_options(discreet=True), db=db)
    assert link.token and link.treatment.treatment_id == "T-1"
    assert aftercal.feed_links("https://care.example/", link.token).page == f"https://care.example/f/{link.token}"
    moved = aftercal.reschedule_treatment("T-1", "2026-11-26T16:30", db=db)
    assert moved.revision == 1 and [t.treatment_id for t in aftercal.list_treatments(db=db)] == ["T-1"]
    assert not aftercal.revoke_link("T-1", db=db).has_link
    assert aftercal.rotate_link("T-1", db=db).token != link.token
    assert aftercal.cancel_treatment("T-1", db=db).cancelled
