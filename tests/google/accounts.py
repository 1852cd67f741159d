"""Google accounts for the tests: OAuth clients, stored tokens, the person in the browser, service accounts.

The stand-in (tests/google/standin.py) plays Google's authorization and token endpoints; these
helpers make the files a clinic would download or aftercal would have stored.
"""

from __future__ import annotations

import json
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
from calendars.gcal_auth import SCOPE_EVENTS
from tests.google.standin import CalendarStandin

SERVICE_ACCOUNT = "aftercal@clinic.iam.gserviceaccount.com"


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


CLIENT_ID = "client-id.apps.googleusercontent.com"
CLIENT_SECRET = "client-secret-value"


def write_token(
    path: Path, standin: CalendarStandin, *, token: str, refresh: str, expiry: str, scopes: list[str] | None = None
) -> None:
    """A token file as `aftercal google login` stores it; the stand-in knows its refresh token
    (unless it is "revoked"), granted `scopes` (default calendar.events)."""
    scopes = scopes or [SCOPE_EVENTS]
    if refresh != "revoked":
        standin.issue_refresh_token(refresh, scopes, client_id=CLIENT_ID)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "token": token,
                "refresh_token": refresh,
                "token_uri": standin.url + "token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scopes": scopes,
                "expiry": expiry,
            }
        ),
        encoding="utf-8",
    )


def client_secrets(path: Path, standin: CalendarStandin, kind: str = "installed") -> Path:
    """A client secrets file as the Google Cloud console downloads it, for a client the stand-in knows."""
    redirects = ["http://localhost"] if kind == "installed" else ["https://clinic.example/oauth2callback"]
    standin.register_client(CLIENT_ID, CLIENT_SECRET, kind=kind, redirect_uris=tuple(redirects))
    client = {
        "client_id": CLIENT_ID,
        "project_id": "clinic",
        "client_secret": CLIENT_SECRET,
        "auth_uri": standin.url + "auth",
        "token_uri": standin.url + "token",
        "redirect_uris": redirects,
    }
    path.write_text(json.dumps({kind: client}), encoding="utf-8")
    return path


class FakeBrowser:
    """Plays the person in the browser: opens Google's page (the stand-in's `/auth`, which signs in
    and consents) and follows its redirect to aftercal's local port.

    `drop` removes query parameters from the URL first (as a bookmarked or hand-edited URL would).
    """

    def __init__(self, drop: tuple[str, ...] = ()) -> None:
        self.threads: list[threading.Thread] = []
        self.urls: list[str] = []
        self.errors: list[str] = []
        self.drop = drop

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.urls.append(url)
        parts = urllib.parse.urlsplit(url)
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in self.drop]
        target = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))

        def follow() -> None:
            try:
                with urllib.request.urlopen(target, timeout=10) as response:
                    response.read()
            except OSError as exc:  # Google's error page: the person sees it, aftercal never hears back
                self.errors.append(str(exc))

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        self.threads.append(thread)
        return True


def login(secrets: Path, monkeypatch: pytest.MonkeyPatch, browser: FakeBrowser | None = None, *args: str) -> Any:
    browser = browser or FakeBrowser()
    monkeypatch.setattr("webbrowser.get", lambda *_a, **_k: browser)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in's token endpoint is plain http
    result = run("google", "login", "--client-secrets", str(secrets), *args)
    for thread in browser.threads:
        thread.join(timeout=10)
    return result


def service_account_key(path: Path, standin: CalendarStandin) -> Path:
    """A service account's JSON key (a real RSA key: google-auth signs its assertion with it)."""
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
                "client_email": SERVICE_ACCOUNT,
                "client_id": "1",
                "token_uri": standin.url + "token",
            }
        ),
        encoding="utf-8",
    )
    return path
