"""Signing in to Google Calendar: OAuth login, the stored token, credentials from key files.

* `login`: the OAuth installed-app flow (a browser consent, a redirect to a short-lived server on
  localhost); the token is stored by `save_token`. It asks for offline access with the consent
  screen shown (access_type=offline, prompt=consent): Google sends a refresh token only when that
  screen was shown, and a sign-in without one would stop working within the hour, so such a token
  is refused, never stored. Only a "Desktop app" client can redirect to this computer: the file of
  a "Web application" client is refused before the browser opens.
* The token is JSON (never pickle) in `google-token.json` in aftercal's config folder
  (`config_dir`: $AFTERCAL_CONFIG_DIR, else the platform's user config dir), written atomically
  with mode 0600 in a 0700 folder, and stored again whenever it is refreshed.
* `load_credentials`: a service-account or authorized-user JSON key file (`--credentials` or
  GOOGLE_APPLICATION_CREDENTIALS), else the stored token, refreshed when expired. Reminders
  (popups) belong to the account that owns the calendar being read, so a service account's events
  never ring a patient's phone unless they land in a calendar the patient's own account reads.
  `granted_scopes` and `service_account_email` tell what the credentials may do and who they are.
* `new_http` / `authorized_http`: the httplib2 transport every Google call uses, which never
  follows a redirect.

Messages never contain a token or a secret. google-auth, google-auth-oauthlib and httplib2 are
imported inside the functions that need them.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reminders.errors import AuthError, ChannelError, InputError, TransientError
from reminders.files import write_atomic

if TYPE_CHECKING:
    from google.auth.credentials import Credentials as AnyCredentials
    from google.oauth2.credentials import Credentials as UserCredentials

CONFIG_ENV = "AFTERCAL_CONFIG_DIR"
KEY_FILE_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
SCOPE_CALENDAR = "https://www.googleapis.com/auth/calendar"
SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_APP_CREATED = "https://www.googleapis.com/auth/calendar.app.created"
TOKEN_FILE = "google-token.json"
HTTP_TIMEOUT = 60
LOGIN_TIMEOUT = 300  # seconds to wait for the browser's redirect
PERMISSIONS_PAGE = "https://myaccount.google.com/permissions"  # where a person removes an app's access

# ---- where the token lives -------------------------------------------------------------------------


def config_dir() -> Path:
    """aftercal's config folder: $AFTERCAL_CONFIG_DIR, else the platform's user config dir."""
    override = os.environ.get(CONFIG_ENV, "").strip()
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("aftercal", appauthor=False))


def token_path() -> Path:
    return config_dir() / TOKEN_FILE


def ensure_config_dir() -> Path:
    """The config folder, made when missing; always 0700 (it holds the sign-in token).

    A folder that exists with a looser mode (made by hand, or by another tool under umask 022)
    is tightened; when it cannot be, aftercal says so instead of storing a token there.
    """
    folder = config_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ChannelError(f"cannot create config folder {folder}: {exc.strerror or exc}") from None
    current = None
    try:
        current = stat.S_IMODE(folder.stat().st_mode)
        if current != 0o700:
            os.chmod(folder, 0o700)
    except OSError as exc:
        shown = f"mode {current:04o}" if current is not None else "mode unknown"
        raise ChannelError(
            f"config folder {folder} is not private ({shown}) and cannot be made so "
            f"({exc.strerror or exc}): make it 0700 (chmod 700 {folder}) or set ${CONFIG_ENV} to a folder of yours"
        ) from None
    return folder


def save_token(credentials: UserCredentials) -> Path:
    """Store user credentials as JSON (never pickle), atomically, readable by the owner only."""
    ensure_config_dir()
    path = token_path()
    write_atomic(path, credentials.to_json().encode("utf-8"), mode=0o600)  # type: ignore[no-untyped-call]
    return path


# ---- signing in ----------------------------------------------------------------------------------------


def login(client_secrets: Path, *, app_created: bool = False, open_browser: bool = True, port: int = 0) -> Path:
    """OAuth installed-app flow: a browser consent, a redirect to a local port, a stored token.

    The consent screen is always shown (prompt=consent): Google sends a refresh token only then
    (once it remembers a consent it skips the screen, and the token it sends lasts an hour), and
    aftercal cannot tell whether Google remembers one (another computer, a deleted token file).
    """
    from google_auth_oauthlib.flow import InstalledAppFlow

    _check_desktop_client(client_secrets)
    scopes = [SCOPE_APP_CREATED] if app_created else [SCOPE_EVENTS]
    try:
        flow = InstalledAppFlow.from_client_secrets_file(str(client_secrets), scopes=scopes)
    except FileNotFoundError:
        raise InputError(f"cannot read {client_secrets}: no such file") from None
    except (ValueError, KeyError, AttributeError, TypeError, OSError):
        raise InputError(
            f"{client_secrets} is not an OAuth client file: download the JSON of a 'Desktop app' OAuth client"
        ) from None
    try:
        credentials = flow.run_local_server(
            port=port, open_browser=open_browser, timeout_seconds=LOGIN_TIMEOUT, access_type="offline",
            prompt="consent",
        )  # fmt: skip
    except Exception as exc:  # oauthlib raises many kinds; none may leak a secret
        raise AuthError(f"Google sign-in failed ({type(exc).__name__}); run `aftercal google login` again") from None
    finally:
        flow.oauth2session.close()
    if not credentials.refresh_token:
        raise AuthError(
            "Google sent no refresh token, so this sign-in would stop working within the hour (Google sends one "
            f"only when it shows its consent screen); nothing was stored: remove aftercal's access at "
            f"{PERMISSIONS_PAGE}, then run `aftercal google login` again"
        )
    return save_token(credentials)


def _check_desktop_client(client_secrets: Path) -> None:
    """Refuse, before the browser opens, a client file that cannot sign in a program on this computer.

    A "Web application" client may redirect only to the addresses registered for it: Google
    refuses the redirect to this computer (redirect_uri_mismatch) and the login would wait in vain.
    """
    try:
        info = json.loads(client_secrets.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"cannot read {client_secrets}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(
            f"{client_secrets} is not an OAuth client file: download the JSON of a 'Desktop app' OAuth client"
        ) from None
    if isinstance(info, dict) and "web" in info and "installed" not in info:
        raise InputError(
            f"{client_secrets} is the file of a 'Web application' OAuth client, which Google lets redirect only to "
            "the web addresses registered for it, never to this computer: in the Google Cloud console (APIs & "
            "Services > Credentials), create an OAuth client ID of type 'Desktop app' and use its JSON"
        )


def sign_in_refused() -> AuthError:
    return AuthError(
        "Google refused the stored sign-in (expired or revoked; apps in 'Testing' status expire after "
        "7 days): run `aftercal google login` again"
    )


# ---- credentials -----------------------------------------------------------------------------------------


def key_file_from_env() -> Path | None:
    """$GOOGLE_APPLICATION_CREDENTIALS as a path, if set."""
    value = os.environ.get(KEY_FILE_ENV, "").strip()
    return Path(value) if value else None


def load_credentials(credentials_file: Path | None, scopes: list[str]) -> AnyCredentials:
    """Credentials from a key file (argument or GOOGLE_APPLICATION_CREDENTIALS) or the stored token.

    The stored token is refreshed (and stored again) when it has expired.
    """
    source = credentials_file or key_file_from_env()
    if source is not None:
        return _credentials_from_file(source, scopes)
    path = token_path()
    if not path.is_file():
        raise AuthError("not signed in to Google: run `aftercal google login --client-secrets client_secret.json`")
    from google.oauth2.credentials import Credentials

    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(info, dict) and not info.get("refresh_token"):
            raise AuthError(
                f"{path} holds a sign-in that cannot be renewed (no refresh token: Google sends one only when it "
                "shows its consent screen): run `aftercal google login` again"
            )
        credentials: UserCredentials = Credentials.from_authorized_user_info(info)  # type: ignore[no-untyped-call]
    except (ValueError, KeyError, AttributeError, TypeError, UnicodeDecodeError, OSError):
        raise AuthError(f"{path} is not a valid token: run `aftercal google login` again") from None
    if not credentials.valid:
        refresh_credentials(credentials)
        save_token(credentials)
    return credentials


def granted_scopes(credentials: AnyCredentials) -> frozenset[str] | None:
    """The scopes `credentials` carry: those a stored sign-in was granted, those a key file asks
    for; None when unknown."""
    scopes = getattr(credentials, "scopes", None)
    return frozenset(scopes) if scopes else None


def service_account_email(credentials: AnyCredentials) -> str | None:
    """The service account `credentials` sign in as; None for a person's sign-in."""
    from google.oauth2 import service_account

    if isinstance(credentials, service_account.Credentials):
        return str(credentials.service_account_email)
    return None


