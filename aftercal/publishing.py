"""Publishing to calendar servers: the library twins of `publish ...`, `unpublish ...` and `google login`.

A run hands `PublishJob`s (calendars.base: a plan to publish, or a treatment id whose events to
remove, and the calendar it goes to) to a channel's `BatchPublisher` and returns every job's
`JobResult`. Nothing here prints: a caller that wants to show progress passes a `PublishEvents`
whose methods are called as the run goes (the CLI draws its progress line and result lines from
them). The channel modules and their client libraries are imported only when a run starts.

Jobs are taken from the iterable given, planned and published CHUNK_JOBS at a time: a day's CSV
of any length (`jobs_from_csv` makes each row's plan as it is read) never holds more plans than
that in memory, and the first requests go out once the first chunk is planned.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from aftercal.plans import now_stamp
from calendars.base import JobResult, PublishJob, SyncSummary, sync_plan, unpublish_treatment
from reminders import make_plan
from reminders.appointments import Appointment, BadRow, read_appointments
from reminders.errors import AuthError, InputError, NotFoundError
from reminders.protocol import CareProtocol, load_protocol
from reminders.schedule import CarePlan, EventIds, PlanOptions

if TYPE_CHECKING:  # the channels' client libraries load only when a run starts
    from calendars.caldav import CalDavConnection
    from calendars.gcal import GooglePublisher

CALDAV_BACKOFF_ENV = "AFTERCAL_CALDAV_BACKOFF"
GOOGLE_BACKOFF_ENV = "AFTERCAL_GOOGLE_BACKOFF"
# Jobs planned and published at a time (a plan is ~20 KB; a CalDAV calendar is read once per chunk).
CHUNK_JOBS = 500
# Protocols a CSV run keeps loaded (loading one is ~15 ms: 90% of making a plan).
MAX_CACHED_PROTOCOLS = 32


@dataclass(frozen=True)
class JobRow:
    """A row of an appointments CSV that became a job."""

    line: int
    job: PublishJob


def jobs_from_csv(
    path: str | Path, *, options: PlanOptions | None = None, allow_fixed_zone: bool = False
) -> Iterator[JobRow | BadRow]:
    """A day's treatments from an appointments CSV (reminders.appointments), one item per row.

    The file and its header are checked now (an InputError for the whole file); each row becomes
    a plan only when it is reached, so a long file streams. A row that cannot become a plan is a
    BadRow (line and message) and the next row goes on.
    """
    return _csv_jobs(read_appointments(path), options, allow_fixed_zone)


def _csv_jobs(
    rows: Iterator[Appointment | BadRow], options: PlanOptions | None, allow_fixed_zone: bool
) -> Iterator[JobRow | BadRow]:
    protocols: dict[str, CareProtocol | InputError] = {}  # rows name a few protocols, many times
    for row in rows:
        if isinstance(row, BadRow):
            yield row
            continue
        protocol = protocols.get(row.protocol)
        if protocol is None:
            if len(protocols) >= MAX_CACHED_PROTOCOLS:
                protocols.clear()
            try:
                protocol = load_protocol(row.protocol)
            except InputError as exc:
                protocol = exc
            protocols[row.protocol] = protocol
        if isinstance(protocol, InputError):
            yield BadRow(row.line, str(protocol))
            continue
        try:
            plan = make_plan(
                protocol, row.start, row.zone, treatment_id=row.treatment_id, options=options,
                allow_fixed_zone=allow_fixed_zone,
            )  # fmt: skip
        except InputError as exc:
            yield BadRow(row.line, str(exc))
            continue
        yield JobRow(row.line, PublishJob(row.treatment_id, plan, row.calendar))


@dataclass
class PublishRun:
    """Every job's result, in the jobs' order.

    Without `keep_actions` (a run of any length) the results keep their summary and error but not
    their `actions`, which `PublishEvents.finished` saw.
    """

    results: list[JobResult] = field(default_factory=list)
    keep_actions: bool = True

    @property
    def failed(self) -> int:
        return sum(not result.ok for result in self.results)

    @property
    def done(self) -> int:
        return len(self.results) - self.failed

    def total(self) -> SyncSummary:
        """What the whole run did (failed jobs count what they did before failing)."""
        total = SyncSummary()
        for result in self.results:
            total.add(result.summary)
        return total


class PublishEvents:
    """What a run reports while it works; every method does nothing here. Override what you need."""

    def started(self, jobs: Sequence[PublishJob]) -> None:
        """The run starts reading what the server holds for `jobs`."""

    def progress(self, label: str, action: str, key: str) -> None:
        """One write of job `label` finished: `action` of the event `key`."""

    def calendar_ready(self, name: str, calendar_id: str | None) -> None:
        """The calendar made by `create_calendar` (Google) exists; `calendar_id` None on a dry run."""

    def finished(self, job: PublishJob, result: JobResult) -> None:
        """One job is done, or failed (`result.error`)."""


def env_seconds(name: str, default: float) -> float:
    """A delay in seconds from the environment (tests shorten retry backoffs with it)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise InputError(f"{name} {raw!r} is not a number of seconds") from None
    if not 0 <= seconds <= 3600:  # also refuses nan
        raise InputError(f"{name} {raw!r}: use a number of seconds from 0 to 3600")
    return seconds


