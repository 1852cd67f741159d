"""One canonical VTIMEZONE per IANA zone, in the RRULE form Apple, Google and vzic write.

Why one definition per zone: servers and clients key time zones by TZID alone. Radicale (vobject)
keeps the first definition of a TZID it parses, and a whole-calendar export keeps one VTIMEZONE
per TZID, so definitions cut to each plan's dates (what `add_missing_timezones(first_date=...,
last_date=...)` wrote) made other plans' events read an hour off. Here a zone always gets the
same bytes, whatever the plan: its whole history from 1969 (the engine starts in 1970; tzdata
only promises data since then) to `LAST_YEAR`.

Why not icalendar's `Timezone.from_tzinfo` (7.3.2): it writes a COMMENT directly under VTIMEZONE
(RFC 5545 allows none; libical adds X-LIC-ERROR), one observance per offset whose onsets are one
multi-valued RDATE (ical.js 2.2 reads only the first value of an RDATE line and skips DTSTART
when RDATE is present), and DAYLIGHT onsets in the new offset's wall time instead of the old.

How: transitions are read from the zone's TZif file (RFC 8536), the same file zoneinfo reads (same
search: `zoneinfo.TZPATH`, then the `tzdata` package): its explicit transitions, then the POSIX TZ
rule of its footer for later years. Reading the file is exact (a scan of `utcoffset` at intervals
can step over a short-lived offset) and takes milliseconds; every transition is then checked
against the `ZoneInfo` object itself (offset and abbreviation just before and at it), so what we
write is what zoneinfo computes. Transitions are grouped vzic-style into yearly runs, each one
observance with `RRULE:FREQ=YEARLY` (nth or last weekday, weekday on or after a day, or a fixed
day of a month) and UNTIL (UTC), except the rule still in force, which has no UNTIL. A transition
that fits no run is an observance of its own (DTSTART only), as vzic writes it.

Offsets with seconds do occur in range: Africa/Monrovia was -00:44:30 until 1972. They are written
as -004430, which RFC 5545 allows and libical and dateutil read; ical.js drops the seconds.
"""

from __future__ import annotations

import calendar
import functools
import importlib.resources
import os
import re
import struct
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from icalendar import Component, Timezone, TimezoneDaylight, TimezoneStandard

from reminders.schedule import MAX_YEAR, MIN_YEAR

# The first onset: a year before the engine's first treatment, so that local times of its first
# day (and UTC instants a day either side) fall after it in every zone.
FIRST_YEAR = MIN_YEAR - 1
# Plans end up to ~400 days after a start in MAX_YEAR; two more years of margin.
LAST_YEAR = MAX_YEAR + 4
_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - naive on purpose: wall times are naive here
# Changes up to this instant are folded into the first observance (the state at this instant).
_BASE_UTC = int(datetime(FIRST_YEAR, 1, 1, tzinfo=UTC).timestamp())
_END_UTC = int(datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC).timestamp())
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class _State(NamedTuple):
    """What a zone's clocks show between two transitions."""

    offset: int  # seconds east of UTC
    dst: bool  # the TZif isdst flag (what zoneinfo's dst() derives from)
    name: str  # abbreviation, e.g. EST


class _Onset(NamedTuple):
    utc: int  # Unix seconds of the transition
    before: _State
    after: _State

    @property
    def local(self) -> datetime:
        """The onset as RFC 5545 wants DTSTART: wall time in the offset before it."""
        return _EPOCH + timedelta(seconds=self.utc + self.before.offset)


def zone_component(zone: zoneinfo.ZoneInfo) -> Timezone:
    """The VTIMEZONE of `zone`: the same bytes for every plan. A fresh object on every call."""
    if zone.key is None:
        raise ValueError("a VTIMEZONE needs a zone loaded by its IANA key")
    # Parsed from the cached bytes: callers may change their copy without touching the cache.
    component = Timezone.from_ical(zone_ical(zone.key))
    assert isinstance(component, Timezone)
    return component


# Bounded, and larger than the ~600 zones tzdata has: keys that are no zone raise and are not
# cached, so every zone stays built once (13 ms on average, 740 KB for all of them). Not keyed
# by tzdata version: zoneinfo keeps its ZoneInfo objects for the life of the process too, and
# every build is checked against them.
@functools.lru_cache(maxsize=1024)
def zone_ical(key: str) -> bytes:
    """The canonical VTIMEZONE of zone `key` as iCalendar bytes (built once per zone).

    calendars/ics.py writes these very bytes into every file that names the zone.
    """
    zone = zoneinfo.ZoneInfo(key)
    base, onsets = _transitions(key)
    _check_against_zoneinfo(zone, base, onsets)
    data: bytes = _build(key, base, onsets).to_ical()
    return data


