"""`aftercal sync`: bring every stored treatment's channels in line with the store."""

from __future__ import annotations

from typing import Annotated

import typer

from aftercal import feeds, sync
from aftercal.cli.command import sub_app
from aftercal.cli.common import current_config
from aftercal.cli.options import DbOpt
from reminders.errors import InputError

app = sub_app()


@app.command("sync")
def sync_command(
    db: DbOpt = None,
    treatment_ids: Annotated[
        list[str] | None, typer.Option("--id", help="Only this treatment (repeat for several).")
    ] = None,
    everything: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Push every treatment that has a channel, in line or not: re-reads each server and repairs "
            "events changed or deleted there (costs requests for every treatment).",
        ),
    ] = False,
) -> None:
    """Bring every treatment's CalDAV and Google channels in line with the store.

    Pushes each treatment whose channel is not in line (a change that could not be pushed at
    once, a removal still to do). Safe to run from cron or a timer, and from several machines at
    once on one PostgreSQL store. Exits 1 while something is pending.

    Example:

        aftercal sync --db clinic.db
    """
    if treatment_ids:
        known = set(feeds.stored_ids(treatment_ids, db=db, secret=current_config().secret()))
        unknown = [treatment_id for treatment_id in treatment_ids if treatment_id not in known]
        if unknown:
            raise InputError(
                f"no treatment {', '.join(map(repr, unknown))} in the store (see `aftercal treatments list`)"
            )
    report = sync.sync_store(
        db=db,
        secret=current_config().secret(),
        treatment_ids=treatment_ids,
        everything=everything,
        on_outcome=lambda outcome: typer.echo(outcome.line(), err=not outcome.ok),
        google_web=current_config().google_web_client(),
    )
    for treatment_id in report.forgotten:
        typer.echo(f"{treatment_id}: forgotten; nothing of it is left")
    if report.busy:
        typer.echo(
            f"aftercal: {len(report.busy)} treatment(s) are being pushed by another sync right now: "
            + ", ".join(report.busy[:10]),
            err=True,
        )
    pushed = len(report.outcomes) - len(report.failed)
    typer.echo(
        f"Synced: {pushed} channel(s) brought in line, {len(report.failed)} pending, "
        f"{report.looked_at} treatment(s) looked at.",
        err=True,
    )
    if report.failed:
        raise typer.Exit(1)