def _jobs(plans: Iterable[PublishJob | CarePlan], calendar: str | None = None) -> Iterator[PublishJob]:
    """Jobs for plans (or jobs), each with its calendar: its own, else `calendar` (None: left unset).

    Lazy: a plan is made (e.g. from a CSV row) only when its job is reached.
    """
    for item in plans:
        job = item if isinstance(item, PublishJob) else PublishJob.publish(item)
        yield replace(job, calendar=calendar) if calendar and not job.calendar else job


def _chunks(jobs: Iterable[PublishJob]) -> Iterator[tuple[list[PublishJob], bool]]:
    """The jobs CHUNK_JOBS at a time, each chunk with whether it is surely the run's only one.

    A full chunk goes as soon as it is full (not one plan later), so it is never known to be alone.
    """
    chunk: list[PublishJob] = []
    first = True
    for job in jobs:
        chunk.append(job)
        if len(chunk) == CHUNK_JOBS:
            yield chunk, False
            chunk, first = [], False
    if chunk:
        yield chunk, first


def _report(
    run: PublishRun, jobs: list[PublishJob], results: list[JobResult], keep_going: bool, events: PublishEvents
) -> None:
    """Report each job's result in order and add it to `run`.

    A failed job ends the run (its error is raised) unless `keep_going`; a refused sign-in always
    does, as the same credentials would fail every other job too.
    """
    for job, result in zip(jobs, results, strict=True):
        if result.error is not None and (not keep_going or isinstance(result.error, AuthError)):
            raise result.error
        events.finished(job, result)
        # Actions hold the plan's reminders: dropped once reported, a long batch stays small.
        run.results.append(result if run.keep_actions else replace(result, actions=None))


# ---- CalDAV --------------------------------------------------------------------------------------------


def connect_caldav(
    url: str, user: str, *, netrc_file: Path | None = None, timeout: float = 20.0, retries: int = 5
) -> CalDavConnection:
    """A CalDAV connection; the password comes from $AFTERCAL_CALDAV_PASSWORD, the keyring or netrc."""
    from calendars.caldav import CalDavConnection, resolve_password, server_url
    from calendars.http import RetryPolicy

    base = server_url(url)
    password = resolve_password(user, base, netrc_file=netrc_file)
    base_delay = env_seconds(CALDAV_BACKOFF_ENV, 0.5)
    retry = RetryPolicy(attempts=retries, base_delay=base_delay, max_delay=max(8.0, base_delay))
    return CalDavConnection(base, user, password, timeout=timeout, retry=retry)