# -- Reading the TZif file -------------------------------------------------------------------


def _tzif_bytes(key: str) -> bytes:
    """The zone's TZif file, found where zoneinfo looks for it."""
    if os.path.isabs(key) or ".." in key.split("/"):
        raise ValueError(f"not an IANA zone key: {key!r}")
    for root in zoneinfo.TZPATH:
        path = os.path.join(root, key)
        if os.path.isfile(path):
            with open(path, "rb") as file:
                return file.read()
    package, _, name = ("tzdata.zoneinfo/" + key).rpartition("/")
    return importlib.resources.files(package.replace("/", ".")).joinpath(name).read_bytes()


@dataclass(frozen=True)
class _Tzif:
    times: list[int]
    states: list[_State]  # the state each transition switches to
    first: _State  # before the first transition (RFC 8536: time type 0)
    footer: str


def _parse_tzif(data: bytes) -> _Tzif:
    """Explicit transitions and footer of a TZif file (RFC 8536), version 1 to 4."""
    if data[:4] != b"TZif":
        raise ValueError("not a TZif file")
    version = data[4:5]
    header = struct.Struct(">4s c 15x 6l")
    _magic, _v, isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt = header.unpack_from(data, 0)
    size = 4
    pos = header.size
    if version >= b"2":  # skip the 32-bit block, read the 64-bit one
        pos += timecnt * 5 + typecnt * 6 + charcnt + leapcnt * 8 + isstdcnt + isutcnt
        _magic, _v, isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt = header.unpack_from(data, pos)
        pos += header.size
        size = 8
    if leapcnt:
        raise ValueError("TZif files with leap seconds (right/...) are not supported")
    times = list(struct.unpack_from(f">{timecnt}{'q' if size == 8 else 'l'}", data, pos))
    pos += timecnt * size
    indices = list(data[pos : pos + timecnt])
    pos += timecnt
    types = [struct.unpack_from(">lBB", data, pos + 6 * i) for i in range(typecnt)]
    pos += typecnt * 6
    chars = data[pos : pos + charcnt]
    pos += charcnt + isstdcnt + isutcnt
    footer = ""
    if size == 8:
        footer = data[pos:].strip(b"\n").decode("ascii")

    def state(index: int) -> _State:
        offset, isdst, abbr = types[index]
        return _State(offset, bool(isdst), chars[abbr : chars.index(b"\0", abbr)].decode("ascii"))

    return _Tzif(times, [state(i) for i in indices], state(0), footer)


# -- The POSIX TZ rule of the footer (RFC 8536 section 3.3) ----------------------------------

_NAME = r"(?:<[+\-\w]+>|[A-Za-z]{3,})"
_HMS = r"[+-]?\d{1,3}(?::\d{2}){0,2}"
_FOOTER = re.compile(
    rf"^(?P<std>{_NAME})(?P<stdoff>{_HMS})"
    rf"(?:(?P<dst>{_NAME})(?P<dstoff>{_HMS})?,(?P<start>[^,/]+)(?:/(?P<stime>{_HMS}))?"
    rf",(?P<end>[^,/]+)(?:/(?P<etime>{_HMS}))?)?$"
)


def _seconds(text: str) -> int:
    """[+-]hh[:mm[:ss]] as seconds."""
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")] + [0, 0]
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _rule_day(rule: str, year: int) -> datetime:
    """Midnight of the day a POSIX date rule (Mm.w.d, Jn or n) names in `year`."""
    if match := re.fullmatch(r"M(\d+)\.(\d)\.(\d)", rule):
        month, week, weekday = (int(g) for g in match.groups())
        first = datetime(year, month, 1)  # noqa: DTZ001
        day = 1 + (weekday - (first.weekday() + 1) % 7) % 7 + (week - 1) * 7
        while day > calendar.monthrange(year, month)[1]:  # week 5 means the last one
            day -= 7
        return first.replace(day=day)
    if match := re.fullmatch(r"J(\d+)", rule):  # 1-365, February 29 never counted
        n = int(match.group(1))
        leap = calendar.isleap(year) and n >= 60
        return datetime(year, 1, 1) + timedelta(days=n - 1 + leap)  # noqa: DTZ001
    if rule.isdigit():  # 0-365, February 29 counted
        return datetime(year, 1, 1) + timedelta(days=int(rule))  # noqa: DTZ001
    raise ValueError(f"unknown TZ date rule {rule!r}")


