"""`aftercal publish caldav` and `aftercal unpublish caldav`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aftercal import publishing
from aftercal.cli.command import sub_app
from aftercal.cli.common import event_ids
from aftercal.cli.options import BatchAtOpt, BatchProtocolArg, DryRunOpt, FromOpt, PlanArgs, with_plan_options
from aftercal.cli.runs import Reporter, collect_jobs, end_run, warn_single_job

publish_app = sub_app()
unpublish_app = sub_app()

UrlOpt = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="AFTERCAL_CALDAV_URL",
        help="CalDAV server base URL; discovery starts there (iCloud: https://caldav.icloud.com/).",
    ),
]
UserOpt = Annotated[
    str, typer.Option("--user", envvar="AFTERCAL_CALDAV_USER", help="Account user name (iCloud: the Apple ID).")
]
CalendarOpt = Annotated[
    str,
    typer.Option(
        "--calendar",
        envvar="AFTERCAL_CALDAV_CALENDAR",
        help="Calendar display name, or its URL (a URL skips discovery).",
    ),
]
NetrcOpt = Annotated[
    Path | None, typer.Option("--netrc", help="netrc-style file to read the password from (default: ~/.netrc).")
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for one HTTP answer.")]
RetriesOpt = Annotated[
    int,
    typer.Option("--retries", min=1, max=20, help="Attempts per request on network errors, timeouts, 5xx and 429."),
]


@publish_app.command("caldav")
@with_plan_options()
def publish_caldav(
    url: UrlOpt,
    user: UserOpt,
    calendar: CalendarOpt,
    protocol: BatchProtocolArg = None,
    at: BatchAtOpt = None,
    *,
    args: PlanArgs,
    from_csv: FromOpt = None,
    create_calendar: Annotated[
        bool, typer.Option("--create-calendar", help="Make the calendar when no calendar has that name.")
    ] = False,
    netrc_file: NetrcOpt = None,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = 20.0,
    retries: RetriesOpt = 5,
) -> None:
    """Push a treatment's reminders to a CalDAV calendar (iCloud, Nextcloud, Fastmail, Radicale...).

    Idempotent: running it again uploads nothing that is unchanged; the same --id with a new --at
    updates the events in place and deletes steps that no longer apply. Events that aftercal did
    not create are never touched. A run that stopped half-way converges when run again.

    The password is never an option. First found wins: $AFTERCAL_CALDAV_PASSWORD; the system keyring
    (service 'aftercal-caldav', user = --user; store it with `keyring set aftercal-caldav USER`); a
    netrc file (--netrc FILE, default ~/.netrc; machine = the --url host, login = --user).

    Example:

        AFTERCAL_CALDAV_PASSWORD=... aftercal publish caldav microneedling --at 2026-11-24T10:00 --tz Europe/Paris --id T-1001 --url https://caldav.example.com/ --user clinic --calendar aftercare
    """  # noqa: E501 - one line: pasted examples must not depend on a trailing backslash
    jobs = collect_jobs(protocol, at, args, from_csv)
    with Reporter(dry_run=dry_run) as reporter:
        run = publishing.publish_caldav(
            jobs, url=url, user=user, calendar=calendar, netrc_file=netrc_file, timeout=timeout, retries=retries,
            create_calendar=create_calendar, dry_run=dry_run, keep_going=from_csv is not None, events=reporter,
            keep_actions=False,
        )  # fmt: skip
    warn_single_job(jobs)
    end_run(run, batch=from_csv is not None, dry_run=dry_run, skipped=jobs.skipped)


@unpublish_app.command("caldav")
def unpublish_caldav(
    url: UrlOpt,
    user: UserOpt,
    calendar: CalendarOpt,
    treatment_ids: Annotated[
        list[str], typer.Option("--id", help="Treatment id whose events to remove (repeat for several).")
    ],
    netrc_file: NetrcOpt = None,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = 20.0,
    retries: RetriesOpt = 5,
) -> None:
    """Remove exactly one treatment's events from a CalDAV calendar; nothing else is touched.

    The password comes from $AFTERCAL_CALDAV_PASSWORD, the keyring or a netrc file, as for
    `publish caldav`.

    Example:

        AFTERCAL_CALDAV_PASSWORD=... aftercal unpublish caldav --id T-1001 --url https://caldav.example.com/ --user clinic --calendar aftercare
    """  # noqa: E501 - one line: pasted examples must not depend on a trailing backslash
    batch = len(treatment_ids) > 1
    with Reporter(dry_run=dry_run) as reporter:
        run = publishing.unpublish_caldav(
            treatment_ids, url=url, user=user, calendar=calendar, netrc_file=netrc_file, timeout=timeout,
            retries=retries, dry_run=dry_run, keep_going=batch, events=reporter, ids=event_ids(),
        )  # fmt: skip
    end_run(run, batch=batch, dry_run=dry_run)
