"""A Calendar v3 stand-in: just enough of Google's API, over real HTTP on 127.0.0.1, for aftercal.

What it models, as Google documents and behaves:

* events insert / get / list / update (PUT) / patch / delete, calendars insert / get,
  calendarList list (refused with 403 when `calendar_list_refused`, as Google refuses it to the
  calendar.app.created scope);
* the batch endpoint (`POST /batch/calendar/v3`, multipart/mixed of application/http parts,
  answered as multipart/mixed with `Content-ID: <response-...>` parts);
* event ids validated as base32hex (0-9, a-v), 5-1024 characters;
* insert with an id that exists, even as a cancelled event, answers 409; delete of a cancelled
  event answers 410, of an unknown one 404; update with `status: confirmed` restores a cancelled
  event; a body `sequence` below the stored one answers 400; the sequence rises when times change;
* reminders: `useDefault` with overrides, more than 5 overrides, minutes outside 0-40320 -> 400;
* list filters `privateExtendedProperty` / `sharedExtendedProperty` (all must match),
  `showDeleted` (cancelled events come back with only id, status, etag: Google guarantees no more),
  `iCalUID`, and paginates with `maxResults` / `nextPageToken`;
* optional bearer-token check (401) and a `/token` endpoint that refreshes it, like Google's;
* Google's OAuth web-server flow (issue 11), endpoints `auth_url`, `token_url`, `revoke_url`:
  PKCE (S256 or plain) checked at the token endpoint, codes single-use and valid 10 minutes on
  `clock`; with `consent_page` a consent page (Allow / Deny) for browser tests; `/revoke` ends a
  grant, and `revoke_all` plays the person removing the app in their Google Account (search for
  "Google's rule (web-server flow" and "Google's rule (revocation");
* calendars.delete, and the calendar.app.created scope confined to the calendars its own OAuth
  client made (`Calendar.made_by`);
* injected faults (any status and error reason) on matching calls, direct or inside a batch,
  or on whole batch requests; or, with `answer`, the call is done and its answer spoiled: "lost"
  (the connection closes before any answer), "truncated" (cut half-way), "not-json" (200 with an
  HTML page; also inside a batch), "bad-part" (a batch part without a reason phrase and not
  JSON); every HTTP request and every API call is counted.

Google's rules that a lenient stand-in used to hide (issue 16), each with the documentation it
follows next to its code (search for "Google's rule"):

* scopes per access token: each token carries the scopes it was granted; a call its scopes do not
  allow answers 403 insufficientPermissions (calendars.insert under calendar.events, events of
  `primary` under calendar.app.created);
* one identity per credential: `primary` is the signed-in identity's own calendar (a service
  account's is its own, which no person sees); a calendar not shared with the identity answers
  404, one shared read-only answers 403 requiredAccessLevel to writes;
* refresh tokens only on consent: the authorization endpoint (`/auth`) gives a code that yields a
  refresh token only with access_type=offline and a consent screen shown (prompt=consent, or
  scopes this user never granted this client);
* batch parts run in a shuffled order (seeded: deterministic per test), and two parts of one
  batch on the same event: the later answers 409 `conflict`;
* the per-user sliding-window quota (`quota_per_minute`, off unless given): a call past it
  answers 403 rateLimitExceeded until older calls leave the 60 s window of `clock`.

Test helpers: `events(calendar_id, identity=...)`, `calendars_of(identity)`, `named(summary)`,
`granted(identity)`, `revoke_all(identity)`; costs in `http_requests`, `requests` (method, path of
each), `calls` (API calls, direct or in a batch) and `batch_requests`, zeroed by `reset_counts`.

Without a bearer token (`token` None and none issued) every call is made as DEFAULT_USER with the
full calendar scope: the `--no-auth` tests.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import html
import itertools
import json
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
DEFAULT_REASONS = {
    400: "invalid",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "duplicate",
    410: "deleted",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}


# ---- identities and scopes -----------------------------------------------------------------------

AUTH = "https://www.googleapis.com/auth/"
SCOPE_CALENDAR = AUTH + "calendar"
SCOPE_READONLY = AUTH + "calendar.readonly"
SCOPE_EVENTS = AUTH + "calendar.events"
SCOPE_EVENTS_READONLY = AUTH + "calendar.events.readonly"
SCOPE_APP_CREATED = AUTH + "calendar.app.created"
SCOPE_CALENDARS = AUTH + "calendar.calendars"
SCOPE_CALENDARS_READONLY = AUTH + "calendar.calendars.readonly"
SCOPE_CALENDARLIST = AUTH + "calendar.calendarlist"
SCOPE_CALENDARLIST_READONLY = AUTH + "calendar.calendarlist.readonly"

# Google's rule (scopes per access token): each method's reference page lists, under
# "Authorization", the scopes that allow it; a token with none of them gets 403
# insufficientPermissions. calendar.app.created counts only for calendars its app created
# ("Make secondary Google calendars, and see, create, change, and delete events on them").
# https://developers.google.com/workspace/calendar/api/v3/reference/calendars/insert#auth
# https://developers.google.com/workspace/calendar/api/v3/reference/calendars/get#auth
# https://developers.google.com/workspace/calendar/api/v3/reference/calendarList/list#auth
# https://developers.google.com/workspace/calendar/api/v3/reference/events/list#auth
# https://developers.google.com/workspace/calendar/api/v3/reference/events/insert#auth
# https://developers.google.com/workspace/calendar/api/auth (what each scope means)
READ_EVENTS = frozenset({SCOPE_CALENDAR, SCOPE_READONLY, SCOPE_EVENTS, SCOPE_EVENTS_READONLY})
WRITE_EVENTS = frozenset({SCOPE_CALENDAR, SCOPE_EVENTS})
CREATE_CALENDAR = frozenset({SCOPE_CALENDAR, SCOPE_APP_CREATED, SCOPE_CALENDARS})
READ_CALENDAR = frozenset({SCOPE_CALENDAR, SCOPE_READONLY, SCOPE_CALENDARS, SCOPE_CALENDARS_READONLY})
LIST_CALENDARS = frozenset({SCOPE_CALENDAR, SCOPE_READONLY, SCOPE_CALENDARLIST, SCOPE_CALENDARLIST_READONLY})

DELETE_CALENDAR = frozenset({SCOPE_CALENDAR, SCOPE_CALENDARS})  # and calendar.app.created for its own
# https://developers.google.com/workspace/calendar/api/v3/reference/calendars/delete#auth

DEFAULT_USER = "patient@example.com"  # who signs in at `/auth`, and who `--no-auth` calls are made as
QUOTA_WINDOW = 60.0  # seconds: Google's per-minute quotas are counted over a sliding window
# Google's rule (web-server flow, PKCE): RFC 7636 section 4.1, "code-verifier = 43*128unreserved",
# unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"; section 4.2 gives the challenge the same form.
# https://www.rfc-editor.org/rfc/rfc7636#section-4.1
PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# An authorization code lives 10 minutes: "A maximum authorization code lifetime of 10 minutes is
# RECOMMENDED. The client MUST NOT use the authorization code more than once."
# https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
CODE_LIFETIME = 600.0


@dataclass(frozen=True)
class Grant:
    """What an access or refresh token stands for: one identity, the scopes it was granted, its app."""

    identity: str
    scopes: frozenset[str]
    client_id: str = ""


# The `--no-auth` tests: no bearer token, everything allowed, as the patient.
NO_AUTH = Grant(DEFAULT_USER, frozenset({SCOPE_CALENDAR}))


@dataclass(frozen=True)
class AuthCode:
    """An authorization code `/auth` gave: what it grants, whether it yields a refresh token, when it
    was given (on `clock`), and the PKCE challenge it was asked with (None: none)."""

    grant: Grant
    refresh: bool
    redirect_uri: str
    issued_at: float = 0.0
    code_challenge: str | None = None
    challenge_method: str = "plain"


@dataclass(frozen=True)
class OAuthClient:
    """An OAuth client of the project: "installed" (a Desktop app) or "web" (fixed redirect URIs)."""

    client_id: str
    secret: str
    kind: str = "installed"
    redirect_uris: tuple[str, ...] = ()


class ManualClock:
    """A clock that moves only when told (tests advance it by the backoffs the client asked for)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason or DEFAULT_REASONS.get(status, "error")

    def body(self) -> dict[str, Any]:
        domain = "usageLimits" if self.reason in ("rateLimitExceeded", "userRateLimitExceeded") else "global"
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"domain": domain, "reason": self.reason, "message": self.message}],
                "status": STATUS_NAMES.get(self.status, "UNKNOWN"),
            }
        }


