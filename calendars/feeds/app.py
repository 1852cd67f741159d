"""Subscription feeds: a Starlette (ASGI) app serving each treatment's calendar at a secret link.

Routes, and nothing else (other paths 404, other methods 405):

    GET|HEAD /f/<token>.ics   the care plan as text/calendar (`?download=1`: as an attachment)
    GET|HEAD /f/<token>       the patient's landing page (calendars.feeds.landing)

The database is the source of truth, so several processes can share one PostgreSQL database:
every request looks the token's SHA-256 up (one indexed query, the same work for unknown,
rotated and revoked tokens, which all get the same 404). Bodies are rendered once per treatment
revision and kept in an in-process LRU cache keyed by (treatment, revision, phase), so a 304 or a
repeated 200 costs one lookup and no calendar rendering. ETag is a hash of the body (strong),
Last-Modified the treatment's last change; If-None-Match wins over If-Modified-Since.

A cancelled treatment's feed keeps its events with STATUS:CANCELLED (and a higher SEQUENCE) for
`cancelled_for` (30 days by default), long enough for every subscribed calendar to refresh and
remove them; after that the feed is a valid, empty VCALENDAR.

`serve` runs the app under uvicorn with access logs whose paths never carry a token
(`/f/<redacted>.ics`), and shuts down cleanly on SIGINT/SIGTERM (open requests finish, database
connections close). Under abuse it keeps answering (calendars.feeds.limits): a deadline for
request headers, a bound on open connections, logs that cannot flood; every PostgreSQL call is
bounded in time (a silent database gives 503s, not hung requests). One stored treatment that no
longer validates answers 503 on its own link; the others are untouched.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import signal
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calendars.feeds.limits import (
    DEFAULT_DB_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    LISTEN_BACKLOG,
    ConnectionGuard,
    RateLimit,
    connection_budget,
    guarded_protocol,
)
from calendars.feeds.store import InvalidTreatmentError, Store, Treatment, open_store
from calendars.http import check_base_url
from calendars.ics import render_ics
from reminders.errors import InputError, StoreError
from reminders.schedule import CarePlan

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from calendars.feeds.connect import GoogleConnect
    from calendars.gcal_web import WebClient

CANCELLED_FEED_PERIOD = timedelta(days=30)
# Calendar apps poll on their own schedule (REFRESH-INTERVAL is 12 h); a short max-age keeps a
# reschedule visible on the next poll, and revalidation is a cheap 304.
CACHE_CONTROL = "private, max-age=300, must-revalidate"
CACHE_SIZE = 4096
FEED_FILENAME = "aftercare.ics"

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# ---- token redaction for logs -----------------------------------------------------------------------

_FEED_PATH = re.compile(r"(/f/)[^/?#\s\"']*?(\.ics)?(?=[/?#\s\"']|$)")
_TOKENISH = re.compile(r"[A-Za-z0-9_-]{32,}")
# A run of URL characters that may spell a token once percent-decoded (%41 is "A", %252F is "/").
_ENCODED_RUN = re.compile(r"[A-Za-z0-9_.~%-]*%[0-9A-Fa-f]{2}[A-Za-z0-9_.~%-]*")


def _decoded(text: str) -> str:
    """`text` percent-decoded until it stops changing (double encoding included), at most 4 times."""
    from urllib.parse import unquote

    for _round in range(4):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def redact(text: str) -> str:
    """`text` with every feed token (and anything token-shaped) replaced by <redacted>, also when
    some of its characters are percent-encoded, in a path or a query string."""

    def encoded_run(match: re.Match[str]) -> str:
        plain = _decoded(match.group(0))
        return "<redacted>" if _TOKENISH.search(plain) or "/f/" in plain else match.group(0)

    text = _ENCODED_RUN.sub(encoded_run, text)
    text = _FEED_PATH.sub(lambda m: f"{m.group(1)}<redacted>{m.group(2) or ''}", text)
    return _TOKENISH.sub("<redacted>", text)


class RedactTokens(logging.Filter):
    """Logging filter for uvicorn's handlers: no token ever reaches a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging config with the redacting filter on every handler, and the rate limit
    on every handler but the access log's (one line per request is what an access log is).

    The root logger gets uvicorn's default handler too, so asyncio's errors (an accept() that
    fails, say) and aftercal's own lines are redacted and rate-limited like uvicorn's."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    config["filters"]["rate_limit"] = {"()": RateLimit}
    for name, handler in config["handlers"].items():
        handler.setdefault("filters", []).append("redact_tokens")
        if name != "access":
            handler["filters"].append("rate_limit")
    for logger in config["loggers"].values():
        if "level" in logger:
            logger["level"] = level.upper()
    config["loggers"]["aftercal"] = {"level": level.upper()}
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config


