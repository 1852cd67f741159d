"""Care plans and protocols: the library twins of `aftercal plan`, `show`, `protocols` and `protocol ...`.

Nothing here prints: results are return values, problems are AftercalErrors (reminders.errors).
Channel modules are imported inside the functions that use them, so `import aftercal` stays light.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from reminders.errors import InputError, ZoneError
from reminders.files import write_atomic
from reminders.protocol import CareProtocol, Step, load_protocol, shipped_protocols
from reminders.schedule import (
    DEFAULT_MORNING,
    DEFAULT_QUIET,
    CarePlan,
    Clinic,
    EventIds,
    PlanOptions,
    get_patient_zone,
    parse_clock,
    parse_quiet_hours,
)


def plan_options(
    *,
    morning: str = DEFAULT_MORNING,
    quiet: str = DEFAULT_QUIET,
    discreet: bool = False,
    patient_name: str | None = None,
    clinic_name: str | None = None,
    clinic_phone: str | None = None,
    clinic_url: str | None = None,
    sequence: int = 0,
    ids: EventIds | None = None,
) -> PlanOptions:
    """PlanOptions from text as a person types it: `morning` "HH:MM", `quiet` "HH:MM-HH:MM" or "off".

    `ids`: `EventIds(clinic_secret)` for UIDs and tags keyed with the clinic secret (None: unkeyed).
    """
    return PlanOptions(
        ids=ids or EventIds(),
        morning=parse_clock(morning, "--morning"),
        quiet=parse_quiet_hours(quiet),
        discreet=discreet,
        patient_name=patient_name or None,
        clinic=Clinic(name=clinic_name, phone=clinic_phone, url=clinic_url),
        sequence=sequence,
    )


def local_zone_name() -> str:
    """The machine's IANA zone name: $TZ, then /etc/localtime's link, then /etc/timezone, then UTC."""
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


def machine_zone(*, allow_fixed: bool = False) -> str:
    """This machine's zone, checked as a patient's zone would be (offsets refused unless allowed)."""
    try:
        return get_patient_zone(local_zone_name(), allow_fixed=allow_fixed).key
    except ZoneError as exc:
        raise ZoneError(f"{exc} (this is the machine's zone, from $TZ or /etc/localtime: pass --tz)") from None


def now_stamp() -> datetime:
    """The clock for DTSTAMP: SOURCE_DATE_EPOCH when set (reproducible files), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC)
        except (ValueError, OverflowError, OSError):
            raise InputError(f"SOURCE_DATE_EPOCH {epoch!r} is not a Unix time in seconds") from None
    return datetime.now(UTC)


def render_plan(plan: CarePlan, *, stamp: datetime | None = None) -> bytes:
    """The plan as an iCalendar file's bytes; `stamp` (DTSTAMP) defaults to `now_stamp()`."""
    from calendars.ics import render_ics

    return render_ics(plan, stamp=stamp if stamp is not None else now_stamp())


def write_plan(plan: CarePlan, path: str | Path, *, stamp: datetime | None = None) -> None:
    """Write the plan's .ics file atomically: on any error the previous file stays as it was.

    A new file with the patient's name in it is readable by its owner only (0600); without a
    name it honours the umask. A file it replaces keeps its mode.
    """
    write_atomic(path, render_plan(plan, stamp=stamp), private=bool(plan.options.patient_name))


@dataclass(frozen=True)
class TimelineRow:
    """One reminder as `aftercal show` lists it."""

    day: str  # "2", or "0-13" for an all-day window
    when: str  # local date and time, or the window's first and last day
    title: str
    note: str  # why the time moved (quiet hours, DST), or ""
    alarm: bool


def timeline(plan: CarePlan) -> list[TimelineRow]:
    """The plan's reminders in order, with days counted from the treatment's local date."""
    rows: list[TimelineRow] = []
    day0 = plan.start.date()
    for reminder in plan.reminders:
        if isinstance(reminder.start, datetime):
            day = str((reminder.start.date() - day0).days)
            when = f"{reminder.start:%a %d %b %Y %H:%M %Z}"
        else:
            assert not isinstance(reminder.end, datetime)
            last = reminder.end - timedelta(days=1)  # the end is exclusive
            day = f"{(reminder.start - day0).days}-{(last - day0).days}"
            when = f"{reminder.start:%a %d %b} to {last:%a %d %b}"
        rows.append(TimelineRow(day, when, reminder.title, reminder.note, reminder.alarm_text is not None))
    return rows


@dataclass(frozen=True)
class PastStart:
    """A treatment that started before now: how many of its reminders are already over."""

    over: int
    total: int


def past_start(plan: CarePlan, *, now: datetime | None = None) -> PastStart | None:
    """None for a treatment that starts after `now` (default: the current time)."""
    now = now if now is not None else datetime.now(UTC)
    if plan.start >= now:
        return None
    today = now.astimezone(plan.zone).date()
    over = 0
    for reminder in plan.reminders:
        if isinstance(reminder.start, datetime):
            over += reminder.start < now
        else:
            assert isinstance(reminder.end, date)
            over += reminder.end <= today
    return PastStart(over, len(plan.reminders))


def list_protocols() -> list[CareProtocol]:
    """Every protocol shipped with aftercal, by name."""
    return [load_protocol(name) for name in shipped_protocols()]


def check_protocol(name_or_path: str | Path) -> CareProtocol:
    """Load and validate a protocol; also refuse a source item that no step carries."""
    proto = load_protocol(name_or_path)
    missing = proto.uncarried_seed_items()
    if missing:
        raise InputError(f"{proto.origin}: seed item(s) carried by no step: {', '.join(missing)}")
    return proto


@dataclass(frozen=True)
class SourceTrace:
    """One item of the protocol's source, its facts, and the steps that bring it to the patient."""

    key: str
    text: str
    facts: tuple[str, ...]
    steps: tuple[Step, ...]


def trace_protocol(name_or_path: str | Path) -> list[SourceTrace]:
    """For each source item of a protocol, in order: its facts and the steps that carry it."""
    proto = load_protocol(name_or_path)
    return [
        SourceTrace(key, text, proto.facts.get(key, ()), tuple(proto.carriers(key))) for key, text in proto.seed.items()
    ]