def _credentials_from_file(source: Path, scopes: list[str]) -> AnyCredentials:
    try:
        info = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"cannot read credentials file {source}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{source} is not a JSON key file") from None
    kind = info.get("type") if isinstance(info, dict) else None
    try:
        if kind == "service_account":
            from google.oauth2 import service_account

            account: AnyCredentials = service_account.Credentials.from_service_account_info(info, scopes=scopes)  # type: ignore[no-untyped-call]
            return account
        if kind == "authorized_user":
            from google.oauth2.credentials import Credentials

            user: AnyCredentials = Credentials.from_authorized_user_info(info, scopes=scopes)  # type: ignore[no-untyped-call]
            return user
    except (ValueError, KeyError):
        raise InputError(f"{source}: incomplete {kind} key file") from None
    raise InputError(f"{source}: expected a service_account or authorized_user key file, found type {kind!r}")


def refresh_credentials(credentials: AnyCredentials) -> None:
    import google.auth.exceptions
    import google_auth_httplib2  # type: ignore[import-untyped]

    http = new_http()
    try:
        credentials.refresh(google_auth_httplib2.Request(http))  # type: ignore[no-untyped-call]
    except google.auth.exceptions.RefreshError:
        raise sign_in_refused() from None
    except (google.auth.exceptions.TransportError, OSError) as exc:
        raise TransientError(f"cannot reach Google to refresh the sign-in ({type(exc).__name__})") from None
    finally:
        http.close()


