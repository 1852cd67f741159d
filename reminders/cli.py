"""The `aftercal` command line: the only module that imports typer or rich.

It converts arguments, calls the engine and a channel, and prints. Every AftercalError is caught
once, in `_Root.invoke`, and printed as one line (the traceback only with --debug).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from reminders import make_plan
from reminders.errors import AftercalError, InputError, ZoneError
from reminders.protocol import load_protocol, shipped_protocols
from reminders.schedule import CarePlan, Clinic, PlanOptions, get_patient_zone, parse_clock, parse_quiet_hours


@dataclass
class _State:
    debug: bool = False


# Libraries of the optional extras (pyproject.toml), imported only by the commands that need them.
_EXTRA_OF_MODULE = {
    "caldav": "caldav",
    "keyring": "caldav",
    "googleapiclient": "google",
    "google_auth_oauthlib": "google",
    "google_auth_httplib2": "google",
    "google": "google",
    "uvicorn": "serve",
    "starlette": "serve",
    "segno": "serve",
    "psycopg": "serve",
}


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
        except ModuleNotFoundError as exc:
            extra = _EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
            if extra is None or (isinstance(ctx.obj, _State) and ctx.obj.debug):
                raise
            typer.echo(
                f"aftercal: error: this command needs the optional '{extra}' dependencies ({exc.name} is missing): "
                f"pip install 'aftercal[{extra}]' (from a clone: pip install '.[{extra}]')",
                err=True,
            )
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("aftercal: interrupted", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (`aftercal ... | head`): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception as exc:
            mro = {klass.__name__ for klass in type(exc).__mro__}
            if "UsageError" in mro and "NoArgsIsHelpError" not in mro:
                # A wrong or missing option: one line, like every other input error.
                where = getattr(getattr(exc, "ctx", None), "command_path", "aftercal")
                typer.echo(f"aftercal: error: {exc.format_message()} (see `{where} --help`)", err=True)  # type: ignore[attr-defined]
                raise typer.Exit(2) from None
            # Other exits belong to click/typer; anything else is a bug: one line, no locals
            # (they may hold secrets), the traceback with --debug.
            if type(exc).__module__.split(".")[0] in ("click", "typer") or (
                isinstance(ctx.obj, _State) and ctx.obj.debug
            ):
                raise
            first_line = (str(exc).splitlines() or [""])[0][:200]
            typer.echo(
                f"aftercal: internal error: {type(exc).__name__}: {first_line} (run with --debug before the command "
                "for the traceback, and please report it)",
                err=True,
            )
            raise typer.Exit(1) from None


def split_examples(help_text: str) -> tuple[str, list[str]]:
    """A docstring's prose and the command lines of its `Example:` section (the last section)."""
    head, marker, tail = help_text.partition("\n\nExample:\n")
    if not marker:
        return help_text, []
    return head.rstrip(), [line.strip() for line in tail.splitlines() if line.strip()]


class _Command(TyperCommand):
    """A command whose docstring's `Example:` section is printed last, verbatim, one command per line.

    Typer's markdown help reflows that section (and drops the `\\` that ends a continued line) and
    rich hard-wraps long lines at the terminal's width: a pasted example then ran without half of
    its options. Here every example is one complete command, written as is: a terminal soft-wraps
    a long one, and copying it gives back one line.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        prose, examples = split_examples(kwargs.get("help") or "")
        if examples:
            kwargs["help"] = prose
        super().__init__(*args, **kwargs)
        self.examples = examples

    def format_help(self, ctx: Any, formatter: Any) -> None:  # typer's own (vendored) click types
        super().format_help(ctx, formatter)  # with rich, printed at once; the formatter's text follows it
        if self.examples:
            formatter.write("\n Example:\n\n")
            for line in self.examples:
                formatter.write(f"   {line}\n")


_F = TypeVar("_F", bound=Callable[..., Any])


class _App(typer.Typer):
    """typer.Typer whose commands print their examples verbatim (see _Command)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[_F], _F]:
        kwargs.setdefault("cls", _Command)
        decorator: Callable[[_F], _F] = super().command(*args, **kwargs)
        return decorator


