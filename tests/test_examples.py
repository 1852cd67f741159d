"""Examples are executed: the example calendar is regenerated and compared by meaning."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from reminders.cli import app
from tests.helpers import normalize_calendar

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
