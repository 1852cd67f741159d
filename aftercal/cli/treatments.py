"""`aftercal treatments add|list|show|reschedule|cancel|link|forget|purge`: the clinic's treatment store.

The store is the one record: a change is committed there first, then each channel of the
treatment (CalDAV, Google, besides its feed) is brought in line at once. A channel that cannot
be reached stays pending (the command says so and exits 1) until `aftercal sync`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aftercal import feeds, sync
from aftercal.cli.command import sub_app
from aftercal.cli.common import current_config, patient_zone, warn_if_past
from aftercal.cli.handout import HandoutOpt, PaperOpt, check_handout, write_link_handout
from aftercal.cli.options import AllowFixedZoneOpt, AtOpt, DbOpt, PlanArgs, ProtocolArg, with_plan_options
from reminders.errors import InputError

if TYPE_CHECKING:
    from aftercal.config import ClinicConfig
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


PushOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--push",
        help="Also push the treatment's events to this channel: caldav or google (repeat for both), as set in "
        "the config file's [caldav] / [google] sections; reschedule, cancel and forget follow.",
    ),
]


def _secret() -> bytes | None:
    return current_config().secret()


def _warn_unreachable_links(base_url: str) -> None:
    """Links that a patient's phone cannot open, or that travel in clear, are never printed silently."""
    problem = feeds.link_base_problem(base_url)
    if problem is not None:
        typer.echo(
            f"aftercal: warning: {problem}: set [feeds] base_url in the config file (or --base-url) to the "
            "feed server's public https address before giving these links to a patient",
            err=True,
        )


def _print_links(link: feeds.NewLink, base_url: str, *, qr: Path | None, show_qr: bool) -> None:
    """The one moment a link exists in clear: print it (Feed:/Subscribe:/Page: lines) and its QR."""
    _warn_unreachable_links(base_url)
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
        f"Give these links to the patient now: the store keeps only a hash of them "
        f"(`aftercal treatments link {link.treatment.treatment_id} --new` makes another one later).",
        err=True,
    )


def _when(treatment: Treatment) -> str:
    return f"{treatment.start_local.replace('T', ' ')} {treatment.zone}"


def _channel_settings(config: ClinicConfig, channel: str) -> dict[str, Any]:
    if channel == "caldav":
        return {"url": config.caldav_url, "user": config.caldav_user, "calendar": config.caldav_calendar}
    return {
        "calendar_id": config.google_calendar_id,
        "credentials": config.google_credentials,
        "api_endpoint": config.google_api_endpoint,
        "no_auth": config.google_no_auth,
    }


def push_now(treatment_id: str, db: str | None, secret: bytes | None) -> None:
    """Bring the treatment's channels in line now; exit 1, saying what is pending, if one failed."""
    report = sync.sync_store(
        db=db, secret=secret, treatment_ids=[treatment_id], google_web=current_config().google_web_client()
    )
    for outcome in report.outcomes:
        typer.echo(outcome.line(), err=not outcome.ok)
    if report.busy:
        typer.echo(
            f"aftercal: {treatment_id}: another `aftercal sync` is pushing it right now; it brings its channels "
            "in line (`aftercal treatments show` tells)",
            err=True,
        )
    if report.failed:
        channels = ", ".join(outcome.channel for outcome in report.failed)
        typer.echo(
            f"aftercal: the change is saved; {channels} pending: `aftercal sync` retries (run it from cron or a "
            "timer), `aftercal treatments show " + treatment_id + "` shows the state",
            err=True,
        )
        raise typer.Exit(1)


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
    push: PushOpt = None,
) -> None:
    """Store a treatment, print the patient's feed links (https, webcal, page) and a QR code, and
    push its events to each --push channel.

    Example:

        aftercal treatments add microneedling --at 2026-11-24T10:00 --tz Europe/Madrid --id T-1001 --db clinic.db
    """
    feeds.check_base_url(base_url)
    config = current_config()
    channels = [sync.channel_target(name, _channel_settings(config, name)) for name in dict.fromkeys(push or [])]
    options = feeds.treatment_options(
        discreet=args.discreet, morning=args.morning, quiet=args.quiet, clinic_name=args.clinic_name,
        clinic_phone=args.clinic_phone, clinic_url=args.clinic_url, patient_name=args.patient_name,
        name_in_feed=name_in_feed,
    )  # fmt: skip
    if qr is not None or not no_qr:
        feeds.check_qr_file(qr)
    paper = check_handout(handout, paper)
    zone = patient_zone(args.tz, allow_fixed=args.allow_fixed_zone)
    secret = config.secret()
    link = feeds.add_treatment(
        protocol, at, zone, args.treatment_id, options=options, db=db, allow_fixed_zone=args.allow_fixed_zone,
        channels=channels, secret=secret,
    )  # fmt: skip
    treatment = link.treatment
    care = treatment.plan()
    count = len(care.reminders)
    typer.echo(f"Added {treatment.treatment_id}: {treatment.protocol}, {_when(treatment)}, {count} reminders")
    _print_links(link, base_url, qr=qr, show_qr=not no_qr)
    write_link_handout(link, base_url, handout, paper)
    warn_if_past(care)
    if channels:
        push_now(treatment.treatment_id, db, secret)


