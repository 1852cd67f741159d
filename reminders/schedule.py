"""The schedule engine: (protocol, treatment id, local start, zone, options) -> exact reminders.

Pure code: no clock, no I/O. Time rules, all in the patient's own zone:

* ``after_minutes`` is elapsed time ("after 24 hours"): across a DST change the wall-clock time
  shifts by the change, as a stopwatch would.
* ``day`` N is the N-th calendar day after the treatment's local date (day 0 is that date), at
  the morning time unless the step gives its own ``time``.
* A wall time that falls into a DST gap moves forward by the gap (02:30 -> 03:30).
* A reminder never fires in quiet hours: ``defer`` moves it to the end of the quiet hours,
  ``silent`` keeps the time but drops the alarm. Nothing is ever placed before the treatment.
* A treatment start inside a DST gap is an error; an ambiguous one (DST fold) means its first
  occurrence unless the start carries an explicit UTC offset that picks the second.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from reminders.errors import InputError, StartTimeError, ZoneError
from reminders.protocol import CareProtocol, Step

# Fixed namespace: UIDs must stay the same on every machine and every release.
UID_NAMESPACE = uuid.UUID("6f1c7f0e-3b9a-4d8e-9a51-5f0c2d7b8e41")
UID_DOMAIN = "aftercal"
# Treatment starts outside these years are typos; the bounds also keep date arithmetic in range.
MIN_YEAR = 1970
MAX_YEAR = 2199
# The defaults of --morning and --quiet, as typed (the feed store keeps them so); parsed further below.
DEFAULT_MORNING = "09:00"
DEFAULT_QUIET = "21:00-08:00"


@dataclass(frozen=True)
class Clinic:
    """Optional clinic contact details printed at the foot of every reminder."""

    name: str | None = None
    phone: str | None = None
    url: str | None = None

    def footer(self) -> str:
        parts = [p for p in (self.name, self.phone, self.url) if p]
        return "Questions? " + " | ".join(parts) if parts else ""


@dataclass(frozen=True)
class QuietHours:
    """Local times between which no alarm fires; start > end wraps past midnight."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def parse_clock(value: str, flag: str) -> time:
    """A local time of day from "HH:MM"; `flag` names the option in the error."""
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise InputError(f"{flag} {value!r}: use HH:MM, e.g. {DEFAULT_MORNING}") from None
    return parsed.replace(second=0, microsecond=0)


def parse_quiet_hours(value: str) -> QuietHours:
    """Quiet hours from "HH:MM-HH:MM", or "off" for none."""
    if value.strip().lower() == "off":
        return QuietHours(time(0), time(0))
    start, sep, end = value.partition("-")
    if not sep:
        raise InputError(f"--quiet {value!r}: use HH:MM-HH:MM, e.g. {DEFAULT_QUIET}, or off")
    return QuietHours(parse_clock(start.strip(), "--quiet"), parse_clock(end.strip(), "--quiet"))


DEFAULT_MORNING_TIME = parse_clock(DEFAULT_MORNING, "--morning")
DEFAULT_QUIET_HOURS = parse_quiet_hours(DEFAULT_QUIET)


@dataclass(frozen=True)
class EventIds:
    """How a treatment id becomes its events' UIDs and plan tag.

    With the clinic's secret `key`, both are HMAC-SHA256 of the treatment id: someone holding a
    feed cannot recover a short id such as T-4711 by hashing guesses. Without a key they are the
    historic unkeyed hashes (`treatment_tag`, `event_uid`), which every event published before
    the clinic had a secret carries: those are found under `legacy_tag` and moved.
    """

    key: bytes | None = field(default=None, repr=False)

    @property
    def keyed(self) -> bool:
        return self.key is not None

    @property
    def fingerprint(self) -> str:
        """Names the scheme without revealing the key ("" for the unkeyed one)."""
        return "" if self.key is None else self._mac("aftercal-secret-id")[:16]

    def tag(self, treatment_id: str) -> str:
        if self.key is None:
            return treatment_tag(treatment_id)
        return self._mac(f"aftercal-treatment\x1f{treatment_id}")[:32]

    def uid(self, treatment_id: str, key: str) -> str:
        if self.key is None:
            return event_uid(treatment_id, key)
        digest = bytes.fromhex(self._mac(f"aftercal-uid\x1f{treatment_id}\x1f{key}"))[:16]
        return f"{uuid.UUID(bytes=digest, version=4)}@{UID_DOMAIN}"

    def _mac(self, text: str) -> str:
        assert self.key is not None
        return hmac.new(self.key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PlanOptions:
    """Everything besides the treatment itself that shapes a plan."""

    morning: time = DEFAULT_MORNING_TIME
    quiet: QuietHours = DEFAULT_QUIET_HOURS
    discreet: bool = False
    patient_name: str | None = None
    clinic: Clinic = field(default_factory=Clinic)
    sequence: int = 0
    ids: EventIds = field(default_factory=EventIds)


@dataclass(frozen=True)
class Reminder:
    """One calendar entry. Every channel renders exactly these fields."""

    key: str  # step id, or step id + ".window" for a rebooking window
    step_id: str
    uid: str
    all_day: bool
    start: datetime | date  # aware datetime in the patient's zone, or a date for all-day
    end: datetime | date  # exclusive end (a date for all-day entries)
    title: str
    alarm_text: str | None  # None: no alarm
    description: str
    categories: tuple[str, ...]
    carries: tuple[str, ...]
    note: str = ""  # why the time differs from the protocol's nominal one, if it does

    def content_hash(self) -> str:
        """Hash of everything a patient can see; equal hashes mean nothing to upload."""
        data = {
            "uid": self.uid,
            "all_day": self.all_day,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "zone": str(getattr(self.start, "tzinfo", "") or ""),
            "title": self.title,
            "alarm": self.alarm_text,
            "description": self.description,
            "categories": list(self.categories),
        }
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:32]


