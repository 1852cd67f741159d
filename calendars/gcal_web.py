"""A patient's own Google Calendar: Google's OAuth web-server flow, and a client on the patient's grant.

The clinic registers a "Web application" OAuth client; its JSON file (`[google_web]
client_secrets` in the clinic's config) names the client id and secret. A patient who connects
from their page is sent to Google with an authorization request (authorization code with PKCE,
RFC 7636, S256; `access_type=offline` and `prompt=consent` so that Google returns a refresh token;
the `calendar.app.created` scope only: aftercal may touch nothing but the calendar it makes),
comes back with a code that aftercal exchanges for tokens, and aftercal makes an "Aftercare"
calendar in the patient's account and keeps it in line. Documentation followed:
https://developers.google.com/identity/protocols/oauth2/web-server (steps, parameters,
revocation) and https://developers.google.com/workspace/calendar/api/auth (scopes).

Every URL (authorization, token, revocation, API) can be overridden for tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from calendars.gcal import GooglePublisher, publisher_for
from calendars.gcal_auth import SCOPE_APP_CREATED, new_http, refresh_credentials
from reminders.errors import AuthError, ChannelError, InputError, TransientError
from reminders.files import read_bounded_text

GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_REVOKE_URI = "https://oauth2.googleapis.com/revoke"
CALENDAR_NAME = "Aftercare"


@dataclass(frozen=True)
class WebClient:
    """The clinic's OAuth "Web application" client and the endpoints it talks to."""

    client_id: str
    client_secret: str = field(repr=False)
    auth_uri: str = GOOGLE_AUTH_URI
    token_uri: str = GOOGLE_TOKEN_URI
    revoke_uri: str = GOOGLE_REVOKE_URI
    api_endpoint: str | None = None


