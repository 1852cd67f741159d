"""The contract on the in-memory reference publisher (tests/contract/reference.py): the suite's own check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.contract.base import PublisherContract, Seen, Stored
from tests.contract.reference import ReferenceCalendar, ReferencePublisher, StoredEvent
from tests.contract.subject import Publisher


class TestReference(PublisherContract):
    machine_settings = settings(
        max_examples=300, stateful_step_count=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )

    @pytest.fixture(autouse=True)
    def channel(self) -> Iterator[None]:
        self.calendar = ReferenceCalendar()
        yield

    def new_calendar(self) -> None:
        self.calendar = ReferenceCalendar()

    def publisher(self) -> Publisher:
        return ReferencePublisher(self.calendar)

    def stored_events(self) -> list[Stored]:
        return [
            Stored(e.uid, e.plan_tag, Seen(e.start, e.end, e.title, e.has_alarm), resource=e.uid, raw=e)
            for e in self.calendar.events.values()
        ]

    def add_foreign_event(self) -> None:
        from datetime import UTC, datetime

        uid = "dentist-1@example.com"
        self.calendar.events[uid] = StoredEvent(
            uid=uid,
            plan_tag=None,
            content_hash=None,
            sequence=0,
            start=datetime(2026, 11, 25, 9, tzinfo=UTC),
            end=datetime(2026, 11, 25, 10, tzinfo=UTC),
            title="Dentist (not aftercal)",
            has_alarm=True,
            version=-1,
        )

    def break_after(self, n: int) -> None:
        self.calendar.fail_after = self.calendar.writes + n

    def heal(self) -> None:
        self.calendar.fail_after = None

    def server_writes(self) -> int:
        return self.calendar.writes + self.calendar.refused
