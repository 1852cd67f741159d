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
from reminders.schedule import CarePlan, EventIds, Reminder, treatment_tag

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


def fetch_tags(publisher: Publisher, tags: Sequence[str]) -> dict[str, RemoteEvent]:
    """Every event the server holds under any of `tags` (a treatment's tag and its legacy one), by UID."""
    held: dict[str, RemoteEvent] = {}
    for tag in dict.fromkeys(tags):
        held.update(publisher.fetch(tag))
    return held


def sync_plan(
    publisher: Publisher,
    plan: CarePlan,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    legacy: bool = True,
) -> tuple[SyncActions, SyncSummary]:
    """Make the server hold exactly `plan`'s events for its treatment (publish or reschedule).

    With keyed ids and `legacy`, events still under the treatment's unkeyed tag are found too and
    replaced (the diff deletes them: their UIDs are not the plan's), never duplicated.
    """
    tags = [plan.plan_tag, plan.legacy_tag] if legacy and plan.legacy_tag else [plan.plan_tag]
    actions = diff_plan(plan, fetch_tags(publisher, tags))
    if dry_run:
        return actions, SyncSummary(unchanged=len(actions.unchanged))
    return actions, publisher.apply(plan, actions, progress)


def unpublish_treatment(
    publisher: Publisher,
    treatment_id: str,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    ids: EventIds | None = None,
    legacy: bool = True,
) -> tuple[SyncActions, SyncSummary]:
    """Remove every event of one treatment (under its keyed tag and, with `legacy`, its unkeyed
    one), and nothing else."""
    tags = treatment_tags(treatment_id, ids)
    actions = diff_plan(None, fetch_tags(publisher, tags if legacy else tags[:1]))
    if dry_run:
        return actions, SyncSummary()
    return actions, publisher.apply(None, actions, progress)


def treatment_tags(treatment_id: str, ids: EventIds | None) -> tuple[str, ...]:
    """The tags a treatment's events may carry: the keyed one (with a clinic secret), then the unkeyed one."""
    if ids is None or not ids.keyed:
        return (treatment_tag(treatment_id),)
    return (ids.tag(treatment_id), treatment_tag(treatment_id))


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
    # Also look for events under the unkeyed tag (moved to the keyed ids), see `tags`.
    legacy: bool = True
    ids: EventIds | None = None  # an unpublish's id scheme (a publish's is its plan's)

    @classmethod
    def publish(cls, plan: CarePlan, calendar: str | None = None, *, legacy: bool = True) -> PublishJob:
        return cls(plan.treatment_id, plan, calendar, legacy=legacy)

    @classmethod
    def unpublish(
        cls, treatment_id: str, calendar: str | None = None, *, ids: EventIds | None = None, legacy: bool = True
    ) -> PublishJob:
        return cls(treatment_id, None, calendar, legacy=legacy, ids=ids)

    @property
    def treatment_id(self) -> str:
        return self.plan.treatment_id if self.plan is not None else self.label

    @property
    def plan_tag(self) -> str:
        return self.tags[0]

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags whose events this job reads: its own, then (keyed ids, `legacy`) the unkeyed one."""
        if self.plan is None:
            tags = treatment_tags(self.label, self.ids)
            return tags if self.legacy else tags[:1]
        if self.legacy and self.plan.legacy_tag:
            return (self.plan.plan_tag, self.plan.legacy_tag)
        return (self.plan.plan_tag,)


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
        ids: EventIds | None = None,
    ) -> list[JobResult]:
        """Remove every event of each treatment (and nothing else) from `calendar` (None: the default).

        The same for every channel: an unpublish is a publish of no plan. With keyed `ids`, the
        events under the keyed and the unkeyed tag both go.
        """
        jobs = [PublishJob.unpublish(treatment_id, calendar, ids=ids) for treatment_id in treatment_ids]
        return self.publish_jobs(jobs, dry_run=dry_run, progress=progress)
