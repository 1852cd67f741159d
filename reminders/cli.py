"""The `aftercal` command line: the only module that imports typer or rich.

It converts arguments, calls the engine and a channel, and prints. Every AftercalError is caught
once, in `_Root.invoke`, and printed as one line (the traceback only with --debug).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from reminders import make_plan
from reminders.errors import AftercalError, InputError
from reminders.protocol import load_protocol, shipped_protocols
from reminders.schedule import CarePlan, Clinic, PlanOptions, QuietHours


@dataclass
class _State:
    debug: bool = False


class _Root(TyperGroup):
    """Root group that turns aftercal's errors into one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AftercalError as exc:
            if isinstance(ctx.obj, _State) and ctx.obj.debug:
                raise
            typer.echo(f"aftercal: error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("aftercal: interrupted", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Root,
    name="aftercal",
    help="Turn a skin treatment into a calendar of aftercare reminders.",
    no_args_is_help=True,
    # Locals may hold passwords and tokens: never print them.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
protocol_app = typer.Typer(help="Work with protocol files.", no_args_is_help=True)
app.add_typer(protocol_app, name="protocol")
publish_app = typer.Typer(help="Push a care plan's events to a calendar server (idempotent).", no_args_is_help=True)
app.add_typer(publish_app, name="publish")
unpublish_app = typer.Typer(help="Remove exactly one treatment's events from a calendar server.", no_args_is_help=True)
app.add_typer(unpublish_app, name="unpublish")
google_app = typer.Typer(help="Google Calendar sign-in.", no_args_is_help=True)
app.add_typer(google_app, name="google")
treatments_app = typer.Typer(help="The clinic's treatment store behind subscription feeds.", no_args_is_help=True)
app.add_typer(treatments_app, name="treatments")


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
) -> None:
    ctx.obj = _State(debug=debug)


# ---- shared options: one definition, used by every command that builds a plan ------------------

ProtocolArg = Annotated[
    str, typer.Argument(help="A shipped protocol name (see `aftercal protocols`) or a path to a .toml file.")
]
AtOpt = Annotated[str, typer.Option("--at", help="Treatment start in local time, e.g. 2026-11-24T10:00.")]
TzOpt = Annotated[
    str | None, typer.Option("--tz", help="IANA time zone of the patient [default: this machine's zone].")
]
IdOpt = Annotated[
    str | None,
    typer.Option(
        "--id",
        help="Treatment id; the same id updates the same events [default: derived from protocol, start and zone].",
    ),
]
DiscreetOpt = Annotated[
    bool, typer.Option("--discreet", help="Neutral titles and alarm texts for lock screens and watches.")
]
PatientOpt = Annotated[
    str | None,
    typer.Option(
        "--patient-name", help="Add the patient's name to the calendar name and descriptions (never added otherwise)."
    ),
]
MorningOpt = Annotated[str, typer.Option("--morning", help="Local time of day reminders, HH:MM.")]
QuietOpt = Annotated[
    str, typer.Option("--quiet", help="Quiet hours HH:MM-HH:MM in which no alarm fires ('off' for none).")
]
ClinicNameOpt = Annotated[
    str | None,
    typer.Option("--clinic-name", envvar="AFTERCAL_CLINIC_NAME", help="Clinic name shown in every reminder."),
]
ClinicPhoneOpt = Annotated[
    str | None,
    typer.Option("--clinic-phone", envvar="AFTERCAL_CLINIC_PHONE", help="Clinic phone shown in every reminder."),
]
ClinicUrlOpt = Annotated[
    str | None,
    typer.Option("--clinic-url", envvar="AFTERCAL_CLINIC_URL", help="Clinic web page, set as each event's URL."),
]
SequenceOpt = Annotated[
    int,
    typer.Option("--sequence", min=0, help="iCalendar SEQUENCE; raise it when re-sending a changed plan as a file."),
]


def _clock_option(value: str, flag: str) -> time:
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise InputError(f"{flag} {value!r}: use HH:MM, e.g. 09:00") from None
    return parsed.replace(second=0, microsecond=0)


def _quiet_option(value: str) -> QuietHours:
    if value.strip().lower() == "off":
        return QuietHours(time(0), time(0))
    start, sep, end = value.partition("-")
    if not sep:
        raise InputError(f"--quiet {value!r}: use HH:MM-HH:MM, e.g. 21:00-08:00, or off")
    return QuietHours(_clock_option(start.strip(), "--quiet"), _clock_option(end.strip(), "--quiet"))


