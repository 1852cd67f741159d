"""The store drives every channel: the library twin of `aftercal sync`.

A stored treatment may be pushed to CalDAV and to Google besides its feed (its *channels*, each
with its target: where its events go). Every change (add, reschedule, cancel, forget) is first
committed to the store; `sync_store` then brings each channel in line with it: a publish of the
treatment's plan while it is active, a removal of its events once it is cancelled or forgotten.
A channel that cannot be reached keeps its last error and stays pending; the next `sync_store`
(cron, a systemd timer, or the next change) tries again. Re-running is harmless: a channel in
line costs no request at all, and a publish sends only what differs.

Several workers (processes, machines on one PostgreSQL store) may sync at once: each treatment
is claimed with an atomic conditional UPDATE of its row (a lease that a dead worker's treatments
lose after `SYNC_LEASE`), so one worker at a time pushes it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aftercal.feeds import FROM_CONFIG, Secret, opened_store
from aftercal.plans import now_stamp
from aftercal.publishing import connect_caldav, connect_google
from calendars.base import JobResult, PublishJob, SyncSummary
from reminders.errors import AftercalError, AuthError, InputError, NotFoundError

if TYPE_CHECKING:  # the store (and its database drivers) loads only when a sync runs
    from calendars.feeds.store import ChannelState, Store, Treatment
    from calendars.gcal_web import WebClient

CHANNELS = ("caldav", "google")  # where the clinic pushes a treatment's events besides its feed
PATIENT_GOOGLE = "patient_google"  # the patient's own Google Calendar, connected from their page

# Treatments a worker claims and pushes at a time: several workers share a backlog, and each push
# still shares one CalDAV listing / Google batch across them.
PAGE = 10


@dataclass(frozen=True)
class ChannelOutcome:
    """What one channel of one treatment did in a sync."""

    treatment_id: str
    channel: str
    removal: bool  # the treatment's events were being removed (cancelled or forgotten)
    summary: SyncSummary | None = None
    error: str | None = None
    note: str | None = None  # instead of the summary (a channel the patient disconnected)

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        what = "removed" if self.removal else "in line"
        if self.error is not None:
            return f"{self.treatment_id} {self.channel}: pending: {self.error}"
        if self.note is not None:
            return f"{self.treatment_id} {self.channel}: {self.note}"
        assert self.summary is not None
        return f"{self.treatment_id} {self.channel}: {what} ({self.summary.line()})"


@dataclass
class SyncReport:
    """What `sync_store` did: each channel it pushed, the treatments another worker held, and the
    forgotten treatments whose rows are now gone."""

    outcomes: list[ChannelOutcome] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    looked_at: int = 0  # treatments read from the store

    @property
    def failed(self) -> list[ChannelOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]

    @property
    def in_line(self) -> bool:
        return not self.failed and not self.busy


def channel_target(channel: str, settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A channel and its target from the clinic's settings, checked: where `--push CHANNEL` goes.

    CalDAV needs url, user and calendar; Google a calendar_id ("primary" if not given) and, as
    for `publish google`, optionally credentials, api_endpoint and no_auth.
    """
    if channel not in CHANNELS:
        raise InputError(f"--push {channel!r}: use caldav or google")
    if channel == "caldav":
        missing = [key for key in ("url", "user", "calendar") if not settings.get(key)]
        if missing:
            keys = ", ".join(f"[caldav] {key}" for key in missing)
            raise InputError(f"--push caldav needs {keys} in the clinic's config file (see `aftercal config show`)")
        return channel, {key: str(settings[key]) for key in ("url", "user", "calendar")}
    target: dict[str, Any] = {"calendar_id": str(settings.get("calendar_id") or "primary")}
    if settings.get("credentials"):
        target["credentials"] = str(Path(str(settings["credentials"])).expanduser().resolve())
    if settings.get("api_endpoint"):
        target["api_endpoint"] = str(settings["api_endpoint"])
    if settings.get("no_auth"):
        target["no_auth"] = True
    return channel, target


