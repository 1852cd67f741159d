"""A clinic set up as `aftercal init` leaves it, with real channels: Radicale and the Google stand-in.

The clinic's config file names the store (SQLite, or the machine's PostgreSQL), the CalDAV
server, calendar and user, and the stand-in as Google's endpoint; the secret is made by `init`.
Commands run in-process through typer's CliRunner (or as subprocesses where two workers race).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from aftercal.cli import app
from calendars.caldav import CalDavConnection, Password
from tests.caldav.conftest import PASSWORD, USER, Server
from tests.caldav.helpers import Stored, stored_events
from tests.feed.conftest import live_server, pg_admin, pg_url, serve_process  # noqa: F401 - fixtures
from tests.google.conftest import clock, standin  # noqa: F401 - fixtures
from tests.google.standin import CalendarStandin

CALENDAR = "aftercare"


@dataclass
class Clinic:
    """One clinic: its config folder, store, CalDAV server and Google stand-in."""

    root: Path
    db: str
    radicale: Server
    google: CalendarStandin
    calendar_url: str = ""

    @property
    def config(self) -> Path:
        return self.root / "config" / "aftercal.toml"

    def run(self, *args: str) -> Result:
        result = CliRunner().invoke(app, list(args))
        output = result.stdout + result.stderr
        assert PASSWORD not in output and "Traceback" not in output, output
        return result

    def caldav_events(self) -> list[Stored]:
        with CalDavConnection(self.radicale.url, USER, Password(PASSWORD, "test")) as conn:
            return stored_events(conn, self.calendar_url)

    def google_events(self) -> list[dict[str, Any]]:
        return self.google.events("primary")

    def env(self) -> dict[str, str]:
        return {
            "AFTERCAL_CONFIG_DIR": str(self.root / "config"),
            "AFTERCAL_CALDAV_PASSWORD": PASSWORD,
            "AFTERCAL_CALDAV_BACKOFF": "0.01",
            "AFTERCAL_GOOGLE_BACKOFF": "0",
        }


def make_clinic(
    root: Path, db: str, radicale: Server, google: CalendarStandin, monkeypatch: pytest.MonkeyPatch
) -> Clinic:
    clinic = Clinic(root, db, radicale, google)
    for key, value in clinic.env().items():
        monkeypatch.setenv(key, value)
    for key in ("AFTERCAL_CONFIG", "AFTERCAL_DB", "AFTERCAL_SECRET_FILE", "GOOGLE_APPLICATION_CREDENTIALS",
                "AFTERCAL_GOOGLE_API_ENDPOINT", "AFTERCAL_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    made = clinic.run("init", "--db", db)
    assert made.exit_code == 0, made.output
    assert clinic.config.exists() and (clinic.root / "config" / "aftercal.secret").exists()
    clinic.config.write_text(
        f'[store]\ndb = "{db}"\n'
        f'\n[caldav]\nurl = "{radicale.url}"\nuser = "{USER}"\ncalendar = "{CALENDAR}"\n'
        f'\n[google]\napi_endpoint = "{google.url}"\nno_auth = true\n'
        '\n[feeds]\nbase_url = "https://care.example"\n',
        encoding="utf-8",
    )
    with CalDavConnection(radicale.url, USER, Password(PASSWORD, "test")) as conn:
        url = conn.find_calendar(CALENDAR, create=True)
    assert url is not None
    clinic.calendar_url = url
    return clinic


@pytest.fixture
def radicale_server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "radicale"
    root.mkdir()
    srv = Server("radicale", root)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def clinic(
    tmp_path: Path,
    radicale_server: Server,
    standin: CalendarStandin,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> Clinic:
    """A clinic on SQLite."""
    return make_clinic(tmp_path, str(tmp_path / "clinic.db"), radicale_server, standin, monkeypatch)


@pytest.fixture
def pg_clinic(
    tmp_path: Path,
    pg_url: str,  # noqa: F811 - the fixture imported above
    radicale_server: Server,
    standin: CalendarStandin,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> Clinic:
    """A clinic on the machine's PostgreSQL (its own schema)."""
    return make_clinic(tmp_path, pg_url, radicale_server, standin, monkeypatch)


@pytest.fixture(autouse=True)
def _hermetic_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No system keyring, no ~/.netrc: the password comes from the environment."""
    import keyring
    from keyring.backends import null

    previous = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
    keyring.set_keyring(previous)