app = _App(
    rich_markup_mode="markdown",
    cls=_Root,
    name="aftercal",
    help="Turn a skin treatment into a calendar of aftercare reminders.",
    no_args_is_help=True,
    # Locals may hold passwords and tokens: never print them.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _sub_app(help: str) -> typer.Typer:
    return _App(rich_markup_mode="markdown", help=help, no_args_is_help=True)


protocol_app = _sub_app("Work with protocol files.")
app.add_typer(protocol_app, name="protocol")
publish_app = _sub_app("Push a care plan's events to a calendar server (idempotent).")
app.add_typer(publish_app, name="publish")
unpublish_app = _sub_app("Remove exactly one treatment's events from a calendar server.")
app.add_typer(unpublish_app, name="unpublish")
google_app = _sub_app("Google Calendar sign-in.")
app.add_typer(google_app, name="google")
treatments_app = _sub_app("The clinic's treatment store behind subscription feeds.")
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
    str | None,
    typer.Option(
        "--tz", help="The patient's IANA city zone, e.g. Europe/Paris (default: this machine's zone, said on stderr)."
    ),
]
AllowFixedZoneOpt = Annotated[
    bool,
    typer.Option(
        "--allow-fixed-zone",
        help="Accept an offset or abbreviation (UTC, EST, Etc/GMT+5, PST8PDT...) as the patient's zone; "
        "refused otherwise, as no place's daylight saving time applies to it.",
    ),
]
IdOpt = Annotated[
    str | None,
    typer.Option(
        "--id",
        help="Treatment id; the same id updates the same events (default: derived from protocol, start and zone).",
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
    typer.Option(
        "--sequence",
        min=0,
        max=2**31 - 1,
        help="iCalendar SEQUENCE; raise it when re-sending a changed plan as a file.",
    ),
]


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


def patient_zone(tz: str | None, *, allow_fixed: bool = False) -> str:
    """The patient's zone name: --tz, else the machine's zone (said on stderr); offsets refused unless allowed."""
    if tz is not None:
        return get_patient_zone(tz, allow_fixed=allow_fixed).key
    machine_zone = local_zone_name()
    try:
        zone = get_patient_zone(machine_zone, allow_fixed=allow_fixed)
    except ZoneError as exc:
        raise ZoneError(f"{exc} (this is the machine's zone, from $TZ or /etc/localtime: pass --tz)") from None
    typer.echo(f"aftercal: no --tz given; using this machine's zone {zone.key}", err=True)
    return zone.key


def warn_if_past(care: CarePlan, where: str = "") -> None:
    """A warning on stderr (not an error: clinics enter yesterday's treatments) for a start in the past.

    Commands call it once their work is done, so that a failing command still says one line only.
    """
    now = datetime.now(UTC)
    if care.start >= now:
        return
    today = now.astimezone(care.zone).date()
    over = 0
    for reminder in care.reminders:
        if isinstance(reminder.start, datetime):
            over += reminder.start < now
        else:
            over += reminder.end <= today
    typer.echo(
        f"aftercal: warning: {where}the treatment start {care.start:%Y-%m-%d %H:%M} {care.zone.key} is in the past: "
        f"{over} of {len(care.reminders)} reminders are already over ({'check its start' if where else 'check --at'} "
        "if that is a typo)",
        err=True,
    )


def build_cli_plan(
    protocol: str,
    at: str,
    tz: str | None,
    treatment_id: str | None,
    *,
    allow_fixed_zone: bool = False,
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
        morning=parse_clock(morning, "--morning"),
        quiet=parse_quiet_hours(quiet),
        discreet=discreet,
        patient_name=patient_name or None,
        clinic=Clinic(name=clinic_name, phone=clinic_phone, url=clinic_url),
        sequence=sequence,
    )
    zone = patient_zone(tz, allow_fixed=allow_fixed_zone)
    return make_plan(protocol, at, zone, treatment_id=treatment_id, options=options, allow_fixed_zone=allow_fixed_zone)


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
    allow_fixed_zone: AllowFixedZoneOpt = False,
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
        protocol, at, tz, treatment_id, allow_fixed_zone=allow_fixed_zone, discreet=discreet,
        patient_name=patient_name, morning=morning, quiet=quiet, clinic_name=clinic_name, clinic_phone=clinic_phone,
        clinic_url=clinic_url, sequence=sequence,
    )  # fmt: skip
    data = render_ics(care, stamp=now_stamp())
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomic(output, data)
        typer.echo(f"Wrote {len(care.reminders)} events to {output}", err=True)
    warn_if_past(care)


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
    allow_fixed_zone: AllowFixedZoneOpt = False,
) -> None:
    """Print the same plan as a readable timeline.

    Example:

        aftercal show microneedling --at 2026-11-24T10:00 --tz Europe/Paris
    """
    from rich.console import Console
    from rich.table import Table

    care = build_cli_plan(
        protocol, at, tz, treatment_id, allow_fixed_zone=allow_fixed_zone, discreet=discreet,
        patient_name=patient_name, morning=morning, quiet=quiet,
    )  # fmt: skip
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
    warn_if_past(care)


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


@protocol_app.command("trace")
def protocol_trace(
    file: Annotated[str, typer.Argument(help="A shipped protocol name or a path to a .toml file.")],
) -> None:
    """Show how each source item reaches the patient: its facts and the steps that carry it.

    Example:

        aftercal protocol trace microneedling
    """
    proto = load_protocol(file)
    for key, text in proto.seed.items():
        typer.echo(f"{key}: {text}")
        facts = proto.facts.get(key, ())
        if facts:
            typer.echo(f"  facts: {'; '.join(facts)}")
        for step in proto.carriers(key):
            typer.echo(f"  -> {step.id} ({step.timing()}): {step.title}")


