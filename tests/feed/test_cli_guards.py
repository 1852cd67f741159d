"""Checks made before anything changes: a link is never made that cannot be shown."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

from typer.testing import CliRunner

from aftercal.cli import app
from tests.feed.conftest import links_from
from tests.helpers import new_store

ADD = ["treatments", "add", "microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Madrid", "--id", "T-7"]


def test_bad_qr_file_stops_add_before_the_store_changes(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    for qr, message in [("x.jpg", "ending in .svg or .png"), (str(tmp_path / "nope" / "x.svg"), "does not exist")]:
        result = CliRunner().invoke(app, [*ADD, "--db", str(db), "--qr", qr])
        assert result.exit_code == 2 and message in result.stderr
        assert not db.exists()


def test_bad_qr_file_stops_rotate_before_the_old_link_dies(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db")
    added = CliRunner().invoke(app, [*ADD, "--db", db, "--no-qr"])
    old_page = links_from(added.stdout)["Page"]
    result = CliRunner().invoke(app, ["treatments", "link", "T-7", "--rotate", "--qr", "x.jpg", "--db", db])
    assert result.exit_code == 2 and "New link" not in result.stdout
    rotated = CliRunner().invoke(app, ["treatments", "link", "T-7", "--rotate", "--no-qr", "--db", db])
    assert rotated.exit_code == 0 and links_from(rotated.stdout)["Page"] != old_page


def test_store_file_is_private(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    new_store(db)
    assert CliRunner().invoke(app, [*ADD, "--db", str(db), "--no-qr", "--patient-name", "Ada"]).exit_code == 0
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


def test_base_url_with_credentials_is_refused_without_echo(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, [*ADD, "--db", str(tmp_path / "c.db"), "--base-url", "https://u:s3cret@care.example"]
    )
    assert result.exit_code == 2 and "user name or password" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_serve_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "c.db"), "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and result.stderr.count("\n") == 1


def test_postgres_password_never_in_errors() -> None:
    for url in ("postgresql://u:my%pass@127.0.0.1:1/db", "postgresql://u:s3cr3t@127.0.0.1:1/db"):
        result = CliRunner().invoke(app, ["treatments", "list", "--db", url])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1
        assert "my%pass" not in result.stderr and "s3cr3t" not in result.stderr
