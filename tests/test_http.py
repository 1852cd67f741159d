"""calendars/http.py: the one retry rule, loopback rule and base-URL check every channel uses."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from calendars.http import (
    Retryable,
    RetryPolicy,
    check_base_url,
    is_loopback,
    parse_retry_after,
    require_https_unless_loopback,
    secure_or_loopback,
    strip_credentials,
)
from reminders.errors import InputError, TransientError

# ---- backoff ------------------------------------------------------------------------------------------


def test_backoff_ceiling_doubles_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    assert [policy.ceiling(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert policy.ceiling(10_000) == 8.0  # no overflow however long a run retries


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    lowest = RetryPolicy(base_delay=1.0, max_delay=32.0, uniform=lambda low, high: low)
    highest = RetryPolicy(base_delay=1.0, max_delay=32.0, uniform=lambda low, high: high)
    assert [lowest.delay(n) for n in range(7)] == [0.0] * 7
    assert [highest.delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 32.0]


def test_jitter_draws_stay_in_range_and_spread() -> None:
    rng = random.Random(7)
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, uniform=rng.uniform)
    for attempt in range(8):
        draws = [policy.delay(attempt) for _ in range(200)]
        ceiling = policy.ceiling(attempt)
        assert all(0.0 <= d <= ceiling for d in draws)
        assert min(draws) < ceiling / 4 and max(draws) > ceiling * 3 / 4  # full jitter, not [c/2, c]


def test_retry_after_replaces_the_backoff_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, uniform=lambda low, high: high)
    assert policy.delay(0, retry_after=3.0) == 3.0
    assert policy.delay(4, retry_after=0.0) == 0.0
    assert policy.delay(0, retry_after=120.0) == 8.0
    assert policy.delay(0, retry_after=-5.0) == 0.0


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert RetryPolicy().is_retryable(status)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 409, 412, 501, 505])
def test_other_statuses_are_not_retried(status: int) -> None:
    assert not RetryPolicy().is_retryable(status)


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=10.0, max_delay=1.0)


# ---- the retry loop -------------------------------------------------------------------------------------


def test_call_retries_retryable_failures_then_returns() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=4, base_delay=1.0, max_delay=8.0, sleep=waits.append, uniform=lambda _lo, hi: hi)
    answers: Iterator[Retryable | str] = iter(
        [Retryable("answered 503"), Retryable("answered 429", retry_after=2.5), "done"]
    )

    def attempt() -> str:
        answer = next(answers)
        if isinstance(answer, Retryable):
            raise answer
        return answer

    assert policy.call(attempt, gave_up=lambda last: TransientError(last.problem)) == "done"
    assert waits == [1.0, 2.5]  # backoff after the first, the server's Retry-After after the second


def test_call_gives_up_after_the_last_attempt_without_waiting_again() -> None:
    waits: list[float] = []
    calls: list[int] = []
    policy = RetryPolicy(attempts=3, sleep=waits.append)

    def attempt() -> None:
        calls.append(1)
        raise Retryable(f"timed out ({len(calls)})")

    with pytest.raises(TransientError, match=r"timed out \(3\)") as info:
        policy.call(attempt, gave_up=lambda last: TransientError(f"server {last.problem}"))
    assert len(calls) == 3 and len(waits) == 2
    assert info.value.__cause__ is None and info.value.__context__ is None  # one line, nothing chained


def test_call_does_not_retry_other_errors() -> None:
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise InputError("wrong")

    with pytest.raises(InputError):
        RetryPolicy(attempts=5, sleep=lambda _s: None).call(attempt, gave_up=lambda last: TransientError("x"))
    assert calls == [1]


# ---- Retry-After ---------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Tue, 24 Nov 2026 09:00:30 GMT", 30.0),  # IMF-fixdate
        ("Tuesday, 24-Nov-26 09:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Tue Nov 24 09:00:05 2026", 5.0),  # obsolete asctime form (no zone: UTC)
        ("Tue, 24 Nov 2026 08:00:00 GMT", 0.0),  # in the past: now
    ],
)
def test_retry_after_seconds_and_http_dates(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "nan", "Tue, 99 Foo 2026"])
def test_retry_after_that_cannot_be_read_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


# ---- loopback -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://LOCALHOST:8080/x",
        "http://127.0.0.1:5232/",
        "http://127.0.0.2/",  # the whole 127.0.0.0/8 is this machine
        "http://127.255.255.254/",
        "http://[::1]:8080/",
        "http://[0:0:0:0:0:0:0:1]/",
    ],
)
def test_loopback(url: str) -> None:
    assert is_loopback(url)
    assert secure_or_loopback(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.nip.io/",  # a name that resolves to 127.0.0.1 is still a name
        "http://localhost.example.com/",
        "http://128.0.0.1/",
        "http://0.0.0.0/",
        "http://127.1/",  # not a dotted quad
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped: only ::1 counts
        "http://[::2]/",
        "http://10.0.0.1/",
        "http://[bad/",
        "not a url",
        "",
    ],
)
def test_not_loopback(url: str) -> None:
    assert not is_loopback(url)
    assert not secure_or_loopback(url)


def test_https_is_secure_anywhere_other_schemes_never() -> None:
    assert secure_or_loopback("https://caldav.example.com/")
    assert not secure_or_loopback("ftp://127.0.0.1/")


# ---- base URLs ------------------------------------------------------------------------------------------


def test_a_good_base_url_comes_back_stripped() -> None:
    assert check_base_url("  https://caldav.example.com/dav/ ", what="--url") == "https://caldav.example.com/dav/"
    assert check_base_url("http://care.example:8080", what="--base-url") == "http://care.example:8080"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://[bad/", "--url is not a valid URL; use one such as https://calendar.example.com/"),
        ("https://host:99999/", "--url is not a valid URL; use one such as https://calendar.example.com/"),
        ("https://clinic:s3cret@caldav.example.com/", "--url must not contain a user name or password"),
        ("ftp://caldav.example.com/", "--url must be an http(s) URL such as https://calendar.example.com/"),
        ("javascript:alert(1)", "--url must be an http(s) URL such as https://calendar.example.com/"),
        ("https:///path", "--url must be an http(s) URL such as https://calendar.example.com/"),
        ("https://caldav.example.com/?token=s3cret", "--url must be a plain base URL such as"),
        ("https://caldav.example.com/#x", "--url must be a plain base URL such as"),
        ("https://caldav.example.com/my calendars/", "--url must not contain spaces"),
    ],
)
def test_bad_base_urls_are_one_line_input_errors(url: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        check_base_url(url, what="--url")
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text and "s3cret" not in text and url not in text


def test_credentials_error_carries_the_hint() -> None:
    with pytest.raises(InputError, match=r"password; use --user and the keyring$"):
        check_base_url("https://u:p@h/", what="--url", hint="use --user and the keyring")


@pytest.mark.parametrize("url", ["https://calendar.example.com/", "http://127.0.0.2:8080/", "http://[::1]/"])
def test_https_or_loopback_is_required_for_secrets(url: str) -> None:
    require_https_unless_loopback(url, what="--url")


@pytest.mark.parametrize("url", ["http://calendar.example.com/", "http://127.0.0.1.nip.io/"])
def test_plain_http_off_loopback_is_refused(url: str) -> None:
    with pytest.raises(InputError) as info:
        require_https_unless_loopback(url, what="--api-endpoint", secret="the sign-in token")
    assert str(info.value) == (
        "--api-endpoint must use https:// (plain http would send the sign-in token in clear; it is allowed only "
        "to this machine: localhost, 127.0.0.0/8, [::1])"
    )


def test_strip_credentials_for_messages() -> None:
    assert strip_credentials("https://u:s3cret@host:8443/dav/?q=1#f") == "https://host:8443/dav/?q=1"
    assert strip_credentials("http://[::1]:5232/x") == "http://[::1]:5232/x"
    assert strip_credentials("https://host:99999/") == "(an invalid URL)"
