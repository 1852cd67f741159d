"""What every publishing channel shares: the remote view, the diff, the summary, the batch.

A channel (CalDAV, Google) implements `Publisher`: list what the server holds for one treatment,
then apply a `SyncActions` that `diff_plan` computed. The diff is pure, so the contract tests and
`--dry-run` see exactly what a real run would do.

For a day's treatments a channel also implements `BatchPublisher`: `publish_jobs` takes
`PublishJob`s (publish a plan, or unpublish a treatment when the plan is None) and returns one
`JobResult` per job, in order; a job that fails is reported in its result and the others go on.
Each channel shares what it can across the batch (CalDAV: one listing per calendar; Google:
shared batch requests). The channels' conformance is checked by mypy (see the end of
calendars/caldav.py and calendars/gcal.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from reminders.errors import AftercalError
from reminders.schedule import CarePlan, Reminder, treatment_tag

# Called once per finished action: (action, reminder key or uid). The CLI draws progress from it.
ProgressCallback = Callable[[str, str], None]
# The same for a batch: (job label, action, reminder key or uid).
BatchProgressCallback = Callable[[str, str, str], None]


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


# ---- batches ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishJob:
    """One treatment of a batch: publish `plan`, or, when `plan` is None, unpublish treatment `label`.

    `label` names the job in results and progress: the treatment id (for an unpublish, the id whose
    events are removed). `calendar` is the channel's calendar (CalDAV: a display name or URL;
    Google: a calendar id); None means the publisher's default calendar.
    """

    label: str
    plan: CarePlan | None
    calendar: str | None = None

    @classmethod
    def publish(cls, plan: CarePlan, calendar: str | None = None) -> PublishJob:
        return cls(plan.treatment_id, plan, calendar)

    @classmethod
    def unpublish(cls, treatment_id: str, calendar: str | None = None) -> PublishJob:
        return cls(treatment_id, None, calendar)

    @property
    def treatment_id(self) -> str:
        return self.plan.treatment_id if self.plan is not None else self.label

    @property
    def plan_tag(self) -> str:
        return self.plan.plan_tag if self.plan is not None else treatment_tag(self.label)


@dataclass
class JobResult:
    """What one job did (or, on a dry run, would do).

    `actions` is None when the job failed before its events were read. `summary` counts what was
    done, also for a job that failed half-way. `would_create_calendar`: on a dry run, the job's
    calendar does not exist yet and a real run would make it.
    """

    label: str
    actions: SyncActions | None = None
    summary: SyncSummary = field(default_factory=SyncSummary)
    error: AftercalError | None = None
    would_create_calendar: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class BatchPublisher(Protocol):
    """A channel that publishes many treatments at once, sharing reads and writes where it can."""

    name: str

    def publish_jobs(
        self,
        jobs: Sequence[PublishJob],
        *,
        dry_run: bool = False,
        progress: BatchProgressCallback | None = None,
    ) -> list[JobResult]:
        """Publish (or, plan None, unpublish) each job; one result per job, in order.

        A failing job is reported in its result (`error`) and does not stop the others; only
        errors that no job could escape (a refused sign-in) may end the batch early, and then
        the jobs not tried carry that error too.
        """
        ...

    def unpublish_jobs(
        self,
        treatment_ids: Sequence[str],
        *,
        calendar: str | None = None,
        dry_run: bool = False,
        progress: BatchProgressCallback | None = None,
    ) -> list[JobResult]:
        """Remove every event of each treatment (and nothing else) from `calendar` (None: the default).

        The same for every channel: an unpublish is a publish of no plan.
        """
        jobs = [PublishJob.unpublish(treatment_id, calendar) for treatment_id in treatment_ids]
        return self.publish_jobs(jobs, dry_run=dry_run, progress=progress)