def publish_caldav(
    plans: Iterable[PublishJob | CarePlan],
    *,
    url: str,
    user: str,
    calendar: str,
    netrc_file: Path | None = None,
    timeout: float = 20.0,
    retries: int = 5,
    create_calendar: bool = False,
    dry_run: bool = False,
    keep_going: bool = False,
    events: PublishEvents | None = None,
    keep_actions: bool = True,
) -> PublishRun:
    """Make a CalDAV calendar hold exactly each plan's events (idempotent; foreign events untouched).

    `calendar` is a display name or a URL; a job's own calendar overrides it. With `keep_going`
    a treatment that fails is reported in its result and the others go on; without it the first
    failure is raised. `plans` may be a lazy iterable (`jobs_from_csv`): it is consumed CHUNK_JOBS
    at a time; `keep_actions=False` keeps memory bounded however long it is (see PublishRun).
    """
    from calendars.caldav import CalDavBatchPublisher

    events = events or PublishEvents()
    run = PublishRun(keep_actions=keep_actions)
    with connect_caldav(url, user, netrc_file=netrc_file, timeout=timeout, retries=retries) as conn:
        publisher = CalDavBatchPublisher(conn, calendar, create_calendar=create_calendar, stamp=now_stamp())
        for jobs, _only in _chunks(_jobs(plans, calendar)):
            events.started(jobs)
            results = publisher.publish_jobs(jobs, dry_run=dry_run, progress=events.progress)
            _report(run, jobs, results, keep_going, events)
    return run


def unpublish_caldav(
    treatment_ids: Iterable[str],
    *,
    url: str,
    user: str,
    calendar: str,
    netrc_file: Path | None = None,
    timeout: float = 20.0,
    retries: int = 5,
    dry_run: bool = False,
    keep_going: bool = False,
    events: PublishEvents | None = None,
    ids: EventIds | None = None,
) -> PublishRun:
    """Remove each treatment's events, and nothing else, from a CalDAV calendar (with keyed `ids`,
    those under the keyed and the unkeyed tag)."""
    jobs = [PublishJob.unpublish(treatment_id, calendar, ids=ids) for treatment_id in treatment_ids]
    return publish_caldav(
        jobs, url=url, user=user, calendar=calendar, netrc_file=netrc_file, timeout=timeout, retries=retries,
        dry_run=dry_run, keep_going=keep_going, events=events,
    )  # fmt: skip


# ---- Google Calendar -----------------------------------------------------------------------------------


def google_login(client_secrets: Path, *, app_created: bool = False, open_browser: bool = True, port: int = 0) -> Path:
    """Sign in to Google (OAuth installed-app flow) and store the token; returns the token file."""
    from calendars.gcal_auth import login

    return login(client_secrets, app_created=app_created, open_browser=open_browser, port=port)


def connect_google(
    *,
    credentials: Path | None = None,
    api_endpoint: str | None = None,
    no_auth: bool = False,
    app_created: bool = False,
) -> GooglePublisher:
    """A Google Calendar client: a service-account key, $GOOGLE_APPLICATION_CREDENTIALS or the stored login.

    `app_created` asks only for the calendar.app.created scope (enough for a calendar aftercal made).
    """
    from calendars.gcal import DEFAULT_RETRY, connect
    from calendars.gcal_auth import SCOPE_APP_CREATED, SCOPE_EVENTS

    base_delay = env_seconds(GOOGLE_BACKOFF_ENV, DEFAULT_RETRY.base_delay)
    return connect(
        api_endpoint=api_endpoint,
        credentials_file=credentials,
        no_auth=no_auth,
        scopes=[SCOPE_APP_CREATED] if app_created else [SCOPE_EVENTS],
        retry=replace(DEFAULT_RETRY, base_delay=base_delay, max_delay=max(DEFAULT_RETRY.max_delay, base_delay)),
    )


