"""CalDAV publishing: push a care plan's events to a calendar on a CalDAV server, idempotently.

How it works (one treatment, one calendar):

1. Discovery, only when ``--calendar`` is a display name: the principal from the base URL
   (``current-user-principal``, else ``/.well-known/caldav``), then its calendar home and
   calendars, with the `caldav` library (3 requests). A calendar URL skips discovery.
2. ``fetch``: one REPORT calendar-query filtered on the treatment's ``X-AFTERCAL-PLAN`` tag
   (calendars/tags.py), so only events aftercal wrote for this treatment come back (checked
   again client-side: a server that ignores the filter cannot make aftercal touch a foreign event).
3. ``apply``: one PUT per new or changed event (``If-None-Match: *`` or ``If-Match: <etag>``) to
   an href derived from the UID, one DELETE (``If-Match``) per step that no longer applies.
   Unchanged events (same ``X-AFTERCAL-HASH``) cost nothing.

Every request is retried as calendars/http.py decides (network errors, timeouts, 429 and 5xx;
bounded exponential backoff with full jitter, Retry-After honoured up to the cap). Because hrefs
come from UIDs and every write is conditional, a run that died half-way converges when run again.
Redirects are followed only during discovery (PROPFIND, by hand, method kept): a redirected write
or calendar query stops the run with one line, since HTTP clients turn a redirected PUT/DELETE
into a GET whose 200 would pass for the write's.
The password never appears in messages: they are built from status codes and URLs without
credentials.

A day's treatments go through `CalDavBatchPublisher.publish_jobs` (calendars.base.BatchPublisher):
each calendar of the batch is looked up once and, when it holds several of the batch's treatments,
read once (one REPORT) for all of them; a treatment that fails is reported and the others go on.
"""

from __future__ import annotations

import hashlib
import netrc
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape as xml_escape

from calendars.base import (
    BatchProgressCallback,
    BatchPublisher,
    JobResult,
    ProgressCallback,
    Publisher,
    PublishJob,
    RemoteEvent,
    SyncActions,
    SyncSummary,
    diff_plan,
    fetch_tags,
    next_sequence,
)
from calendars.http import (
    REDIRECT_STATUS,
    Retryable,
    RetryPolicy,
    check_base_url,
    parse_retry_after,
    require_https_unless_loopback,
    secure_or_loopback,
    strip_credentials,
)
from calendars.ics import render_event_ics
from calendars.tags import ICAL_HASH, ICAL_PLAN
from reminders.errors import (
    AftercalError,
    AuthError,
    ChannelError,
    ConflictError,
    InputError,
    NotFoundError,
    RedirectError,
    TransientError,
)
from reminders.schedule import CarePlan, Reminder

PASSWORD_ENV = "AFTERCAL_CALDAV_PASSWORD"
KEYRING_SERVICE = "aftercal-caldav"
EXAMPLE_URL = "https://caldav.example.com/"
# Methods that change nothing. Every other one is a write, whose redirects are never followed:
# HTTP clients resend a 302/303'd PUT/DELETE as a GET (and a 301'd one without its body), and the
# answer of wherever that lands (200) would be taken for the write's.
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT"})
MAX_REDIRECTS = 4  # discovery hops (e.g. /.well-known/caldav -> /dav/ -> /dav/principals/...)

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
_NS = {"d": DAV, "c": CALDAV}


# ---- passwords ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Password:
    """A secret and where it came from; `repr` never shows the secret."""

    value: str = field(repr=False)
    source: str  # "environment", "keyring" or "netrc FILE"


def resolve_password(
    user: str,
    url: str,
    *,
    netrc_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Password:
    """The CalDAV password, first found wins: $AFTERCAL_CALDAV_PASSWORD, the system keyring
    (service "aftercal-caldav", username USER), then a netrc file (machine = the URL's host)."""
    env = os.environ if environ is None else environ
    value = env.get(PASSWORD_ENV, "")
    if value:
        return Password(value, "environment")
    value = _keyring_password(user) or ""
    if value:
        return Password(value, "keyring")
    host = urlsplit(url).hostname or ""
    path = netrc_file if netrc_file is not None else Path.home() / ".netrc"
    found = _netrc_password(path, host, user, explicit=netrc_file is not None)
    if found:
        return Password(found, f"netrc {path}")
    raise AuthError(
        f"no CalDAV password for {user!r}: set {PASSWORD_ENV}, or run `keyring set {KEYRING_SERVICE} {user}`, "
        f"or add 'machine {host or 'HOST'} login {user} password ...' to {path}"
    )


def _keyring_password(user: str) -> str | None:
    """The keyring's password, or None when there is none or no usable keyring backend."""
    try:
        import keyring
        import keyring.errors
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, user)
    except keyring.errors.KeyringError:
        return None  # no backend (headless server, CI): fall through to netrc
    except Exception:  # D-Bus and platform backends fail in many ways; never let one stop a run
        return None


