"""Fixtures for the Google channel: a Calendar v3 stand-in on 127.0.0.1 and the real client on it."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from calendars.gcal import DEFAULT_RETRY, GooglePublisher, connect
from calendars.http import RetryPolicy
from reminders import make_plan
from reminders.schedule import CarePlan, PlanOptions
from tests.google.standin import CalendarStandin, ManualClock

QUOTA_PER_MINUTE = (
    600  # Google's default per-user quota (https://developers.google.com/workspace/calendar/api/guides/quota)
)


@pytest.fixture
def clock() -> ManualClock:
    """The stand-in's clock: it moves by the backoffs the client asks for (`retry`), not by itself."""
    return ManualClock()


@pytest.fixture
def standin(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[CalendarStandin]:
    """The stand-in with Google's rules: batch parts in an order seeded by the test's name (the same
    at every run), and the per-user quota of 600 calls a minute on `clock`."""
    seed = zlib.crc32(request.node.nodeid.encode())
    server = CalendarStandin(seed=seed, quota_per_minute=QUOTA_PER_MINUTE, clock=clock)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    """Backoff delays the publisher asked for (it never really sleeps in tests)."""
    return []


@pytest.fixture
def retry(sleeps: list[float], clock: ManualClock) -> RetryPolicy:
    """The channel's own retry policy, recording its waits in `sleeps` (and moving the stand-in's
    clock by them) instead of sleeping."""

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    return dataclasses.replace(DEFAULT_RETRY, sleep=sleep)


@pytest.fixture
def publisher(standin: CalendarStandin, retry: RetryPolicy) -> Iterator[GooglePublisher]:
    with connect(api_endpoint=standin.url, no_auth=True, retry=retry) as client:
        yield client


@pytest.fixture
def new_publisher(standin: CalendarStandin, retry: RetryPolicy) -> Iterator[Callable[..., GooglePublisher]]:
    """A fresh client (no memory of earlier runs), as a new `aftercal` process would be.

    `attempts=N` changes the retry policy's attempts; other options go to `connect`.
    """
    made: list[GooglePublisher] = []

    def make(attempts: int | None = None, **options: object) -> GooglePublisher:
        policy = retry if attempts is None else dataclasses.replace(retry, attempts=attempts)
        client = connect(api_endpoint=standin.url, no_auth=True, retry=policy, **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def plan_for() -> Callable[..., CarePlan]:
    def make(
        treatment_id: str = "T-1001",
        at: str = "2026-11-24T10:00",
        tz: str = "America/Chicago",
        options: PlanOptions | None = None,
    ) -> CarePlan:
        return make_plan("microneedling", at, tz, treatment_id=treatment_id, options=options)

    return make


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("AFTERCAL_CONFIG_DIR", str(folder))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("AFTERCAL_GOOGLE_API_ENDPOINT", raising=False)
    return folder