# ---- publishing, shared by every channel -------------------------------------------------------------

FromOpt = Annotated[
    Path | None,
    typer.Option(
        "--from",
        help="CSV of treatments (columns id,protocol,start,zone[,calendar]) instead of PROTOCOL/--at.",
    ),
]
# PROTOCOL and --at for commands that also take --from (a CSV replaces both).
BatchProtocolArg = Annotated[
    str | None, typer.Argument(help="A shipped protocol name or a .toml path (omit with --from).")
]
BatchAtOpt = Annotated[str | None, typer.Option("--at", help="Treatment start in local time, e.g. 2026-11-24T10:00.")]
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

    Returns the jobs and the number of rows that failed. A CSV row starting in the past is warned
    about here; a single treatment by `warn_single_job` once published.
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
        warn_if_past(care, f"{from_csv}: line {row.line}: ")  # a batch reports each row as it is read
        jobs.append(PublishJob(row.treatment_id, care, row.calendar))
    return jobs, failed


def warn_single_job(jobs: list[PublishJob], from_csv: Path | None) -> None:
    """The past-start warning of a PROTOCOL/--at publish, once it is done (CSV rows were warned about)."""
    if from_csv is None:
        for job in jobs:
            warn_if_past(job.plan)


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


def report_job(label: str, actions: Any, summary: Any, *, dry_run: bool) -> None:
    """One treatment's outcome: the dry-run actions, or the summary line."""
    if dry_run:
        print_actions(label, actions)
    else:
        typer.echo(f"{label}: {summary.line()}")
    if not (actions.create or actions.update or actions.delete or actions.unchanged):
        # Most often a mistyped id or the wrong calendar: say so rather than look like success.
        typer.echo(f"{label}: no events of this treatment were found in that calendar", err=True)


def report_total(total: Any, *, published: int, failed: int) -> None:
    """The closing line of a batch; `failed` counts failed treatments and skipped CSV rows alike."""
    typer.echo(f"total: {published} treatment(s) done, {failed} failed: {total.line()}")


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


# ---- CalDAV commands (issue 3): `publish caldav`, `unpublish caldav` ---------------------------------

CalDavUrlOpt = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="AFTERCAL_CALDAV_URL",
        help="CalDAV server base URL; discovery starts there (iCloud: https://caldav.icloud.com/).",
    ),
]
CalDavUserOpt = Annotated[
    str, typer.Option("--user", envvar="AFTERCAL_CALDAV_USER", help="Account user name (iCloud: the Apple ID).")
]
CalDavCalendarOpt = Annotated[
    str,
    typer.Option(
        "--calendar",
        envvar="AFTERCAL_CALDAV_CALENDAR",
        help="Calendar display name, or its URL (a URL skips discovery).",
    ),
]
CalDavNetrcOpt = Annotated[
    Path | None, typer.Option("--netrc", help="netrc-style file to read the password from (default: ~/.netrc).")
]
CalDavTimeoutOpt = Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for one HTTP answer.")]
CalDavRetriesOpt = Annotated[
    int,
    typer.Option("--retries", min=1, max=20, help="Attempts per request on network errors, timeouts, 5xx and 429."),
]


def _caldav_connect(url: str, user: str, netrc_file: Path | None, timeout: float, retries: int) -> Any:
    from calendars.caldav import CalDavConnection, RetryPolicy, check_base_url, resolve_password

    base = check_base_url(url)
    password = resolve_password(user, base, netrc_file=netrc_file)
    base_delay = env_seconds("AFTERCAL_CALDAV_BACKOFF", 0.5)
    retry = RetryPolicy(attempts=retries, base_delay=base_delay, max_delay=max(8.0, base_delay))
    return CalDavConnection(base, user, password, timeout=timeout, retry=retry)


