"""The reference channel: an in-memory calendar and a Publisher for it, written from the protocol alone.

`ReferenceCalendar` plays the server: events by UID (a UID is unique in a calendar, as CalDAV
requires), a version per event that changes on every write (an ETag), a counter of writes, and
an injected failure after N writes. `ReferencePublisher` implements calendars.base.Publisher the
way the real channels must: only events tagged with the treatment's plan tag are read or
touched, SEQUENCE never goes down, and `apply` is safe to re-run with a stale view (an event that
is already there is updated or left alone, one that is already gone counts as deleted).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import date, datetime

from tests.contract.subject import (
    CarePlan,
    ChannelError,
    ProgressCallback,
    Reminder,
    RemoteEvent,
    SyncActions,
    SyncSummary,
    TransientError,
    next_sequence,
)


@dataclass(frozen=True)
class StoredEvent:
    uid: str
    plan_tag: str | None  # None: not made by aftercal
    content_hash: str | None
    sequence: int
    start: datetime | date
    end: datetime | date
    title: str
    has_alarm: bool
    version: int = 0  # changes on every write, like an ETag


class ReferenceCalendar:
    """The server side: what is stored, how many writes reached it, and when it starts failing."""

    def __init__(self) -> None:
        self.events: dict[str, StoredEvent] = {}
        self.writes = 0  # writes that changed something
        self.refused = 0  # writes refused by an injected failure
        self.fail_after: int | None = None  # refuse every write once `writes` reaches this
        self._versions = itertools.count(1)

    def _check(self) -> None:
        if self.fail_after is not None and self.writes >= self.fail_after:
            self.refused += 1
            raise TransientError("the reference calendar is failing (injected); run the same command again")

    def put(self, event: StoredEvent) -> None:
        self._check()
        self.writes += 1
        self.events[event.uid] = replace(event, version=next(self._versions))

    def delete(self, uid: str) -> None:
        self._check()
        self.writes += 1
        del self.events[uid]

    def query(self, plan_tag: str) -> list[StoredEvent]:
        return [e for e in self.events.values() if e.plan_tag == plan_tag]


def stored_event(plan: CarePlan, reminder: Reminder, sequence: int) -> StoredEvent:
    return StoredEvent(
        uid=reminder.uid,
        plan_tag=plan.plan_tag,
        content_hash=reminder.content_hash(),
        sequence=sequence,
        start=reminder.start,
        end=reminder.end,
        title=reminder.title,
        has_alarm=reminder.alarm_text is not None,
    )


class ReferencePublisher:
    """calendars.base.Publisher for a ReferenceCalendar."""

    name = "reference"

    def __init__(self, calendar: ReferenceCalendar) -> None:
        self.calendar = calendar

    def fetch(self, plan_tag: str) -> dict[str, RemoteEvent]:
        return {
            e.uid: RemoteEvent(e.uid, e.content_hash, e.sequence, handle=(e.plan_tag, e.version))
            for e in self.calendar.query(plan_tag)
        }

    def _write(self, plan: CarePlan, reminder: Reminder) -> str:
        """Create or overwrite one event from what the calendar holds now; returns what happened."""
        current = self.calendar.events.get(reminder.uid)
        if current is not None and current.plan_tag != plan.plan_tag:
            raise ChannelError(
                f"event {reminder.key} of treatment {plan.treatment_id}: the calendar holds an event with its UID "
                "that aftercal did not create for this treatment; left it alone"
            )
        if current is not None and current.content_hash == reminder.content_hash():
            return "unchanged"  # a stale view: our own earlier write is already there
        held = None if current is None else RemoteEvent(current.uid, current.content_hash, current.sequence)
        self.calendar.put(stored_event(plan, reminder, next_sequence(plan, held)))
        return "create" if current is None else "update"

    def apply(
        self, plan: CarePlan | None, actions: SyncActions, progress: ProgressCallback | None = None
    ) -> SyncSummary:
        summary = SyncSummary(unchanged=len(actions.unchanged))
        conflicts: list[ChannelError] = []
        for reminder in [*actions.create, *(r for r, _held in actions.update)]:
            assert plan is not None
            try:
                done = self._write(plan, reminder)
            except TransientError:
                raise
            except ChannelError as conflict:
                conflicts.append(conflict)  # leave it alone, but the rest of the plan must still converge
                continue
            if done == "create":
                summary.created += 1
            elif done == "update":
                summary.updated += 1
            else:
                summary.unchanged += 1
            if progress:
                progress(done, reminder.key)
        for held in actions.delete:
            current = self.calendar.events.get(held.uid)
            plan_tag, _version = held.handle
            if current is not None and current.plan_tag == plan_tag:  # still ours: never delete a foreign event
                self.calendar.delete(held.uid)
            summary.deleted += 1  # already gone counts as done
            if progress:
                progress("delete", held.uid)
        if conflicts:
            raise conflicts[0]
        return summary