@dataclass(frozen=True)
class CarePlan:
    """A treatment's whole aftercare, ready for any channel."""

    protocol: CareProtocol
    treatment_id: str
    start: datetime  # aware, in `zone`
    zone: ZoneInfo
    options: PlanOptions
    reminders: tuple[Reminder, ...]

    @property
    def calendar_name(self) -> str:
        base = (
            f"{self.protocol.discreet_name} reminders" if self.options.discreet else f"{self.protocol.name} aftercare"
        )
        return plain_name(f"{base} - {self.options.patient_name}" if self.options.patient_name else base)

    @property
    def plan_tag(self) -> str:
        """Opaque tag shared by all of a treatment's events; does not reveal the treatment id."""
        return self.options.ids.tag(self.treatment_id)

    @property
    def legacy_tag(self) -> str | None:
        """With keyed ids: the unkeyed tag that events published before the clinic secret carry."""
        return treatment_tag(self.treatment_id) if self.options.ids.keyed else None

    @property
    def sequence(self) -> int:
        return self.options.sequence

    def first_date(self) -> date:
        return self.start.date()

    def last_date(self) -> date:
        ends = [
            r.end if isinstance(r.end, date) and not isinstance(r.end, datetime) else r.end.date()
            for r in self.reminders
        ]
        return max(ends, default=self.start.date())


def plain_name(text: str) -> str:
    """A calendar name that every client shows the same: no comma, semicolon or backslash.

    RFC 5545 escapes them in TEXT, but ical.js (Thunderbird) and icalendar read NAME and
    X-WR-CALNAME as untyped and show the escapes raw ("O'Brien\\, Zoë"). Descriptions keep the
    patient's name exactly as given.
    """
    for char in ",;\\":
        text = text.replace(char, " ")
    return " ".join(text.split())


def treatment_tag(treatment_id: str) -> str:
    return hashlib.sha256(f"aftercal-treatment\x1f{treatment_id}".encode()).hexdigest()[:32]


def event_uid(treatment_id: str, key: str) -> str:
    """Stable UID from (treatment id, step key): re-exports update instead of duplicating."""
    name = treatment_id + "\x1f" + key
    return f"{uuid.uuid5(UID_NAMESPACE, name)}@{UID_DOMAIN}"


def default_treatment_id(protocol_id: str, start: datetime, zone: ZoneInfo) -> str:
    """Deterministic id for a plan made without --id: same inputs, same UIDs."""
    digest = hashlib.sha256(f"{protocol_id}\x1f{start.isoformat()}\x1f{zone.key}".encode()).hexdigest()
    return f"auto-{digest[:16]}"


