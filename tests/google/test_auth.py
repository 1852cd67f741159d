"""Credentials: the installed-app login, the stored token (0600, refreshed), service-account keys."""

from __future__ import annotations

import dataclasses
import json
import stat
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from aftercal.cli import app
from calendars.base import sync_plan
from calendars.gcal import DEFAULT_RETRY, connect
from calendars.gcal_auth import SCOPE_EVENTS, token_path
from reminders.errors import AuthError, InputError
from reminders.schedule import CarePlan
from tests.google.standin import CalendarStandin

START = ["microneedling", "--at", "2026-11-24T10:00", "--tz", "America/Chicago", "--id", "T-1"]
NO_WAIT = dataclasses.replace(DEFAULT_RETRY, sleep=lambda _s: None)


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(autouse=True)
def _token_endpoint(standin: CalendarStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    # google-auth always refreshes user tokens at Google's token endpoint (it ignores token_uri in
    # the file on purpose); point that one constant at the stand-in so refreshes stay on 127.0.0.1.
    monkeypatch.setattr("google.oauth2.credentials._GOOGLE_OAUTH2_TOKEN_ENDPOINT", standin.url + "token")


def write_token(path: Path, standin: CalendarStandin, *, token: str, refresh: str, expiry: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "token": token,
                "refresh_token": refresh,
                "token_uri": standin.url + "token",
                "client_id": "client-id.apps.googleusercontent.com",
                "client_secret": "client-secret-value",
                "scopes": [SCOPE_EVENTS],
                "expiry": expiry,
            }
        ),
        encoding="utf-8",
    )