def local_zone_name() -> str:
    """The machine's IANA zone: $TZ, then /etc/localtime's link, then /etc/timezone, then UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
        marker = "/zoneinfo/"
        if marker in target:
            return target.split(marker, 1)[1]
    except OSError:
        pass
    try:
        return Path("/etc/timezone").read_text(encoding="utf-8").strip() or "UTC"
    except OSError:
        return "UTC"


def build_cli_plan(
    protocol: str,
    at: str,
    tz: str | None,
    treatment_id: str | None,
    *,
    discreet: bool = False,
    patient_name: str | None = None,
    morning: str = "09:00",
    quiet: str = "21:00-08:00",
    clinic_name: str | None = None,
    clinic_phone: str | None = None,
    clinic_url: str | None = None,
    sequence: int = 0,
) -> CarePlan:
    """The plan for one set of command-line options (shared by plan, show and publish)."""
    options = PlanOptions(
        morning=_clock_option(morning, "--morning"),
        quiet=_quiet_option(quiet),
        discreet=discreet,
        patient_name=patient_name or None,
        clinic=Clinic(name=clinic_name, phone=clinic_phone, url=clinic_url),
        sequence=sequence,
    )
    return make_plan(protocol, at, tz or local_zone_name(), treatment_id=treatment_id, options=options)


def now_stamp() -> datetime:
    """The clock for DTSTAMP: SOURCE_DATE_EPOCH when set (reproducible files), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC)
        except (ValueError, OverflowError, OSError):
            raise InputError(f"SOURCE_DATE_EPOCH {epoch!r} is not a Unix time in seconds") from None
    return datetime.now(UTC)


# ---- commands -------------------------------------------------------------------------------------


@app.command()
def plan(
    protocol: ProtocolArg,
    at: AtOpt,
    tz: TzOpt = None,
    treatment_id: IdOpt = None,
    output: Annotated[str, typer.Option("-o", "--output", help="File to write, or - for standard output.")] = "-",
    discreet: DiscreetOpt = False,
    patient_name: PatientOpt = None,
    morning: MorningOpt = "09:00",
    quiet: QuietOpt = "21:00-08:00",
    clinic_name: ClinicNameOpt = None,
    clinic_phone: ClinicPhoneOpt = None,
    clinic_url: ClinicUrlOpt = None,
    sequence: SequenceOpt = 0,
) -> None:
    """Write a treatment's aftercare as an iCalendar (.ics) file.

    Example:

        aftercal plan microneedling --at 2026-11-24T10:00 --tz America/New_York -o care.ics
    """
    from calendars.ics import render_ics
    from reminders.files import write_atomic

    care = build_cli_plan(
        protocol, at, tz, treatment_id, discreet=discreet, patient_name=patient_name, morning=morning,
        quiet=quiet, clinic_name=clinic_name, clinic_phone=clinic_phone, clinic_url=clinic_url, sequence=sequence,
    )  # fmt: skip
    data = render_ics(care, stamp=now_stamp())
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    write_atomic(output, data)
    typer.echo(f"Wrote {len(care.reminders)} events to {output}", err=True)


@app.command()
def show(
    protocol: ProtocolArg,
    at: AtOpt,
    tz: TzOpt = None,
    treatment_id: IdOpt = None,
    discreet: DiscreetOpt = False,
    patient_name: PatientOpt = None,
    morning: MorningOpt = "09:00",
    quiet: QuietOpt = "21:00-08:00",
) -> None:
    """Print the same plan as a readable timeline.

    Example:

        aftercal show microneedling --at 2026-11-24T10:00 --tz Europe/Paris
    """
    from rich.console import Console
    from rich.table import Table

    care = build_cli_plan(
        protocol, at, tz, treatment_id, discreet=discreet, patient_name=patient_name, morning=morning, quiet=quiet
    )
    table = Table(title=f"{care.calendar_name} ({care.zone.key})", title_justify="left")
    table.add_column("Day", justify="right")
    table.add_column("When")
    table.add_column("Reminder")
    table.add_column("Alarm")
    day0 = care.start.date()
    for reminder in care.reminders:
        if reminder.all_day:
            assert not isinstance(reminder.start, datetime) and not isinstance(reminder.end, datetime)
            first = (reminder.start - day0).days
            last = (reminder.end - day0).days - 1
            day = f"{first}-{last}"
            when = f"{reminder.start:%a %d %b} to {reminder.end.fromordinal(reminder.end.toordinal() - 1):%a %d %b}"
        else:
            assert isinstance(reminder.start, datetime)
            day = str((reminder.start.date() - day0).days)
            when = f"{reminder.start:%a %d %b %Y %H:%M %Z}"
        alarm = "yes" if reminder.alarm_text else "-"
        title = reminder.title + (f"\n[dim]{reminder.note}[/dim]" if reminder.note else "")
        table.add_row(day, when, title, alarm)
    Console().print(table)


