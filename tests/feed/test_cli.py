"""`aftercal treatments ...` and `aftercal serve` as a person runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from calendars.feeds.store import open_store
from tests.feed.conftest import links_from
from tests.helpers import new_store

ADD = ["treatments", "add", "microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Madrid", "--id", "T-1001"]


def token_of(link: str) -> str:
    return link.rsplit("/f/", 1)[1].removesuffix(".ics")


def test_add_prints_links_and_a_qr_code(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db")
    result = CliRunner().invoke(app, [*ADD, "--db", db, "--base-url", "https://care.example/"])
    assert result.exit_code == 0, result.output
    links = links_from(result.stdout)
    token = token_of(links["Feed"])
    assert links == {
        "Feed": f"https://care.example/f/{token}.ics",
        "Subscribe": f"webcal://care.example/f/{token}.ics",
        "Page": f"https://care.example/f/{token}",
    }
    assert "T-1001" not in links["Feed"]
    assert "\u2588" in result.stdout  # the QR code, drawn with block characters
    assert "only a hash" in result.stderr
    store = open_store(db)
    try:
        found = store.lookup_token(token)
        assert found is not None and found.treatment_id == "T-1001"
    finally:
        store.close()


def test_add_writes_the_qr_file_and_can_skip_the_terminal_one(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db")
    svg = tmp_path / "t-1001.svg"
    result = CliRunner().invoke(app, [*ADD, "--db", db, "--qr", str(svg), "--no-qr"])
    assert result.exit_code == 0, result.output
    assert "\u2588" not in result.stdout
    assert svg.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))


def test_list_reschedule_cancel(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db")
    runner = CliRunner()
    assert runner.invoke(app, [*ADD, "--db", db, "--patient-name", "Ana Ruiz", "--no-qr"]).exit_code == 0
    moved = runner.invoke(app, ["treatments", "reschedule", "T-1001", "--at", "2026-11-26T16:30", "--db", db])
    assert moved.exit_code == 0, moved.output
    assert "SEQUENCE 1" in moved.stdout
    listed = runner.invoke(app, ["treatments", "list", "--db", db])
    assert listed.exit_code == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("T-1001"))
    assert "active" in row and "2026-11-26 16:30 Europe/Madrid" in row and "Ana Ruiz" in row
    cancelled = runner.invoke(app, ["treatments", "cancel", "T-1001", "--db", db])
    assert cancelled.exit_code == 0 and "SEQUENCE 2" in cancelled.stdout
    listed = runner.invoke(app, ["treatments", "list", "--db", db])
    assert "cancelled" in next(line for line in listed.stdout.splitlines() if line.startswith("T-1001"))
    again = runner.invoke(app, ["treatments", "cancel", "T-1001", "--db", db])
    assert again.exit_code == 2
    assert again.stderr.count("\n") == 1 and "already cancelled" in again.stderr


def test_link_cannot_show_an_old_token_but_rotates_and_revokes(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db")
    runner = CliRunner()
    added = runner.invoke(app, [*ADD, "--db", db, "--no-qr"])
    old = token_of(links_from(added.stdout)["Feed"])

    shown = runner.invoke(app, ["treatments", "link", "T-1001", "--db", db])
    assert shown.exit_code == 0
    assert "cannot be shown again" in shown.stdout and "--rotate" in shown.stdout
    assert "/f/" not in shown.stdout

    no_rotate_qr = runner.invoke(app, ["treatments", "link", "T-1001", "--db", db, "--qr", str(tmp_path / "q.png")])
    assert no_rotate_qr.exit_code == 2
    assert "--new --qr" in no_rotate_qr.stderr and not (tmp_path / "q.png").exists()

    png = tmp_path / "q.png"
    rotated = runner.invoke(app, ["treatments", "link", "T-1001", "--rotate", "--qr", str(png), "--db", db])
    assert rotated.exit_code == 0, rotated.output
    new = token_of(links_from(rotated.stdout)["Feed"])
    assert new != old
    assert png.read_bytes().startswith(b"\x89PNG")

    revoked = runner.invoke(app, ["treatments", "link", "T-1001", "--revoke", "--db", db])
    assert revoked.exit_code == 0 and "404" in revoked.stdout
    state = runner.invoke(app, ["treatments", "link", "T-1001", "--db", db])
    assert "no active link" in state.stdout
    store = open_store(db)
    try:
        assert store.lookup_token(old) is None
        assert store.lookup_token(new) is None
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*ADD, "--base-url", "ftp://x"], "--base-url"),
        ([*ADD, "--quiet", "late"], "--quiet"),
        ([*ADD, "--name-in-feed"], "--patient-name"),
        (["treatments", "add", "microneedling", "--at", "2026-03-29T02:30", "--tz", "Europe/Madrid"], "not exist"),
        (["treatments", "reschedule", "T-404", "--at", "2026-11-26T16:30"], "no treatment"),
        (["treatments", "link", "T-404"], "no treatment"),
        (["treatments", "link", "T-404", "--rotate", "--revoke"], "one of --rotate, --new or --revoke"),
        (["treatments", "link", "T-404", "--new", "--rotate"], "one of --rotate, --new or --revoke"),
    ],
)
def test_bad_input_is_one_line_and_stores_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    db = new_store(tmp_path / "clinic.db")
    result = CliRunner().invoke(app, [*args, "--db", db])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("aftercal: error:") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    listed = CliRunner().invoke(app, ["treatments", "list", "--db", db])
    assert "T-" not in listed.stdout


def test_db_from_environment_and_default_data_dir(tmp_path: Path) -> None:
    env_db = tmp_path / "env.db"
    runner = CliRunner()
    missing = runner.invoke(app, [*ADD, "--no-qr"], env={"AFTERCAL_DB": str(env_db)})
    assert missing.exit_code == 2 and f"aftercal init --db {env_db}" in missing.stderr
    assert not env_db.exists()  # a mistyped name never becomes an empty store
    new_store(env_db)
    assert runner.invoke(app, [*ADD, "--no-qr"], env={"AFTERCAL_DB": str(env_db)}).exit_code == 0
    data = tmp_path / "data"
    env = {"AFTERCAL_DB": "", "AFTERCAL_DATA_DIR": str(data)}
    none_yet = runner.invoke(app, [*ADD, "--no-qr"], env=env)
    assert none_yet.exit_code == 2 and "no treatment store yet" in none_yet.stderr
    assert "`aftercal init`" in none_yet.stderr
    assert not data.exists()
    made = runner.invoke(app, ["init"], env=env)
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, [*ADD, "--no-qr"], env=env)
    assert result.exit_code == 0, result.output
    assert (data / "clinic.db").exists()


def test_serve_refuses_a_bad_database_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "missing" / "x.db"), "--port", "0"])
    assert result.exit_code == 2
    assert "no treatment store there" in result.stderr and "Traceback" not in result.output
    bad_url = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "x.db"), "--base-url", "javascript:x"])
    assert bad_url.exit_code == 2


@pytest.mark.parametrize("command", ["add", "list", "reschedule", "cancel", "link"])
def test_help_ends_with_an_example(command: str) -> None:
    result = CliRunner().invoke(app, ["treatments", command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout and f"aftercal treatments {command}" in result.stdout


def test_serve_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert "Example:" in result.stdout and "aftercal serve --db" in result.stdout


def test_cli_import_stays_light() -> None:
    code = (
        "import sys, aftercal.cli; "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'psycopg', 'segno', 'platformdirs') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
