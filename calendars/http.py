"""The one HTTP policy of every channel: retries, where plain http is allowed, base URLs.

The channels speak HTTP through different clients (CalDAV: `requests` under the `caldav`
library; Google: httplib2 under googleapiclient), but answer the same questions here, the same way:

* `RetryPolicy`: which answers deserve another attempt (network errors and timeouts, which the
  channel turns into `Retryable`, and the statuses 429, 500, 502, 503, 504), how long to wait
  (bounded exponential backoff with full jitter: attempt n waits uniformly in
  [0, min(max_delay, base_delay * 2**n)]; a server's Retry-After, in seconds or as an HTTP-date,
  replaces that wait, capped at max_delay) and how many attempts. `RetryPolicy.call` is the one
  retry loop.
* `is_loopback`: the one loopback rule. A URL is on loopback when its host is written as
  `localhost`, an IPv4 address in 127.0.0.0/8 (127.0.0.2 too: the whole block is this machine) or
  the IPv6 address ::1 (`[::1]`). Names are never resolved: `127.0.0.1.nip.io` is not loopback,
  whatever DNS says, and neither are other spellings (`127.1`, `::ffff:127.0.0.1`, `0.0.0.0`).
* `check_base_url` and `require_https_unless_loopback`: a user-given base URL is checked once,
  with one-line `InputError`s that name the option and never repeat a password. Secrets (a CalDAV
  password, an OAuth bearer token) go over https, or over plain http to loopback only.

Standard library only: importing it costs nothing.
"""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from reminders.errors import InputError

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})

_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")
LOOPBACK_NAMES = "localhost, 127.0.0.0/8, [::1]"


# ---- retries --------------------------------------------------------------------------------------


class Retryable(Exception):
    """Raised by one attempt of `RetryPolicy.call`: this failure deserves another attempt.

    `problem` completes a sentence such as "CalDAV server HOST {problem}" ("timed out",
    "answered 503"); `retry_after` is the server's Retry-After in seconds, if it sent one.
    """

    def __init__(self, problem: str, *, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter, and which statuses are worth retrying.

    `attempts` counts the first one: 1 means no retry. `sleep` and `uniform` are injectable so
    tests neither wait nor depend on chance.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    retryable_statuses: frozenset[int] = RETRYABLE_STATUS
    sleep: Callable[[float], None] = time.sleep
    uniform: Callable[[float, float], float] = random.uniform  # jitter, not cryptography

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError("RetryPolicy needs 0 <= base_delay <= max_delay")

    def is_retryable(self, status: int) -> bool:
        """True for the HTTP statuses a later attempt may fix (rate limits, overloaded servers)."""
        return status in self.retryable_statuses

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt `attempt` (0-based): base_delay * 2**attempt, capped."""
        return min(self.max_delay, self.base_delay * 2.0 ** min(max(attempt, 0), 64))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempt`: Retry-After if the server sent one
        (capped at max_delay), else uniform in [0, ceiling(attempt)]."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        return self.uniform(0.0, self.ceiling(attempt))

    def wait(self, attempt: int, retry_after: float | None = None) -> None:
        self.sleep(self.delay(attempt, retry_after))

    def call(self, attempt: Callable[[], T], *, gave_up: Callable[[Retryable], Exception]) -> T:
        """Call `attempt` until it returns, at most `attempts` times, waiting between attempts.

        Only `Retryable` is retried; anything else `attempt` raises goes straight through. After
        the last attempt, the exception `gave_up(last Retryable)` is raised (not chained).
        """
        last: Retryable | None = None
        for n in range(self.attempts):
            try:
                return attempt()
            except Retryable as failure:
                last = failure
            if n + 1 < self.attempts:
                self.wait(n, last.retry_after)
        assert last is not None
        raise gave_up(last)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After (RFC 9110) in seconds from `now`: delay-seconds or an HTTP-date; None if absent or bad.

    A date in the past is 0. Fractional seconds are accepted (some servers send them).
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None  # also refuses nan
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": a UTC time from an unknown zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# ---- loopback and base URLs -------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, an IPv4 address in 127.0.0.0/8 and ::1; no name is ever resolved."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in _LOOPBACK_V4
    return address == _LOOPBACK_V6


def is_loopback(url: str) -> bool:
    """True when `url`'s host is this machine by the one rule above (never by DNS)."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    return bool(host) and is_loopback_host(str(host))


def secure_or_loopback(url: str) -> bool:
    """True where a secret may be sent: https anywhere, plain http to loopback only."""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return False
    return scheme == "https" or (scheme == "http" and is_loopback(url))


def strip_credentials(url: str) -> str:
    """`url` without user name, password and fragment: safe to show in a message."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def check_base_url(url: str, *, what: str, example: str = "https://calendar.example.com/", hint: str = "") -> str:
    """`url` stripped of surrounding spaces, or a one-line InputError naming `what` (the option).

    Accepted: http(s)://host[:port][/path], without user name or password, query, fragment or
    spaces. `hint` is added to the credentials error (where the password should come from). The
    URL itself is never repeated in an error: it may hold a password.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InputError(f"{what} is not a valid URL; use one such as {example}") from None
    if parts.username is not None or parts.password is not None:
        raise InputError(f"{what} must not contain a user name or password" + (f"; {hint}" if hint else ""))
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InputError(f"{what} must be an http(s) URL such as {example}")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise InputError(f"{what} must be a plain base URL such as {example}, without query or fragment")
    if any(c.isspace() for c in text):
        raise InputError(f"{what} must not contain spaces")
    return text


def require_https_unless_loopback(url: str, *, what: str, secret: str = "the password") -> None:
    """A one-line InputError unless `url` is https, or plain http to loopback (`secret` is what would leak)."""
    if not secure_or_loopback(url):
        raise InputError(
            f"{what} must use https:// (plain http would send {secret} in clear; it is allowed only to "
            f"this machine: {LOOPBACK_NAMES})"
        )
