"""A non-editable install ships the protocol content inside the engine package (reminders.content)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a clone does not have: environments, build output, caches.
LOCAL_ONLY = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "node_modules")


def test_installed_package_runs_from_another_folder(tmp_path: Path) -> None:
    # From a clean copy, as a fresh clone: setuptools packs whatever a stale build/ folder holds.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LOCAL_ONLY))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert (target / "reminders" / "content" / "microneedling.toml").is_file()
    assert not (target / "content").exists()  # no top-level package named `content`
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Only the installed copy (and the dependencies of this environment) are importable.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(target)}
    code = (
        "import sys; sys.path = [p for p in sys.path if p not in ('', " + repr(str(ROOT)) + ")]\n"
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')]\n"
        "sys.argv = ['aftercal', 'plan', 'microneedling', '--at', '2026-11-24T10:00', '--tz', 'Europe/Paris',"
        " '-o', 'care.ics']\n"
        "import aftercal.cli, reminders.content\n"
        "assert reminders.content.__file__.startswith(" + repr(str(target)) + "), reminders.content.__file__\n"
        "aftercal.cli.main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (elsewhere / "care.ics").read_bytes().startswith(b"BEGIN:VCALENDAR")
