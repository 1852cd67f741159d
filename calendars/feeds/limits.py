"""What keeps `aftercal serve` answering under abuse: a bound on open connections, a deadline for
request headers, and logs that cannot flood.

uvicorn (h11) has a keep-alive timeout after a response, but nothing for a connection that sends
nothing, or half its headers: such connections stayed open for ever, until the process ran out of
file descriptors, stopped accepting anyone, and asyncio logged the accept error (with a traceback)
thousands of times a second. Here:

- `guarded_protocol` subclasses uvicorn's h11 protocol: every connection must deliver complete
  request headers within `header_timeout` seconds of connecting or of its previous response, or
  it is closed; at most `max_connections` are open, and when one more arrives the oldest
  connection that is waiting for a request is closed to make room (a request being served is
  never cut); if none is waiting, the newcomer gets a short 503 and is closed.
- `connection_budget` lowers the bound so that the connections, two batches of the listen
  backlog (asyncio accepts up to a backlog's worth in one go, and the connections they push out
  are closed one loop turn later) and the process's own files fit under the open-files limit:
  accept() does not run out of file descriptors.
- `RateLimit` is a logging filter: one record per kind of message per interval; the next one
  says how many were dropped.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_HEADER_TIMEOUT = 10.0  # calendar apps send their request at once; 10 s is generous
LISTEN_BACKLOG = 64  # asyncio accepts up to this many connections in one go
FD_RESERVE = 64  # log, event loop, database pool, thread pool: files that are not connections
MIN_CONNECTIONS = 8
LOG_INTERVAL = 10.0
# The bound on one database call (pool wait + connect + query), in seconds. An indexed lookup
# takes milliseconds; a database that has not answered in 3 s is down as far as a calendar poll
# is concerned, which gets a 503 and retries later. libpq counts connect timeouts in whole
# seconds, at least 2, so the bound cannot be lower than 2.
DEFAULT_DB_TIMEOUT = 3.0
MIN_DB_TIMEOUT = 2.0

_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 20\r\n"
    b"Retry-After: 5\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"Service Unavailable\n"
)

logger = logging.getLogger("aftercal.feed")


def connection_budget(requested: int = DEFAULT_MAX_CONNECTIONS) -> int:
    """`requested`, lowered to fit the open-files limit (RLIMIT_NOFILE) with two listen backlogs and
    FD_RESERVE to spare, so that accept() does not fail for want of a file descriptor."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # no such limit on this platform
        return requested
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(MIN_CONNECTIONS, min(requested, soft - 2 * LISTEN_BACKLOG - FD_RESERVE))


class ConnectionGuard:
    """Open connections, and among them those waiting for a request (oldest first)."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open: set[Any] = set()
        self.waiting: OrderedDict[Any, None] = OrderedDict()

    def admit(self, conn: Any) -> bool:
        """Room for `conn`? Closes the oldest waiting connection if that makes room."""
        while len(self.open) >= self.max_connections and self.waiting:
            oldest, _ = self.waiting.popitem(last=False)
            self.open.discard(oldest)
            logger.warning(
                "connection limit (%d) reached: closing the connections that wait longest for a request",
                self.max_connections,
            )
            oldest.close_now()
        if len(self.open) >= self.max_connections:
            logger.warning("connection limit (%d) reached, every connection busy: answering 503", self.max_connections)
            return False
        self.open.add(conn)
        return True

    def wait_for_request(self, conn: Any) -> None:
        self.waiting.pop(conn, None)
        self.waiting[conn] = None

    def serving(self, conn: Any) -> None:
        self.waiting.pop(conn, None)

    def forget(self, conn: Any) -> None:
        self.open.discard(conn)
        self.waiting.pop(conn, None)


def guarded_protocol(guard: ConnectionGuard) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with `guard`'s connection bound and header deadline."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if not guard.admit(self):
                transport.write(_REFUSED)
                transport.close()
                return
            self._wait_for_request()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            guard.forget(self)
            super().connection_lost(exc)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request's headers are complete: it is being served
                self._stop_header_timer()
                guard.serving(self)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Waiting for the next request, unless a pipelined one already started.
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._wait_for_request()

        def _wait_for_request(self) -> None:
            self._stop_header_timer()
            self._header_timer = self.loop.call_later(guard.header_timeout, self._header_timed_out)
            guard.wait_for_request(self)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timed_out(self) -> None:
            self._header_timer = None
            logger.debug("closed a connection that sent no complete request in %g s", guard.header_timeout)
            self.close_now()

        def close_now(self) -> None:
            self._stop_header_timer()
            guard.forget(self)
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol


class RateLimit(logging.Filter):
    """At most one record per kind of message per `interval` seconds.

    A kind is the logger, the level, the message's first line with its numbers blanked (so
    "fd=12" and "fd=13" are one kind), and the exception's type. The first record of a kind in an
    interval passes (traceback included); the next one to pass says how many were dropped.
    """

    def __init__(self, interval: float = LOG_INTERVAL, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._seen: OrderedDict[tuple[str, int, str, str], list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "_aftercal_rate_limit", None)
        if decided is not None:  # the same record reaching a second handler
            return bool(decided)
        first_line = str(record.msg).split("\n", 1)[0]
        kind = (
            record.name,
            record.levelno,
            re.sub(r"0x[0-9a-fA-F]+|\d+", "#", first_line)[:160],
            type(record.exc_info[1]).__name__ if record.exc_info and record.exc_info[1] else "",
        )
        now = self.clock()
        with self._lock:
            seen = self._seen.get(kind)
            if seen is not None and now - seen[0] < self.interval:
                seen[1] += 1
                dropped = -1
            else:
                dropped = int(seen[1]) if seen is not None else 0
                since = now - seen[0] if seen is not None else 0.0
                self._seen[kind] = [now, 0]
                self._seen.move_to_end(kind)
                while len(self._seen) > 1024:
                    self._seen.popitem(last=False)
        passed = dropped >= 0
        record._aftercal_rate_limit = passed
        if dropped > 0:
            record.msg = f"{record.getMessage()} [{dropped} more like this in the last {since:.0f} s not logged]"
            record.args = ()
        return passed