@app.command("list")
def treatments_list(db: DbOpt = None) -> None:
    """List the stored treatments: id, status, revision (SEQUENCE), start, link state.

    A treatment whose feed cannot be served (a row stored by an older aftercal that no longer
    validates) is listed as INVALID, with the reason below the table.

    Example:

        aftercal treatments list --db clinic.db
    """
    rows = feeds.list_treatments(db=db, check=True, secret=_secret())
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
    """Move a treatment: its feed keeps the same events (same UIDs) with a higher SEQUENCE, and its
    pushed events move at once.

    Example:

        aftercal treatments reschedule T-1001 --at 2026-11-26T16:30 --db clinic.db
    """
    secret = _secret()
    treatment = feeds.reschedule_treatment(
        treatment_id, at, tz, db=db, allow_fixed_zone=allow_fixed_zone, secret=secret
    )
    typer.echo(
        f"Rescheduled {treatment.treatment_id} to {_when(treatment)} (SEQUENCE {treatment.revision}); "
        "subscribed calendars update at their next refresh."
    )
    warn_if_past(treatment.plan())
    push_now(treatment.treatment_id, db, secret)


@app.command("cancel")
def treatments_cancel(treatment_id: TreatmentIdArg, db: DbOpt = None) -> None:
    """Cancel a treatment: its feed shows the events as cancelled for a while (30 days), then none;
    its pushed events are removed at once.

    Example:

        aftercal treatments cancel T-1001 --db clinic.db
    """
    secret = _secret()
    treatment = feeds.cancel_treatment(treatment_id, db=db, secret=secret)
    typer.echo(
        f"Cancelled {treatment.treatment_id} (SEQUENCE {treatment.revision}): its feed marks every event "
        "cancelled so subscribed calendars remove them, then becomes empty (after 30 days by default)."
    )
    push_now(treatment.treatment_id, db, secret)