@dataclass(frozen=True)
class _Footer:
    std: _State
    dst: _State | None
    start: tuple[str, int] = ("", 0)  # date rule, seconds after local midnight (standard time)
    end: tuple[str, int] = ("", 0)  # same, in daylight time

    def events(self, first_year: int, last_year: int) -> list[tuple[int, _State]]:
        """Every DST start and end of these years, in time order, as (utc, state after)."""
        if self.dst is None:
            return []
        out = []
        for year in range(first_year, last_year + 1):
            start = _rule_day(self.start[0], year) + timedelta(seconds=self.start[1] - self.std.offset)
            end = _rule_day(self.end[0], year) + timedelta(seconds=self.end[1] - self.dst.offset)
            out += [(_unix(start), self.dst), (_unix(end), self.std)]
        # Stable: a start at the very instant of the previous end (all-year DST) ends up last.
        return sorted(out, key=lambda item: item[0])


def _unix(naive_utc: datetime) -> int:
    return (naive_utc - _EPOCH) // timedelta(seconds=1)


def _parse_footer(footer: str) -> _Footer | None:
    if not footer:
        return None
    match = _FOOTER.match(footer)
    if not match:
        raise ValueError(f"cannot read the TZ rule {footer!r}")
    std = _State(-_seconds(match["stdoff"]), False, match["std"].strip("<>"))
    if not match["dst"]:
        return _Footer(std, None)
    dst_offset = -_seconds(match["dstoff"]) if match["dstoff"] else std.offset + 3600
    dst = _State(dst_offset, True, match["dst"].strip("<>"))
    two = 2 * 3600  # the POSIX default time of a change
    start = (match["start"], _seconds(match["stime"]) if match["stime"] else two)
    end = (match["end"], _seconds(match["etime"]) if match["etime"] else two)
    return _Footer(std, dst, start, end)


# -- Transitions in range --------------------------------------------------------------------


def _transitions(key: str) -> tuple[_State, list[_Onset]]:
    """The state at `_BASE_UTC` (1969-01-01 00:00 UTC) and every change after it."""
    tzif = _parse_tzif(_tzif_bytes(key))
    footer = _parse_footer(tzif.footer)
    timeline: list[tuple[int, _State]] = list(zip(tzif.times, tzif.states, strict=True))
    state = tzif.first
    if footer is not None:
        # From the last explicit transition on (or always, if there is none) the footer rules,
        # as in zoneinfo. The rule's events start a year early so that one precedes `last`.
        last = tzif.times[-1] if tzif.times else None
        from_year = FIRST_YEAR - 1 if last is None else datetime.fromtimestamp(last, UTC).year - 1
        rule = footer.events(from_year, LAST_YEAR + 1)
        if last is None:
            state = footer.std
        elif footer.dst is None:
            timeline[-1] = (last, footer.std)
        else:
            timeline[-1] = (last, [s for t, s in rule if t <= last][-1])
        timeline += [(t, s) for t, s in rule if last is None or t > last]
    timeline = [(t, s) for t, s in timeline if t < _END_UTC]
    for _utc, after in (item for item in timeline if item[0] <= _BASE_UTC):
        state = after
    base = state
    onsets: list[_Onset] = []
    for utc, after in (item for item in timeline if item[0] > _BASE_UTC):
        if onsets and onsets[-1].utc == utc:  # two changes at one instant: the last one holds
            state = onsets.pop().before
        if after != state:  # else a transition that changes nothing we write
            onsets.append(_Onset(utc, state, after))
        state = after
    return base, onsets


def _check_against_zoneinfo(zone: zoneinfo.ZoneInfo, base: _State, onsets: list[_Onset]) -> None:
    """What we read from the file must be what zoneinfo computes, or we write nothing."""

    def at(utc: int) -> tuple[int, str]:
        moment = datetime.fromtimestamp(utc, zone)
        offset = moment.utcoffset()
        assert offset is not None
        return offset // timedelta(seconds=1), moment.tzname() or ""

    checks = [(_BASE_UTC, base)] + [(o.utc - 1, o.before) for o in onsets] + [(o.utc, o.after) for o in onsets]
    for utc, expected in checks:
        if at(utc) != (expected.offset, expected.name):
            raise RuntimeError(f"{zone.key}: TZif reading disagrees with zoneinfo at {utc}: {at(utc)} != {expected}")


# -- Grouping into yearly rules --------------------------------------------------------------

_Pattern = tuple[int, tuple[int, ...]]  # (preference, values), see _patterns