# ---- transport -------------------------------------------------------------------------------------------


class AnswerLost(ConnectionError):
    """The connection closed before any answer to a request that changes something: it may have
    been done. Raised instead of letting httplib2 send it again (see `_NoResend`)."""


# Requests that httplib2 may send again when their connection closed before an answer.
_RESENDABLE = frozenset({"GET", "HEAD", "OPTIONS"})


class _NoResend:
    """An httplib2 connection on which a lost answer is an error, not a reason to send again.

    httplib2 re-sends any request, POST included, whose connection closed before a status line
    (taking it for a stale kept-alive connection): a calendars.insert whose answer was lost then
    made a second calendar. Its callers decide instead: event writes are idempotent and retried,
    a calendar is looked for before it is made again (calendars/gcal.py).
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def getresponse(self) -> Any:
        try:
            return self._conn.getresponse()
        except http.client.BadStatusLine:  # RemoteDisconnected is one
            raise AnswerLost("the connection closed before an answer") from None


def new_http() -> Any:
    """An httplib2.Http (untyped library) that never follows redirects and never re-sends a write."""
    import httplib2  # type: ignore[import-untyped]

    class Http(httplib2.Http):  # type: ignore[misc]
        def _conn_request(self, conn: Any, request_uri: str, method: str, body: Any, headers: Any) -> Any:
            if method not in _RESENDABLE:
                conn = _NoResend(conn)
            return super()._conn_request(conn, request_uri, method, body, headers)

    http = Http(timeout=HTTP_TIMEOUT)
    # The Calendar API never redirects. Followed, a 303'd batch POST became a GET whose 200 was
    # taken for the batch's answer, and a redirected list's `{}` for "no events": a 3xx must
    # surface as itself (googleapiclient raises HttpError for it).
    http.follow_redirects = False
    return http


def authorized_http(credentials: AnyCredentials) -> Any:
    """`new_http()` that signs every request with `credentials` (refreshing them when needed)."""
    import google_auth_httplib2

    return google_auth_httplib2.AuthorizedHttp(credentials, http=new_http())