@app.command("link")
def treatments_link(
    treatment_id: TreatmentIdArg,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Make a new link and print it; every old link stops working at once.")
    ] = False,
    new: Annotated[
        bool,
        typer.Option("--new", help="Make another link and print it; the links already given keep working."),
    ] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Switch every link off (404) until --rotate.")] = False,
    qr: QrFileOpt = None,
    db: DbOpt = None,
    base_url: LinkBaseOpt = "http://127.0.0.1:8080",
    no_qr: Annotated[bool, typer.Option("--no-qr", help="With --rotate/--new: no QR code in the terminal.")] = False,
    handout: HandoutOpt = None,
    paper: PaperOpt = None,
) -> None:
    """Show a treatment's link state, or make a new link (--rotate replaces them, --new adds one)
    or switch its links off (--revoke).

    The store keeps only a hash of each link, so an existing link cannot be shown again: --rotate
    and --new print a new one (and write its QR code with --qr FILE, a printed handout with
    --handout FILE.pdf). --new is for a patient who lost the paper: the calendar already subscribed
    on their phone keeps working.

    Example:

        aftercal treatments link T-1001 --new --qr t-1001.svg --db clinic.db
    """
    if rotate + new + revoke > 1:
        raise InputError("give one of --rotate, --new or --revoke")
    making = rotate or new
    if qr is not None and not making:
        raise InputError(
            f"the link of {treatment_id} is stored hashed and cannot be shown again: "
            f"use `aftercal treatments link {treatment_id} --new --qr {qr}` (the old link keeps working)"
        )
    if handout is not None and not making:
        raise InputError(
            f"a handout carries the link, which is stored hashed and cannot be shown again: "
            f"use `aftercal treatments link {treatment_id} --new --handout {handout}` (the old link keeps working)"
        )
    feeds.check_base_url(base_url)
    secret = _secret()
    if making:
        if qr is not None or not no_qr:
            feeds.check_qr_file(qr)
        paper = check_handout(handout, paper)
        if rotate:
            link = feeds.rotate_link(treatment_id, db=db, secret=secret)
            typer.echo(f"New link for {link.treatment.treatment_id}; the old links no longer work.")
        else:
            link = feeds.new_link(treatment_id, db=db, secret=secret)
            typer.echo(
                f"Another link for {link.treatment.treatment_id} ({link.treatment.links} active); "
                "the links already given keep working."
            )
        _print_links(link, base_url, qr=qr, show_qr=not no_qr)
        write_link_handout(link, base_url, handout, paper)
    elif revoke:
        treatment = feeds.revoke_link(treatment_id, db=db, secret=secret)
        typer.echo(f"Revoked the links of {treatment.treatment_id}: they now answer 404. `--rotate` makes a new one.")
    else:
        treatment = feeds.get_treatment(treatment_id, db=db, secret=secret)
        typer.echo(_link_state(treatment))


def _link_state(treatment: Treatment) -> str:
    if not treatment.has_link:
        return f"{treatment.treatment_id} has no active link (revoked): `--rotate` makes a new one."
    assert treatment.link_created_at is not None
    count = "an active link" if treatment.links == 1 else f"{treatment.links} active links (the newest"
    closing = "" if treatment.links == 1 else ")"
    return (
        f"{treatment.treatment_id} has {count} made {treatment.link_created_at:%Y-%m-%d %H:%M} UTC{closing}. "
        "Links are stored hashed and cannot be shown again: `--new` prints another (the old ones keep working), "
        "`--rotate` replaces them."
    )


@app.command("show")
def treatments_show(treatment_id: TreatmentIdArg, db: DbOpt = None) -> None:
    """Show one treatment: its plan, its links, and each channel's state (in line, or pending with
    its last error and when).

    Example:

        aftercal treatments show T-1001 --db clinic.db
    """
    state = feeds.treatment_state(treatment_id, db=db, secret=_secret())
    t = state.treatment
    typer.echo(f"Treatment {t.treatment_id}")
    status = "forgotten: its events are still being removed (`aftercal sync` finishes)" if t.forgetting else t.status
    typer.echo(f"  status      {status}")
    typer.echo(f"  protocol    {t.protocol}")
    typer.echo(f"  start       {_when(t)}")
    typer.echo(f"  revision    {t.revision} (iCalendar SEQUENCE)")
    typer.echo(f"  updated     {t.updated_at:%Y-%m-%d %H:%M:%S} UTC")
    typer.echo(
        f"  patient     {t.options.patient_name or '-'}{' (shown in the feed)' if t.options.name_in_feed else ''}"
    )
    if t.problem:
        typer.echo(f"  problem     {t.problem}")
    typer.echo(f"  feed link   {_link_state(t)}")
    if not state.channels:
        typer.echo("  channels    none besides the feed (`treatments add --push caldav|google`)")
    for channel in state.channels:
        typer.echo(f"  {channel.channel:<11} {_target_text(channel.channel, channel.target)}")
        typer.echo(f"  {'':<11} {_channel_text(t, channel)}")


