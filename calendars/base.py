"""What every publishing channel shares: the remote view, the diff, and the summary.

A channel (CalDAV, Google) implements `Publisher`: list what the server holds for one treatment,
then apply a `SyncActions` that `diff_plan` computed. The diff is pure, so the contract tests and
`--dry-run` see exactly what a real run would do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reminders.schedule import CarePlan, Reminder, treatment_tag

# Called once per finished action: (action, reminder key or uid). The CLI draws progress from it.
ProgressCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class RemoteEvent:
    """An event a server holds for a treatment, as far as syncing needs to know it."""

    uid: str
    content_hash: str | None  # aftercal's hash stored with the event; None if absent
    sequence: int = 0
    cancelled: bool = False  # Google keeps deleted events as "cancelled"
    handle: Any = None  # channel-specific: href + etag, Google event id, ...


@dataclass
class SyncActions:
    """What a publish would do; nothing in here has happened yet."""

    create: list[Reminder] = field(default_factory=list)
    update: list[tuple[Reminder, RemoteEvent]] = field(default_factory=list)
    delete: list[RemoteEvent] = field(default_factory=list)
    unchanged: list[Reminder] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.create) + len(self.update) + len(self.delete)


@dataclass
class SyncSummary:
    """What a publish did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def add(self, other: SyncSummary) -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.unchanged += other.unchanged

    def line(self) -> str:
        return f"created {self.created}, updated {self.updated}, deleted {self.deleted}, unchanged {self.unchanged}"


def diff_plan(plan: CarePlan | None, remote: Mapping[str, RemoteEvent]) -> SyncActions:
    """Compare the wanted events (None: unpublish everything) with what the server holds."""
    actions = SyncActions()
    wanted = {r.uid: r for r in plan.reminders} if plan is not None else {}
    for uid, reminder in wanted.items():
        held = remote.get(uid)
        if held is None:
            actions.create.append(reminder)
        elif held.cancelled or held.content_hash != reminder.content_hash():
            actions.update.append((reminder, held))
        else:
            actions.unchanged.append(reminder)
    for uid, held in remote.items():
        if uid not in wanted and not held.cancelled:
            actions.delete.append(held)
    return actions


def next_sequence(plan: CarePlan, held: RemoteEvent | None) -> int:
    """SEQUENCE for an upload: never lower than the plan's, always above what the server holds."""
    if held is None:
        return plan.sequence
    return max(plan.sequence, held.sequence + 1)


class Publisher(Protocol):
    """One calendar channel. Implementations import their client library lazily."""

    name: str

    def fetch(self, plan_tag: str) -> dict[str, RemoteEvent]:
        """Every event of one treatment (found by its plan tag) that the server holds, by UID."""
        ...

    def apply(
        self, plan: CarePlan | None, actions: SyncActions, progress: ProgressCallback | None = None
    ) -> SyncSummary:
        """Carry out `actions`; safe to re-run after a failure at any point."""
        ...


def sync_plan(
    publisher: Publisher,
    plan: CarePlan,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> tuple[SyncActions, SyncSummary]:
    """Make the server hold exactly `plan`'s events for its treatment (publish or reschedule)."""
    actions = diff_plan(plan, publisher.fetch(plan.plan_tag))
    if dry_run:
        return actions, SyncSummary(unchanged=len(actions.unchanged))
    return actions, publisher.apply(plan, actions, progress)


def unpublish_treatment(
    publisher: Publisher,
    treatment_id: str,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> tuple[SyncActions, SyncSummary]:
    """Remove every event of one treatment, and nothing else."""
    actions = diff_plan(None, publisher.fetch(treatment_tag(treatment_id)))
    if dry_run:
        return actions, SyncSummary()
    return actions, publisher.apply(None, actions, progress)