def publish_google(
    plans: Iterable[PublishJob | CarePlan],
    *,
    calendar_id: str = "primary",
    calendar: str | None = None,
    create_calendar: bool = False,
    credentials: Path | None = None,
    api_endpoint: str | None = None,
    no_auth: bool = False,
    dry_run: bool = False,
    keep_going: bool = False,
    events: PublishEvents | None = None,
    keep_actions: bool = True,
) -> PublishRun:
    """Make Google calendars hold exactly each plan's events, in batch requests (idempotent).

    `calendar` NAME publishes into the calendar of that name that aftercal created (instead of
    `calendar_id`); `create_calendar` makes it when there is none, as for CalDAV. Such calendars
    need only the narrow calendar.app.created scope. `keep_going`, `keep_actions` and lazy `plans`
    as for `publish_caldav`. Before anything is sent, the sign-in's scope is checked against what
    the run needs, and a service account must be given a calendar shared with it (`calendar_id`).
    """
    if create_calendar and calendar is None:
        raise InputError("--create-calendar needs --calendar NAME: the name of the calendar to make")
    events = events or PublishEvents()
    run = PublishRun(keep_actions=keep_actions)
    chunks = _chunks(_jobs(plans))
    with connect_google(
        credentials=credentials, api_endpoint=api_endpoint, no_auth=no_auth, app_created=calendar is not None
    ) as client:
        client.check_scope(calendar_id, named_calendar=calendar is not None)
        client.check_service_account(calendar_id, named_calendar=calendar is not None)
        head = next(chunks, None)
        if head is None:
            return run
        first = next((job.plan for job in head[0] if job.plan is not None), None)
        if calendar is not None and first is not None:
            if create_calendar:
                made = None if dry_run else client.ensure_calendar(calendar, first.zone.key)
            else:
                made = client.find_calendar(calendar)
                if made is None:
                    raise NotFoundError(
                        f"aftercal has made no Google calendar named {calendar!r} here: add --create-calendar "
                        "to make it, or give --calendar-id"
                    )
            events.calendar_ready(calendar, made)
            calendar_id = made or calendar_id
        for chunk, only in itertools.chain([head], chunks):
            jobs = list(_jobs(chunk, calendar_id))
            events.started(jobs)
            _report(run, jobs, _google_publish(client, jobs, dry_run, events, alone=only), keep_going, events)
    return run


def unpublish_google(
    treatment_ids: Iterable[str],
    *,
    calendar_id: str = "primary",
    credentials: Path | None = None,
    api_endpoint: str | None = None,
    no_auth: bool = False,
    dry_run: bool = False,
    keep_going: bool = False,
    events: PublishEvents | None = None,
    ids: EventIds | None = None,
) -> PublishRun:
    """Remove each treatment's events, and nothing else, from a Google calendar (with keyed `ids`,
    those under the keyed and the unkeyed tag)."""
    events = events or PublishEvents()
    run = PublishRun()
    with connect_google(credentials=credentials, api_endpoint=api_endpoint, no_auth=no_auth) as client:
        client.check_scope(calendar_id, named_calendar=False)
        client.check_service_account(calendar_id, named_calendar=False)
        jobs_in = (PublishJob.unpublish(treatment_id, calendar_id, ids=ids) for treatment_id in treatment_ids)
        for jobs, only in _chunks(jobs_in):
            events.started(jobs)
            _report(run, jobs, _google_publish(client, jobs, dry_run, events, alone=only), keep_going, events)
    return run


def _google_publish(
    client: GooglePublisher, jobs: list[PublishJob], dry_run: bool, events: PublishEvents, *, alone: bool
) -> list[JobResult]:
    """One treatment alone in its run by plain requests (calendars.base.sync_plan: its errors are
    raised, each naming the request that failed); several through `publish_jobs`, which shares
    batch requests (as does the last chunk of a long run, even if it holds one job)."""
    if len(jobs) != 1 or not alone:
        return client.publish_jobs(jobs, dry_run=dry_run, progress=events.progress)
    job = jobs[0]
    publisher = client.for_calendar(job.calendar or client.calendar_id)

    def progress(action: str, key: str) -> None:
        events.progress(job.label, action, key)

    if job.plan is not None:
        actions, summary = sync_plan(publisher, job.plan, dry_run=dry_run, progress=progress, legacy=job.legacy)
    else:
        actions, summary = unpublish_treatment(
            publisher, job.label, dry_run=dry_run, progress=progress, ids=job.ids, legacy=job.legacy
        )
    return [JobResult(job.label, actions, summary)]
