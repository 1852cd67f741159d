"""Examples are executed: the example calendar is regenerated and compared by meaning."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from aftercal.cli import app
from tests.helpers import events_by_uid, normalize_calendar

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_example_calendar_is_current(tmp_path: Path) -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    command = re.search(r"SOURCE_DATE_EPOCH=(\d+) aftercal plan (.+?) -o examples/", readme.replace("\\\n", " "), re.S)
    assert command, "examples/README.md must show the command that makes the example"
    epoch, args = command.group(1), command.group(2)
    out = tmp_path / "regen.ics"
    result = CliRunner().invoke(app, ["plan", *shlex.split(args), "-o", str(out)], env={"SOURCE_DATE_EPOCH": epoch})
    assert result.exit_code == 0, result.output
    expected = (EXAMPLES / "microneedling-new-york.ics").read_bytes()
    assert normalize_calendar(out.read_bytes()) == normalize_calendar(expected)


def test_clinic_protocol_example_plans_the_shipped_steps_and_its_own(tmp_path: Path) -> None:
    out = tmp_path / "clinic.ics"
    args = ["--at", "2026-11-24T10:00", "--tz", "America/New_York", "--id", "T-1"]
    result = CliRunner().invoke(app, ["plan", str(EXAMPLES / "clinic-microneedling.toml"), *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    shipped = tmp_path / "shipped.ics"
    assert CliRunner().invoke(app, ["plan", "microneedling", *args, "-o", str(shipped)]).exit_code == 0
    clinic_steps = {e.contents["x-aftercal-step"][0].value: e for e in events_by_uid(out.read_bytes()).values()}
    shipped_steps = {e.contents["x-aftercal-step"][0].value: e for e in events_by_uid(shipped.read_bytes()).values()}
    assert set(clinic_steps) == set(shipped_steps) | {"clinic-tonight", "clinic-follow-up"}
    for key, event in shipped_steps.items():  # the shipped advice reaches the patient unchanged
        assert clinic_steps[key].description.value == event.description.value
        assert clinic_steps[key].uid.value == event.uid.value
