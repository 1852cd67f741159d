"""A non-editable install ships the protocol content inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_installed_package_runs_from_another_folder(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert (target / "content" / "microneedling.toml").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Only the installed copy (and the dependencies of this environment) are importable.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(target)}
    code = (
        "import sys; sys.path = [p for p in sys.path if p not in ('', " + repr(str(ROOT)) + ")]\n"
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in type(f).__module__]\n"
        "sys.argv = ['aftercal', 'plan', 'microneedling', '--at', '2026-11-24T10:00', '--tz', 'Europe/Paris',"
        " '-o', 'care.ics']\n"
        "import reminders.cli, content\n"
        "assert content.__file__.startswith(" + repr(str(target)) + "), content.__file__\n"
        "reminders.cli.main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (elsewhere / "care.ics").read_bytes().startswith(b"BEGIN:VCALENDAR")
