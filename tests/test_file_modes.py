"""Who may read what aftercal writes (issue 14): files with a patient's name or a link's secret are
0600 whatever the umask, other outputs honour the umask, a re-run keeps the mode of the file it
replaces, and the config folder (which holds the Google sign-in token) is 0700.

Each CLI run happens under a given umask, set in-process and restored afterwards.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from reminders.errors import ChannelError
from reminders.files import write_atomic

runner = CliRunner()
PLAN = ["plan", "microneedling", "--at", "2026-11-24T10:00", "--tz", "America/New_York", "--id", "T-1001"]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def plan_to(path: Path, *extra: str, mask: int) -> None:
    with umask(mask):
        result = runner.invoke(app, [*PLAN, *extra, "-o", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("mask", [0o077, 0o022])
def test_plan_with_patient_name_is_private_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    out = tmp_path / "care.ics"
    plan_to(out, "--patient-name", "Jane Doe", mask=mask)
    assert b"Jane Doe" in out.read_bytes()
    assert mode(out) == 0o600


@pytest.mark.parametrize(("mask", "wanted"), [(0o077, 0o600), (0o022, 0o644), (0o027, 0o640)])
def test_plan_without_name_honours_the_umask(tmp_path: Path, mask: int, wanted: int) -> None:
    out = tmp_path / "care.ics"
    plan_to(out, mask=mask)
    assert mode(out) == wanted


@pytest.mark.parametrize("kept", [0o600, 0o640, 0o604])
@pytest.mark.parametrize("name", [[], ["--patient-name", "Jane Doe"]])
def test_rerun_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path, kept: int, name: list[str]) -> None:
    out = tmp_path / "care.ics"
    out.write_bytes(b"old")
    out.chmod(kept)
    plan_to(out, *name, mask=0o022)
    assert out.read_bytes().startswith(b"BEGIN:VCALENDAR")
    assert mode(out) == kept


def test_write_atomic_default_is_private_and_mode_forces(tmp_path: Path) -> None:
    # The QR code of a feed link (calendars/feeds/qr.py) is written with the default: private.
    with umask(0o022):
        write_atomic(tmp_path / "link.png", b"secret")
        loose = tmp_path / "token.json"
        loose.write_bytes(b"{}")
        loose.chmod(0o644)
        write_atomic(loose, b"{}", mode=0o600)  # the sign-in token: 0600 even over a looser file
    assert mode(tmp_path / "link.png") == 0o600
    assert mode(loose) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.png", "token.json"]  # no temp file left


def test_qr_file_of_a_link_is_private(tmp_path: Path) -> None:
    pytest.importorskip("segno")
    from calendars.feeds.qr import write_qr

    with umask(0o022):
        write_qr("https://clinic.example/feed/SECRET-TOKEN.ics", tmp_path / "link.svg")
    assert mode(tmp_path / "link.svg") == 0o600


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("AFTERCAL_CONFIG_DIR", str(folder))
    return folder


@pytest.mark.parametrize("mask", [0o077, 0o022])
def test_config_folder_is_made_0700(config: Path, mask: int) -> None:
    from calendars.gcal_auth import ensure_config_dir

    with umask(mask):
        assert ensure_config_dir() == config
    assert mode(config) == 0o700


def test_existing_loose_config_folder_is_tightened(config: Path) -> None:
    from calendars.gcal_auth import ensure_config_dir

    config.mkdir(mode=0o755)
    config.chmod(0o755)
    ensure_config_dir()
    assert mode(config) == 0o700


def test_config_folder_that_cannot_be_tightened_is_said(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import calendars.gcal_auth as gcal_auth

    config.mkdir()
    config.chmod(0o755)

    def refuse(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("calendars.gcal_auth.os.chmod", refuse)
    with pytest.raises(ChannelError, match=r"config folder .* is not private \(mode 0755\).*chmod 700") as caught:
        gcal_auth.ensure_config_dir()
    assert "\n" not in str(caught.value)