def get_zone(name: str) -> ZoneInfo:
    """An IANA zone by name, with a one-line error for anything else."""
    if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
        raise ZoneError(f"unknown time zone {name!r}: use an IANA name such as Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        hint = _zone_hint(name)
        raise ZoneError(f"unknown time zone {name!r}: use an IANA name such as Europe/Paris{hint}") from None


def _zone_hint(name: str) -> str:
    lowered = name.lower()
    zones = sorted(available_timezones())
    # An exact match in another case first (utc -> UTC), then a match on the city part.
    exact = [z for z in zones if z.lower() == lowered]
    for candidate in exact + [z for z in zones if z.lower().endswith("/" + lowered)]:
        offset = _etc_offset_hours(candidate)
        sign_note = f" It is UTC{-offset:+03d}:00: the sign is inverted." if offset else ""
        return f" (did you mean {candidate}?{sign_note})"
    return ""


# Zone names that are abbreviations, offsets or rules rather than places. Their clocks never follow
# a place's daylight saving time (EST is -05:00 all year, so a New York patient's reminders would be
# an hour off all summer), and EST5EDT-style names ignore local history: for a patient's zone they
# are almost always a mistake for a city zone. Value: the city zone to suggest.
_LEGACY_ZONES = {
    "EST": "America/New_York",
    "MST": "America/Denver, or America/Phoenix for Arizona",
    "HST": "Pacific/Honolulu",
    "EST5EDT": "America/New_York",
    "CST6CDT": "America/Chicago",
    "MST7MDT": "America/Denver",
    "PST8PDT": "America/Los_Angeles",
    "CET": "Europe/Paris",
    "MET": "Europe/Paris",
    "EET": "Europe/Athens",
    "WET": "Europe/Lisbon",
}
# Not places either: the machine's own zone file, tzdata's placeholder, the POSIX rule template.
_NOT_A_PLACE = {"localtime": "this machine's zone file", "factory": "a placeholder", "posixrules": "a rule template"}
# UTC and GMT under any name, optionally with an offset: UTC, Etc/GMT+5, GMT-0, utc+01:00, Zulu...
_UTC_LIKE = re.compile(r"(?i)(etc/)?(utc|uct|gmt|ut|universal|greenwich|zulu|z)([+-]\d{1,2}(:?\d\d)?|0)?")
# A city with that standard UTC offset, to suggest instead of an offset.
_CITY_AT_OFFSET = {
    -11: "Pacific/Pago_Pago", -10: "Pacific/Honolulu", -9: "America/Anchorage", -8: "America/Los_Angeles",
    -7: "America/Denver", -6: "America/Chicago", -5: "America/New_York", -4: "America/Halifax",
    -3: "America/Sao_Paulo", -2: "America/Noronha", -1: "Atlantic/Cape_Verde", 0: "Europe/London",
    1: "Europe/Paris", 2: "Europe/Athens", 3: "Europe/Istanbul", 4: "Asia/Dubai", 5: "Asia/Karachi",
    6: "Asia/Dhaka", 7: "Asia/Bangkok", 8: "Asia/Singapore", 9: "Asia/Tokyo", 10: "Australia/Sydney",
    11: "Pacific/Noumea", 12: "Pacific/Auckland", 13: "Pacific/Tongatapu", 14: "Pacific/Kiritimati",
}  # fmt: skip


def _etc_offset_hours(name: str) -> int:
    """The POSIX-style number of an Etc/GMT+N name (Etc/GMT+5 -> 5, which is UTC-05:00); else 0."""
    match = re.fullmatch(r"(?i)etc/gmt([+-]\d{1,2})", name)
    return int(match.group(1)) if match else 0


def fixed_zone_problem(name: str) -> str | None:
    """Why `name` is not a place's zone (EST, UTC, Etc/GMT+5, PST8PDT...), or None for a place.

    Backward-compatible place names (US/Eastern, Japan, GB) follow their city's rules and pass.
    """
    key = name.strip()
    upper = key.upper()
    if upper in _LEGACY_ZONES:
        city = _LEGACY_ZONES[upper]
        if upper in ("EST", "MST", "HST"):
            return f"{key} is a fixed offset without daylight saving time; use a city zone such as {city}"
        return f"{key} is a legacy rule name, not a place; use a city zone such as {city}"
    if key.lower() in _NOT_A_PLACE:
        return f"{key} is {_NOT_A_PLACE[key.lower()]}, not a place; use the patient's city zone such as Europe/Paris"
    if _UTC_LIKE.fullmatch(key):
        etc = _etc_offset_hours(key)
        if etc:
            city = _CITY_AT_OFFSET.get(-etc, "Europe/Paris")
            return (
                f"{key} is a fixed offset of UTC{-etc:+03d}:00 (the sign of Etc/GMT names is inverted) without "
                f"daylight saving time; use a city zone such as {city}"
            )
        if re.search(r"[+-]0*[1-9]", key):
            return (
                f"{key} is a fixed offset without daylight saving time; use the patient's city zone "
                "such as America/New_York or Europe/Paris"
            )
        return (
            f"{key} is a fixed offset, not a place; use the patient's city zone such as Europe/London "
            "(Africa/Abidjan or Atlantic/Reykjavik for places on UTC all year round)"
        )
    return None


def get_patient_zone(name: str, *, allow_fixed: bool = False) -> ZoneInfo:
    """A patient's zone: an IANA place (Europe/Paris), never an offset or abbreviation unless allowed.

    EST, MST, HST, the EST5EDT-style rule names, UTC/GMT under any name and Etc/GMT+N are refused
    with a hint to a city zone (one line), because a plan in them drifts an hour from the patient's
    clocks whenever the place changes to or from daylight saving time. `allow_fixed=True` accepts
    any valid IANA name (a patient on a ship, a clinic that really wants UTC).
    """
    if not allow_fixed:
        problem = fixed_zone_problem(name)
        if problem is not None:
            raise ZoneError(f"{problem} (--allow-fixed-zone to keep it anyway)")
    return get_zone(name)


def exists(local: datetime) -> bool:
    """False when the wall time falls into a DST gap of its zone."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def wall_time(day: date, at: time, zone: ZoneInfo) -> datetime:
    """An aware datetime for a local date and time; a time in a DST gap moves forward by the gap."""
    local = datetime.combine(day, at, tzinfo=zone)
    if not exists(local):
        return local.astimezone(UTC).astimezone(zone)
    return local


def parse_start(text: str, zone: ZoneInfo) -> datetime:
    """Read the treatment start: a local ISO time (``2026-11-24T10:00``), optionally with offset."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise StartTimeError(f"cannot read start {text!r}: use local ISO time such as 2026-11-24T10:00") from None
    if "T" not in text.strip().upper() and " " not in text.strip():
        raise StartTimeError(f"start {text!r} has no time of day: use local ISO time such as 2026-11-24T10:00")
    if parsed.tzinfo is not None:
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            return localize_start(parsed.replace(tzinfo=None), zone)  # refuses it with the year message
        offset = parsed.utcoffset()
        naive = parsed.replace(tzinfo=None)
        for fold in (0, 1):
            candidate = naive.replace(tzinfo=zone, fold=fold)
            if candidate.utcoffset() == offset and exists(candidate):
                return candidate
        raise StartTimeError(f"start {text!r} has an offset that {zone.key} never uses at that time")
    return localize_start(parsed, zone)


def localize_start(naive: datetime, zone: ZoneInfo) -> datetime:
    """Attach the zone to a naive local start, refusing times that do not exist."""
    if not MIN_YEAR <= naive.year <= MAX_YEAR:
        raise StartTimeError(f"a treatment start must lie between {MIN_YEAR} and {MAX_YEAR} (got {naive:%Y-%m-%d})")
    local = naive.replace(tzinfo=zone, fold=0)
    if not exists(local):
        after = local.astimezone(UTC).astimezone(zone)
        raise StartTimeError(
            f"{naive:%Y-%m-%d %H:%M} does not exist in {zone.key} (clocks jump forward that night); "
            f"use a time such as {after:%H:%M}"
        )
    return local


def build_plan(
    protocol: CareProtocol,
    treatment_id: str,
    start: datetime,
    options: PlanOptions | None = None,
) -> CarePlan:
    """Compute every reminder of a treatment. `start` must be aware, with a ZoneInfo tzinfo."""
    options = options or PlanOptions()
    if not isinstance(start.tzinfo, ZoneInfo):
        raise StartTimeError("the treatment start needs an IANA time zone")
    if not treatment_id or len(treatment_id) > 200 or any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in treatment_id):
        raise StartTimeError("a treatment id must be 1-200 printable characters")
    if not MIN_YEAR <= start.year <= MAX_YEAR:
        raise StartTimeError(f"a treatment start must lie between {MIN_YEAR} and {MAX_YEAR} (got {start:%Y-%m-%d})")
    _check_options(options)
    zone = start.tzinfo
    engine = _Engine(protocol, treatment_id, start, zone, options)
    reminders = [r for step in protocol.steps for r in engine.render(step)]
    reminders.sort(key=lambda r: (_sort_instant(r, zone), r.key))
    return CarePlan(protocol, treatment_id, start, zone, options, tuple(reminders))


