"""`aftercal treatments add|list|reschedule|cancel|link`: the treatment store behind subscription feeds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aftercal import feeds
from aftercal.cli.command import sub_app
from aftercal.cli.common import patient_zone, warn_if_past
from aftercal.cli.handout import HandoutOpt, PaperOpt, check_handout, write_link_handout
from aftercal.cli.options import AllowFixedZoneOpt, AtOpt, DbOpt, PlanArgs, ProtocolArg, with_plan_options
from reminders.errors import InputError

if TYPE_CHECKING:
    from calendars.feeds.store import Treatment

app = sub_app("The clinic's treatment store behind subscription feeds.")

LinkBaseOpt = Annotated[
    str,
    typer.Option(
        "--base-url",
        envvar="AFTERCAL_BASE_URL",
        help="Public address of the feed server, used in printed links (as `serve --base-url`).",
    ),
]
TreatmentIdArg = Annotated[str, typer.Argument(help="The clinic's treatment id, as given to `treatments add --id`.")]
QrFileOpt = Annotated[
    Path | None, typer.Option("--qr", help="Also write the page link's QR code to this .svg or .png file.")
]


def _print_links(link: feeds.NewLink, base_url: str, *, qr: Path | None, show_qr: bool) -> None:
    """The one moment a link exists in clear: print it (Feed:/Subscribe:/Page: lines) and its QR."""
    links = feeds.feed_links(base_url, link.token)
    # The links first: whatever happens to the QR code below, they have been shown.
    typer.echo(f"Feed: {links.feed}")
    typer.echo(f"Subscribe: {links.webcal}")
    typer.echo(f"Page: {links.page}")
    if show_qr:
        typer.echo(feeds.qr_text(links.page), nl=False)
    if qr is not None:
        feeds.write_qr(links.page, qr)
        typer.echo(f"Wrote the QR code of the page link to {qr}", err=True)
    typer.echo(
        f"Give these links to the patient now: the store keeps only a hash of them. "
        f"`aftercal treatments link {link.treatment.treatment_id} --rotate` makes new ones.",
        err=True,
    )


def _when(treatment: Treatment) -> str:
    return f"{treatment.start_local.replace('T', ' ')} {treatment.zone}"


@app.command("add")
@with_plan_options(
    sequence=False, patient_name_help="Keep the patient's name in the store, for `treatments list` only."
)
def treatments_add(
    protocol: ProtocolArg,
    at: AtOpt,
    args: PlanArgs,
    name_in_feed: Annotated[
        bool, typer.Option("--name-in-feed", help="Also show --patient-name in the feed (off: the feed never names).")
    ] = False,
    db: DbOpt = None,
    base_url: LinkBaseOpt = "http://127.0.0.1:8080",
    qr: QrFileOpt = None,
    no_qr: Annotated[bool, typer.Option("--no-qr", help="Do not draw the QR code in the terminal.")] = False,
    handout: HandoutOpt = None,
    paper: PaperOpt = None,
) -> None:
    """Store a treatment and print the patient's feed links (https, webcal, page) and a QR code.

    Example:

        aftercal treatments add microneedling --at 2026-11-24T10:00 --tz Europe/Madrid --id T-1001 --db clinic.db
    """
    feeds.check_base_url(base_url)
    options = feeds.treatment_options(
        discreet=args.discreet, morning=args.morning, quiet=args.quiet, clinic_name=args.clinic_name,
        clinic_phone=args.clinic_phone, clinic_url=args.clinic_url, patient_name=args.patient_name,
        name_in_feed=name_in_feed,
    )  # fmt: skip
    if qr is not None or not no_qr:
        feeds.check_qr_file(qr)
    paper = check_handout(handout, paper)
    zone = patient_zone(args.tz, allow_fixed=args.allow_fixed_zone)
    link = feeds.add_treatment(
        protocol, at, zone, args.treatment_id, options=options, db=db, allow_fixed_zone=args.allow_fixed_zone
    )
    treatment = link.treatment
    care = treatment.plan()
    count = len(care.reminders)
    typer.echo(f"Added {treatment.treatment_id}: {treatment.protocol}, {_when(treatment)}, {count} reminders")
    _print_links(link, base_url, qr=qr, show_qr=not no_qr)
    write_link_handout(link, base_url, handout, paper)
    warn_if_past(care)


@app.command("list")
def treatments_list(db: DbOpt = None) -> None:
    """List the stored treatments: id, status, revision (SEQUENCE), start, link state.

    A treatment whose feed cannot be served (a row stored by an older aftercal that no longer
    validates) is listed as INVALID, with the reason below the table.

    Example:

        aftercal treatments list --db clinic.db
    """
    rows = feeds.list_treatments(db=db, check=True)
    if not rows:
        typer.echo("No treatments stored yet (add one with `aftercal treatments add`).", err=True)
        return
    table = [("ID", "STATUS", "REV", "START", "PROTOCOL", "LINK", "UPDATED (UTC)", "PATIENT")]
    for t in rows:
        table.append(
            (
                t.treatment_id,
                "INVALID" if t.problem else t.status,  # explained below the table
                str(t.revision),
                _when(t),
                t.protocol,
                "active" if t.has_link else "revoked",
                f"{t.updated_at:%Y-%m-%d %H:%M:%S}",
                t.options.patient_name or "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for t in rows:
        if t.problem:
            typer.echo(f"INVALID {t.treatment_id}: {t.problem} (its feed and page answer 503)", err=True)


@app.command("reschedule")
def treatments_reschedule(
    treatment_id: TreatmentIdArg,
    at: AtOpt,
    tz: Annotated[
        str | None, typer.Option("--tz", help="The patient's new IANA city zone (default: the stored one).")
    ] = None,
    db: DbOpt = None,
    allow_fixed_zone: AllowFixedZoneOpt = False,
) -> None:
    """Move a treatment: its feed keeps the same events (same UIDs) with a higher SEQUENCE.

    Example:

        aftercal treatments reschedule T-1001 --at 2026-11-26T16:30 --db clinic.db
    """
    treatment = feeds.reschedule_treatment(treatment_id, at, tz, db=db, allow_fixed_zone=allow_fixed_zone)
    typer.echo(
        f"Rescheduled {treatment.treatment_id} to {_when(treatment)} (SEQUENCE {treatment.revision}); "
        "subscribed calendars update at their next refresh."
    )
    warn_if_past(treatment.plan())


@app.command("cancel")
def treatments_cancel(treatment_id: TreatmentIdArg, db: DbOpt = None) -> None:
    """Cancel a treatment: its feed shows the events as cancelled for a while (30 days), then none.

    Example:

        aftercal treatments cancel T-1001 --db clinic.db
    """
    treatment = feeds.cancel_treatment(treatment_id, db=db)
    typer.echo(
        f"Cancelled {treatment.treatment_id} (SEQUENCE {treatment.revision}): its feed marks every event "
        "cancelled so subscribed calendars remove them, then becomes empty (after 30 days by default)."
    )


@app.command("link")
def treatments_link(
    treatment_id: TreatmentIdArg,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Make a new link and print it; the old link stops working at once.")
    ] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Switch the link off (404) until --rotate.")] = False,
    qr: QrFileOpt = None,
    db: DbOpt = None,
    base_url: LinkBaseOpt = "http://127.0.0.1:8080",
    no_qr: Annotated[bool, typer.Option("--no-qr", help="With --rotate: no QR code in the terminal.")] = False,
    handout: HandoutOpt = None,
    paper: PaperOpt = None,
) -> None:
    """Show a treatment's link state, or rotate (--rotate) or revoke (--revoke) its link.

    The store keeps only a hash of each link, so an existing link cannot be shown again: --rotate
    prints a new one (and writes its QR code with --qr FILE, a printed handout with --handout FILE.pdf).

    Example:

        aftercal treatments link T-1001 --rotate --qr t-1001.svg --db clinic.db
    """
    if rotate and revoke:
        raise InputError("give --rotate or --revoke, not both")
    if qr is not None and not rotate:
        raise InputError(
            f"the link of {treatment_id} is stored hashed and cannot be shown again: "
            f"use `aftercal treatments link {treatment_id} --rotate --qr {qr}` (the old link stops working)"
        )
    if handout is not None and not rotate:
        raise InputError(
            f"a handout carries the link, which is stored hashed and cannot be shown again: "
            f"use `aftercal treatments link {treatment_id} --rotate --handout {handout}` (the old link stops working)"
        )
    feeds.check_base_url(base_url)
    if rotate:
        if qr is not None or not no_qr:
            feeds.check_qr_file(qr)
        paper = check_handout(handout, paper)
        link = feeds.rotate_link(treatment_id, db=db)
        typer.echo(f"New link for {link.treatment.treatment_id}; the old link no longer works.")
        _print_links(link, base_url, qr=qr, show_qr=not no_qr)
        write_link_handout(link, base_url, handout, paper)
    elif revoke:
        treatment = feeds.revoke_link(treatment_id, db=db)
        typer.echo(f"Revoked the link of {treatment.treatment_id}: it now answers 404. `--rotate` makes a new one.")
    else:
        treatment = feeds.get_treatment(treatment_id, db=db)
        if not treatment.has_link:
            typer.echo(f"{treatment.treatment_id} has no active link (revoked): `--rotate` makes a new one.")
            return
        assert treatment.link_created_at is not None
        typer.echo(
            f"{treatment.treatment_id} has an active link (made {treatment.link_created_at:%Y-%m-%d %H:%M} UTC). "
            "It is stored hashed and cannot be shown again: `--rotate` prints a new one (the old one stops working)."
        )