class FakeBrowser:
    """Plays the person in the browser: consents, and follows Google's redirect to the local port."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.urls: list[str] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.urls.append(url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        redirect = query["redirect_uri"][0]
        answer = urllib.parse.urlencode({"state": query["state"][0], "code": "good-code", "scope": SCOPE_EVENTS})

        def follow() -> None:
            with urllib.request.urlopen(f"{redirect}?{answer}", timeout=10) as response:
                response.read()

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        self.threads.append(thread)
        return True


def test_login_stores_a_private_json_token_that_publishing_uses(
    standin: CalendarStandin, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "client_secret.json"
    secrets.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": "client-id.apps.googleusercontent.com",
                    "client_secret": "client-secret-value",
                    "auth_uri": "http://127.0.0.1:9/auth",
                    "token_uri": standin.url + "token",
                    "redirect_uris": ["http://localhost"],
                }
            }
        ),
        encoding="utf-8",
    )
    browser = FakeBrowser()
    monkeypatch.setattr("webbrowser.get", lambda *_a, **_k: browser)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in's token endpoint is plain http

    result = run("google", "login", "--client-secrets", str(secrets))
    for thread in browser.threads:
        thread.join(timeout=10)

    assert result.exit_code == 0, result.output
    assert "calendar.events" in urllib.parse.unquote(browser.urls[0])
    path = token_path()
    assert path.parent == config_dir
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["token"] == standin.token and stored["refresh_token"].startswith("refresh-")
    assert standin.token not in result.output and "client-secret-value" not in result.output

    # The stand-in now requires that bearer token: publishing with the stored login succeeds.
    publish = run("publish", "google", *START, "--api-endpoint", standin.url)
    assert publish.exit_code == 0, publish.output
    assert publish.stdout.startswith("T-1: created ")
    assert standin.token not in publish.output


def test_login_with_a_wrong_file_is_one_line(tmp_path: Path, config_dir: Path) -> None:
    bad = tmp_path / "client_secret.json"
    bad.write_text('{"web": 1}', encoding="utf-8")
    result = run("google", "login", "--client-secrets", str(bad))
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("download the JSON of a 'Desktop app' OAuth client")


def test_expired_token_is_refreshed_and_stored_again(standin: CalendarStandin, config_dir: Path, plan_for: Any) -> None:
    standin.token = "server-side-token"
    write_token(token_path(), standin, token="old-token", refresh="r1", expiry="2020-01-01T00:00:00Z")

    with connect(api_endpoint=standin.url, retry=NO_WAIT) as client:
        _, summary = sync_plan(client, plan_for())

    assert summary.created == len(plan_for().reminders)
    assert standin.grants == ["refresh_token"]
    stored = json.loads(token_path().read_text(encoding="utf-8"))
    assert stored["token"] == standin.token != "old-token"
    assert stored["refresh_token"] == "r1"
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600


def test_token_refused_mid_run_is_refreshed_and_stored(
    standin: CalendarStandin, config_dir: Path, plan_for: Any
) -> None:
    # The token looks valid to the client, but the server no longer accepts it: 401, refresh, retry.
    standin.token = "server-side-token"
    write_token(token_path(), standin, token="stale-token", refresh="r1", expiry="2999-01-01T00:00:00Z")
    plan: CarePlan = plan_for()

    with connect(api_endpoint=standin.url, retry=NO_WAIT) as client:
        _, summary = sync_plan(client, plan)

    assert summary.created == len(plan.reminders)
    assert standin.grants == ["refresh_token"]
    assert any(c.status == 401 for c in standin.calls)
    assert json.loads(token_path().read_text(encoding="utf-8"))["token"] == standin.token


def test_revoked_sign_in_asks_to_log_in_again(standin: CalendarStandin, config_dir: Path) -> None:
    write_token(token_path(), standin, token="old", refresh="revoked", expiry="2020-01-01T00:00:00Z")
    with pytest.raises(AuthError) as info:
        connect(api_endpoint=standin.url)
    message = str(info.value)
    assert "aftercal google login" in message and "7 days" in message
    assert "client-secret-value" not in message and "old" not in message.split()


def test_corrupt_token_file(standin: CalendarStandin, config_dir: Path) -> None:
    config_dir.mkdir(parents=True)
    token_path().write_text("not json", encoding="utf-8")
    with pytest.raises(AuthError, match="not a valid token"):
        connect(api_endpoint=standin.url)


def _service_account_key(path: Path, standin: CalendarStandin) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "clinic",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "aftercal@clinic.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": standin.url + "token",
            }
        ),
        encoding="utf-8",
    )


def test_service_account_key_from_environment(
    standin: CalendarStandin, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.token = "nothing-yet"
    key_file = tmp_path / "sa.json"
    _service_account_key(key_file, standin)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))

    result = run("publish", "google", *START, "--api-endpoint", standin.url)

    assert result.exit_code == 0, result.output
    assert standin.grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert not token_path().exists()  # a key file never becomes aftercal's stored token


def test_service_account_key_option(standin: CalendarStandin, config_dir: Path, tmp_path: Path) -> None:
    standin.token = "nothing-yet"
    key_file = tmp_path / "sa.json"
    _service_account_key(key_file, standin)
    result = run("publish", "google", *START, "--api-endpoint", standin.url, "--credentials", str(key_file))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("T-1: created ")


@pytest.mark.parametrize(
    ("content", "expected"),
    [('{"type": "external_account"}', "expected a service_account"), ("{", "is not a JSON key file")],
)
def test_bad_key_file_is_one_line(tmp_path: Path, config_dir: Path, content: str, expected: str) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(content, encoding="utf-8")
    result = run("publish", "google", *START, "--credentials", str(key_file))
    assert result.exit_code == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_key_file(tmp_path: Path, config_dir: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        connect(credentials_file=tmp_path / "nope.json")


def test_endpoint_must_be_https_off_loopback() -> None:
    import pytest

    from calendars.gcal import normalize_endpoint
    from reminders.errors import InputError

    assert normalize_endpoint("http://127.0.0.1:8080") == "http://127.0.0.1:8080/"
    for bad in ("http://calendar-proxy.example/", "http://[::1", "ftp://x/"):
        with pytest.raises(InputError):
            normalize_endpoint(bad)