def _check_options(options: PlanOptions) -> None:
    """Texts that end up in calendar lines must be single lines; a clinic URL must be a web URL."""
    texts = {
        "patient name": options.patient_name,
        "clinic name": options.clinic.name,
        "clinic phone": options.clinic.phone,
        "clinic URL": options.clinic.url,
    }
    for what, value in texts.items():
        if value is not None and (not value.strip() or any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in value)):
            raise InputError(f"the {what} must be one line of printable text")
    url = options.clinic.url
    if url is not None and (not url.startswith(("https://", "http://")) or " " in url or len(url) < 10):
        raise InputError(f"the clinic URL {url!r} must be a web address starting with https://")
    if not 0 <= options.sequence < 2**31:
        raise InputError("the sequence must be a whole number from 0 to 2147483647")
    quiet = options.quiet
    if quiet.contains(options.morning):
        # Every "day N" reminder would silently move to day N+1 at the end of the quiet hours.
        raise InputError(
            f"the morning time {options.morning:%H:%M} (--morning) is inside the quiet hours "
            f"{quiet.start:%H:%M}-{quiet.end:%H:%M} (--quiet): day reminders would all move to the end of "
            "the quiet hours; choose a morning time outside them"
        )


def _sort_instant(reminder: Reminder, zone: ZoneInfo) -> datetime:
    if isinstance(reminder.start, datetime):
        return reminder.start.astimezone(UTC)
    # All-day entries sort first on their day.
    return datetime.combine(reminder.start, time(0), tzinfo=zone).astimezone(UTC) - timedelta(microseconds=1)