@app.command()
def protocols() -> None:
    """List the protocols shipped with aftercal.

    Example:

        aftercal protocols
    """
    for name in shipped_protocols():
        proto = load_protocol(name)
        typer.echo(f"{proto.id}\t{proto.version}\t{proto.name}: {proto.summary}")


@protocol_app.command("check")
def protocol_check(
    file: Annotated[str, typer.Argument(help="Path of a protocol .toml file (or a shipped name).")],
) -> None:
    """Validate a protocol file against the schema.

    Example:

        aftercal protocol check my-clinic/microneedling.toml
    """
    proto = load_protocol(file)
    missing = proto.uncarried_seed_items()
    if missing:
        raise InputError(f"{proto.origin}: seed item(s) carried by no step: {', '.join(missing)}")
    typer.echo(
        f"{proto.origin}: OK ({proto.id} {proto.version}, {len(proto.steps)} steps, {len(proto.seed)} seed items)"
    )


# ---- publishing, shared by every channel -------------------------------------------------------------

FromOpt = Annotated[
    Path | None,
    typer.Option(
        "--from",
        help="CSV of treatments (columns id,protocol,start,zone[,calendar]) instead of PROTOCOL/--at.",
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print what would change; change nothing.")]


@dataclass
class PublishJob:
    """One treatment to publish: its plan and the calendar it goes to (None: the command's default)."""

    label: str
    plan: CarePlan
    calendar: str | None


def collect_jobs(
    protocol: str | None,
    at: str | None,
    tz: str | None,
    treatment_id: str | None,
    from_csv: Path | None,
    **plan_options: Any,
) -> tuple[list[PublishJob], int]:
    """Plans from PROTOCOL/--at or from a CSV; bad CSV rows are reported and skipped.

    Returns the jobs and the number of rows that failed.
    """
    from reminders.appointments import BadRow, read_appointments

    if from_csv is None:
        if not protocol or not at:
            raise InputError("give PROTOCOL and --at, or --from appointments.csv")
        care = build_cli_plan(protocol, at, tz, treatment_id, **plan_options)
        return [PublishJob(care.treatment_id, care, None)], 0
    if protocol or at or treatment_id:
        raise InputError("--from replaces PROTOCOL, --at and --id: give one or the other")
    jobs: list[PublishJob] = []
    failed = 0
    for row in read_appointments(from_csv):
        if isinstance(row, BadRow):
            typer.echo(f"aftercal: error: {from_csv}: line {row.line}: {row.message} (row skipped)", err=True)
            failed += 1
            continue
        try:
            care = build_cli_plan(row.protocol, row.start, row.zone, row.treatment_id, **plan_options)
        except InputError as exc:
            typer.echo(f"aftercal: error: {from_csv}: line {row.line}: {exc} (row skipped)", err=True)
            failed += 1
            continue
        jobs.append(PublishJob(row.treatment_id, care, row.calendar))
    return jobs, failed


def print_actions(label: str, actions: Any) -> None:
    """--dry-run output: one line per event that would change, then counts."""
    for reminder in actions.create:
        typer.echo(f"{label}: would create {reminder.key}")
    for reminder, _held in actions.update:
        typer.echo(f"{label}: would update {reminder.key}")
    for held in actions.delete:
        typer.echo(f"{label}: would delete {held.uid}")
    typer.echo(
        f"{label}: would create {len(actions.create)}, update {len(actions.update)}, "
        f"delete {len(actions.delete)}, leave {len(actions.unchanged)} unchanged"
    )


# ---- CalDAV commands (issue 3): `publish caldav`, `unpublish caldav` ---------------------------------
# (end of CalDAV commands)

# ---- Google commands (issue 4): `google login`, `publish google`, `unpublish google` -----------------
# (end of Google commands)

# ---- Feed commands (issue 5): `treatments ...`, `serve` ---------------------------------------------
# (end of feed commands)


def main() -> None:
    """Console entry point."""
    app()