def _target_text(channel: str, target: dict[str, Any]) -> str:
    if channel == sync.PATIENT_GOOGLE:
        return "the patient's own Google Calendar ('Aftercare'), connected from their page"
    if channel == "caldav":
        return f"calendar {target.get('calendar')!r} of {target.get('user')} at {target.get('url')}"
    return f"calendar {target.get('calendar_id')}" + (
        f" at {target['api_endpoint']}" if target.get("api_endpoint") else ""
    )


def _channel_text(treatment: Treatment, channel: Any) -> str:
    when = f" {channel.last_synced_at:%Y-%m-%d %H:%M} UTC" if channel.last_synced_at else ""
    if channel.disconnected_at is not None:
        return f"disconnected {channel.disconnected_at:%Y-%m-%d %H:%M} UTC: {channel.last_error} (no longer pushed)"
    if channel.in_line(treatment):
        what = "events removed" if treatment.status != "active" else f"revision {channel.synced_revision}"
        return f"in line ({what}; confirmed{when})"
    wanted = "removal of its events" if treatment.status != "active" else f"revision {treatment.revision}"
    text = f"pending: {wanted}"
    if channel.last_error:
        text += (
            f"; last error {channel.last_error_at:%Y-%m-%d %H:%M} UTC ({channel.attempts} failed attempts): "
            f"{channel.last_error}"
        )
    return text


@app.command("forget")
def treatments_forget(treatment_id: TreatmentIdArg, db: DbOpt = None) -> None:
    """Remove a treatment and its patient's data: its events from every channel, its links (404),
    the patient's name, then its row. Running it again is harmless.

    Example:

        aftercal treatments forget T-1001 --db clinic.db
    """
    secret = _secret()
    forgetting = feeds.forget_treatment(treatment_id, db=db, secret=secret)
    if not forgetting.existed:
        typer.echo(f"{treatment_id}: nothing stored (already forgotten, or never added).")
        return
    if forgetting.kept is None:
        typer.echo(f"Forgot {treatment_id}: its links answer 404 and its row is deleted; nothing of it is left.")
        return
    typer.echo(f"Forgot {treatment_id}: its links answer 404 and the patient's name is erased; removing its events.")
    push_now(treatment_id, db, secret)
    if not feeds.stored_ids([treatment_id], db=db, secret=secret):
        typer.echo(f"{treatment_id}: its events are removed and its row deleted: nothing of it is left.")


@app.command("purge")
def treatments_purge(
    ended_before: Annotated[
        str, typer.Option("--ended-before", help="Forget every treatment whose aftercare ended before this day.")
    ],
    db: DbOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be forgotten; change nothing.")] = False,
) -> None:
    """Forget old treatments (as `treatments forget` does each): those whose aftercare ended (its last
    reminder day, or the day it was cancelled) before --ended-before YYYY-MM-DD.

    Example:

        aftercal treatments purge --ended-before 2025-01-01 --dry-run --db clinic.db
    """
    try:
        day = date.fromisoformat(ended_before)
    except ValueError:
        raise InputError(f"--ended-before {ended_before!r}: use a date, YYYY-MM-DD") from None
    secret = _secret()
    ended = feeds.ended_before(day, db=db, secret=secret)
    if not ended:
        typer.echo(f"No treatment ended before {day}: nothing to forget.")
        return
    for treatment in ended:
        typer.echo(
            f"{'would forget' if dry_run else 'forgetting'} {treatment.treatment_id} (ended {treatment.ends_on()})"
        )
    if dry_run:
        return
    ids = [treatment.treatment_id for treatment in ended]
    feeds.forget_treatments(ids, db=db, secret=secret)
    report = sync.sync_store(db=db, secret=secret, treatment_ids=ids, google_web=current_config().google_web_client())
    for outcome in report.failed:
        typer.echo(outcome.line(), err=True)
    left = feeds.stored_ids(ids, db=db, secret=secret)
    typer.echo(f"Forgot {len(ids)} treatments; {len(left)} still have events to remove from a channel.")
    if left:
        typer.echo("aftercal: `aftercal sync` finishes removing them (run it from cron or a timer).", err=True)
        raise typer.Exit(1)