def _caldav_run(
    conn: Any,
    work: list[tuple[str, str, CarePlan | None]],
    *,
    create_calendar: bool,
    dry_run: bool,
    batch: bool,
    skipped: int = 0,
) -> int:
    """Publish (plan) or unpublish (plan None) each (label, calendar, plan); returns how many failed.

    `skipped` (bad CSV rows, already reported) only counts in the closing total line.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from calendars.base import SyncSummary, sync_plan, unpublish_treatment
    from calendars.caldav import CalDavPublisher
    from reminders.errors import AuthError
    from reminders.schedule import treatment_tag

    console = Console(stderr=True)
    total = SyncSummary()
    failed = 0
    publishers: dict[str, Any] = {}
    tags: dict[str, set[str]] = {}  # per calendar: the treatments of this run
    for label, calendar, care in work:
        tags.setdefault(calendar, set()).add(care.plan_tag if care is not None else treatment_tag(label))
    stamp = now_stamp()
    for label, calendar, care in work:
        problem: AftercalError | None = None
        # One live progress line per treatment, gone before its result line is printed.
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} written"),
            console=console, transient=True, disable=not console.is_terminal,
        ) as bar:  # fmt: skip
            task = bar.add_task(f"{label}: reading {calendar}", total=None)

            def advance(action: str, key: str, bar: Any = bar, task: Any = task, label: str = label) -> None:
                bar.update(task, advance=1, description=f"{label}: {action} {key}")

            try:
                if calendar not in publishers:
                    cal_url = conn.find_calendar(calendar, create=create_calendar, dry_run=dry_run)
                    publishers[calendar] = CalDavPublisher(conn, cal_url, calendar_label=calendar, stamp=stamp)
                    if len(tags[calendar]) > 1:
                        # A batch reads the calendar once instead of one filtered query per treatment.
                        publishers[calendar].prefetch(tags[calendar])
                publisher = publishers[calendar]
                if care is not None:
                    actions, summary = sync_plan(publisher, care, dry_run=dry_run, progress=advance)
                else:  # unpublish: the label is the treatment id
                    actions, summary = unpublish_treatment(publisher, label, dry_run=dry_run, progress=advance)
            except AuthError:
                raise  # the same credentials would fail every other treatment too
            except AftercalError as exc:
                if not batch:
                    raise
                problem = exc
        if problem is not None:
            typer.echo(f"aftercal: error: {label}: {problem}", err=True)
            failed += 1
            continue
        if publisher.calendar_url is None:
            typer.echo(f"{label}: would create calendar {calendar!r}")
        report_job(label, actions, summary, dry_run=dry_run)
        total.add(summary)
    if batch and not dry_run:
        report_total(total, published=len(work) - failed, failed=failed + skipped)
    return failed


@publish_app.command("caldav")
def publish_caldav(
    url: CalDavUrlOpt,
    user: CalDavUserOpt,
    calendar: CalDavCalendarOpt,
    protocol: BatchProtocolArg = None,
    at: BatchAtOpt = None,
    tz: TzOpt = None,
    treatment_id: IdOpt = None,
    from_csv: FromOpt = None,
    create_calendar: Annotated[
        bool, typer.Option("--create-calendar", help="Make the calendar when no calendar has that name.")
    ] = False,
    netrc_file: CalDavNetrcOpt = None,
    dry_run: DryRunOpt = False,
    discreet: DiscreetOpt = False,
    patient_name: PatientOpt = None,
    morning: MorningOpt = "09:00",
    quiet: QuietOpt = "21:00-08:00",
    clinic_name: ClinicNameOpt = None,
    clinic_phone: ClinicPhoneOpt = None,
    clinic_url: ClinicUrlOpt = None,
    sequence: SequenceOpt = 0,
    allow_fixed_zone: AllowFixedZoneOpt = False,
    timeout: CalDavTimeoutOpt = 20.0,
    retries: CalDavRetriesOpt = 5,
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
    jobs, failed = collect_jobs(
        protocol, at, tz, treatment_id, from_csv, allow_fixed_zone=allow_fixed_zone, discreet=discreet,
        patient_name=patient_name, morning=morning, quiet=quiet, clinic_name=clinic_name, clinic_phone=clinic_phone,
        clinic_url=clinic_url, sequence=sequence,
    )  # fmt: skip
    with _caldav_connect(url, user, netrc_file, timeout, retries) as conn:
        work: list[tuple[str, str, CarePlan | None]] = [(job.label, job.calendar or calendar, job.plan) for job in jobs]
        failed += _caldav_run(
            conn, work, create_calendar=create_calendar, dry_run=dry_run, batch=from_csv is not None, skipped=failed
        )
    warn_single_job(jobs, from_csv)
    if failed:
        raise typer.Exit(1)


@unpublish_app.command("caldav")
def unpublish_caldav(
    url: CalDavUrlOpt,
    user: CalDavUserOpt,
    calendar: CalDavCalendarOpt,
    treatment_ids: Annotated[
        list[str], typer.Option("--id", help="Treatment id whose events to remove (repeat for several).")
    ],
    netrc_file: CalDavNetrcOpt = None,
    dry_run: DryRunOpt = False,
    timeout: CalDavTimeoutOpt = 20.0,
    retries: CalDavRetriesOpt = 5,
) -> None:
    """Remove exactly one treatment's events from a CalDAV calendar; nothing else is touched.

    The password comes from $AFTERCAL_CALDAV_PASSWORD, the keyring or a netrc file, as for
    `publish caldav`.

    Example:

        AFTERCAL_CALDAV_PASSWORD=... aftercal unpublish caldav --id T-1001 --url https://caldav.example.com/ --user clinic --calendar aftercare
    """  # noqa: E501 - one line: pasted examples must not depend on a trailing backslash
    with _caldav_connect(url, user, netrc_file, timeout, retries) as conn:
        work: list[tuple[str, str, CarePlan | None]] = [(tid, calendar, None) for tid in treatment_ids]
        failed = _caldav_run(conn, work, create_calendar=False, dry_run=dry_run, batch=len(work) > 1)
    if failed:
        raise typer.Exit(1)


# (end of CalDAV commands)

# ---- Google commands (issue 4): `google login`, `publish google`, `unpublish google` -----------------

_GOOGLE_CATCH = (
    "Reminders belong to the signed-in account: with a service account (--credentials or "
    "GOOGLE_APPLICATION_CREDENTIALS) the events arrive, but their popups never ring the patient's phone. "
    "For popups on the patient's phone and watch, publish into a calendar of the patient's own account "
    "(`aftercal google login` as the patient)."
)
GoogleCalendarIdOpt = Annotated[
    str,
    typer.Option(
        "--calendar-id",
        envvar="AFTERCAL_GOOGLE_CALENDAR_ID",
        help="Calendar to write to: 'primary' (the signed-in account's) or a calendar id "
        "(...@group.calendar.google.com).",
    ),
]
GoogleCredentialsOpt = Annotated[
    Path | None,
    typer.Option(
        "--credentials",
        help="Service-account (or authorized-user) JSON key file (default: $GOOGLE_APPLICATION_CREDENTIALS, "
        "else the token of `aftercal google login`). Service-account popups never ring a patient's phone.",
    ),
]
GoogleEndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--api-endpoint",
        envvar="AFTERCAL_GOOGLE_API_ENDPOINT",
        help="Base URL of a Calendar-v3-compatible API (the client uses URL + 'calendar/v3/' and URL + "
        "'batch/calendar/v3'); default https://www.googleapis.com/.",
    ),
]
GoogleNoAuthOpt = Annotated[
    bool,
    typer.Option("--no-auth", help="Send no credentials (only allowed with an --api-endpoint on loopback, for tests)."),
]


def _google_connect(api_endpoint: str | None, credentials: Path | None, no_auth: bool, app_created: bool) -> Any:
    from calendars.gcal import SCOPE_APP_CREATED, SCOPE_EVENTS, connect

    backoff_base = env_seconds("AFTERCAL_GOOGLE_BACKOFF", 1.0)
    scopes = [SCOPE_APP_CREATED] if app_created else [SCOPE_EVENTS]
    return connect(
        api_endpoint=api_endpoint,
        credentials_file=credentials,
        no_auth=no_auth,
        scopes=scopes,
        backoff_base=backoff_base,
    )


def _google_run(
    client: Any, work: list[tuple[str, str, CarePlan | None]], *, dry_run: bool, batch: bool, skipped: int = 0
) -> int:
    """Publish (plan) or unpublish (plan None) each (label, calendar id, plan); returns how many failed.

    `skipped` (bad CSV rows, already reported) only counts in the closing total line.

    One treatment goes through calendars.base (sync_plan / unpublish_treatment); several go through
    `sync_many`, which lists them all in one batch request and shares the write batches.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from calendars.base import SyncSummary, sync_plan, unpublish_treatment
    from calendars.gcal import Job, JobResult

    console = Console(stderr=True)
    total = SyncSummary()
    failed = 0
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} written"),
        console=console, transient=True, disable=not console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task(f"reading {len(work)} treatment(s)", total=None)

        def advance(action: str, key: str) -> None:
            bar.update(task, advance=1, description=f"{action} {key}")

        if len(work) == 1:
            label, calendar_id, care = work[0]
            publisher = client.for_calendar(calendar_id)
            if care is not None:
                actions, summary = sync_plan(publisher, care, dry_run=dry_run, progress=advance)
            else:  # unpublish: the label is the treatment id
                actions, summary = unpublish_treatment(publisher, label, dry_run=dry_run, progress=advance)
            job = Job(label, calendar_id, care, care.treatment_id if care is not None else label)
            results = [JobResult(job, actions, summary)]
        else:
            jobs = [Job(name, cal, plan, plan.treatment_id if plan else name) for name, cal, plan in work]
            results = client.sync_many(jobs, dry_run=dry_run, progress=advance)
    for result in results:
        label = result.job.label
        if result.error is not None:
            if not batch:
                raise result.error
            typer.echo(f"aftercal: error: {label}: {result.error}", err=True)
            failed += 1
            continue
        report_job(label, result.actions, result.summary, dry_run=dry_run)
        total.add(result.summary)
    if batch and not dry_run:
        report_total(total, published=len(work) - failed, failed=failed + skipped)
    return failed