def load_web_client(
    path: Path,
    *,
    auth_uri: str | None = None,
    token_uri: str | None = None,
    revoke_uri: str | None = None,
    api_endpoint: str | None = None,
) -> WebClient:
    """The client from its JSON file as Google Cloud console downloads it (key "web")."""
    text = read_bounded_text(
        path, 64 * 1024, "an OAuth client file", error=lambda problem: InputError(f"{path}: {problem}")
    )
    try:
        document = json.loads(text)
    except ValueError:
        raise InputError(
            f"[google_web] client_secrets {path}: not JSON (download it again from Google Cloud console)"
        ) from None
    web = document.get("web") if isinstance(document, dict) else None
    if not isinstance(web, dict):
        kind = next(iter(document), "?") if isinstance(document, dict) and document else "?"
        raise InputError(
            f"[google_web] client_secrets {path}: a {kind!r} client; patients connect through a 'Web application' "
            "OAuth client whose redirect URI is <base_url>/oauth/google/callback"
        )
    client_id, secret = web.get("client_id"), web.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(secret, str) or not client_id or not secret:
        raise InputError(f"[google_web] client_secrets {path}: no client_id / client_secret in its 'web' entry")
    return WebClient(
        client_id=client_id,
        client_secret=secret,
        auth_uri=auth_uri or GOOGLE_AUTH_URI,
        token_uri=token_uri or GOOGLE_TOKEN_URI,
        revoke_uri=revoke_uri or GOOGLE_REVOKE_URI,
        api_endpoint=api_endpoint,
    )


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(client: WebClient, *, redirect_uri: str, state: str, verifier: str) -> str:
    """Where the patient's browser goes to consent (Google's step 2 of the web-server flow)."""
    query = {
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": SCOPE_APP_CREATED,
        "access_type": "offline",  # a refresh token, to keep the calendar in line later
        "prompt": "consent",  # Google returns a refresh token only when it shows the consent screen
        "include_granted_scopes": "false",
        "state": state,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return f"{client.auth_uri}?{urlencode(query)}"


@dataclass(frozen=True)
class Grant:
    """What the token endpoint gave for a patient: a refresh token (kept, sealed) and an access token."""

    refresh_token: str = field(repr=False)
    access_token: str = field(repr=False)


def _post_form(url: str, form: dict[str, str], what: str) -> tuple[int, dict[str, Any]]:
    http = new_http()
    try:
        response, content = http.request(
            url, "POST", body=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    except Exception as exc:
        raise TransientError(f"cannot reach Google to {what} ({type(exc).__name__})") from None
    finally:
        http.close()
    try:
        answer = json.loads(content or b"{}")
    except ValueError:
        answer = {}
    return int(response.status), answer if isinstance(answer, dict) else {}


def exchange_code(client: WebClient, *, code: str, redirect_uri: str, verifier: str) -> Grant:
    """Google's step 5: the authorization code (and the PKCE verifier) for tokens."""
    status, answer = _post_form(
        client.token_uri,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "code_verifier": verifier,
        },
        "finish the sign-in",
    )
    if status != 200:
        reason = str(answer.get("error") or status)
        raise AuthError(f"Google did not accept the sign-in ({reason})")
    refresh, access = answer.get("refresh_token"), answer.get("access_token")
    if not isinstance(refresh, str) or not refresh:
        # Without one, the calendar could not be kept in line once the access token expires.
        raise AuthError("Google gave no refresh token (the consent screen was not shown)")
    if not isinstance(access, str) or not access:
        raise AuthError("Google gave no access token")
    granted = str(answer.get("scope") or SCOPE_APP_CREATED).split()
    if SCOPE_APP_CREATED not in granted:
        raise AuthError("the calendar access was not granted (it must stay ticked on Google's consent screen)")
    return Grant(refresh, access)


def revoke(client: WebClient, token: str) -> bool:
    """Take the grant back at Google (a refresh token revokes the whole grant); True if Google
    confirmed, or the grant was already gone."""
    status, answer = _post_form(client.revoke_uri, {"token": token}, "revoke the access")
    return status == 200 or answer.get("error") in ("invalid_token", "invalid_grant")


def patient_publisher(
    client: WebClient, refresh_token: str, *, calendar_id: str = "primary", access_token: str | None = None
) -> GooglePublisher:
    """A publisher acting as the patient, on the grant they gave (refreshed when needed)."""
    from google.oauth2.credentials import Credentials

    credentials = Credentials(  # type: ignore[no-untyped-call]
        token=access_token,
        refresh_token=refresh_token,
        token_uri=client.token_uri,
        client_id=client.client_id,
        client_secret=client.client_secret,
        scopes=[SCOPE_APP_CREATED],
    )
    if access_token is None:
        # Refreshed here, on a connection closed afterwards (googleapiclient would open one per
        # refresh and leave it); a grant the patient revoked is an AuthError.
        refresh_credentials(credentials)
    return publisher_for(credentials, api_endpoint=client.api_endpoint, calendar_id=calendar_id)


def create_calendar(publisher: GooglePublisher, zone: str) -> str:
    """The "Aftercare" calendar in the patient's account (allowed to calendar.app.created)."""
    body = {
        "summary": CALENDAR_NAME,
        "timeZone": zone,
        "description": "Aftercare reminders from your clinic (aftercal).",
    }
    created = publisher._execute(publisher.service.calendars().insert(body=body), "create a calendar", once=True)
    calendar_id = created.get("id")
    if not isinstance(calendar_id, str) or not calendar_id:
        raise ChannelError("Google's answer to creating the calendar holds no calendar id")
    return calendar_id


def delete_calendar(publisher: GooglePublisher, calendar_id: str) -> None:
    """Remove the calendar aftercal made, with its events (already gone counts as done)."""
    from googleapiclient.errors import HttpError

    try:
        publisher.service.calendars().delete(calendarId=calendar_id).execute(num_retries=2)
    except HttpError as exc:
        if exc.resp.status not in (404, 410):
            raise ChannelError(f"Google refused to delete the patient's calendar ({exc.resp.status})") from None
