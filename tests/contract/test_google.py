"""The contract on the Google channel: the real google-api-python-client against the Calendar v3 stand-in.

What the calendar holds is read from the stand-in's own state (cancelled events are gone for the
patient, so they are left out); failures are the stand-in's injected faults.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings

from tests.contract.base import PublisherContract, Seen, Stored
from tests.contract.subject import Publisher, google_publisher
from tests.google.standin import CalendarStandin, Fault

# The stored format (extendedProperties.private keys), spelled out rather than imported from the
# publisher: changing them would orphan every event already in patients' calendars.
PLAN_KEY = "aftercalPlan"
UID_KEY = "aftercalUid"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class WriteFault(Fault):
    """Fails every write call (direct or a batch part) after the first `after`; reads go through."""

    def matches(self, method: str, path: str, scope: str) -> bool:
        return method in WRITES and super().matches(method, path, scope)


def when(value: dict[str, Any]) -> datetime | date:
    if "date" in value:
        return date.fromisoformat(value["date"])
    moment = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(value["timeZone"]))


def has_alarm(event: dict[str, Any]) -> bool:
    """Whether the patient's phone rings: Google's default reminders apply unless useDefault is false."""
    reminders = event.get("reminders") or {}
    return bool(reminders.get("useDefault", True) or reminders.get("overrides"))


class TestGoogle(PublisherContract):
    machine_settings = settings(
        max_examples=40, stateful_step_count=8, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )

    @pytest.fixture(autouse=True)
    def channel(self) -> Iterator[None]:
        self.standin = CalendarStandin()
        self.standin.start()
        self.clients: list[Any] = []
        self.calendars = itertools.count(1)
        self.fault: Fault | None = None
        self.calendar_id = "primary"
        try:
            yield
        finally:
            for client in self.clients:
                client.close()
            self.standin.stop()

    def new_calendar(self) -> None:
        self.calendar_id = f"contract{next(self.calendars)}@group.calendar.google.com"
        self.standin.add_calendar(self.calendar_id, "Aftercare")

    def publisher(self) -> Publisher:
        client: Publisher = google_publisher(self.standin.url, self.calendar_id)
        self.clients.append(client)
        return client

    def stored_events(self) -> list[Stored]:
        found = []
        for event in self.standin.events(self.calendar_id):
            private = (event.get("extendedProperties") or {}).get("private") or {}
            seen = Seen(when(event["start"]), when(event["end"]), event.get("summary", ""), has_alarm(event))
            uid = private.get(UID_KEY) or event["iCalUID"]
            found.append(Stored(uid, private.get(PLAN_KEY), seen, event["id"], event))
        return found

    def add_foreign_event(self) -> None:
        self.standin.put_event(
            self.calendar_id,
            {
                "id": "dentist0001",
                "iCalUID": "dentist-1@example.com",
                "summary": "Dentist (not aftercal)",
                "start": {"dateTime": "2026-11-25T09:00:00Z"},
                "end": {"dateTime": "2026-11-25T10:00:00Z"},
                "extendedProperties": {"private": {"someOtherApp": "x"}},
            },
        )

    def break_after(self, n: int) -> None:
        self.fault = WriteFault(503, after=n, times=-1)
        with self.standin.lock:
            self.standin.faults.append(self.fault)

    def heal(self) -> None:
        with self.standin.lock:
            if self.fault in self.standin.faults:
                self.standin.faults.remove(self.fault)
        self.fault = None

    def server_writes(self) -> int:
        return len(self.standin.writes())