# ---- bodies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """A rendered feed, ready to send."""

    plan: CarePlan
    ics: bytes
    etag: str  # quoted, strong
    last_modified: datetime
    phase: str  # "active", "cancelled" or "ended"


class BodyCache:
    """Rendered feeds per (treatment pk, revision, phase, last change): a small thread-safe LRU."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, int, str, str], Body] = OrderedDict()
        self._lock = threading.Lock()
        self.renders = 0  # how many times a calendar was rendered (tests and benchmarks read it)

    def get(self, key: tuple[int, int, str, str]) -> Body | None:
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def put(self, key: tuple[int, int, str, str], body: Body) -> None:
        with self._lock:
            self._items[key] = body
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def feed_phase(treatment: Treatment, now: datetime, cancelled_for: timedelta) -> tuple[str, datetime]:
    """("active" | "cancelled" | "ended", the moment the feed last changed)."""
    if not treatment.cancelled:
        return "active", treatment.updated_at
    ended_at = (treatment.cancelled_at or treatment.updated_at) + cancelled_for
    if now >= ended_at:
        return "ended", max(ended_at.replace(microsecond=0), treatment.updated_at)
    return "cancelled", treatment.updated_at


def render_body(treatment: Treatment, phase: str, changed: datetime) -> Body:
    """The feed bytes of one treatment in one phase; DTSTAMP is the last change, so bytes are stable."""
    plan = treatment.plan()
    if phase == "ended":
        data = render_ics(replace(plan, reminders=()), stamp=changed)
    else:
        data = render_ics(plan, stamp=changed, status="CANCELLED" if phase == "cancelled" else "CONFIRMED")
    etag = '"' + hashlib.sha256(data).hexdigest()[:40] + '"'
    return Body(plan=plan, ics=data, etag=etag, last_modified=changed, phase=phase)


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _not_modified(headers: Any, etag: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.2.2: If-None-Match (weak comparison) first; If-Modified-Since only without it."""
    match = headers.get("if-none-match")
    if match is not None:
        tags = [tag.strip() for tag in match.split(",")]
        return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)
    since_text = headers.get("if-modified-since")
    if since_text:
        try:
            since = parsedate_to_datetime(since_text)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return last_modified <= since
    return False


def webcal_url(ics_url: str) -> str:
    """The same feed for Apple's subscribe sheet (webcal:// works for http and https feeds)."""
    return "webcal://" + ics_url.split("://", 1)[1]


# ---- the app ----------------------------------------------------------------------------------------