@dataclass
class _Engine:
    protocol: CareProtocol
    treatment_id: str
    start: datetime
    zone: ZoneInfo
    options: PlanOptions

    def render(self, step: Step) -> list[Reminder]:
        if step.kind == "window":
            assert step.days is not None
            first, last = step.days
            return [self.all_day(step, step.id, first, last, self.title(step))]
        if step.kind == "rebook":
            assert step.weeks is not None
            first, last = step.weeks[0] * 7, step.weeks[1] * 7
            window_title = (step.discreet_window_title if self.options.discreet else step.window_title) or self.title(
                step
            )
            return [
                self.all_day(step, f"{step.id}.window", first, last, window_title),
                self.timed(step, step.id, *self.day_instant(first, None)),
            ]
        if step.after_minutes is not None:
            nominal = (self.start.astimezone(UTC) + timedelta(minutes=step.after_minutes)).astimezone(self.zone)
            return [self.timed(step, step.id, nominal, "")]
        assert step.day is not None
        return [self.timed(step, step.id, *self.day_instant(step.day, step.time))]

    def title(self, step: Step) -> str:
        return step.discreet_title if self.options.discreet else step.title

    def day_instant(self, day: int, at: time | None) -> tuple[datetime, str]:
        local_date = self.start.date() + timedelta(days=day)
        wanted = at or self.options.morning
        moment = wall_time(local_date, wanted, self.zone)
        if moment < self.start:
            return self.start, "moved to the treatment time (it would have been before it)"
        if moment.time() != wanted:
            return moment, f"{wanted:%H:%M} does not exist that day (clocks jump forward): moved by the change"
        return moment, ""

    def timed(self, step: Step, key: str, moment: datetime, note: str) -> Reminder:
        alarm = step.alarm
        if alarm and self.options.quiet.contains(moment.timetz().replace(tzinfo=None)):
            if step.if_quiet == "silent":
                alarm = False
                note = "no alarm: falls in quiet hours"
            else:
                moment = self.after_quiet(moment)
                note = "moved out of quiet hours"
        title = self.title(step)
        return Reminder(
            key=key,
            step_id=step.id,
            uid=self.options.ids.uid(self.treatment_id, key),
            all_day=False,
            start=moment,
            end=(moment.astimezone(UTC) + timedelta(minutes=step.duration_minutes)).astimezone(self.zone),
            title=title,
            alarm_text=title if alarm else None,
            description=self.description(step),
            categories=step.categories,
            carries=step.carries,
            note=note,
        )

    def after_quiet(self, moment: datetime) -> datetime:
        quiet = self.options.quiet
        local_date = moment.date()
        clock = moment.time()
        if quiet.start > quiet.end and clock >= quiet.start:
            local_date += timedelta(days=1)
        return wall_time(local_date, quiet.end, self.zone)

    def all_day(self, step: Step, key: str, first: int, last: int, title: str) -> Reminder:
        day0 = self.start.date()
        return Reminder(
            key=key,
            step_id=step.id,
            uid=self.options.ids.uid(self.treatment_id, key),
            all_day=True,
            start=day0 + timedelta(days=first),
            end=day0 + timedelta(days=last + 1),
            title=title,
            alarm_text=None,
            description=self.description(step),
            categories=step.categories,
            carries=step.carries,
        )

    def description(self, step: Step) -> str:
        parts = []
        if self.options.patient_name:
            parts.append(f"For {self.options.patient_name}.")
        parts.append(step.body)
        footer = self.options.clinic.footer()
        if footer:
            parts.append(footer)
        return "\n\n".join(parts)