@google_app.command("login")
def google_login(
    client_secrets: Annotated[
        Path,
        typer.Option("--client-secrets", help="OAuth client JSON of a 'Desktop app' client (Google Cloud console)."),
    ],
    app_created: Annotated[
        bool,
        typer.Option(
            "--app-created-only",
            help="Ask only for calendar.app.created: aftercal may then write only to calendars it creates "
            "(publish with --create-calendar NAME); the default scope is calendar.events.",
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
    An OAuth app left in "Testing" status gets refresh tokens that expire after 7 days.

    Reminders belong to the signed-in account: sign in as the account whose phone should ring (a
    service account's popups never ring a patient's phone).

    Example:

        aftercal google login --client-secrets client_secret.json
    """
    from calendars.gcal import login

    path = login(client_secrets, app_created=app_created, open_browser=not no_browser, port=port)
    typer.echo(f"Signed in; token stored in {path} (readable by you only)", err=True)


@publish_app.command("google")
def publish_google(
    protocol: BatchProtocolArg = None,
    at: BatchAtOpt = None,
    tz: TzOpt = None,
    treatment_id: IdOpt = None,
    from_csv: FromOpt = None,
    calendar_id: GoogleCalendarIdOpt = "primary",
    create_calendar: Annotated[
        str | None,
        typer.Option(
            "--create-calendar",
            help="Publish into a calendar of this name that aftercal creates (and reuses on later runs); "
            "works with the narrow calendar.app.created scope.",
        ),
    ] = None,
    credentials: GoogleCredentialsOpt = None,
    api_endpoint: GoogleEndpointOpt = None,
    no_auth: GoogleNoAuthOpt = False,
    dry_run: DryRunOpt = False,
    discreet: DiscreetOpt = False,
    patient_name: PatientOpt = None,
    morning: MorningOpt = "09:00",
    quiet: QuietOpt = "21:00-08:00",
    clinic_name: ClinicNameOpt = None,
    clinic_phone: ClinicPhoneOpt = None,
    clinic_url: ClinicUrlOpt = None,
    allow_fixed_zone: AllowFixedZoneOpt = False,
) -> None:
    """Push a treatment's reminders to Google Calendar, in batch requests.

    Idempotent: running it again writes nothing that is unchanged; the same --id with a new --at
    updates the events in place and deletes steps that no longer apply. Only events that aftercal
    tagged for this treatment are touched. A run that stopped half-way converges when run again.
    With --from appointments.csv (columns id,protocol,start,zone[,calendar]) a day's treatments go
    in one run; a bad row is reported with its line number and only that row is skipped.

    Credentials: --credentials FILE or $GOOGLE_APPLICATION_CREDENTIALS (a service-account key),
    else the token stored by `aftercal google login`.

    Reminders belong to the signed-in account: a service account's popups never ring the
    patient's phone. Sign in as the patient (or as the clinic, for the clinic's own calendar).

    Example:

        aftercal publish google microneedling --at 2026-11-24T10:00 --tz America/Chicago --id T-1001 --calendar-id primary
        aftercal publish google --from examples/appointments.csv
    """  # noqa: E501 - one line: pasted examples must not depend on a trailing backslash
    jobs, failed = collect_jobs(
        protocol, at, tz, treatment_id, from_csv, allow_fixed_zone=allow_fixed_zone, discreet=discreet,
        patient_name=patient_name, morning=morning, quiet=quiet, clinic_name=clinic_name, clinic_phone=clinic_phone,
        clinic_url=clinic_url,
    )  # fmt: skip
    with _google_connect(api_endpoint, credentials, no_auth, app_created=create_calendar is not None) as client:
        default_calendar = calendar_id
        if create_calendar is not None and jobs:
            if dry_run:
                typer.echo(f"would publish into the calendar named {create_calendar!r} (created if needed)")
            else:
                default_calendar = client.ensure_calendar(create_calendar, jobs[0].plan.zone.key)
                typer.echo(f"calendar {create_calendar!r}: {default_calendar}", err=True)
        work: list[tuple[str, str, CarePlan | None]] = [
            (job.label, job.calendar or default_calendar, job.plan) for job in jobs
        ]
        failed += _google_run(client, work, dry_run=dry_run, batch=from_csv is not None, skipped=failed)
    warn_single_job(jobs, from_csv)
    if failed:
        raise typer.Exit(1)


@unpublish_app.command("google")
def unpublish_google(
    treatment_ids: Annotated[
        list[str], typer.Option("--id", help="Treatment id whose events to remove (repeat for several).")
    ],
    calendar_id: GoogleCalendarIdOpt = "primary",
    credentials: GoogleCredentialsOpt = None,
    api_endpoint: GoogleEndpointOpt = None,
    no_auth: GoogleNoAuthOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Remove exactly one treatment's events from a Google calendar; nothing else is touched.

    Credentials as for `publish google`. Events already deleted count as done.

    Example:

        aftercal unpublish google --id T-1001 --calendar-id primary
    """
    with _google_connect(api_endpoint, credentials, no_auth, app_created=False) as client:
        targets: list[tuple[str, str, CarePlan | None]] = [(tid, calendar_id, None) for tid in treatment_ids]
        failed = _google_run(client, targets, dry_run=dry_run, batch=len(targets) > 1)
    if failed:
        raise typer.Exit(1)


# (end of Google commands)

# ---- Feed commands (issue 5): `treatments ...`, `serve` ---------------------------------------------

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="AFTERCAL_DB",
        help="Treatment database: a file path or a postgresql:// URL (default: clinic.db in the user data dir, "
        "or in $AFTERCAL_DATA_DIR).",
    ),
]
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


