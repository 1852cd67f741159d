"""Fixtures for the Google channel: a Calendar v3 stand-in on 127.0.0.1 and the real client on it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from calendars.gcal import DEFAULT_RETRY, GooglePublisher, connect
from calendars.http import RetryPolicy
from reminders import make_plan
from reminders.schedule import CarePlan, PlanOptions
from tests.google.standin import CalendarStandin


@pytest.fixture
def standin() -> Iterator[CalendarStandin]:
    server = CalendarStandin()
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
def retry(sleeps: list[float]) -> RetryPolicy:
    """The channel's own retry policy, recording its waits in `sleeps` instead of sleeping."""
    return dataclasses.replace(DEFAULT_RETRY, sleep=sleeps.append)


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