def worker_name() -> str:
    """This worker's name in the store's leases: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def sync_store(
    *,
    db: str | Path | None = None,
    secret: Secret = FROM_CONFIG,
    treatment_ids: Sequence[str] | None = None,
    everything: bool = False,
    worker: str | None = None,
    on_outcome: Callable[[ChannelOutcome], None] | None = None,
    google_web: WebClient | None = None,
) -> SyncReport:
    """Bring the channels of every treatment that is not in line (or of `treatment_ids`) in line.

    `everything` pushes every treatment that has a channel, in line or not: a publish re-reads
    what the server holds and repairs what someone changed there. Returns what happened; a
    channel that failed stays pending with its error recorded in the store.
    """
    from calendars.feeds.store import InvalidTreatmentError

    worker = worker or worker_name()
    report = SyncReport()
    with opened_store(db, secret) as store:
        for page in _pages(store, treatment_ids, everything):
            claimed: list[Treatment] = []
            try:
                for pk, treatment_id in page:
                    try:
                        treatment = store.claim(pk, worker)
                    except InvalidTreatmentError as exc:  # a row an older aftercal stored, unreadable now
                        store.release(pk, worker)
                        _unreadable(store, pk, treatment_id, exc.reason, report, on_outcome)
                        continue
                    if treatment is None:
                        report.busy.append(treatment_id)
                        continue
                    claimed.append(treatment)
                report.looked_at += len(page)
                _sync_page(store, claimed, everything, report, on_outcome, google_web)
            finally:
                for treatment in claimed:
                    store.release(treatment.pk, worker)
    return report


def _pages(store: Store, treatment_ids: Sequence[str] | None, everything: bool) -> Iterable[list[tuple[int, str]]]:
    if treatment_ids is not None:
        for start in range(0, len(treatment_ids), PAGE):
            found = [store.find(treatment_id) for treatment_id in treatment_ids[start : start + PAGE]]
            yield [(treatment.pk, treatment.treatment_id) for treatment in found if treatment is not None]
        return
    after = 0
    while True:
        page = store.pending(after_pk=after, limit=PAGE, everything=everything)
        if not page:
            return
        yield page
        after = page[-1][0]


@dataclass
class _Work:
    treatment: Treatment
    state: ChannelState
    job: PublishJob


def _sync_page(
    store: Store,
    treatments: list[Treatment],
    everything: bool,
    report: SyncReport,
    on_outcome: Callable[[ChannelOutcome], None] | None,
    google_web: WebClient | None,
) -> None:
    """Push every channel of these (claimed) treatments that needs it, grouped by target."""
    groups: dict[tuple[str, str], list[_Work]] = {}
    for treatment in treatments:
        for state in store.channels(treatment.pk):
            if state.in_line(treatment) and not everything:
                continue
            if not treatment.active and state.removed:
                continue
            try:
                job = _job(treatment, state)
            except Exception as exc:  # a stored row that no longer makes a plan (an older aftercal's)
                error = AftercalError(f"its stored plan cannot be made: {type(exc).__name__}: {exc}")
                failed = JobResult(treatment.treatment_id, error=error)
                outcome = _record(store, _Work(treatment, state, PublishJob.unpublish(treatment.treatment_id)), failed)
                report.outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
                continue
            key = (state.channel, _target_key(state, treatment.pk))
            groups.setdefault(key, []).append(_Work(treatment, state, job))
    for (channel, _key), works in groups.items():
        results = _push(channel, works, store, google_web)
        for work, result in zip(works, results, strict=True):
            outcome = _record(store, work, result)
            report.outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    for treatment in treatments:
        if treatment.forgetting and store.finish_forget(treatment.pk) is None:
            report.forgotten.append(treatment.treatment_id)


def _unreadable(
    store: Store,
    pk: int,
    treatment_id: str,
    reason: str,
    report: SyncReport,
    on_outcome: Callable[[ChannelOutcome], None] | None,
) -> None:
    """Each channel of a treatment whose row cannot be read stays pending, with the reason."""
    for state in store.channels(pk):
        store.mark_failed(pk, state.channel, f"the stored treatment cannot be read: {reason}")
        outcome = ChannelOutcome(
            treatment_id, state.channel, False, error=f"the stored treatment cannot be read: {reason}"
        )
        report.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)


def _job(treatment: Treatment, state: ChannelState) -> PublishJob:
    calendar = state.target.get("calendar") if state.channel == "caldav" else state.target.get("calendar_id")
    # Events published before the store had keyed ids are looked for (and moved, or removed) until
    # the channel confirmed it holds the keyed ones.
    legacy = state.synced_ids != treatment.ids.fingerprint or state.synced_revision is None
    if not treatment.active:
        return PublishJob.unpublish(treatment.treatment_id, calendar, ids=treatment.ids, legacy=legacy)
    return PublishJob.publish(treatment.plan(), calendar, legacy=legacy)


def _target_key(state: ChannelState, treatment_pk: int) -> str:
    # A patient's own calendar is reached with that patient's own grant: one target each.
    owner = f"{treatment_pk}:" if state.channel == PATIENT_GOOGLE else ""
    return owner + repr(sorted(state.target.items()))


def _push(channel: str, works: list[_Work], store: Store, google_web: WebClient | None) -> list[JobResult]:
    """Publish the works' jobs to their one target; an error that stops the target fails each job."""
    target = works[0].state.target
    jobs = [work.job for work in works]
    try:
        if channel == PATIENT_GOOGLE:
            return _push_patient(works[0], store, google_web)
        if channel == "caldav":
            from calendars.caldav import CalDavBatchPublisher

            with connect_caldav(target["url"], target["user"]) as conn:
                publisher = CalDavBatchPublisher(conn, target["calendar"], stamp=now_stamp())
                return publisher.publish_jobs(jobs)
        credentials = target.get("credentials")
        with connect_google(
            credentials=Path(credentials) if credentials else None,
            api_endpoint=target.get("api_endpoint"),
            no_auth=bool(target.get("no_auth")),
        ) as client:
            calendar_id = str(target.get("calendar_id") or "primary")
            client.check_scope(calendar_id, named_calendar=False)
            client.check_service_account(calendar_id, named_calendar=False)
            return client.publish_jobs(jobs)
    except AftercalError as exc:
        return [JobResult(job.label, error=exc) for job in jobs]


