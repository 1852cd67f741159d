"""Credentials: the installed-app login, the stored token (0600, refreshed), service-account keys."""

from __future__ import annotations

import dataclasses
import json
import stat
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from calendars.base import sync_plan
from calendars.gcal import DEFAULT_RETRY, connect
from calendars.gcal_auth import token_path
from reminders.errors import AuthError, InputError
from reminders.schedule import CarePlan
from tests.google.accounts import (
    SERVICE_ACCOUNT,
    FakeBrowser,
    client_secrets,
    login,
    run,
    service_account_key,
    write_token,
)
from tests.google.standin import CalendarStandin

START = ["microneedling", "--at", "2026-11-24T10:00", "--tz", "America/Chicago", "--id", "T-1"]
NO_WAIT = dataclasses.replace(DEFAULT_RETRY, sleep=lambda _s: None)


@pytest.fixture(autouse=True)
def _token_endpoint(standin: CalendarStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    # google-auth always refreshes user tokens at Google's token endpoint (it ignores token_uri in
    # the file on purpose); point that one constant at the stand-in so refreshes stay on 127.0.0.1.
    monkeypatch.setattr("google.oauth2.credentials._GOOGLE_OAUTH2_TOKEN_ENDPOINT", standin.url + "token")


def test_login_stores_a_private_json_token_that_publishing_uses(
    standin: CalendarStandin, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = client_secrets(tmp_path / "client_secret.json", standin)
    browser = FakeBrowser()

    result = login(secrets, monkeypatch, browser)

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
    bad.write_text('{"other": 1}', encoding="utf-8")
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


SHARED = "clinic-room1"  # a calendar the clinic made in Google Calendar and shared with the service account


def test_service_account_key_from_environment(
    standin: CalendarStandin, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.token = "nothing-yet"
    standin.add_calendar(SHARED, "Room 1", shared={SERVICE_ACCOUNT: "writer"})
    key_file = service_account_key(tmp_path / "sa.json", standin)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))

    result = run("publish", "google", *START, "--api-endpoint", standin.url, "--calendar-id", SHARED)

    assert result.exit_code == 0, result.output
    assert standin.grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert not token_path().exists()  # a key file never becomes aftercal's stored token
    assert len(standin.events(SHARED)) > 0


def test_service_account_key_option(standin: CalendarStandin, config_dir: Path, tmp_path: Path) -> None:
    standin.token = "nothing-yet"
    standin.add_calendar(SHARED, "Room 1", shared={SERVICE_ACCOUNT: "writer"})
    key_file = service_account_key(tmp_path / "sa.json", standin)
    result = run(
        "publish", "google", *START, "--api-endpoint", standin.url, "--credentials", str(key_file),
        "--calendar-id", SHARED,
    )  # fmt: skip
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