def _open_treatment_store(db: str | None) -> Any:
    from calendars.store import open_store

    return open_store(db)


def _print_links(treatment_id: str, token: str, base_url: str, *, qr: Path | None, show_qr: bool) -> None:
    """The one moment a link exists in clear: print it (Feed:/Subscribe:/Page: lines) and its QR."""
    from calendars.feed import feed_links

    links = feed_links(base_url, token)
    # The links first: whatever happens to the QR code below, they have been shown.
    typer.echo(f"Feed: {links.feed}")
    typer.echo(f"Subscribe: {links.webcal}")
    typer.echo(f"Page: {links.page}")
    if show_qr:
        from calendars.qr import qr_terminal

        typer.echo(qr_terminal(links.page), nl=False)
    if qr is not None:
        from calendars.qr import write_qr

        write_qr(links.page, qr)
        typer.echo(f"Wrote the QR code of the page link to {qr}", err=True)
    typer.echo(
        f"Give these links to the patient now: the store keeps only a hash of them. "
        f"`aftercal treatments link {treatment_id} --rotate` makes new ones.",
        err=True,
    )


def _when(treatment: Any) -> str:
    return f"{treatment.start_local.replace('T', ' ')} {treatment.zone}"


@treatments_app.command("add")
def treatments_add(
    protocol: ProtocolArg,
    at: AtOpt,
    tz: TzOpt = None,
    treatment_id: IdOpt = None,
    discreet: DiscreetOpt = False,
    patient_name: Annotated[
        str | None,
        typer.Option("--patient-name", help="Keep the patient's name in the store, for `treatments list` only."),
    ] = None,
    name_in_feed: Annotated[
        bool, typer.Option("--name-in-feed", help="Also show --patient-name in the feed (off: the feed never names).")
    ] = False,
    morning: MorningOpt = "09:00",
    quiet: QuietOpt = "21:00-08:00",
    clinic_name: ClinicNameOpt = None,
    clinic_phone: ClinicPhoneOpt = None,
    clinic_url: ClinicUrlOpt = None,
    db: DbOpt = None,
    base_url: LinkBaseOpt = "http://127.0.0.1:8080",
    qr: QrFileOpt = None,
    no_qr: Annotated[bool, typer.Option("--no-qr", help="Do not draw the QR code in the terminal.")] = False,
    allow_fixed_zone: AllowFixedZoneOpt = False,
) -> None:
    """Store a treatment and print the patient's feed links (https, webcal, page) and a QR code.

    Example:

        aftercal treatments add microneedling --at 2026-11-24T10:00 --tz Europe/Madrid --id T-1001 --db clinic.db
    """
    from calendars.feed import check_base_url
    from calendars.store import StoredOptions

    check_base_url(base_url)
    if name_in_feed and not patient_name:
        raise InputError("--name-in-feed needs --patient-name")
    options = StoredOptions(
        discreet=discreet,
        morning=parse_clock(morning, "--morning").strftime("%H:%M"),
        quiet=quiet,
        clinic_name=clinic_name,
        clinic_phone=clinic_phone,
        clinic_url=clinic_url,
        patient_name=patient_name or None,
        name_in_feed=name_in_feed,
    )
    parse_quiet_hours(quiet)  # one-line error before anything is stored
    if qr is not None or not no_qr:
        from calendars.qr import preflight

        preflight(qr)
    zone = patient_zone(tz, allow_fixed=allow_fixed_zone)
    store = _open_treatment_store(db)
    try:
        treatment, token = store.add(protocol, at, zone, treatment_id, options, allow_fixed_zone=allow_fixed_zone)
        care = treatment.plan()
    finally:
        store.close()
    count = len(care.reminders)
    typer.echo(f"Added {treatment.treatment_id}: {treatment.protocol}, {_when(treatment)}, {count} reminders")
    _print_links(treatment.treatment_id, token, base_url, qr=qr, show_qr=not no_qr)
    warn_if_past(care)


