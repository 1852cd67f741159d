"""The README stays true: its two commands, its library example, every command documented, help with examples."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from aftercal.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def all_commands() -> list[list[str]]:
    """Every leaf command path, e.g. ['plan'], ['protocol', 'check']."""
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, [*path, name])
        else:
            found.append(path)

    walk(get_command(app), [])
    return found


def test_readme_has_exactly_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in quick.splitlines() if line.startswith("    ")]
    assert len(commands) == 2
    main_job, test_command = commands
    assert "aftercal plan" in main_job and "pip install ." in main_job
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example_and_is_in_the_readme(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert f"aftercal {' '.join(path)}" in README, f"README does not show `aftercal {' '.join(path)}`"


def test_plan_imports_no_channel_library() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['aftercal', 'plan', 'microneedling', '--at', '2026-11-24T10:00', '--tz', 'Asia/Tokyo',"
        " '-o', '-']\n"
        "from aftercal.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('caldav', 'googleapiclient', 'google_auth_oauthlib', 'uvicorn', 'starlette', 'psycopg', 'segno', "
        "'keyring', 'requests', 'niquests', 'httplib2')]\n"
        "print('HEAVY', sorted(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert re.search(r"HEAVY \[\]", proc.stderr), proc.stderr


def test_readme_library_example_runs_with_one_import(tmp_path: Path) -> None:
    section = README.split("## Library use", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    imports = [line for line in blocks[0].splitlines() if line.startswith(("import ", "from "))]
    assert imports and all(re.match(r"(import aftercal$|from aftercal import )", line) for line in imports), imports
    proc = subprocess.run([sys.executable, "-c", blocks[0]], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "care.ics").read_bytes().startswith(b"BEGIN:VCALENDAR")