def _patterns(day: datetime) -> set[_Pattern]:
    """Every yearly rule that names this day of its month; lower first number = preferred."""
    weekday = day.weekday()
    length = calendar.monthrange(day.year, day.month)[1]
    out: set[_Pattern] = set()
    if day.day <= 28:
        out.add((0, ((day.day - 1) // 7 + 1, weekday)))  # nth weekday: BYDAY=2SU
    if day.day > length - 7:
        out.add((1, (-1, weekday)))  # last weekday: BYDAY=-1SU
    out.add((2, (day.day,)))  # fixed day: BYMONTHDAY=1
    for first in range(max(1, day.day - 6), day.day + 1):
        out.add((3, (first, weekday)))  # weekday on or after: BYMONTHDAY=8..14;BYDAY=SU
    return out


def _runs(onsets: list[_Onset]) -> Iterator[tuple[list[_Onset], _Pattern | None]]:
    """Onsets grouped into maximal runs of consecutive years that one yearly rule describes."""
    groups: dict[tuple[object, ...], list[_Onset]] = {}
    for onset in onsets:
        local = onset.local
        key = (onset.after, onset.before.offset, local.month, local.time())
        groups.setdefault(key, []).append(onset)
    for members in groups.values():
        run = [members[0]]
        common = _patterns(members[0].local)
        for onset in members[1:]:
            fits = common & _patterns(onset.local)
            if onset.local.year == run[-1].local.year + 1 and fits:
                run.append(onset)
                common = fits
                continue
            yield run, min(common) if len(run) > 1 else None
            run, common = [onset], _patterns(onset.local)
        yield run, min(common) if len(run) > 1 else None


def _rrule(run: list[_Onset], pattern: _Pattern, open_ended: bool) -> dict[str, object]:
    kind, values = pattern
    rule: dict[str, object] = {"freq": "YEARLY"}
    if not open_ended:
        last = run[-1]
        # RFC 5545 wants UNTIL in UTC; any bound from the last onset to the next year's is the
        # same rule. The later of the onset's UTC instant and its wall time read as UTC keeps the
        # last onset for parsers that compare UNTIL with wall times (dateutil, in Radicale).
        instant = _EPOCH + timedelta(seconds=last.utc)
        rule["until"] = max(instant, last.local).replace(tzinfo=UTC)
    rule["bymonth"] = run[0].local.month
    if kind in (0, 1):
        rule["byday"] = f"{values[0]}{_DAYS[values[1]]}"
    elif kind == 2:
        rule["bymonthday"] = values[0]
    else:
        rule["bymonthday"] = list(range(values[0], values[0] + 7))
        rule["byday"] = _DAYS[values[1]]
    return rule


def _observance(state: _State, before: int, start: datetime) -> Component:
    observance: Component = TimezoneDaylight() if state.dst else TimezoneStandard()
    observance.add("dtstart", start)
    observance.add("tzoffsetfrom", timedelta(seconds=before))
    observance.add("tzoffsetto", timedelta(seconds=state.offset))
    observance.add("tzname", state.name)
    return observance


def _base_start(base: _State) -> datetime:
    """The first observance starts at local midnight of the day that holds `_BASE_UTC`.

    Every later onset is after `_BASE_UTC`, hence after this wall time; a round value reads better.
    """
    local = _EPOCH + timedelta(seconds=_BASE_UTC + base.offset)
    return local.replace(hour=0, minute=0, second=0)


def _build(key: str, base: _State, onsets: list[_Onset]) -> Timezone:
    timezone = Timezone()
    timezone.add("tzid", key)
    # (first onset, order made) -> observance: observances are written in time order.
    start = _base_start(base)
    parts: list[tuple[datetime, int, Component]] = [(start, 0, _observance(base, base.offset, start))]
    last_year = max((o.local.year for o in onsets), default=FIRST_YEAR)
    for run, pattern in _runs(onsets):
        first = run[0]
        observance = _observance(first.after, first.before.offset, first.local)
        # An onset that fits no run stays an observance of its own: ical.js 2.2 reads only the
        # first value of an RDATE line and skips DTSTART when RDATE is present.
        if pattern is not None:
            # A run still going in the last year covered is the rule in force: no UNTIL.
            observance.add("rrule", _rrule(run, pattern, open_ended=run[-1].local.year == last_year == LAST_YEAR))
        parts.append((first.local, len(parts), observance))
    for _start, _order, observance in sorted(parts, key=lambda part: part[:2]):
        timezone.add_component(observance)
    return timezone


def covered_onsets(key: str) -> list[tuple[datetime, int, int]]:
    """(UTC instant, offset before, offset after) of every change written for `key`; for tests."""
    _base, onsets = _transitions(key)
    return [(datetime.fromtimestamp(o.utc, UTC), o.before.offset, o.after.offset) for o in onsets]