def _netrc_password(path: Path, host: str, user: str, *, explicit: bool) -> str | None:
    if not path.exists():
        if explicit:
            raise InputError(f"--netrc {path}: no such file")
        return None
    try:
        entries = netrc.netrc(str(path))
    except netrc.NetrcParseError as exc:
        # The parser's message may quote a token of the file (a password): name only the line.
        raise InputError(f"{path}: line {exc.lineno}: not a valid netrc file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    found = entries.authenticators(host)
    if found is None:
        return None
    login, _account, password = found
    if login and login != user:
        return None
    return password or None


# ---- the connection -------------------------------------------------------------------------------


def _redirect_refused(method: str, url: str, status: int, location: str | None, why: str) -> RedirectError:
    target = strip_credentials(urljoin(url, location)) if location else "nowhere (no Location header)"
    return RedirectError(
        f"the server answered {method} {strip_credentials(url)} with {status} redirect to {target}: {why}"
    )


WRITE_REDIRECT = "aftercal does not follow redirects for writes; check the calendar URL"


def _plain_http_refused(url: str) -> ChannelError:
    host = urlsplit(url).hostname or "?"
    return ChannelError(
        f"the CalDAV server pointed to a plain-http address on {host}: refusing to send the password there; "
        "use the server's https:// URL"
    )


def server_url(url: str, *, what: str = "--url") -> str:
    """A CalDAV server or calendar URL given by the user, checked by calendars.http's one rule.

    Refused (one-line InputError naming `what`) when it could leak the password: credentials
    inside, or plain http off loopback. An empty path becomes "/".
    """
    text = check_base_url(
        url, what=what, example=EXAMPLE_URL, hint=f"use --user and {PASSWORD_ENV}, the keyring or ~/.netrc"
    )
    require_https_unless_loopback(text, what=what)
    parts = urlsplit(text)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


def _refuse_redirected_writes(response: Any, *args: Any, **kwargs: Any) -> Any:
    """Session response hook: a redirect answering a write (or pointing to plain http) is never followed.

    It runs on every response before the HTTP library would follow its redirect, for aftercal's
    own requests and the `caldav` library's alike, so a write counts only on the server's own answer.
    """
    if response.status_code not in REDIRECT_STATUS:
        return response
    request = response.request
    method = str(request.method or "").upper()
    url = str(request.url or "")
    location = response.headers.get("Location")
    if method not in READ_ONLY_METHODS:
        response.close()
        raise _redirect_refused(method, url, response.status_code, location, WRITE_REDIRECT)
    if location and not secure_or_loopback(urljoin(url, location)):
        response.close()
        raise _plain_http_refused(urljoin(url, location))
    return response


@dataclass
class CalendarInfo:
    url: str
    name: str


class CalDavConnection:
    """An authenticated client for one server and user: discovery, retries, request counting."""

    def __init__(
        self,
        url: str,
        user: str,
        password: Password,
        *,
        timeout: float = 20.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        from caldav.davclient import DAVClient

        self.base_url = server_url(url)
        self.host = urlsplit(self.base_url).netloc
        self.user = user
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.requests = 0  # HTTP responses received, discovery included
        self.client = DAVClient(
            url=self.base_url,
            username=user,
            password=password.value,
            auth_type="basic",
            timeout=int(max(1, timeout)),
            enable_rfc6764=False,
        )
        hooks = self.client.session.hooks.setdefault("response", [])
        hooks.append(self._count)
        # On the session, so that the `caldav` library's own requests (MKCALENDAR) obey it too.
        hooks.append(_refuse_redirected_writes)
        self._principal: Any = None
        self._calendars: list[CalendarInfo] | None = None

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return response

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> CalDavConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one HTTP request, retried --

    def send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
        check: Callable[[Any], None] | None = None,
    ) -> Any:
        """One request with retries on network errors, timeouts, 5xx and 429. Returns the response.

        A redirect answering a write raises RedirectError (see `_refuse_redirected_writes`).
        A read's redirect is followed by hand when `follow_redirects` (discovery: same method and
        body, each hop checked by `secure_or_loopback`; `response.url` is where it ended), else refused.
        `check(response)` may raise MalformedAnswer (e.g. a 207 that is not XML): a read is then
        retried like a 503, a write fails with one line.
        """
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send_once(method, url, body=body, headers=headers, check=check)
            if response.status_code not in REDIRECT_STATUS:
                return response
            location = response.headers.get("Location")
            if not (follow_redirects and location):
                why = (
                    "aftercal does not follow redirects when reading a calendar's events (their addresses "
                    "would belong to the other place); check the calendar URL"
                    if method == "REPORT"
                    else "aftercal does not follow this redirect; check --url and --calendar"
                )
                raise _redirect_refused(method, url, response.status_code, location, why)
            url = urljoin(url, location)
        raise _redirect_refused(
            method, url, response.status_code, response.headers.get("Location"),
            f"more than {MAX_REDIRECTS} redirects in a row; check --url",
        )  # fmt: skip

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        body: bytes | str | None,
        headers: Mapping[str, str] | None,
        check: Callable[[Any], None] | None = None,
    ) -> Any:
        """One request (no redirect followed), retried on network errors, timeouts, 5xx and 429,
        and, for a read, on an answer `check` finds malformed."""
        from caldav.lib.http_sync import requests as http

        if not secure_or_loopback(url):
            # A server-given URL (redirect, href) must not downgrade us to plain http.
            raise _plain_http_refused(url)
        hdrs = {"User-Agent": "aftercal", **(headers or {})}
        data = body.encode() if isinstance(body, str) else body

        def attempt() -> Any:
            try:
                response = self.client.session.request(
                    method,
                    url,
                    data=data,
                    headers=hdrs,
                    auth=self.client.auth,
                    timeout=self.timeout,
                    allow_redirects=False,  # followed by hand in `send`, reads only
                )
            except http.exceptions.Timeout:
                raise Retryable("timed out") from None
            except http.exceptions.RequestException:
                raise Retryable("could not connect") from None
            status = response.status_code or 0
            if self.retry.is_retryable(status):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                raise Retryable(f"answered {status}", retry_after=retry_after)
            if check is not None and status not in REDIRECT_STATUS:
                try:
                    check(response)
                except MalformedAnswer as exc:
                    problem = f"sent a malformed answer to {method} ({exc})"
                    if method not in READ_ONLY_METHODS:  # a write may have happened: never sent twice
                        raise ChannelError(f"CalDAV server {self.host} {problem}; run the same command again") from None
                    raise Retryable(problem) from None
            return response

        def gave_up(last: Retryable) -> Exception:
            return TransientError(
                f"CalDAV server {self.host} {last.problem} ({self.retry.attempts} attempts); "
                "run the same command again later: it picks up where it stopped, without duplicates"
            )

        return self.retry.call(attempt, gave_up=gave_up)

    def library_call(self, what: str, call: Callable[[], Any]) -> Any:
        """A `caldav` library call (reads only) with the same retries and one-line errors as `send`."""
        from caldav.lib import error as caldav_error
        from caldav.lib.http_sync import requests as http
        from lxml import etree  # type: ignore[import-untyped]  # the `caldav` library parses with lxml

        def attempt() -> Any:
            fatal: int | None = None  # raised outside `except`: no library exception is chained to ours
            try:
                return call()
            except etree.LxmlError as exc:
                # The server's answer is not XML (a proxy's page, a cut-off body): only reads come
                # here, so it is asked again.
                raise Retryable(f"sent a malformed answer (not XML: {_first_line(exc)})") from None
            except caldav_error.AuthorizationError as exc:
                fatal = getattr(exc, "status", None) or 401
            except caldav_error.RateLimitError:
                raise Retryable("answered 429") from None
            except caldav_error.NotFoundError:
                fatal = 404
            except caldav_error.DAVError as exc:
                status = getattr(exc, "status", None)
                if isinstance(status, int) and not self.retry.is_retryable(status):
                    fatal = status
                else:
                    raise Retryable(f"answered {status or 'an error'}") from None
            except http.exceptions.Timeout:
                raise Retryable("timed out") from None
            except http.exceptions.RequestException:
                raise Retryable("could not connect") from None
            assert fatal is not None
            self.raise_for_status(fatal, what)
            raise ChannelError(f"CalDAV server {self.host} answered {fatal} during {what}")  # a 2xx/3xx "error"

        def gave_up(last: Retryable) -> Exception:
            return TransientError(
                f"CalDAV server {self.host} {last.problem} during {what} ({self.retry.attempts} attempts); "
                "run again later"
            )

        return self.retry.call(attempt, gave_up=gave_up)

    def raise_for_status(self, status: int, what: str, *, calendar: str | None = None) -> None:
        """One-line errors naming the likely cause; returns only for 2xx/3xx."""
        if status < 400:
            return
        if status == 401:
            raise AuthError(
                f"CalDAV server {self.host} refused user {self.user!r} (401 during {what}): wrong password? "
                "iCloud and Fastmail need an app-specific password, not the account password"
            )
        if status == 403:
            raise AuthError(
                f"CalDAV server {self.host} denied {what} to user {self.user!r} (403): the account has no rights "
                "there, or the server wants an app-specific password (iCloud, Fastmail)"
            )
        if status == 404:
            target = f"calendar {calendar!r}" if calendar else what
            raise NotFoundError(f"{target}: not found on {self.host} (404); check --calendar and --url")
        raise ChannelError(f"CalDAV server {self.host} answered {status} during {what}")

    # -- discovery --

    def principal_url(self) -> str:
        """The user's principal: current-user-principal of the base URL, else of /.well-known/caldav."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<d:propfind xmlns:d="DAV:"><d:prop><d:current-user-principal/></d:prop></d:propfind>'
        )
        headers = {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}
        candidates = [self.base_url, urljoin(self.base_url, "/.well-known/caldav")]
        moved: list[str] = []  # where redirects led, for an accurate message
        for start in candidates:
            # Redirects followed by hand (HTTP clients turn a 302'd PROPFIND into GET).
            response = self.send(
                "PROPFIND", start, body=body, headers=headers, follow_redirects=True, check=_check_multistatus
            )
            url = str(response.url or start)
            redirected = strip_credentials(url) != strip_credentials(start)
            if redirected:
                moved.append(f"{strip_credentials(start)} -> {strip_credentials(url)}")
            if response.status_code in (401, 403):
                what = "discovery"
                if redirected:  # name where the answer came from: a redirect may lead to a login page
                    what += f" at {strip_credentials(url)}, redirected from {start}"
                self.raise_for_status(response.status_code, what)
            if response.status_code == 207:
                href = _first_text(response.content, ".//d:current-user-principal/d:href")
                if href:
                    return urljoin(url, href)
        followed = f"; redirects followed: {', '.join(moved)}" if moved else ""
        raise NotFoundError(
            f"no CalDAV service found at {self.base_url} (nor at /.well-known/caldav{followed}); check --url "
            "(iCloud: https://caldav.icloud.com/, Nextcloud: https://HOST/remote.php/dav)"
        )

    def principal(self) -> Any:
        if self._principal is None:
            from caldav.collection import Principal

            self._principal = Principal(client=self.client, url=self.principal_url())
        return self._principal

    def calendars(self) -> list[CalendarInfo]:
        if self._calendars is None:
            principal = self.principal()
            found = self.library_call("listing calendars", principal.get_calendars)
            self._calendars = [
                CalendarInfo(
                    str(cal.url), str(self.library_call("reading a calendar name", cal.get_display_name) or "")
                )
                for cal in found
            ]
        return self._calendars

    def find_calendar(self, calendar: str, *, create: bool, dry_run: bool = False) -> str | None:
        """URL of the calendar `calendar` (display name, URL or path).

        A missing calendar is made when `create` (None is returned instead on a dry run);
        otherwise it is a NotFoundError that lists the calendars the user has.
        """
        if calendar.startswith(("http://", "https://", "/")):
            # Another host is allowed (iCloud serves calendars from pNN-caldav.icloud.com), but the
            # same rules as for --url apply: no credentials inside, https except on localhost.
            url = server_url(urljoin(self.base_url, calendar), what="--calendar")
            return url if url.endswith("/") else url + "/"
        matches = [c for c in self.calendars() if c.name == calendar]
        if not matches:
            matches = [c for c in self.calendars() if c.name.casefold() == calendar.casefold()]
        if len(matches) > 1:
            raise InputError(f"several calendars are named {calendar!r} on {self.host}: give --calendar as a URL")
        if matches:
            return matches[0].url
        if create and dry_run:
            return None
        if create:
            info = self._make_calendar(calendar)
            assert self._calendars is not None
            if all(c.url != info.url for c in self._calendars):
                self._calendars.append(info)
            return info.url
        names = ", ".join(repr(c.name) for c in self.calendars()) or "none"
        raise NotFoundError(
            f"no calendar named {calendar!r} for user {self.user!r} on {self.host} (calendars: {names}); "
            "check --calendar or add --create-calendar"
        )

    def _make_calendar(self, name: str) -> CalendarInfo:
        """MKCALENDAR at the path `calendar_segment(name)` gives under the calendar home.

        A server refuses a second MKCALENDAR at one URL (Radicale 409, Xandikos 403, RFC 4918:
        405; some 412): the calendar there is then used, when it is named `name` (or still has
        no name: some servers set it after making the collection). So concurrent first runs, and
        a MKCALENDAR retried after a lost answer, make one calendar.
        """
        home = str(self.library_call("finding the calendar home", lambda: self.principal().calendar_home_set.url))
        url = urljoin(home if home.endswith("/") else home + "/", calendar_segment(name) + "/")
        headers = {"Content-Type": "application/xml; charset=utf-8"}
        status = self.send("MKCALENDAR", url, body=_mkcalendar_body(name), headers=headers).status_code
        if status in (200, 201, 204):
            return CalendarInfo(url, name)
        if status in (403, 405, 409, 412):
            existing = self._existing_collection(url)
            if existing is not None:
                is_calendar, shown = existing
                if not is_calendar:
                    raise ChannelError(
                        f"cannot create calendar {name!r} on {self.host}: {strip_credentials(url)} exists and is not a "
                        "calendar; give --calendar as the URL of a calendar"
                    )
                if shown and shown.casefold() != name.casefold():
                    raise ChannelError(
                        f"cannot create calendar {name!r} on {self.host}: its address {strip_credentials(url)} holds "
                        f"calendar {shown!r}; rename that one back to {name!r}, or give --calendar as a URL"
                    )
                return CalendarInfo(url, shown or name)
        self.raise_for_status(status, "creating the calendar")
        raise ChannelError(f"CalDAV server {self.host} answered {status} when creating calendar {name!r}")

    def _existing_collection(self, url: str) -> tuple[bool, str] | None:
        """(is a calendar, display name) of the collection at `url`; None when there is none."""
        headers = {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}
        response = self.send("PROPFIND", url, body=_COLLECTION_PROPFIND, headers=headers, check=_check_multistatus)
        if response.status_code in (404, 410):
            return None
        self.raise_for_status(response.status_code, "reading the calendar")
        if response.status_code != 207:
            return None
        root = _xml_root(response.content)
        is_calendar = root.find(".//d:resourcetype/c:calendar", _NS) is not None
        shown = root.findtext(".//d:displayname", default="", namespaces=_NS).strip()
        return is_calendar, shown


class MalformedAnswer(Exception):
    """A server's answer that is not what the protocol says (a 207 that is not XML): its fault.

    Control flow inside `CalDavConnection.send` (a read is retried); never reaches a person.
    """


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]


def _xml_root(xml: bytes) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise MalformedAnswer(f"not XML: {_first_line(exc)}") from None


def _check_multistatus(response: Any) -> None:
    if response.status_code == 207:
        _xml_root(response.content)


def calendar_segment(name: str) -> str:
    """The collection name of a calendar aftercal makes: a slug of `name` and a hash of it.

    The same name always gives the same path, so two runs creating "Race Cal" at once (or a
    MKCALENDAR retried after its answer was lost) meet at one URL, where the server accepts one
    MKCALENDAR and refuses the others. The hash is of the case-folded name, as names are matched.
    """
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:40].strip("-") or "calendar"
    digest = hashlib.sha256(name.casefold().encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}"


def _mkcalendar_body(name: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>'
        f"<d:displayname>{xml_escape(name)}</d:displayname>"
        "</d:prop></d:set></c:mkcalendar>"
    )


_COLLECTION_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:displayname/></d:prop></d:propfind>'
)


def _first_text(xml: bytes, path: str) -> str | None:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    node = root.find(path, _NS)
    return node.text.strip() if node is not None and node.text else None


# ---- the publisher --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """Where an event lives on the server (RemoteEvent.handle)."""

    href: str
    etag: str | None
    plan_tag: str


def event_href(calendar_url: str, uid: str) -> str:
    """The resource URL for a UID: the same on every run, so a retry overwrites instead of duplicating."""
    return calendar_url + quote(uid, safe="") + ".ics"


def _query_body(prop: str, value: str) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;")
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        f'<c:prop-filter name="{prop}"><c:text-match collation="i;octet">{value}</c:text-match></c:prop-filter>'
        "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
    )


_UNFILTERED = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
    '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter></c:filter>'
    "</c:calendar-query>"
)


@dataclass(frozen=True)
class _Resource:
    href: str
    etag: str | None
    uid: str
    plan_tag: str | None
    content_hash: str | None
    sequence: int


def _parse_resources(xml: bytes, base: str) -> list[_Resource]:
    """The events of a calendar-query multistatus; resources that do not parse are skipped.

    Raises MalformedAnswer when the multistatus itself is not XML.
    """
    from icalendar import Calendar

    root = _xml_root(xml)  # MalformedAnswer: the caller's request is asked again
    found: list[_Resource] = []
    for response in root.findall("d:response", _NS):
        href = response.findtext("d:href", default="", namespaces=_NS).strip()
        data = response.findtext(".//c:calendar-data", default="", namespaces=_NS)
        etag = response.findtext(".//d:getetag", default="", namespaces=_NS).strip() or None
        if not href or not data.strip():
            continue
        try:
            cal = Calendar.from_ical(data)
        except ValueError:
            continue
        for event in cal.walk("VEVENT"):
            if event.get("RECURRENCE-ID") is not None:
                continue
            tag = event.get(ICAL_PLAN)
            digest = event.get(ICAL_HASH)
            try:
                sequence = int(event.get("SEQUENCE", 0))
            except (TypeError, ValueError):
                sequence = 0
            found.append(
                _Resource(
                    href=urljoin(base, href),
                    etag=etag,
                    uid=str(event.get("UID", "")),
                    plan_tag=str(tag) if tag is not None else None,
                    content_hash=str(digest) if digest is not None else None,
                    sequence=sequence,
                )
            )
            break
    return found


class CalDavPublisher:
    """`Publisher` for one calendar on a CalDAV server (see calendars/base.py)."""

    name = "caldav"

    def __init__(
        self,
        connection: CalDavConnection,
        calendar_url: str | None,
        *,
        calendar_label: str | None = None,
        stamp: datetime | None = None,
    ) -> None:
        """`calendar_url` None stands for a calendar that does not exist yet (dry run): it holds nothing."""
        self.conn = connection
        self.calendar_url = calendar_url
        self.label = calendar_label or calendar_url or ""
        self.stamp = stamp or datetime.now(UTC)
        self.filter_supported = True
        self._prefetched: dict[str, dict[str, RemoteEvent]] | None = None

    # -- reading --

    def _report(self, body: str) -> tuple[Any, list[_Resource]]:
        """A calendar-query REPORT: the response and, for a 207, its events (parsed as the answer
        arrives, so that one that is not XML is asked again)."""
        calendar_url = self.calendar_url
        assert calendar_url is not None
        headers = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}
        found: list[_Resource] = []

        def parse(response: Any) -> None:
            if response.status_code == 207:
                found[:] = _parse_resources(response.content, calendar_url)

        return self.conn.send("REPORT", calendar_url, body=body, headers=headers, check=parse), found

    def _query(self, prop: str, value: str) -> list[_Resource]:
        """Events whose `prop` contains `value` (server filter; all events if it cannot filter)."""
        assert self.calendar_url is not None
        if self.filter_supported:
            response, found = self._report(_query_body(prop, value))
            if response.status_code in (400, 403, 415, 422, 501):
                # Some servers refuse prop-filters on X- properties: list everything, filter here.
                self.filter_supported = False
            else:
                return self._resources(response, found)
        return self._query_all()

    def _query_all(self) -> list[_Resource]:
        return self._resources(*self._report(_UNFILTERED))

    def _resources(self, response: Any, found: list[_Resource]) -> list[_Resource]:
        self.conn.raise_for_status(response.status_code, "reading events", calendar=self.label)
        if response.status_code != 207:
            raise ChannelError(f"CalDAV server {self.conn.host} answered {response.status_code} to a calendar query")
        return found

    def fetch(self, plan_tag: str) -> dict[str, RemoteEvent]:
        if self.calendar_url is None:
            return {}
        if self._prefetched is not None and plan_tag in self._prefetched:
            # Each treatment's snapshot is used once: a second fetch of the same tag asks the server.
            return self._prefetched.pop(plan_tag)
        return self._held(self._query(ICAL_PLAN, plan_tag)).get(plan_tag, {})

    def prefetch(self, plan_tags: set[str]) -> None:
        """For a batch: read the whole calendar in one request and serve `fetch` for these tags from it.

        Servers evaluate property filters by parsing every event (Radicale: ~1 s per query at 800
        events), so one unfiltered query beats one filtered query per treatment. Writes stay
        conditional (If-Match / If-None-Match), so a change made meanwhile is still detected.
        """
        if self.calendar_url is None:
            return
        held = self._held(self._query_all())
        self._prefetched = {tag: held.get(tag, {}) for tag in plan_tags}

    @staticmethod
    def _held(resources: list[_Resource]) -> dict[str, dict[str, RemoteEvent]]:
        by_tag: dict[str, dict[str, RemoteEvent]] = {}
        for res in resources:
            if not res.plan_tag or not res.uid:
                continue  # not made by aftercal: never touched
            by_tag.setdefault(res.plan_tag, {})[res.uid] = RemoteEvent(
                uid=res.uid,
                content_hash=res.content_hash,
                sequence=res.sequence,
                handle=Held(res.href, res.etag, res.plan_tag),
            )
        return by_tag

    def _lookup_uid(self, uid: str) -> _Resource | None:
        for res in self._query("UID", uid):
            if res.uid == uid:
                return res
        return None

    # -- writing --

    def _put(self, url: str, body: bytes, condition: dict[str, str]) -> int:
        headers = {"Content-Type": "text/calendar; charset=utf-8", **condition}
        response = self.conn.send("PUT", url, body=body, headers=headers)
        if response.status_code in (401, 403, 404):
            self.conn.raise_for_status(response.status_code, "writing an event", calendar=self.label)
        return int(response.status_code)

    def _body(self, plan: CarePlan, reminder: Reminder, held: RemoteEvent | None) -> bytes:
        return render_event_ics(plan, reminder, stamp=self.stamp, sequence=next_sequence(plan, held))

    def _create(self, plan: CarePlan, reminder: Reminder) -> str:
        """PUT a new event; returns "create", "update" or "unchanged" (what really happened)."""
        assert self.calendar_url is not None
        status = self._put(event_href(self.calendar_url, reminder.uid), self._body(plan, reminder, None),
                           {"If-None-Match": "*"})  # fmt: skip
        if status in (200, 201, 204):
            return "create"
        if status not in (409, 412):
            raise ChannelError(f"CalDAV server {self.conn.host} answered {status} when creating an event")
        # 412: something is at our href already (e.g. our own write whose answer was lost);
        # 409 (Radicale) / 412 (Xandikos): the UID exists under another href. Look it up by UID.
        res = self._lookup_uid(reminder.uid)
        if res is None or res.plan_tag != plan.plan_tag:
            raise ConflictError(
                f"event {reminder.key} of treatment {plan.treatment_id}: calendar {self.label!r} already holds an "
                f"event with its UID that aftercal did not create for this treatment; left it alone"
            )
        if res.content_hash == reminder.content_hash():
            return "unchanged"
        remote = RemoteEvent(res.uid, res.content_hash, res.sequence, handle=Held(res.href, res.etag, plan.plan_tag))
        return self._update(plan, reminder, remote, again=False)

    def _update(self, plan: CarePlan, reminder: Reminder, held: RemoteEvent, *, again: bool = True) -> str:
        handle: Held = held.handle
        condition = {"If-Match": handle.etag} if handle.etag else {}
        status = self._put(handle.href, self._body(plan, reminder, held), condition)
        if status in (200, 201, 204):
            return "update"
        if status == 412 and again:
            # Changed on the server since we read it (a phone edited it): re-read, still ours -> overwrite.
            res = self._lookup_uid(reminder.uid)
            if res is None:
                return self._create(plan, reminder)
            if res.plan_tag == plan.plan_tag:
                fresh = RemoteEvent(
                    res.uid, res.content_hash, res.sequence, handle=Held(res.href, res.etag, res.plan_tag)
                )
                return self._update(plan, reminder, fresh, again=False)
        raise ChannelError(f"CalDAV server {self.conn.host} answered {status} when updating event {reminder.key}")

    def _delete(self, held: RemoteEvent) -> None:
        handle: Held = held.handle
        condition = {"If-Match": handle.etag} if handle.etag else {}
        response = self.conn.send("DELETE", handle.href, headers=condition)
        status = response.status_code
        if status in (200, 202, 204, 404, 410):  # 404/410: already gone (a retried delete): converged
            return
        if status == 412:
            res = self._lookup_uid(held.uid)
            if res is None:
                return
            if res.plan_tag == handle.plan_tag:
                again = self.conn.send("DELETE", res.href, headers={"If-Match": res.etag} if res.etag else {})
                if again.status_code in (200, 202, 204, 404, 410):
                    return
                status = again.status_code
        self.conn.raise_for_status(status, "deleting an event", calendar=self.label)
        raise ChannelError(f"CalDAV server {self.conn.host} answered {status} when deleting an event")

    def apply(
        self, plan: CarePlan | None, actions: SyncActions, progress: ProgressCallback | None = None
    ) -> SyncSummary:
        summary = SyncSummary(unchanged=len(actions.unchanged))
        if actions.writes and self.calendar_url is None:
            raise NotFoundError(f"calendar {self.label!r} does not exist")
        tally = {"create": 0, "update": 0, "unchanged": 0}
        conflicts: list[ConflictError] = []
        for reminder in actions.create:
            assert plan is not None
            try:
                done = self._create(plan, reminder)
            except ConflictError as conflict:
                # Leave that one event alone but carry on: the rest of the plan must still converge.
                conflicts.append(conflict)
                continue
            tally[done] += 1
            if progress:
                progress(done, reminder.key)
        for reminder, held in actions.update:
            assert plan is not None
            done = self._update(plan, reminder, held)
            tally[done] += 1
            if progress:
                progress(done, reminder.key)
        for held in actions.delete:
            self._delete(held)
            summary.deleted += 1
            if progress:
                progress("delete", held.uid)
        summary.created += tally["create"]
        summary.updated += tally["update"]
        summary.unchanged += tally["unchanged"]
        if conflicts:
            others = f" ({summary.line()} for the rest)"
            more = f" and {len(conflicts) - 1} more" if len(conflicts) > 1 else ""
            raise ChannelError(f"{conflicts[0]}{more}{others}")
        return summary


# ---- batches ----------------------------------------------------------------------------------------


class CalDavBatchPublisher(BatchPublisher):
    """`BatchPublisher` (calendars.base) for one CalDAV account: a day's treatments in one run.

    Each calendar named by the jobs (or `calendar`, the default) is looked up once; when it holds
    several of the batch's treatments it is read once (one unfiltered REPORT, see
    `CalDavPublisher.prefetch`) instead of once per treatment. Jobs run in order; an error fails
    only its job, except a refused password (AuthError), which would fail every other job too:
    the jobs not yet tried then carry that same error, without a request.
    """

    name = "caldav"

    def __init__(
        self,
        connection: CalDavConnection,
        calendar: str,
        *,
        create_calendar: bool = False,
        stamp: datetime | None = None,
    ) -> None:
        """`calendar`: the default calendar (display name or URL); `create_calendar` makes a missing one."""
        self.conn = connection
        self.calendar = calendar
        self.create_calendar = create_calendar
        self.stamp = stamp or datetime.now(UTC)

    def publish_jobs(
        self,
        jobs: Sequence[PublishJob],
        *,
        dry_run: bool = False,
        progress: BatchProgressCallback | None = None,
    ) -> list[JobResult]:
        tags: dict[str, set[str]] = {}  # per calendar: the treatments of this batch (and their legacy tags)
        counts: dict[str, int] = {}  # per calendar: its jobs
        publishes: set[str] = set()  # calendars with something to publish (only those are ever made)
        for job in jobs:
            calendar = job.calendar or self.calendar
            tags.setdefault(calendar, set()).update(job.tags)
            counts[calendar] = counts.get(calendar, 0) + 1
            if job.plan is not None:
                publishes.add(calendar)
        publishers: dict[str, CalDavPublisher | AftercalError] = {}
        results: list[JobResult] = []
        refused: AuthError | None = None
        for job in jobs:
            result = JobResult(job.label)
            results.append(result)
            if refused is not None:
                result.error = refused
                continue
            calendar = job.calendar or self.calendar
            try:
                if calendar not in publishers:
                    create = self.create_calendar and calendar in publishes
                    publishers[calendar] = self._publisher(
                        calendar, tags[calendar], create=create, dry_run=dry_run, prefetch=counts[calendar] > 1
                    )
                publisher = publishers[calendar]
                if isinstance(publisher, AftercalError):
                    result.error = publisher
                    continue
                result.would_create_calendar = publisher.calendar_url is None
                self._run(publisher, job, result, dry_run=dry_run, progress=progress)
            except AuthError as exc:
                result.error = refused = exc
            except AftercalError as exc:
                result.error = exc
        return results

    def _publisher(
        self, calendar: str, plan_tags: set[str], *, create: bool, dry_run: bool, prefetch: bool
    ) -> CalDavPublisher | AftercalError:
        """The calendar's publisher (prefetched for several treatments), or why there is none.

        A failed lookup is kept, so the calendar's other jobs fail the same way without asking again.
        """
        try:
            url = self.conn.find_calendar(calendar, create=create, dry_run=dry_run)
            publisher = CalDavPublisher(self.conn, url, calendar_label=calendar, stamp=self.stamp)
            if prefetch:
                publisher.prefetch(plan_tags)
        except AuthError:
            raise
        except AftercalError as exc:
            return exc
        return publisher

    def _run(
        self,
        publisher: CalDavPublisher,
        job: PublishJob,
        result: JobResult,
        *,
        dry_run: bool,
        progress: BatchProgressCallback | None,
    ) -> None:
        actions = diff_plan(job.plan, fetch_tags(publisher, job.tags))
        result.actions = actions
        if dry_run:
            result.summary = SyncSummary(unchanged=len(actions.unchanged))
            return
        label = job.label

        def step(action: str, key: str) -> None:
            if action == "create":
                result.summary.created += 1
            elif action == "update":
                result.summary.updated += 1
            elif action == "delete":
                result.summary.deleted += 1
            elif action == "unchanged":
                result.summary.unchanged += 1
            if progress is not None:
                progress(label, action, key)

        result.summary = SyncSummary(unchanged=len(actions.unchanged))
        result.summary = publisher.apply(job.plan, actions, step)


# Conformance with calendars.base, checked by mypy.
_publisher_check: type[Publisher] = CalDavPublisher
