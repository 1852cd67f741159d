"""`aftercal google login`, `aftercal publish google` and `aftercal unpublish google`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aftercal import publishing
from aftercal.cli.command import sub_app
from aftercal.cli.common import event_ids
from aftercal.cli.options import BatchAtOpt, BatchProtocolArg, DryRunOpt, FromOpt, PlanArgs, with_plan_options
from aftercal.cli.runs import Reporter, collect_jobs, end_run, warn_single_job

google_app = sub_app("Google Calendar sign-in.")
publish_app = sub_app()
unpublish_app = sub_app()

CalendarIdOpt = Annotated[
    str,
    typer.Option(
        "--calendar-id",
        envvar="AFTERCAL_GOOGLE_CALENDAR_ID",
        help="Calendar to write to: 'primary' (the signed-in account's) or a calendar id "
        "(...@group.calendar.google.com).",
    ),
]
CredentialsOpt = Annotated[
    Path | None,
    typer.Option(
        "--credentials",
        help="Service-account (or authorized-user) JSON key file (default: $GOOGLE_APPLICATION_CREDENTIALS, "
        "else the token of `aftercal google login`). A service account needs --calendar-id of a calendar shared "
        "with it; its popups never ring a patient's phone.",
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--api-endpoint",
        envvar="AFTERCAL_GOOGLE_API_ENDPOINT",
        help="Base URL of a Calendar-v3-compatible API (the client uses URL + 'calendar/v3/' and URL + "
        "'batch/calendar/v3'); default https://www.googleapis.com/.",
    ),
]
NoAuthOpt = Annotated[
    bool,
    typer.Option("--no-auth", help="Send no credentials (only allowed with an --api-endpoint on loopback, for tests)."),
]


@google_app.command("login")
def google_login(
    client_secrets: Annotated[
        Path,
        typer.Option(
            "--client-secrets",
            help="OAuth client JSON of a 'Desktop app' client (Google Cloud console); a 'Web application' "
            "client's is refused.",
        ),
    ],
    app_created: Annotated[
        bool,
        typer.Option(
            "--app-created-only",
            help="Ask only for calendar.app.created: aftercal may then write only to calendars it creates "
            "(publish with --calendar NAME --create-calendar); the default scope is calendar.events.",
        ),
    ] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the sign-in URL instead of opening it.")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Local port for Google's redirect (0: any free one).")
    ] = 0,
) -> None:
    """Sign in to Google (OAuth installed-app flow) and store the token for `publish google`.

    A browser opens Google's consent page; Google then redirects to a short-lived server on
    localhost. The token is stored as JSON, readable by you only (0600), in aftercal's config
    folder ($AFTERCAL_CONFIG_DIR or the platform's user config dir) and refreshed when it expires.
    Google's consent page is shown at every login: Google sends the refresh token that keeps a
    sign-in working only then (a sign-in without one is refused, never stored). An OAuth app left
    in "Testing" status accepts only the test users added on its consent screen, and its refresh
    tokens expire after 7 days.

    Reminders belong to the signed-in account: sign in as the account whose phone should ring (a
    service account's popups never ring a patient's phone).

    Example:

        aftercal google login --client-secrets client_secret.json
    """
    path = publishing.google_login(client_secrets, app_created=app_created, open_browser=not no_browser, port=port)
    typer.echo(f"Signed in; token stored in {path} (readable by you only)", err=True)


@publish_app.command("google")
@with_plan_options(sequence=False)
def publish_google(
    protocol: BatchProtocolArg = None,
    at: BatchAtOpt = None,
    *,
    args: PlanArgs,
    from_csv: FromOpt = None,
    calendar_id: CalendarIdOpt = "primary",
    calendar: Annotated[
        str | None,
        typer.Option(
            "--calendar",
            help="Publish into the calendar of this name that aftercal made (instead of --calendar-id); "
            "works with the narrow calendar.app.created scope.",
        ),
    ] = None,
    create_calendar: Annotated[
        bool, typer.Option("--create-calendar", help="Make the --calendar when there is none (as for CalDAV).")
    ] = False,
    credentials: CredentialsOpt = None,
    api_endpoint: EndpointOpt = None,
    no_auth: NoAuthOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Push a treatment's reminders to Google Calendar, in batch requests.

    Idempotent: running it again writes nothing that is unchanged; the same --id with a new --at
    updates the events in place and deletes steps that no longer apply. Only events that aftercal
    tagged for this treatment are touched. A run that stopped half-way converges when run again.
    With --from appointments.csv (columns id,protocol,start,zone[,calendar]) a day's treatments go
    in one run; a bad row is reported with its line number and only that row is skipped.

    Credentials: --credentials FILE or $GOOGLE_APPLICATION_CREDENTIALS (a service-account key),
    else the token stored by `aftercal google login`. A service account publishes only into a
    calendar shared with it, given with --calendar-id (its own 'primary' and calendars it would
    make are seen by nobody); --calendar NAME needs a login with --app-created-only.

    Reminders belong to the signed-in account: a service account's popups never ring the
    patient's phone. Sign in as the patient (or as the clinic, for the clinic's own calendar).

    Example:

        aftercal publish google microneedling --at 2026-11-24T10:00 --tz America/Chicago --id T-1001 --calendar-id primary
        aftercal publish google --from examples/appointments.csv
    """  # noqa: E501 - one line: pasted examples must not depend on a trailing backslash
    jobs = collect_jobs(protocol, at, args, from_csv)
    with Reporter(dry_run=dry_run) as reporter:
        run = publishing.publish_google(
            jobs, calendar_id=calendar_id, calendar=calendar, create_calendar=create_calendar, credentials=credentials,
            api_endpoint=api_endpoint, no_auth=no_auth, dry_run=dry_run, keep_going=from_csv is not None,
            events=reporter, keep_actions=False,
        )  # fmt: skip
    warn_single_job(jobs)
    end_run(run, batch=from_csv is not None, dry_run=dry_run, skipped=jobs.skipped)


@unpublish_app.command("google")
def unpublish_google(
    treatment_ids: Annotated[
        list[str], typer.Option("--id", help="Treatment id whose events to remove (repeat for several).")
    ],
    calendar_id: CalendarIdOpt = "primary",
    credentials: CredentialsOpt = None,
    api_endpoint: EndpointOpt = None,
    no_auth: NoAuthOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Remove exactly one treatment's events from a Google calendar; nothing else is touched.

    Credentials as for `publish google`. Events already deleted count as done.

    Example:

        aftercal unpublish google --id T-1001 --calendar-id primary
    """
    batch = len(treatment_ids) > 1
    with Reporter(dry_run=dry_run) as reporter:
        run = publishing.unpublish_google(
            treatment_ids, calendar_id=calendar_id, credentials=credentials, api_endpoint=api_endpoint,
            no_auth=no_auth, dry_run=dry_run, keep_going=batch, events=reporter, ids=event_ids(),
        )  # fmt: skip
    end_run(run, batch=batch, dry_run=dry_run)