def _push_patient(work: _Work, store: Store, google_web: WebClient | None) -> list[JobResult]:
    """A patient's own Google Calendar, on the grant they gave from their page."""
    from calendars.feeds.connect import channel_context
    from calendars.gcal_web import delete_calendar, patient_publisher, revoke

    if google_web is None:
        raise InputError("patients' Google calendars need [google_web] client_secrets in the config file")
    if not work.state.credentials:
        raise AuthError("no stored grant for the patient's Google Calendar")
    refresh = store.unseal(work.state.credentials, channel_context(work.treatment.pk))
    calendar_id = str(work.state.target.get("calendar_id") or "")
    with patient_publisher(google_web, refresh, calendar_id=calendar_id) as client:
        results = client.publish_jobs([work.job])
        if work.treatment.forgetting and results[0].error is None:
            # Forgotten: nothing of the treatment stays in the patient's account, not even the grant.
            delete_calendar(client, calendar_id)
            revoke(google_web, refresh)
        return results


def _record(store: Store, work: _Work, result: JobResult) -> ChannelOutcome:
    treatment, state = work.treatment, work.state
    removal = not treatment.active
    if state.channel == PATIENT_GOOGLE and isinstance(result.error, AuthError | NotFoundError):
        # The patient took the access back (or deleted the calendar) in their Google account:
        # say so, never retry; they can connect again from their page.
        what = "grants access" if isinstance(result.error, AuthError) else "has the Aftercare calendar"
        reason = f"disconnected: the patient's Google account no longer {what}"
        store.mark_disconnected(treatment.pk, state.channel, reason)
        return ChannelOutcome(treatment.treatment_id, state.channel, removal, summary=SyncSummary(), note=reason)
    if result.error is not None:
        message = str(result.error).splitlines()[0] if str(result.error) else type(result.error).__name__
        store.mark_failed(treatment.pk, state.channel, message)
        return ChannelOutcome(treatment.treatment_id, state.channel, removal, error=message)
    store.mark_synced(treatment.pk, state.channel, revision=None if removal else treatment.revision, removed=removal)
    return ChannelOutcome(treatment.treatment_id, state.channel, removal, summary=result.summary)