@treatments_app.command("list")
def treatments_list(db: DbOpt = None) -> None:
    """List the stored treatments: id, status, revision (SEQUENCE), start, link state.

    Example:

        aftercal treatments list --db clinic.db
    """
    store = _open_treatment_store(db)
    try:
        rows = store.list()
    finally:
        store.close()
    if not rows:
        typer.echo("No treatments stored yet (add one with `aftercal treatments add`).", err=True)
        return
    table = [("ID", "STATUS", "REV", "START", "PROTOCOL", "LINK", "UPDATED (UTC)", "PATIENT")]
    for t in rows:
        table.append(
            (
                t.treatment_id,
                t.status,
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


@treatments_app.command("reschedule")
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
    if tz is not None:
        tz = get_patient_zone(tz, allow_fixed=allow_fixed_zone).key
    store = _open_treatment_store(db)
    try:
        treatment = store.reschedule(treatment_id, at, tz, allow_fixed_zone=allow_fixed_zone)
        care = treatment.plan()
    finally:
        store.close()
    typer.echo(
        f"Rescheduled {treatment.treatment_id} to {_when(treatment)} (SEQUENCE {treatment.revision}); "
        "subscribed calendars update at their next refresh."
    )
    warn_if_past(care)


@treatments_app.command("cancel")
def treatments_cancel(
    treatment_id: TreatmentIdArg,
    db: DbOpt = None,
) -> None:
    """Cancel a treatment: its feed shows the events as cancelled for a while (30 days), then none.

    Example:

        aftercal treatments cancel T-1001 --db clinic.db
    """
    store = _open_treatment_store(db)
    try:
        treatment = store.cancel(treatment_id)
    finally:
        store.close()
    typer.echo(
        f"Cancelled {treatment.treatment_id} (SEQUENCE {treatment.revision}): its feed marks every event "
        "cancelled so subscribed calendars remove them, then becomes empty (after 30 days by default)."
    )


@treatments_app.command("link")
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
) -> None:
    """Show a treatment's link state, or rotate (--rotate) or revoke (--revoke) its link.

    The store keeps only a hash of each link, so an existing link cannot be shown again: --rotate
    prints a new one (and writes its QR code with --qr FILE).

    Example:

        aftercal treatments link T-1001 --rotate --qr t-1001.svg --db clinic.db
    """
    from calendars.feed import check_base_url

    if rotate and revoke:
        raise InputError("give --rotate or --revoke, not both")
    if qr is not None and not rotate:
        raise InputError(
            f"the link of {treatment_id} is stored hashed and cannot be shown again: "
            f"use `aftercal treatments link {treatment_id} --rotate --qr {qr}` (the old link stops working)"
        )
    check_base_url(base_url)
    if rotate and (qr is not None or not no_qr):
        from calendars.qr import preflight

        preflight(qr)
    store = _open_treatment_store(db)
    try:
        if rotate:
            treatment, token = store.rotate_link(treatment_id)
        elif revoke:
            treatment = store.revoke_link(treatment_id)
        else:
            treatment = store.get(treatment_id)
    finally:
        store.close()
    if rotate:
        typer.echo(f"New link for {treatment.treatment_id}; the old link no longer works.")
        _print_links(treatment.treatment_id, token, base_url, qr=qr, show_qr=not no_qr)
    elif revoke:
        typer.echo(f"Revoked the link of {treatment.treatment_id}: it now answers 404. `--rotate` makes a new one.")
    elif treatment.has_link:
        assert treatment.link_created_at is not None
        typer.echo(
            f"{treatment.treatment_id} has an active link (made {treatment.link_created_at:%Y-%m-%d %H:%M} UTC). "
            "It is stored hashed and cannot be shown again: `--rotate` prints a new one (the old one stops working)."
        )
    else:
        typer.echo(f"{treatment.treatment_id} has no active link (revoked): `--rotate` makes a new one.")


@app.command()
def serve(
    db: DbOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8080,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="AFTERCAL_BASE_URL",
            help="Public address behind a reverse proxy, used in the landing page's links (default: http://HOST:PORT).",
        ),
    ] = None,
    cancelled_days: Annotated[
        int, typer.Option("--cancelled-days", min=0, help="Days a cancelled treatment's feed shows cancelled events.")
    ] = 30,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level: critical, error, warning, info, debug.")
    ] = "info",
) -> None:
    """Serve every stored treatment's subscription feed and landing page (uvicorn, until Ctrl-C).

    Example:

        aftercal serve --db clinic.db --host 127.0.0.1 --port 8080 --base-url https://care.example
    """
    from datetime import timedelta

    from calendars.feed import check_base_url, check_can_listen
    from calendars.feed import serve as run_server

    if log_level.lower() not in ("critical", "error", "warning", "info", "debug"):
        raise InputError(f"--log-level {log_level!r}: use critical, error, warning, info or debug")
    public = check_base_url(base_url) if base_url else None
    check_can_listen(host, port)
    typer.echo(f"Serving feeds on http://{host}:{port} (links: {public or f'http://{host}:{port}'})", err=True)
    run_server(
        db,
        host=host,
        port=port,
        base_url=public,
        cancelled_for=timedelta(days=cancelled_days),
        log_level=log_level.lower(),
    )


# (end of feed commands)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