class FeedApp:
    """The request handlers; `create_app` wraps them in a Starlette app."""

    def __init__(
        self,
        store: Store,
        *,
        base_url: str | None,
        cancelled_for: timedelta,
        clock: Clock,
        date_header: bool = False,
    ) -> None:
        self.store = store
        self.base_url = base_url.rstrip("/") if base_url else None
        self.cancelled_for = cancelled_for
        self.clock = clock
        self.date_header = date_header  # the app sends Date (serve turns uvicorn's off)
        self.cache = BodyCache()
        self.google: GoogleConnect | None = None  # patients connect their Google Calendar (create_app)

    def not_found_page(self) -> Response:
        """The answer for a page link that is not active (unknown, rotated or revoked alike)."""
        return _page_not_found()

    async def body_for(self, token: str) -> Body | None:
        """The feed body for a token, or None. Blocking work runs in the thread pool, except the
        SQLite lookup: a local indexed read in WAL mode never waits for writers and takes
        microseconds, less than a hop to a worker thread."""
        from starlette.concurrency import run_in_threadpool

        if self.store.dialect == "sqlite":
            treatment = self.store.lookup_token(token)
        else:
            treatment = await run_in_threadpool(self.store.lookup_token, token)
        if treatment is None:
            return None
        phase, changed = feed_phase(treatment, self.clock(), self.cancelled_for)
        key = (treatment.pk, treatment.revision, phase, changed.isoformat())
        body = self.cache.get(key)
        if body is None:
            try:
                body = await run_in_threadpool(render_body, treatment, phase, changed)
            except StoreError:
                raise
            except Exception as exc:  # this treatment only: stored before a rule refused it, say
                raise InvalidTreatmentError(treatment.treatment_id, _one_line(exc)) from None
            self.cache.renders += 1
            self.cache.put(key, body)
        return body

    def base(self, request: Request) -> str:
        """The configured public address, else the address the connection came in on: never the
        request's Host header, which the client chooses (links to another site, cache poisoning)."""
        if self.base_url:
            return self.base_url
        server = request.scope.get("server")
        if not server or server[1] is None:  # a Unix socket: only a proxy with --base-url can say
            return "http://localhost"
        host, port = str(server[0]), int(server[1])
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if request.url.scheme == "https" else "http"
        default = 443 if scheme == "https" else 80
        return f"{scheme}://{host}" if port == default else f"{scheme}://{host}:{port}"

    async def feed(self, request: Request) -> Response:
        from starlette.responses import Response

        body = await self.body_for(request.path_params["token"])
        if body is None:
            return _not_found()
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        # A treatment changed several times within a second gets updated_at a second apart each
        # time (so If-Modified-Since still tells versions apart), which can run ahead of the clock:
        # never claim a change later than the response's own Date (RFC 9110 §8.8.2.1).
        headers = {
            **_COMMON_HEADERS,
            "ETag": body.etag,
            "Last-Modified": http_date(min(body.last_modified, now)),
            "Cache-Control": CACHE_CONTROL,
        }
        if self.date_header:
            headers["Date"] = http_date(now)
        # The true moment is compared, not the clamped one: a copy stamped with a clamped date is
        # never taken for a later version.
        if _not_modified(request.headers, body.etag, body.last_modified):
            return Response(status_code=304, headers=headers)
        if request.query_params.get("download") == "1":
            headers["Content-Disposition"] = f'attachment; filename="{FEED_FILENAME}"'
        return Response(body.ics, media_type="text/calendar; charset=utf-8", headers=headers)

    async def page(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import HTMLResponse

        from calendars.feeds.landing import render_landing_page

        token = request.path_params["token"]
        body = await self.body_for(token)
        if body is None:
            return _page_not_found()
        ics_url = f"{self.base(request)}/f/{token}.ics"
        today = self.clock().astimezone(body.plan.zone).date()  # the patient's date, for the timeline
        google = None
        if self.google is not None:  # the patient may connect their own Google Calendar here
            connect, outcome = self.google, request.query_params.get("google")
            treatment = await run_in_threadpool(self.store.lookup_token, token)
            if treatment is None:
                return _page_not_found()
            google = await run_in_threadpool(connect.section, token, treatment, outcome)
        html = await run_in_threadpool(
            lambda: render_landing_page(
                body.plan,
                ics_url=ics_url,
                webcal_url=webcal_url(ics_url),
                today=today,
                cancelled=body.phase != "active",
                google=google,
            )
        )
        headers = {**_COMMON_HEADERS, "Cache-Control": "private, no-cache"}
        return HTMLResponse(html, headers=headers)


def _not_found() -> Response:
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("Not Found", status_code=404, headers=_COMMON_HEADERS)


def _page_not_found() -> Response:
    """A page link that is not active: a short page for the patient, the same for every reason
    (unknown, rotated, revoked, forgotten) and after the same lookup; feeds keep the plain 404."""
    from starlette.responses import HTMLResponse

    from calendars.feeds.landing import inactive_link_page

    return HTMLResponse(inactive_link_page(), status_code=404, headers=_COMMON_HEADERS)


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, InputError) else f"{type(exc).__name__}: {text}".rstrip(": ")