@dataclass
class Fault:
    """Answer `status` instead of doing the call, for calls that match (after `after` matches)."""

    status: int
    reason: str | None = None
    method: str | None = None  # GET, POST, PUT, PATCH, DELETE
    path: str | None = None  # substring of the call's path
    scope: str = "call"  # call: direct calls and batch parts; batch: whole batch requests
    after: int = 0  # let this many matching calls through first
    times: int = 1  # then fail this many (-1: forever)
    seen: int = 0
    answer: str = "status"  # status | lost | truncated | not-json | bad-part (the call is done, its answer spoiled)

    def matches(self, method: str, path: str, scope: str) -> bool:
        if scope != self.scope or (self.method and method != self.method) or (self.path and self.path not in path):
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.times == 0:
            return False
        if self.times > 0:
            self.times -= 1
        return True


@dataclass
class Call:
    method: str
    path: str
    via: str  # direct | batch
    status: int


class SpoiledAnswer(dict[str, Any]):
    """The answer of a call that was done, to be spoiled on its way back (Fault.answer)."""

    def __init__(self, answer: dict[str, Any] | None, mode: str) -> None:
        super().__init__(answer or {})
        self.mode = mode


NOT_JSON = b"<html><body>Temporarily unavailable</body></html>"


@dataclass
class Calendar:
    id: str
    summary: str = ""
    time_zone: str = "UTC"
    description: str = ""
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    owner: str = DEFAULT_USER
    shared: dict[str, str] = field(default_factory=dict)  # identity -> "reader" | "writer"
    made_by: str | None = None  # the OAuth client that made it with calendars.insert

    def role(self, identity: str) -> str | None:
        return "owner" if identity == self.owner else self.shared.get(identity)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class CalendarStandin:
    """In-memory calendars behind a threaded HTTP server on 127.0.0.1 (port chosen by the OS)."""

    def __init__(
        self,
        *,
        token: str | None = None,
        seed: int = 0,
        quota_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        consent_page: bool = False,
    ) -> None:
        # "primary" is DEFAULT_USER's own calendar; another identity's is kept under its e-mail.
        self.calendars: dict[str, Calendar] = {"primary": Calendar("primary", "Primary", "UTC")}
        # A bearer token every call must carry (None: no check until the token endpoint issues
        # one); it stands for DEFAULT_USER with calendar.events. Tokens the endpoints issue carry
        # their own grant (`access_tokens`), and the newest of them is also kept here.
        self.token = token
        self.access_tokens: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.codes: dict[str, AuthCode] = {}
        self.consents: dict[tuple[str, str], frozenset[str]] = {}  # (identity, client id) -> scopes granted
        self.browser_user = DEFAULT_USER  # who signs in at `/auth`
        self.authorizations: list[dict[str, str]] = []  # the queries `/auth` received
        # Whether `/auth` shows a consent page (Allow / Deny, for browser tests) when Google would
        # show its consent screen; False: the person consents at once (an immediate 302).
        self.consent_page = consent_page
        self.decisions: list[str] = []  # what the person chose on the consent page: "allow" | "deny"
        self.spent_codes: set[str] = set()  # authorization codes already exchanged (or tried)
        self.revoked_tokens: set[str] = set()  # access and refresh tokens whose grant was revoked
        self.deleted_calendars: dict[str, Calendar] = {}  # calendars.delete removed them (with their events)
        # Whether cancelled events still match extended-property filters (Google does not promise it).
        self.cancelled_match_filters = True
        self.calendar_list_refused = False  # as for a token with only the calendar.app.created scope
        self.refreshed_tokens: list[str] = []
        self.grants: list[str] = []  # grant types the token endpoint answered
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.http_requests = 0
        self.requests: list[tuple[str, str]] = []  # (method, path) of every HTTP request, in order
        self.batch_requests = 0
        self.random = random.Random(seed)  # the order batch parts run in: seeded, so a test is repeatable
        self.quota_per_minute = quota_per_minute  # Google: 600 per minute per user (None: no quota)
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}  # identity -> times of its calls in the quota window
        self.lock = threading.RLock()
        self._etags = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> str:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="calendar-standin", daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server: typeshed also allows bytes for AF_UNIX
        return f"http://{host}:{port}/"

    @property
    def auth_url(self) -> str:
        """Google's authorization endpoint (https://accounts.google.com/o/oauth2/v2/auth)."""
        return self.url + "auth"

    @property
    def token_url(self) -> str:
        """Google's token endpoint (https://oauth2.googleapis.com/token)."""
        return self.url + "token"

    @property
    def revoke_url(self) -> str:
        """Google's revocation endpoint (https://oauth2.googleapis.com/revoke)."""
        return self.url + "revoke"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> CalendarStandin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers --

    def inject(self, status: int, reason: str | None = None, **options: Any) -> Fault:
        fault = Fault(status, reason, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def reset_counts(self) -> None:
        with self.lock:
            self.calls.clear()
            self.requests.clear()
            self.http_requests = 0
            self.batch_requests = 0

    def writes(self) -> list[Call]:
        """Calls that tried to change something (whatever they answered)."""
        return [c for c in self.calls if c.method in ("POST", "PUT", "PATCH", "DELETE")]

    def events(
        self, calendar_id: str = "primary", *, identity: str | None = None, include_cancelled: bool = False
    ) -> list[dict[str, Any]]:
        """The events of a calendar, as `identity` sees it ("primary": that identity's own calendar;
        default DEFAULT_USER). KeyError for a calendar that is not there (deleted, never made, or
        not visible to `identity`); `deleted_calendars` keeps the deleted ones."""
        who = identity or DEFAULT_USER
        with self.lock:
            key = ("primary" if who == DEFAULT_USER else who) if calendar_id in ("primary", who) else calendar_id
            calendar = self.calendars.get(key)
            if calendar is None or (identity is not None and calendar.role(identity) is None):
                raise KeyError(f"no calendar {calendar_id!r} for {who} (deleted, never made, or not shared)")
            items = list(calendar.events.values())
        return [dict(e) for e in items if include_cancelled or e.get("status") != "cancelled"]

    def calendars_of(self, identity: str = DEFAULT_USER, *, made_by: str | None = None) -> list[Calendar]:
        """The calendars `identity` owns or is shared (its calendar list), its own first; `made_by`:
        only those that OAuth client made with calendars.insert."""
        with self.lock:
            found = [c for c in self.calendars.values() if c.role(identity) is not None]
        found.sort(key=lambda c: c.id not in ("primary", identity))
        return [c for c in found if made_by is None or c.made_by == made_by]

    def granted(self, identity: str = DEFAULT_USER, client_id: str | None = None) -> bool:
        """Whether `identity` still has a live grant (a refresh or access token) for the client (any)."""
        with self.lock:
            grants = [*self.refresh_tokens.values(), *self.access_tokens.values()]
        return any(g.identity == identity and client_id in (None, g.client_id) for g in grants)

    def revoke_all(self, identity: str = DEFAULT_USER, client_id: str | None = None) -> int:
        """The person removes the app's access in their Google Account (Security, "Third-party apps
        with account access"): every grant of `identity` to the client (any client if None) ends, so
        its refresh tokens answer invalid_grant and its access tokens 401; returns how many tokens
        died. Google's rule (revocation): "A user can revoke access by visiting Account Settings",
        and a refresh token stops working when "The user has revoked your app's access".
        https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke
        https://developers.google.com/identity/protocols/oauth2#expiration
        """
        with self.lock:
            return self._end_grants(lambda g: g.identity == identity and client_id in (None, g.client_id))

    def _end_grants(self, doomed: Callable[[Grant], bool]) -> int:
        """Revoke every token whose grant is `doomed`, and forget the consent given for it."""
        ended = 0
        for tokens in (self.refresh_tokens, self.access_tokens):
            for token, grant in list(tokens.items()):
                if doomed(grant):
                    del tokens[token]
                    self.revoked_tokens.add(token)
                    self.consents.pop((grant.identity, grant.client_id), None)
                    ended += 1
        return ended

    def add_calendar(
        self, calendar_id: str, summary: str = "", *, owner: str = DEFAULT_USER, shared: dict[str, str] | None = None
    ) -> None:
        """A calendar `owner` made in Google Calendar, shared with others ({identity: "reader"|"writer"})."""
        with self.lock:
            self.calendars[calendar_id] = Calendar(calendar_id, summary, owner=owner, shared=dict(shared or {}))

    def register_client(
        self, client_id: str, secret: str, *, kind: str = "installed", redirect_uris: tuple[str, ...] = ()
    ) -> None:
        """An OAuth client made in the project's console ("installed": a Desktop app; "web": fixed redirects)."""
        with self.lock:
            self.clients[client_id] = OAuthClient(client_id, secret, kind, redirect_uris)

    def issue_refresh_token(
        self, refresh_token: str, scopes: list[str] | None = None, *, identity: str = DEFAULT_USER, client_id: str = ""
    ) -> None:
        """A refresh token Google gave earlier (a login made before the test started)."""
        with self.lock:
            self.refresh_tokens[refresh_token] = Grant(identity, frozenset(scopes or [SCOPE_EVENTS]), client_id)

    def issue_access_token(self, grant: Grant) -> str:
        token = f"access-{uuid.uuid4().hex}"
        with self.lock:
            self.access_tokens[token] = grant
            self.token = token
            self.refreshed_tokens.append(token)
        return token

    def put_event(self, calendar_id: str, body: dict[str, Any], *, identity: str = DEFAULT_USER) -> dict[str, Any]:
        """Insert an event directly (e.g. the patient's own), bypassing HTTP; "primary" is `identity`'s."""
        with self.lock:
            return self._insert(self._calendar(calendar_id, Grant(identity, frozenset({SCOPE_CALENDAR}))), dict(body))

    # -- the API --

    def _calendar(self, calendar_id: str, grant: Grant = NO_AUTH) -> Calendar:
        """The calendar `calendar_id` as `grant`'s identity sees it.

        Google's rule (one identity per credential): "primary" is the calendar of the identity
        the token stands for ("To access the primary calendar of the currently logged in user,
        use the 'primary' keyword"): a service account's is its own, made with the account, that
        no person sees. The calendars insert reference says it too: "If you use a service account
        for authentication, the service account is the data owner".
        https://developers.google.com/workspace/calendar/api/v3/reference/events/list#parameters
        https://developers.google.com/workspace/calendar/api/v3/reference/calendars/insert
        A calendar the identity may not see answers 404, as an unknown one does ("when accessing a
        calendar that the user can not access"):
        https://developers.google.com/workspace/calendar/api/guides/errors#404_not_found
        """
        identity = grant.identity
        if calendar_id in ("primary", identity):
            key = "primary" if identity == DEFAULT_USER else identity
            if key not in self.calendars:
                self.calendars[key] = Calendar(identity, identity, "UTC", owner=identity)
            return self.calendars[key]
        calendar = self.calendars.get(calendar_id)
        if calendar is None or calendar.role(identity) is None:
            raise ApiError(404, "Not Found")
        return calendar

    @staticmethod
    def _require(grant: Grant, allowed: frozenset[str], *, app_created: bool = False) -> None:
        """Google's rule (scopes per access token): 403 unless one of the token's scopes allows the
        call (see READ_EVENTS and the pages cited above it); `app_created`: calendar.app.created does."""
        if grant.scopes & allowed or (app_created and SCOPE_APP_CREATED in grant.scopes):
            return
        raise ApiError(403, "Request had insufficient authentication scopes.", "insufficientPermissions")

    @staticmethod
    def _made_by_its_app(grant: Grant, calendar: Calendar) -> bool:
        """Google's rule (calendar.app.created): the scope reaches only the secondary calendars the
        token's own OAuth client made with calendars.insert ("Make secondary Google calendars, and
        see, create, change, and delete events on them"); never `primary`, never a calendar the
        person or another app made. https://developers.google.com/workspace/calendar/api/auth"""
        return calendar.made_by is not None and calendar.made_by == grant.client_id

    @staticmethod
    def _writable(grant: Grant, calendar: Calendar) -> None:
        """A calendar shared read-only refuses writes: 403 requiredAccessLevel, as Google answers."""
        if calendar.role(grant.identity) == "reader":
            raise ApiError(403, "You need to have writer access to this calendar.", "requiredAccessLevel")

    def _spend_quota(self, identity: str) -> None:
        """Google's rule (per-user quota, sliding window): "Quotas are calculated per minute using a
        sliding window"; 600 requests per minute per user per project; a batch of n calls counts
        as n; a call past the quota answers 403 usageLimits (rateLimitExceeded) or 429.
        https://developers.google.com/workspace/calendar/api/guides/quota
        https://developers.google.com/workspace/calendar/api/guides/batch
        A refused call is not counted (it did nothing)."""
        if self.quota_per_minute is None:
            return
        now = self.clock()
        recent = self._recent.setdefault(identity, deque())
        while recent and recent[0] <= now - QUOTA_WINDOW:
            recent.popleft()
        if len(recent) >= self.quota_per_minute:
            raise ApiError(403, "Rate Limit Exceeded", "rateLimitExceeded")
        recent.append(now)

    def _stamp(self, event: dict[str, Any]) -> None:
        event["etag"] = f'"{next(self._etags)}"'
        event["updated"] = _now()

    def call(
        self,
        method: str,
        target: str,
        body: bytes,
        headers: dict[str, str],
        via: str,
        touched: set[tuple[str, str]] | None = None,
    ) -> tuple[int, dict[str, Any] | None]:
        """One API call (direct or from a batch part): (status, JSON answer or None).

        `touched`: the events earlier parts of the same batch addressed (see `batch`).
        """
        parts = urlsplit(target)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        with self.lock:
            spoil = None
            try:
                for fault in self.faults:
                    if fault.matches(method, path, "call"):
                        if fault.answer != "status":
                            spoil = fault.answer
                            break
                        raise ApiError(fault.status, f"Injected {fault.status}", fault.reason)
                grant = self._check_auth(headers)
                self._spend_quota(grant.identity)
                data = json.loads(body) if body.strip() else None
                if touched is not None:
                    _claim_event(touched, method, path, data)
                status, answer = self._route(method, path, query, data, grant)
                if spoil is not None:
                    answer = SpoiledAnswer(answer, spoil)
            except ApiError as exc:
                status, answer = exc.status, exc.body()
            except (ValueError, TypeError) as exc:
                status, answer = 400, ApiError(400, f"Parse Error: {exc}", "parseError").body()
            self.calls.append(Call(method, path, via, status))
        return status, answer

    def _check_auth(self, headers: dict[str, str]) -> Grant:
        """The grant of the call's bearer token (401 for a token Google did not issue, or revoked)."""
        if self.token is None and not self.access_tokens and not self.revoked_tokens:
            return NO_AUTH
        bearer = headers.get("authorization", "")
        presented = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None
        grant = self.access_tokens.get(presented) if presented is not None else None
        if grant is not None:
            return grant
        if self.token is not None and presented == self.token and presented not in self.revoked_tokens:
            return Grant(DEFAULT_USER, frozenset({SCOPE_EVENTS}))
        raise ApiError(401, "Request had invalid authentication credentials.", "authError")

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], data: Any, grant: Grant = NO_AUTH
    ) -> tuple[int, dict[str, Any] | None]:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments[:2] != ["calendar", "v3"]:
            raise ApiError(404, "Not Found")
        rest = segments[2:]
        if rest == ["calendars"] and method == "POST":
            self._require(grant, CREATE_CALENDAR, app_created=True)
            return 200, self._create_calendar(data or {}, grant)
        if rest == ["users", "me", "calendarList"] and method == "GET":
            self._require(grant, LIST_CALENDARS)
            return 200, self._calendar_list(grant)
        if len(rest) == 2 and rest[0] == "calendars" and method == "GET":
            calendar = self._calendar(rest[1], grant)
            self._require(grant, READ_CALENDAR, app_created=self._made_by_its_app(grant, calendar))
            return 200, {"kind": "calendar#calendar", "id": calendar.id, "summary": calendar.summary}
        if len(rest) == 2 and rest[0] == "calendars" and method == "DELETE":
            calendar = self._calendar(rest[1], grant)
            self._require(grant, DELETE_CALENDAR, app_created=self._made_by_its_app(grant, calendar))
            self._delete_calendar(calendar, grant)
            return 204, None
        if len(rest) >= 3 and rest[0] == "calendars" and rest[2] == "events":
            calendar = self._calendar(rest[1], grant)
            ours = self._made_by_its_app(grant, calendar)  # made by this app: calendar.app.created may
            if method == "GET":
                self._require(grant, READ_EVENTS, app_created=ours)
            else:
                self._require(grant, WRITE_EVENTS, app_created=ours)
                self._writable(grant, calendar)
            if len(rest) == 3:
                if method == "GET":
                    return 200, self._list(calendar, query)
                if method == "POST":
                    return 200, self._insert(calendar, _object(data))
            elif len(rest) == 4:
                event_id = rest[3]
                if method == "GET":
                    return 200, dict(self._get(calendar, event_id))
                if method == "PUT":
                    return 200, self._update(calendar, event_id, _object(data), replace=True)
                if method == "PATCH":
                    return 200, self._update(calendar, event_id, _object(data), replace=False)
                if method == "DELETE":
                    self._delete(calendar, event_id)
                    return 204, None
        raise ApiError(404, "Not Found")

    def _create_calendar(self, data: dict[str, Any], grant: Grant = NO_AUTH) -> dict[str, Any]:
        if not data.get("summary"):
            raise ApiError(400, "Missing summary.", "required")
        calendar_id = f"{uuid.uuid4().hex}@group.calendar.google.com"
        # "The authenticated user for the request is made the data owner of the new calendar."
        self.calendars[calendar_id] = Calendar(
            calendar_id, str(data["summary"]), str(data.get("timeZone", "UTC")), str(data.get("description", "")),
            owner=grant.identity, made_by=grant.client_id,
        )  # fmt: skip
        return {"kind": "calendar#calendar", "id": calendar_id, "summary": data["summary"]}

    def _delete_calendar(self, calendar: Calendar, grant: Grant) -> None:
        """calendars.delete: "Deletes a secondary calendar. Use calendars.clear for clearing all
        events on primary calendars." The calendar goes, and its events with it (a later call on it
        answers 404). Deleting a primary calendar answers 403 cannotDeletePrimaryCalendar; only its
        owner may delete a calendar.
        https://developers.google.com/workspace/calendar/api/v3/reference/calendars/delete
        """
        key = next(k for k, c in self.calendars.items() if c is calendar)
        if key == "primary" or calendar.id == calendar.owner:
            raise ApiError(403, "Cannot delete primary calendar.", "cannotDeletePrimaryCalendar")
        if calendar.role(grant.identity) != "owner":
            raise ApiError(403, "You need to have owner access to this calendar.", "requiredAccessLevel")
        self.deleted_calendars[key] = self.calendars.pop(key)

    def _calendar_list(self, grant: Grant = NO_AUTH) -> dict[str, Any]:
        if self.calendar_list_refused:
            raise ApiError(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        self._calendar("primary", grant)  # an identity's list always holds its own calendar
        items = [
            {"kind": "calendar#calendarListEntry", "id": c.id, "summary": c.summary, "description": c.description,
             "timeZone": c.time_zone, "accessRole": c.role(grant.identity)}
            for c in self.calendars.values()
            if c.role(grant.identity) is not None
        ]  # fmt: skip
        return {"kind": "calendar#calendarList", "items": items}

    def named(self, summary: str) -> list[Calendar]:
        """The calendars with that name."""
        with self.lock:
            return [c for c in self.calendars.values() if c.summary == summary]

    def _get(self, calendar: Calendar, event_id: str) -> dict[str, Any]:
        event = calendar.events.get(event_id)
        if event is None:
            raise ApiError(404, "Not Found")
        return event

    def _insert(self, calendar: Calendar, data: dict[str, Any]) -> dict[str, Any]:
        event_id = data.get("id") or uuid.uuid4().hex
        if not isinstance(event_id, str) or not ID_RE.match(event_id):
            raise ApiError(400, "Invalid resource id value.", "invalid")
        if event_id in calendar.events:
            raise ApiError(409, "The requested identifier already exists.", "duplicate")
        _validate(data, full=True)
        if int(data.get("sequence") or 0) < 0:
            raise ApiError(400, "Invalid sequence value.", "invalid")
        event = dict(data)
        event.update(
            kind="calendar#event",
            id=event_id,
            status=data.get("status", "confirmed"),
            sequence=int(data.get("sequence") or 0),
            created=_now(),
            iCalUID=data.get("iCalUID") or f"{event_id}@google.com",
        )
        self._stamp(event)
        calendar.events[event_id] = event
        return dict(event)

    def _update(self, calendar: Calendar, event_id: str, data: dict[str, Any], *, replace: bool) -> dict[str, Any]:
        old = self._get(calendar, event_id)
        if "id" in data and data["id"] != event_id:
            raise ApiError(400, "Invalid value for id: it cannot be changed.", "invalid")
        if "sequence" in data and int(data["sequence"] or 0) < int(old.get("sequence", 0)):
            raise ApiError(
                400,
                "Invalid sequence value. The specified sequence number is below the current sequence number "
                "of the resource. Re-fetch the resource and use its sequence number on the following request.",
                "invalidSequenceValue",
            )
        if replace:
            event: dict[str, Any] = {k: old[k] for k in ("kind", "id", "created", "iCalUID") if k in old}
            event.update(data)
            event.setdefault("status", "confirmed")
        else:
            event = _merge(old, data)  # patch semantics: objects merge, other values replace
        _validate(event, full=True)
        sequence = max(int(old.get("sequence", 0)), int(data.get("sequence") or 0))
        if event.get("start") != old.get("start") or event.get("end") != old.get("end"):
            sequence += 1
        event["sequence"] = sequence
        event["id"] = event_id
        self._stamp(event)
        calendar.events[event_id] = event
        return dict(event)

    def _delete(self, calendar: Calendar, event_id: str) -> None:
        event = self._get(calendar, event_id)
        if event.get("status") == "cancelled":
            raise ApiError(410, "Resource has been deleted", "deleted")
        event["status"] = "cancelled"
        self._stamp(event)

    def _list(self, calendar: Calendar, query: dict[str, list[str]]) -> dict[str, Any]:
        show_deleted = query.get("showDeleted", ["false"])[0] == "true"
        wanted_private = [_property_filter(v) for v in query.get("privateExtendedProperty", [])]
        wanted_shared = [_property_filter(v) for v in query.get("sharedExtendedProperty", [])]
        ical_uid = query.get("iCalUID", [None])[0]
        try:
            max_results = min(int(query.get("maxResults", ["250"])[0]), 2500)
            offset = int(query.get("pageToken", ["0"])[0] or 0)
        except ValueError:
            raise ApiError(400, "Invalid value for maxResults or pageToken.", "invalid") from None
        if max_results < 1:
            raise ApiError(400, "Invalid value for maxResults.", "invalid")
        matching = []
        for event in calendar.events.values():
            cancelled = event.get("status") == "cancelled"
            if cancelled and (not show_deleted or (not self.cancelled_match_filters and wanted_private)):
                continue
            properties = event.get("extendedProperties") or {}
            private = properties.get("private") or {}
            shared = properties.get("shared") or {}
            if any(private.get(k) != v for k, v in wanted_private) or any(shared.get(k) != v for k, v in wanted_shared):
                continue
            if ical_uid is not None and event.get("iCalUID") != ical_uid:
                continue
            if event.get("status") == "cancelled":
                matching.append({k: event[k] for k in ("kind", "etag", "id", "status", "updated")})
            else:
                matching.append(dict(event))
        page = matching[offset : offset + max_results]
        answer: dict[str, Any] = {"kind": "calendar#events", "summary": calendar.summary, "items": page}
        if offset + max_results < len(matching):
            answer["nextPageToken"] = str(offset + max_results)
        return answer

    # -- OAuth: the authorization endpoint (what the browser shows) and the token endpoint --

    def authorize(self, query: dict[str, str]) -> tuple[int, str, bytes]:
        """`/auth`: the person (`browser_user`) signs in and consents; (status, Location, page).

        Google's rule (refresh tokens only on consent): with access_type=offline, the code yields
        a refresh token only when the consent screen was shown: always with prompt=consent, else
        only for scopes this person never granted this client. A maintainer of Google's client
        library: "Refresh tokens are only provided on the first user authorization, or when
        prompt is set to consent."
        https://developers.google.com/identity/protocols/oauth2/web-server#offline
        https://developers.google.com/identity/protocols/oauth2/native-app#step-2:-send-a-request-to-googles-oauth-2.0-server
        https://github.com/googleapis/google-api-php-client/issues/1686
        A "Web application" client accepts only the redirect URIs registered for it: a desktop
        program's loopback redirect gets "Error 400: redirect_uri_mismatch".
        https://developers.google.com/identity/protocols/oauth2/native-app#redirect-uri_loopback

        With `consent_page`, the consent screen is a page (200) whose Allow and Deny post to
        `/auth/decide` (see `decide`). Google shows that screen only when consent is needed, as
        above; otherwise it redirects at once, and so does the stand-in.
        """
        with self.lock:
            self.authorizations.append(dict(query))
            refused = self._refuse_authorization(query)
            if refused is not None:
                return refused
            consent_shown = self._consent_needed(query)
            if self.consent_page and consent_shown:
                return 200, "", self._consent_page(query)
            return self._redirect_with_code(query, consent_shown=consent_shown)

    def decide(self, form: dict[str, str]) -> tuple[int, str, bytes]:
        """`/auth/decide`: the person's answer on the consent page (`decision` allow or deny, with
        the authorization request it was shown for); (status, Location, page).

        Google's rule (web-server flow, consent): Allow sends the browser to the redirect URI with
        `code` (and `scope`); Deny with "error=access_denied" ("If the user does not approve the
        request, the response contains an error message"). Either way `state` comes back as sent:
        "The server returns the exact value that you send as a name=value pair in the URL query
        component (?) of the redirect_uri after the user consents to or denies your application's
        access request."
        https://developers.google.com/identity/protocols/oauth2/web-server#userconsentprompt
        https://developers.google.com/identity/protocols/oauth2/web-server#handlingresponse
        https://developers.google.com/identity/protocols/oauth2/web-server#creatingclient (state)
        """
        query = dict(form)
        decision = query.pop("decision", "")
        with self.lock:
            refused = self._refuse_authorization(query)
            if refused is not None:
                return refused
            if decision not in ("allow", "deny"):
                return 400, "", b"Error 400: invalid_request (no decision)"
            self.decisions.append(decision)
            if decision == "allow":
                return self._redirect_with_code(query, consent_shown=True)
        answer = {"error": "access_denied", **({"state": query["state"]} if "state" in query else {})}
        return 302, _with_query(query.get("redirect_uri", ""), answer), b""

    def _refuse_authorization(self, query: dict[str, str]) -> tuple[int, str, bytes] | None:
        """Google's error page for a request it will not send back to the redirect URI.

        A "Web application" client accepts only its registered redirect URIs (see `authorize`).
        Google's rule (web-server flow, PKCE): `code_challenge_method` "defaults to plain if not
        present in the request that includes a code_challenge. The only supported values for this
        parameter are S256 or plain"; the challenge has the verifier's form (RFC 7636 section 4.2),
        and a server refuses a method it does not support with invalid_request (section 4.4.1).
        https://developers.google.com/identity/protocols/oauth2/native-app#step1-code-verifier
        https://www.rfc-editor.org/rfc/rfc7636#section-4.4.1
        """
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            return 401, "", b"Error 401: invalid_client (The OAuth client was not found.)"
        if client.kind == "web" and query.get("redirect_uri", "") not in client.redirect_uris:
            return 400, "", b"Error 400: redirect_uri_mismatch"
        challenge = query.get("code_challenge")
        if challenge is not None:
            if query.get("code_challenge_method", "plain") not in ("S256", "plain"):
                return 400, "", b"Error 400: invalid_request (Invalid code_challenge_method)"
            if not PKCE_RE.match(challenge):
                return 400, "", b"Error 400: invalid_request (Invalid code_challenge)"
        return None

    def _consent_needed(self, query: dict[str, str]) -> bool:
        """Whether Google shows its consent screen: prompt=consent, or scopes not granted before."""
        scopes = frozenset(query.get("scope", "").split())
        granted = self.consents.get((self.browser_user, query.get("client_id", "")), frozenset())
        return "consent" in query.get("prompt", "").split() or not scopes <= granted

    def _redirect_with_code(self, query: dict[str, str], *, consent_shown: bool) -> tuple[int, str, bytes]:
        """The person consented (or had before): a code, and the browser sent to the redirect URI."""
        identity, client_id = self.browser_user, query.get("client_id", "")
        scopes = frozenset(query.get("scope", "").split())
        if consent_shown:
            granted = self.consents.get((identity, client_id), frozenset())
            self.consents[(identity, client_id)] = granted | scopes
        code = f"code-{uuid.uuid4().hex}"
        refresh = query.get("access_type") == "offline" and consent_shown
        redirect_uri = query.get("redirect_uri", "")
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method", "plain")
        self.codes[code] = AuthCode(
            Grant(identity, scopes, client_id), refresh, redirect_uri, self.clock(), challenge, method
        )
        answer = {"code": code, "scope": " ".join(sorted(scopes))}
        if "state" in query:
            answer = {"state": query["state"], **answer}
        return 302, _with_query(redirect_uri, answer), b""

    def _consent_page(self, query: dict[str, str]) -> bytes:
        """The consent screen: who signs in, the app (its client id), the scopes, Allow and Deny."""
        esc = html.escape
        scopes = "".join(f'<li class="scope">{esc(s)}</li>' for s in sorted(query.get("scope", "").split()))
        hidden = "".join(
            f'<input type="hidden" name="{esc(k, quote=True)}" value="{esc(v, quote=True)}">' for k, v in query.items()
        )
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - Google Accounts</title></head>
<body><h1>Google</h1>
<p>Signed in as <span id="account">{esc(self.browser_user)}</span></p>
<p><span id="client-id">{esc(query.get("client_id", ""))}</span> wants to access your Google Account</p>
<p>This will allow it to:</p><ul id="scopes">{scopes}</ul>
<form method="post" action="/auth/decide">{hidden}
<button type="submit" name="decision" value="deny">Deny</button>
<button type="submit" name="decision" value="allow">Allow</button>
</form></body></html>
"""
        return page.encode("utf-8")

    def token_grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """`/token`: authorization_code, refresh_token and jwt-bearer (service account) grants.

        Google's rule (web-server flow, codes): a code is exchanged once ("The client MUST NOT use
        the authorization code more than once"), within its lifetime (CODE_LIFETIME on `clock`),
        by the client it was given to, with the same redirect_uri; else invalid_grant. (The RFC's
        "SHOULD revoke ... all tokens previously issued based on that authorization code" on a
        replay is not modelled.) Any attempt spends the code.
        https://developers.google.com/identity/protocols/oauth2/web-server#exchange-authorization-code
        https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
        Google's rule (web-server flow, PKCE): a code asked for with a `code_challenge` needs the
        matching `code_verifier` ("The code verifier that you created in Step 1"): S256 compares
        BASE64URL(SHA256(verifier)) without padding, plain the verifier itself; a verifier missing,
        malformed (not 43-128 of [A-Za-z0-9-._~]) or not matching answers invalid_grant.
        https://developers.google.com/identity/protocols/oauth2/native-app#exchange-authorization-code
        https://www.rfc-editor.org/rfc/rfc7636#section-4.6
        """
        kind = form.get("grant_type", "")
        refused = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        answer: dict[str, Any] = {"expires_in": 3599, "token_type": "Bearer"}
        with self.lock:
            if kind == "authorization_code":
                given = form.get("code", "")
                code = self.codes.pop(given, None)
                if code is None:
                    spent = "Code was already redeemed." if given in self.spent_codes else "Malformed auth code."
                    return 400, {"error": "invalid_grant", "error_description": spent}
                self.spent_codes.add(given)
                client = self.clients.get(form.get("client_id", ""))
                if client is None or client.client_id != code.grant.client_id:
                    return 400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
                if form.get("client_secret") != client.secret:
                    return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
                if self.clock() - code.issued_at > CODE_LIFETIME:
                    return 400, {"error": "invalid_grant", "error_description": "Code has expired."}
                if form.get("redirect_uri") != code.redirect_uri:
                    return 400, {"error": "redirect_uri_mismatch", "error_description": "Bad Request"}
                if code.code_challenge is not None:
                    verifier = form.get("code_verifier", "")
                    if not verifier:
                        return 400, {"error": "invalid_grant", "error_description": "Missing code verifier."}
                    if not PKCE_RE.match(verifier) or _pkce_challenge(verifier, code.challenge_method) != (
                        code.code_challenge
                    ):
                        return 400, {"error": "invalid_grant", "error_description": "Invalid code verifier."}
                grant = code.grant
                if code.refresh:
                    refresh = f"refresh-{uuid.uuid4().hex}"
                    self.refresh_tokens[refresh] = grant
                    answer["refresh_token"] = refresh
                answer["scope"] = " ".join(sorted(grant.scopes))
            elif kind == "refresh_token":
                found = self.refresh_tokens.get(form.get("refresh_token", ""))
                if found is None:
                    return 400, refused
                wanted = frozenset(form.get("scope", "").split())
                if wanted and not wanted <= found.scopes:
                    return 400, {"error": "invalid_scope", "error_description": "Bad Request"}
                grant = found
                answer["scope"] = " ".join(sorted(grant.scopes))
            elif kind == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                try:
                    claims = _jwt_claims(form.get("assertion", ""))
                    identity = str(claims.get("sub") or claims["iss"])
                    scopes = frozenset(str(claims.get("scope", "")).split())
                except (ValueError, KeyError, IndexError):
                    return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}
                grant = Grant(identity, scopes, identity)
            else:
                return 400, refused
            answer["access_token"] = self.issue_access_token(grant)
            self.grants.append(kind)
        return 200, answer

    def revoke(self, token: str) -> tuple[int, dict[str, Any]]:
        """`/revoke`: the app gives up a grant (a person's "disconnect").

        Google's rule (revocation): "The token can be an access token or a refresh token. If the
        token is an access token and it has a corresponding refresh token, the refresh token will
        also be revoked." "If the revocation is successfully processed, then the HTTP status code
        of the response is 200. For error conditions, an HTTP status code 400 is returned along with
        an error code." Revoking removes the app's access for that person: every token of that grant
        (identity and client) dies, refresh tokens answer invalid_grant, access tokens 401, and the
        next authorization shows the consent screen again. A token unknown or already revoked
        answers 400 invalid_token.
        https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke
        """
        with self.lock:
            grant = self.refresh_tokens.get(token) or self.access_tokens.get(token)
            if grant is None:
                return 400, {"error": "invalid_token", "error_description": "Token expired or revoked"}
            self._end_grants(lambda g: g.identity == grant.identity and g.client_id == grant.client_id)
        return 200, {}

    # -- batch --

    def batch(self, content_type: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """Answer a multipart/mixed batch: (status, content type, body)."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise ApiError(400, "Batch request is not multipart/mixed.", "invalid")
        parts = list(message.iter_parts())
        if len(parts) > 1000:
            raise ApiError(400, "Too many calls in one batch request (max 1000).", "invalid")
        boundary = f"batch_{uuid.uuid4().hex}"
        requests = []
        for part in parts:
            raw = part.get_payload(decode=True) or b""
            assert isinstance(raw, bytes)  # decode=True on a part that is not multipart
            method, target, part_headers, part_body = _parse_inner_request(raw)
            if "authorization" not in part_headers and "authorization" in headers:
                part_headers["authorization"] = headers["authorization"]
            requests.append((method, target, part_headers, part_body))
        # Google's rule (batch order): "The server might perform your calls in any order. Don't
        # count on their being executed in the order in which you specified them." The answer
        # still lists the parts in the request's order, each with its Content-ID.
        # https://developers.google.com/workspace/calendar/api/guides/batch#format-of-a-batch-request
        # Two parts on one event: the one run later answers 409 `conflict` ("An individual request
        # in a batch request couldn't be completed due to a conflict with another request in it";
        # the suggested action is to retry it), https://developers.google.com/workspace/calendar/api/guides/errors#409_conflict
        order = list(range(len(requests)))
        self.random.shuffle(order)
        touched: set[tuple[str, str]] = set()
        answers: dict[int, tuple[int, dict[str, Any] | None]] = {}
        for index in order:
            method, target, part_headers, part_body = requests[index]
            answers[index] = self.call(method, target, part_body, part_headers, "batch", touched)
        out: list[str] = []
        for index, part in enumerate(parts):
            content_id = str(part.get("Content-ID", "<>"))
            status, answer = answers[index]
            out.append(f"--{boundary}\r\n")
            out.append("Content-Type: application/http\r\n")
            out.append(f"Content-ID: <response-{content_id.strip('<>')}>\r\n\r\n")
            if isinstance(answer, SpoiledAnswer):  # a 2xx part whose body is not JSON
                # "bad-part": no reason phrase either, which googleapiclient fails to split (ValueError).
                out.append("HTTP/1.1 200\r\n" if answer.mode == "bad-part" else "HTTP/1.1 200 OK\r\n")
                out.append("Content-Type: application/json; charset=UTF-8\r\n")
                out.append(f"Content-Length: {len(NOT_JSON)}\r\n\r\n{NOT_JSON.decode()}\r\n")
                continue
            out.append(f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n")
            if answer is None:
                out.append("Content-Length: 0\r\n\r\n\r\n")
            else:
                text = json.dumps(answer)
                out.append("Content-Type: application/json; charset=UTF-8\r\n")
                out.append(f"Content-Length: {len(text.encode())}\r\n\r\n{text}\r\n")
        out.append(f"--{boundary}--\r\n")
        return 200, f"multipart/mixed; boundary={boundary}", "".join(out).encode("utf-8")


def _with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` added to its query (a redirect URI may have one already)."""
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _pkce_challenge(verifier: str, method: str) -> str:
    """RFC 7636 section 4.2: S256 is BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), no padding;
    plain is the verifier itself. https://www.rfc-editor.org/rfc/rfc7636#section-4.2"""
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier


def _claim_event(touched: set[tuple[str, str]], method: str, path: str, data: Any) -> None:
    """Mark the event a batch part writes; 409 `conflict` if an earlier part of the batch wrote it."""
    segments = [unquote(s) for s in path.strip("/").split("/")]
    if method == "GET" or len(segments) < 5 or segments[2] != "calendars" or segments[4] != "events":
        return
    if len(segments) == 6:
        event = segments[5]
    elif method == "POST" and isinstance(data, dict) and isinstance(data.get("id"), str):
        event = data["id"]
    else:
        return
    key = (segments[3], event)
    if key in touched:
        raise ApiError(409, "Conflict", "conflict")
    touched.add(key)


def _jwt_claims(assertion: str) -> dict[str, Any]:
    """The claims of a JWT (a service account's signed assertion); the signature is not checked."""
    payload = assertion.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if not isinstance(claims, dict):
        raise ValueError("claims are not an object")
    return claims


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(400, "Required request body is missing.", "required")
    return data


def _property_filter(value: str) -> tuple[str, str]:
    name, sep, wanted = value.partition("=")
    if not sep:
        raise ApiError(400, "Invalid extended property filter: use propertyName=value.", "invalid")
    return name, wanted


def _when(value: Any, which: str) -> tuple[str, datetime | date]:
    if not isinstance(value, dict):
        raise ApiError(400, f"Missing {which} time.", "required")
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        zone = value.get("timeZone")
        if zone:
            try:
                ZoneInfo(str(zone))
            except (ZoneInfoNotFoundError, ValueError):
                raise ApiError(400, f"Invalid time zone definition for {which} time.", "timeRangeEmpty") from None
        elif moment.tzinfo is None:
            raise ApiError(400, f"Missing time zone definition for {which} time.", "required")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(str(zone)))
        return "dateTime", moment
    if value.get("date"):
        return "date", date.fromisoformat(str(value["date"]))
    raise ApiError(400, f"Missing {which} time.", "required")


def _validate(event: dict[str, Any], *, full: bool) -> None:
    if full:
        start_kind, start = _when(event.get("start"), "start")
        end_kind, end = _when(event.get("end"), "end")
        if start_kind != end_kind:
            raise ApiError(400, "Start and end times must either both be date or both be dateTime.", "invalid")
        if end <= start:
            raise ApiError(400, "The specified time range is empty.", "timeRangeEmpty")
    reminders = event.get("reminders")
    if reminders is not None:
        overrides = reminders.get("overrides") or []
        if reminders.get("useDefault") and overrides:
            raise ApiError(
                400,
                "Cannot specify both default reminders and overrides at the same time.",
                "cannotUseDefaultRemindersAndSpecifyOverride",
            )
        if len(overrides) > 5:
            raise ApiError(400, "Too many reminders (max 5).", "tooManyReminders")
        for override in overrides:
            minutes = override.get("minutes")
            if override.get("method") not in ("popup", "email") or not isinstance(minutes, int):
                raise ApiError(400, "Invalid reminder method or minutes.", "invalid")
            if not 0 <= minutes <= 40320:
                raise ApiError(400, "Invalid reminder minutes (0-40320).", "invalid")
    if event.get("transparency", "opaque") not in ("opaque", "transparent"):
        raise ApiError(400, "Invalid transparency value.", "invalid")
    if event.get("visibility", "default") not in ("default", "public", "private", "confidential"):
        raise ApiError(400, "Invalid visibility value.", "invalid")
    if event.get("status", "confirmed") not in ("confirmed", "tentative", "cancelled"):
        raise ApiError(400, "Invalid status value.", "invalid")
    for scope in ("private", "shared"):
        for key, value in ((event.get("extendedProperties") or {}).get(scope) or {}).items():
            if len(key) > 44 or len(str(value)) > 1024:
                raise ApiError(400, "Extended property key or value too long.", "invalid")


def _form(encoded: str) -> dict[str, str]:
    """A query string or form body as a dict (the first of repeated names)."""
    return {k: v[0] for k, v in parse_qs(encoded).items()}


def _parse_inner_request(raw: bytes) -> tuple[str, str, dict[str, str], bytes]:
    text = raw.replace(b"\r\n", b"\n")
    head, _, body = text.partition(b"\n\n")
    lines = head.decode("utf-8").split("\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers, body


class _Handler(BaseHTTPRequestHandler):
    owner: CalendarStandin
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, content_type: str | None, body: bytes) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _dispatch(self) -> None:
        owner = self.owner
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = urlsplit(self.path).path
        if path == "/favicon.ico":  # a browser's own request on the consent page: not counted
            self._send(404, "text/plain", b"")
            return
        with owner.lock:
            owner.http_requests += 1
            owner.requests.append((self.command, path))
        if path == "/token" and self.command == "POST":
            self._token(body)
            return
        if path == "/revoke" and self.command == "POST":
            self._revoke(body)
            return
        if path == "/auth" and self.command == "GET":
            self._page(*owner.authorize(_form(urlsplit(self.path).query)))
            return
        if path == "/auth/decide" and self.command == "POST":
            self._page(*owner.decide(_form(body.decode("utf-8"))))
            return
        if path == "/batch/calendar/v3" and self.command == "POST":
            with owner.lock:
                owner.batch_requests += 1
                fault = next((f for f in owner.faults if f.matches("POST", path, "batch")), None)
            try:
                if fault is not None:
                    raise ApiError(fault.status, f"Injected {fault.status}", fault.reason)
                status, content_type, answer = owner.batch(headers.get("content-type", ""), body, headers)
            except ApiError as exc:
                status, content_type, answer = exc.status, "application/json", json.dumps(exc.body()).encode()
            self._send(status, content_type, answer)
            return
        status, data = owner.call(self.command, self.path, body, headers, "direct")
        if isinstance(data, SpoiledAnswer):
            self._spoiled(status, data)
            return
        if data is None:
            self._send(status, None, b"")
        else:
            self._send(status, "application/json; charset=UTF-8", json.dumps(data).encode())

    def _spoiled(self, status: int, data: SpoiledAnswer) -> None:
        """The call was done; its answer is lost, cut half-way, or replaced by a page that is not JSON."""
        self.close_connection = True
        if data.mode == "lost":
            return  # closed without a status line
        if data.mode == "not-json":
            self._send(200, "text/html", NOT_JSON)
            return
        text = json.dumps(dict(data)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text[: len(text) // 2])

    def _token(self, body: bytes) -> None:
        form = _form(body.decode())
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):  # client credentials may come as HTTP Basic auth instead
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", unquote(user))
            form.setdefault("client_secret", unquote(password))
        status, answer = self.owner.token_grant(form)
        self._send(status, "application/json", json.dumps(answer).encode())

    def _revoke(self, body: bytes) -> None:
        # Google takes the token in the form body or in the query string ("?token=...").
        form = {**_form(urlsplit(self.path).query), **_form(body.decode())}
        status, answer = self.owner.revoke(form.get("token", ""))
        self._send(status, "application/json", json.dumps(answer).encode())

    def _page(self, status: int, location: str, page: bytes) -> None:
        """An answer of the authorization endpoint: a page, or a redirect (302 with Location)."""
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch
