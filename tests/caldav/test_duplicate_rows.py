"""`publish caldav --from` refuses the second row of a treatment, as `publish google --from` does."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aftercal.cli import app
from reminders import make_plan
from tests.caldav.conftest import PASSWORD, USER, Server


def test_treatment_twice_in_a_csv_is_published_once(radicale: Server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AFTERCAL_CALDAV_PASSWORD", PASSWORD)
    csv = tmp_path / "day.csv"
    csv.write_text(
        "id,protocol,start,zone\n"
        "T-1,microneedling,2027-03-16T09:00,Europe/Paris\n"
        "T-1,microneedling,2027-03-22T15:00,Europe/Paris\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app,
        ["publish", "caldav", "--from", str(csv), "--url", radicale.url, "--user", USER, "--calendar", "aftercare",
         "--create-calendar"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"aftercal: error: {csv}: line 3: treatment id 'T-1' is already on line 2: give each treatment one row "
        "(row skipped)"
    )
    count = len(make_plan("microneedling", "2027-03-16T09:00", "Europe/Paris", treatment_id="T-1").reminders)
    assert result.stdout.splitlines() == [
        f"T-1: created {count}, updated 0, deleted 0, unchanged 0",
        f"total: 1 treatment(s) done, 1 failed: created {count}, updated 0, deleted 0, unchanged 0",
    ]