class DateHeader:
    """ASGI middleware: a Date header on every response that has none (serve turns uvicorn's off,
    so that a feed's Last-Modified is checked against the very Date it is sent with)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_date(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"date" for name, _value in headers):
                    headers.append((b"date", http_date(_utc_now()).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_date)


def create_app(
    store_url: str | Path | Store | None,
    *,
    base_url: str | None = None,
    cancelled_for: timedelta = CANCELLED_FEED_PERIOD,
    clock: Clock | None = None,
    db_timeout: float | None = DEFAULT_DB_TIMEOUT,
    date_header: bool = False,
    google_web: WebClient | None = None,
) -> Starlette:
    """The ASGI app for a store (path, postgresql:// URL, or an open Store, which the app then owns).

    `db_timeout` bounds every PostgreSQL call of a store the app opens (seconds; None: unbounded);
    `date_header` makes the app send Date itself (for a server told not to); `google_web`, the
    clinic's OAuth web client, lets patients connect their own Google Calendar from their page
    (calendars.feeds.connect)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    store = store_url if isinstance(store_url, Store) else open_store(store_url, timeout=db_timeout)
    handlers = FeedApp(
        store, base_url=base_url, cancelled_for=cancelled_for, clock=clock or _utc_now, date_header=date_header
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = {**_COMMON_HEADERS, **(exc.headers or {})}
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=headers)

    async def store_down(_request: Request, exc: Exception) -> Response:
        # StoreError messages name the database without its password, and never a token.
        logging.getLogger("aftercal.feed").error("treatment database unavailable: %s", redact(str(exc)))
        return PlainTextResponse(
            "Service Unavailable", status_code=503, headers={**_COMMON_HEADERS, "Retry-After": "30"}
        )

    async def treatment_unservable(_request: Request, exc: Exception) -> Response:
        # One line, no traceback: the clinic's fix is in the store, not in the code.
        assert isinstance(exc, InvalidTreatmentError)
        logging.getLogger("aftercal.feed").error("%s: its feed and page answer 503", redact(str(exc)))
        return PlainTextResponse(
            "Service Unavailable: this care plan cannot be shown right now; please contact your clinic.\n",
            status_code=503,
            headers={**_COMMON_HEADERS, "Retry-After": "3600"},
        )

    routes = [
        Route("/f/{token}.ics", handlers.feed, methods=["GET", "HEAD"]),
        Route("/f/{token}", handlers.page, methods=["GET", "HEAD"]),
    ]
    if google_web is not None:
        from calendars.feeds.connect import CALLBACK_PATH, GoogleConnect

        connect = handlers.google = GoogleConnect(handlers, google_web)
        routes += [
            Route("/f/{token}/google", connect.start, methods=["GET"]),
            Route("/f/{token}/google/disconnect", connect.disconnect, methods=["POST"]),
            Route(CALLBACK_PATH, connect.callback, methods=["GET"]),
        ]
    # Blocking store calls run in Starlette's thread pool, on the store's pooled connections.
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: http_error,
            StoreError: store_down,
            InvalidTreatmentError: treatment_unservable,
        },
        middleware=[Middleware(DateHeader)] if date_header else [],
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # no path outside the routes: not even a redirect
    app.state.feed = handlers
    return app


def serve(
    store_url: str | Path | Store | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    base_url: str | None = None,
    cancelled_for: timedelta = CANCELLED_FEED_PERIOD,
    log_level: str = "info",
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    db_timeout: float = DEFAULT_DB_TIMEOUT,
    google_web: WebClient | None = None,
) -> None:
    """Run the feed server under uvicorn until SIGINT/SIGTERM.

    At most `max_connections` connections (lowered to fit the open-files limit), each closed if
    it sends no complete request headers within `header_timeout` seconds; every database call
    ends within `db_timeout` seconds."""
    import uvicorn

    app = create_app(
        store_url, base_url=base_url, cancelled_for=cancelled_for, db_timeout=db_timeout, date_header=True,
        google_web=google_web,
    )  # fmt: skip
    bound = connection_budget(max_connections)
    guard = ConnectionGuard(bound, header_timeout)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(log_level),
        log_level=log_level,
        server_header=False,
        date_header=False,  # the app sends Date, the same instant its Last-Modified is checked against
        proxy_headers=True,
        lifespan="on",
        timeout_graceful_shutdown=10,
        http=guarded_protocol(guard),
        backlog=LISTEN_BACKLOG,
    )
    if bound < max_connections:
        logging.getLogger("aftercal.feed").warning(
            "at most %d connections (not %d): the open-files limit (ulimit -n) leaves no room for more",
            bound,
            max_connections,
        )
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal to the handler
    # that was there before it: make that a no-op, so a requested stop is a clean exit (status 0).
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for stop in (signal.SIGINT, signal.SIGTERM):
            previous[stop] = signal.signal(stop, lambda _number, _frame: None)
    try:
        server.run()
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def check_can_listen(host: str, port: int) -> None:
    """A one-line error for a busy port or an unknown host, before uvicorn prints its own."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise InputError(f"--host {host!r}: not an address of this machine") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


# ---- links --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedLinks:
    """The three addresses of one treatment's feed (they carry the secret token)."""

    feed: str  # https://.../f/<token>.ics
    webcal: str  # webcal://.../f/<token>.ics
    page: str  # https://.../f/<token>


def feed_base_url(base_url: str) -> str:
    """`base_url` without its trailing slash, or a one-line error for anything but http(s)://host[/path].

    Checked by calendars.http.check_base_url, the rule every channel's base URL follows. Plain
    http stays allowed off loopback here: aftercal sends no secret to this address, it only
    prints links to it (a clinic's own network may serve feeds without TLS).
    """
    return check_base_url(base_url, what="--base-url", example="https://care.example").rstrip("/")


def feed_links(base_url: str, token: str) -> FeedLinks:
    base = feed_base_url(base_url)
    feed = f"{base}/f/{token}.ics"
    return FeedLinks(feed=feed, webcal=webcal_url(feed), page=f"{base}/f/{token}")
