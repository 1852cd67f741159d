"""The printed handout: one sheet for the patient at the desk, an output channel like ics.py.

What is on it is plain data (`handout_sheet`: pure, no clock, no I/O, no drawing library):

* the clinic and its contact; the plan's title, the treatment's date and the patient's zone;
* the timeline as a picture: the days from the treatment to the end of the rebooking window, the
  all-day windows as bars with their last day (restrictions, then the rebooking window), the key
  days (the timed reminders) as marked dates with their local times, day 0 labelled "Today";
* the key days listed with their instructions in short: the step's title and the first sentence
  or so of its body;
* when to contact the clinic: the protocol's `contact` steps and the clinic's contact;
* only when a link is given: its QR code, the link itself and one line on subscribing.

With `discreet` the wording is neutral: discreet titles, and no word of the protocol's
`treatment_words` anywhere (the body excerpts say "visit" instead).

Drawing (`render_handout`) uses PyMuPDF (the `handout` extra): the sheet is laid out on A4 or US
Letter and written as a PDF whose text stays text (embedded subsets of the Nimbus Sans and Nimbus
Mono fonts built into PyMuPDF: Latin, Greek, Cyrillic; a character they lack comes from its
built-in Droid Sans Fallback), or the same page is rasterised to PNG. segno makes the QR code.
Both are imported inside the functions that draw, so importing this module costs nothing.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from calendars.feeds.qr import ERROR_LEVEL, QUIET_ZONE
from reminders.errors import InputError, OutputError
from reminders.schedule import CarePlan, Clinic, Reminder

PAPER_SIZES = {"a4": (595.28, 841.89), "letter": (612.0, 792.0)}  # points (1/72 in)
FORMATS = ("pdf", "png")
PNG_DPI = 150  # an A4 page becomes 1240 x 1754 pixels: sharp on a screen, small enough for e-mail

# English names, not strftime's %a/%b: those follow the machine's locale.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

SUBSCRIBE_LINE = (
    "Scan the code with your phone's camera, or type the link, and choose your calendar app. You subscribe "
    "once: if the clinic changes your plan, your calendar updates by itself."
)
PRIVATE_LINE = "This code and link are yours alone: anyone who has them can read these reminders."


# ---- what is on the sheet --------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetEntry:
    """One timed reminder of a key day, in short."""

    time: str  # local "HH:MM"
    title: str
    summary: str  # the first sentence or so of the step's body
    alarm: bool  # False: the reminder shows in the calendar without ringing (quiet hours)


@dataclass(frozen=True)
class SheetDay:
    """A key day: a day with timed reminders."""

    day: int  # days after the treatment's local date (0: the treatment day)
    date: date
    label: str  # "Today", "Day 7"
    date_text: str  # "Tue 1 Dec", with the year when it is not the treatment's
    entries: tuple[SheetEntry, ...]


@dataclass(frozen=True)
class SheetPeriod:
    """An all-day window drawn as a bar: a restriction, or the window to book the next visit."""

    first: int  # first and last day (inclusive), counted as SheetDay.day
    last: int
    label: str
    dates_text: str  # "until Mon 30 Nov"; for the rebooking window "Tue 5 Jan to Tue 19 Jan"
    rebook: bool


@dataclass(frozen=True)
class SheetContact:
    """A `contact` step: when the patient should call the clinic."""

    title: str
    when: str  # "from Wed 25 Nov (day 1)"
    text: str


@dataclass(frozen=True)
class Sheet:
    """Everything the handout shows, as text and numbers."""

    title: str
    patient_name: str | None
    clinic: Clinic
    start_text: str  # "Treatment: Tue 24 Nov 2026 at 10:00"
    zone_text: str  # "Times are America/New_York time (clocks change on Sun 1 Nov)."
    days: tuple[SheetDay, ...]
    periods: tuple[SheetPeriod, ...]
    contacts: tuple[SheetContact, ...]
    link: str | None
    axis_end: int  # the picture's axis runs from day 0 to this day; later key days follow a break
    discreet: bool

    def texts(self) -> list[str]:
        """Every text the sheet carries (for checks: discreet wording, what a reader must find)."""
        out = [self.title, self.start_text, self.zone_text]
        out += [self.patient_name or "", self.clinic.name or "", self.clinic.phone or "", self.clinic.url or ""]
        for day in self.days:
            out += [day.label, day.date_text]
            out += [text for entry in day.entries for text in (entry.time, entry.title, entry.summary)]
        out += [text for period in self.periods for text in (period.label, period.dates_text)]
        out += [text for contact in self.contacts for text in (contact.title, contact.when, contact.text)]
        return [text for text in out if text]


def short_date(day: date, *, year_of: int | None = None) -> str:
    """ "Tue 1 Dec", with the year when it differs from `year_of`."""
    text = f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"
    return text if year_of is None or day.year == year_of else f"{text} {day.year}"


def short_title(title: str) -> str:
    """A reminder's title without the protocol's prefix: "Microneedling day 2: start SPF" -> "Start SPF"."""
    head, sep, rest = title.partition(": ")
    if sep and rest.strip() and len(head) <= 40:
        title = rest.strip()
    return title[:1].upper() + title[1:]


def flat_text(body: str) -> str:
    """A step's body as one paragraph: list markers dropped, lines joined."""
    lines = [line.strip() for line in body.replace("\r\n", "\n").split("\n")]
    words = [line[2:].strip() if line.startswith(("- ", "* ", "• ")) else line for line in lines]
    return " ".join(" ".join(w for w in words if w).split())


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def excerpt(body: str, *, limit: int = 180, enough: int = 60, greedy: bool = False) -> str:
    """The first sentence or so of a text: the next sentence too while the excerpt is under
    `enough` characters (`greedy`: while they fit), never over `limit` (cut at a word, with an ellipsis)."""
    sentences = _SENTENCE_END.split(flat_text(body))
    out = ""
    for sentence in sentences:
        if not out:
            out = sentence
        elif len(out) < enough or (greedy and len(out) + 1 + len(sentence) <= limit):
            out += " " + sentence
        else:
            break
    if len(out) > limit:
        cut = out[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-–— ")
        out = cut + "…"
    return out


def neutral_wording(words: Iterable[str]) -> Callable[[str], str]:
    """A function that says "visit" for every treatment word (keeping a plural s and a capital)."""
    ordered = sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True)
    if not ordered:
        return lambda text: text
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in ordered) + r")(s?)\b", re.IGNORECASE)

    def replace(match: re.Match[str]) -> str:
        word = "visit" + ("s" if match.group(2) else "")
        return word.capitalize() if match.group(1)[:1].isupper() else word

    return lambda text: pattern.sub(replace, text)


def _day(plan: CarePlan, moment: datetime | date) -> int:
    local = moment.astimezone(plan.zone).date() if isinstance(moment, datetime) else moment
    return (local - plan.start.date()).days


def _clock_changes(plan: CarePlan, last: date) -> list[date]:
    """The days in the plan on which the patient's clocks change (DST)."""
    changes = []
    day = plan.start.date()
    previous = datetime.combine(day, time(12), tzinfo=plan.zone).utcoffset()
    while day < last:
        day += timedelta(days=1)
        offset = datetime.combine(day, time(12), tzinfo=plan.zone).utcoffset()
        if offset != previous:  # changed since yesterday noon: during the night, almost always
            changes.append(day)
            previous = offset
    return changes


def handout_sheet(plan: CarePlan, *, link: str | None = None, clinic: Clinic | None = None) -> Sheet:
    """What the handout shows for `plan` (and `link`, the patient's page, when one was just made)."""
    options = plan.options
    clinic = clinic if clinic is not None else options.clinic
    discreet = options.discreet
    words = plan.protocol.treatment_words if discreet else ()
    neutral = neutral_wording(words)
    steps = {step.id: step for step in plan.protocol.steps}
    year = plan.start.year

    def summary(reminder: Reminder) -> str:
        return neutral(excerpt(steps[reminder.step_id].body))

    timed = [r for r in plan.reminders if not r.all_day]
    by_day: dict[int, list[Reminder]] = {}
    for reminder in timed:
        by_day.setdefault(_day(plan, reminder.start), []).append(reminder)
    days = []
    for number, reminders in sorted(by_day.items()):
        first = reminders[0].start
        assert isinstance(first, datetime)
        entries = tuple(
            SheetEntry(
                time=f"{r.start:%H:%M}",
                title=neutral(short_title(r.title)),
                summary=summary(r),
                alarm=r.alarm_text is not None,
            )
            for r in reminders
        )
        label = "Today" if number == 0 else f"Day {number}"
        days.append(SheetDay(number, first.date(), label, short_date(first.date(), year_of=year), entries))

    periods = []
    for reminder in plan.reminders:
        if not reminder.all_day:
            continue
        assert isinstance(reminder.start, date) and isinstance(reminder.end, date)
        last_day = reminder.end - timedelta(days=1)
        rebook = steps[reminder.step_id].kind == "rebook"
        dates = (
            f"{short_date(reminder.start, year_of=year)} to {short_date(last_day, year_of=year)}"
            if rebook
            else f"until {short_date(last_day, year_of=year)}"
        )
        label = neutral(short_title(reminder.title))
        periods.append(SheetPeriod(_day(plan, reminder.start), _day(plan, last_day), label, dates, rebook))
    # Restrictions first, the longest at the bottom of their group; the rebooking window last.
    periods.sort(key=lambda p: (p.rebook, p.last - p.first, p.first))

    contacts = []
    for reminder in timed:
        step = steps[reminder.step_id]
        if step.kind != "contact":
            continue
        assert isinstance(reminder.start, datetime)
        when = f"from {short_date(reminder.start.date(), year_of=year)}, day {_day(plan, reminder.start)}"
        text = neutral(excerpt(step.body, limit=260, greedy=True))
        contacts.append(SheetContact(neutral(short_title(reminder.title)), when, text))

    axis_end = max(p.last + 1 for p in periods) if periods else max([d.day for d in days] + [1])
    last = plan.start.date() + timedelta(days=max([axis_end] + [d.day for d in days]))
    changes = _clock_changes(plan, last)
    city = plan.zone.key.rsplit("/", 1)[-1].replace("_", " ")
    zone_text = f"Times are {city} time ({plan.zone.key})" if "/" in plan.zone.key else f"Times are {city} time"
    if changes:
        zone_text += f"; the clocks change on {', '.join(short_date(d, year_of=year) for d in changes)}"
    word = "Visit" if discreet else "Treatment"
    start_text = f"{word}: {short_date(plan.start.date())} {plan.start.year} at {plan.start:%H:%M}"
    protocol = plan.protocol
    title = f"{protocol.discreet_name} reminders" if discreet else f"{protocol.name} aftercare"
    return Sheet(
        title=title,
        patient_name=options.patient_name,
        clinic=clinic,
        start_text=start_text,
        zone_text=zone_text + ".",
        days=tuple(days),
        periods=tuple(periods),
        contacts=tuple(contacts),
        link=link,
        axis_end=axis_end,
        discreet=discreet,
    )


# ---- drawing ----------------------------------------------------------------------------------------

Colour = tuple[float, float, float]
INK: Colour = (0.11, 0.11, 0.12)
BODY: Colour = (0.22, 0.22, 0.25)
MUTED: Colour = (0.40, 0.40, 0.44)
ACCENT: Colour = (0.04, 0.36, 0.68)
AVOID: Colour = (0.87, 0.47, 0.10)
REBOOK: Colour = (0.16, 0.56, 0.34)
RULE: Colour = (0.80, 0.80, 0.78)
GUIDE: Colour = (0.86, 0.86, 0.84)
PANEL: Colour = (0.955, 0.955, 0.945)
CALL: Colour = (1.0, 0.965, 0.88)
WHITE: Colour = (1.0, 1.0, 1.0)
BLACK: Colour = (0.0, 0.0, 0.0)

MARGIN = 36.0  # half an inch: inside what home and office printers can print
GAP = 14.0  # between sections


def check_installed() -> None:
    """An OutputError naming the `handout` extra when its libraries are missing."""
    try:
        import pymupdf  # noqa: F401
        import segno  # noqa: F401
    except ModuleNotFoundError as exc:
        raise OutputError(
            f"a handout needs the optional 'handout' dependencies ({exc.name} is missing): "
            "pip install 'aftercal[handout]' (from a clone: pip install '.[handout]')"
        ) from None


def _mupdf() -> Any:
    """PyMuPDF, imported when a handout is drawn; most of its API is unannotated, hence Any."""
    import pymupdf

    return pymupdf


class _Glyphs(dict[str, float]):
    """One font's advance widths (at size 1) by character, read from the font once each;
    `missing` gathers the characters it has no glyph for."""

    def __init__(self, font: Any) -> None:
        super().__init__()
        self.font = font
        self.missing: set[str] = set()

    def __missing__(self, char: str) -> float:
        if not char.isspace() and not self.font.has_glyph(ord(char)):
            self.missing.add(char)
        advance = self[char] = float(self.font.glyph_advance(ord(char)))
        return advance


class _Fonts:
    """The fonts built into PyMuPDF, with a fallback font for the characters they lack."""

    def __init__(self) -> None:
        pymupdf = _mupdf()
        self.regular: Any = pymupdf.Font("helv")
        self.bold: Any = pymupdf.Font("hebo")
        self.mono: Any = pymupdf.Font("cour")
        self._fallback: Any = None
        self._glyphs: dict[int, _Glyphs] = {}

    def glyphs(self, font: Any) -> _Glyphs:
        found = self._glyphs.get(id(font))
        if found is None:
            found = self._glyphs[id(font)] = _Glyphs(font)
        return found

    def runs(self, text: str, font: Any) -> list[tuple[str, Any]]:
        """`text` cut into runs of one font each: `font`, or the fallback for what it lacks."""
        glyphs = self.glyphs(font)
        for char in text:
            glyphs[char]
        if glyphs.missing.isdisjoint(text):
            return [(text, font)]
        if self._fallback is None:
            self._fallback = _mupdf().Font("cjk")
        fallback = self.glyphs(self._fallback)
        out: list[tuple[str, Any]] = []
        for char in text:
            fallback[char]
            use = self._fallback if char in glyphs.missing and char not in fallback.missing else font
            if out and out[-1][1] is use:
                out[-1] = (out[-1][0] + char, use)
            else:
                out.append((char, use))
        return out

    def width(self, text: str, font: Any, size: float) -> float:
        """The width of `text` in points (glyph advances, cached: PyMuPDF measures a character at a time)."""
        glyphs = self.glyphs(font)
        total = sum(map(glyphs.__getitem__, text))
        if glyphs.missing and not glyphs.missing.isdisjoint(text):
            total = sum(sum(map(self.glyphs(f).__getitem__, run)) for run, f in self.runs(text, font))
        return total * size


@dataclass(frozen=True)
class TextBox:
    """Where a piece of text was drawn (points, y downwards), for the layout checks."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float
    text: str


class _Painter:
    """One page being drawn: shapes first, then the text over them; every text box is recorded."""

    def __init__(self, page: Any, number: int, fonts: _Fonts, boxes: list[TextBox]) -> None:
        self._pymupdf = _mupdf()
        self.rect_type: Any = self._pymupdf.Rect
        self.page = page
        self.number = number
        self.fonts = fonts
        self.boxes = boxes
        self.shape = page.new_shape()
        self.writers: dict[Colour, Any] = {}

    def text(self, x: float, baseline: float, text: str, font: Any, size: float, colour: Colour = INK) -> float:
        """Draw `text` with its baseline at `baseline`; returns its width."""
        writer = self.writers.get(colour)
        if writer is None:
            writer = self.writers[colour] = self._pymupdf.TextWriter(self.page.rect)
        left = x
        for run, run_font in self.fonts.runs(text, font):
            writer.append((x, baseline), run, font=run_font, fontsize=size)
            x += self.fonts.width(run, run_font, size)
        self.boxes.append(TextBox(self.number, left, baseline - 0.8 * size, x, baseline + 0.22 * size, text))
        return x - left

    def rect(
        self, x0: float, y0: float, x1: float, y1: float, fill: Colour | None, stroke: Colour | None = None,
        radius: float | None = None, width: float = 0.8,
    ) -> None:  # fmt: skip
        self.shape.draw_rect(self._pymupdf.Rect(x0, y0, x1, y1), radius=radius)
        self.shape.finish(fill=fill, color=stroke, width=width)

    def fill_rects(self, rects: list[tuple[float, float, float, float]], fill: Colour) -> None:
        """Many rectangles (x0, y0, x1, y1) filled as one path: the `re` operators that
        Shape.draw_rect writes, without its per-call cost (a QR code has hundreds)."""
        if not rects:
            return
        a, b, c, d, e, f = (float(v) for v in self.shape.ipctm)
        ops = []
        for x0, y0, x1, y1 in rects:
            px, py = a * x0 + c * y1 + e, b * x0 + d * y1 + f  # the bottom-left corner, in PDF space
            ops.append(f"{px:.3f} {py:.3f} {x1 - x0:.3f} {y1 - y0:.3f} re\n")
        self.shape.draw_cont += "".join(ops)
        self.shape.updateRect(
            self.rect_type(min(r[0] for r in rects), min(r[1] for r in rects),
                           max(r[2] for r in rects), max(r[3] for r in rects))
        )  # fmt: skip
        self.shape.finish(fill=fill, color=None, width=0)

    def line(
        self, x0: float, y0: float, x1: float, y1: float, colour: Colour, width: float = 0.8, dashes: str | None = None
    ) -> None:
        self.shape.draw_line((x0, y0), (x1, y1))
        self.shape.finish(color=colour, width=width, dashes=dashes, lineCap=1 if dashes is None else 0)

    def circle(
        self, x: float, y: float, r: float, fill: Colour, stroke: Colour | None = None, width: float = 1
    ) -> None:
        self.shape.draw_circle((x, y), r)
        self.shape.finish(fill=fill, color=stroke, width=width)

    def finish(self) -> None:
        self.shape.commit()
        for colour, writer in self.writers.items():
            writer.write_text(self.page, color=colour)


# A laid-out piece of text: (dx, baseline dy, text, font, size, colour).
_Line = tuple[float, float, str, Any, float, Colour]


class _Flow:
    """Text laid out top-down in a fixed width, drawn later at any place."""

    def __init__(self, fonts: _Fonts, width: float) -> None:
        self.fonts = fonts
        self.width = width
        self.lines: list[_Line] = []
        self.height = 0.0

    def space(self, height: float) -> None:
        self.height += height

    def text(
        self, text: str, font: Any, size: float, colour: Colour = INK, *, indent: float = 0.0, leading: float = 1.25,
        align: str = "left", chars: bool = False,
    ) -> None:  # fmt: skip
        for line in wrap(self.fonts, text, font, size, self.width - indent, chars=chars):
            dx = indent
            if align == "right":
                dx = self.width - self.fonts.width(line, font, size)
            self.lines.append((dx, self.height + 0.8 * size, line, font, size, colour))
            self.height += size * leading

    def draw(self, painter: _Painter, x: float, y: float) -> None:
        for dx, dy, text, font, size, colour in self.lines:
            painter.text(x + dx, y + dy, text, font, size, colour)


def wrap(fonts: _Fonts, text: str, font: Any, size: float, width: float, *, chars: bool = False) -> list[str]:
    """`text` in lines no wider than `width`: cut between words (`chars`: anywhere, for a link)."""
    if chars:
        lines, line, used = [], "", 0.0
        for char in text:
            advance = fonts.width(char, font, size)
            if line and used + advance > width:
                lines.append(line)
                line, used = "", 0.0
            line += char
            used += advance
        lines = [*lines, line] if line or not lines else lines
        if len(lines) > 1:  # lines of even length: no lone "Yw" on the last line of a link
            per_line = math.ceil(len(text) / len(lines))
            even = [text[i : i + per_line] for i in range(0, len(text), per_line)]
            if len(even) == len(lines) and all(fonts.width(piece, font, size) <= width for piece in even):
                lines = even
        return lines
    space = fonts.width(" ", font, size)
    lines = []
    line, used = "", 0.0
    for word in text.split():
        word_width = fonts.width(word, font, size)
        if line and used + space + word_width <= width:
            line, used = f"{line} {word}", used + space + word_width
            continue
        if line:
            lines.append(line)
        if word_width <= width:
            line, used = word, word_width
        else:  # a word longer than the line: cut it
            pieces = wrap(fonts, word, font, size, width, chars=True)
            lines += pieces[:-1]
            line, used = pieces[-1], fonts.width(pieces[-1], font, size)
    if line or not lines:
        lines.append(line)
    return lines


def fit(fonts: _Fonts, text: str, font: Any, size: float, width: float) -> str:
    """`text` shortened with an ellipsis until it is no wider than `width`."""
    if fonts.width(text, font, size) <= width:
        return text
    text = text.rstrip("…")
    while text and fonts.width(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip(" ,;:") + "…"


@dataclass
class _Layout:
    """Sizes that scale together when the sheet must shrink to fit its page."""

    scale: float = 1.0

    def __call__(self, size: float) -> float:
        return size * self.scale


def _header(fonts: _Fonts, sheet: Sheet, width: float) -> tuple[_Flow, _Flow | None]:
    clinic = sheet.clinic
    has_clinic = any((clinic.name, clinic.phone, clinic.url))
    left_width = width * 0.6 if has_clinic else width
    left = _Flow(fonts, left_width)
    left.text(sheet.title, fonts.bold, 18, INK, leading=1.2)
    if sheet.patient_name:
        left.text(f"For {sheet.patient_name}", fonts.bold, 11.5, INK)
    left.space(2)
    left.text(f"{sheet.start_text}. {sheet.zone_text}", fonts.regular, 9.5, BODY)
    if not has_clinic:
        return left, None
    right = _Flow(fonts, width - left_width - 12)
    if clinic.name:
        right.text(clinic.name, fonts.bold, 12, INK, align="right")
    for detail in (clinic.phone, clinic.url):
        if detail:
            right.text(detail, fonts.regular, 9.5, BODY, align="right", chars=" " not in detail)
    return left, right


@dataclass
class _Stop:
    day: int
    x: float = 0.0
    key: SheetDay | None = None
    later: bool = False


def _stops(sheet: Sheet, x0: float, x1: float) -> list[_Stop]:
    """The days on the picture's axis and where they are: every key day and window edge gets a
    place, at least `min_gap` apart; the rest of the width goes by the square root of the days
    between them (the first days, when most happens, get more room than the weeks after)."""
    days = {d.day: d for d in sheet.days}
    on_axis = {0, sheet.axis_end} | {d for d in days if d <= sheet.axis_end}
    for period in sheet.periods:
        on_axis |= {period.first, period.last + 1}
    stops = [_Stop(d, key=days.get(d)) for d in sorted(on_axis)]
    stops += [_Stop(d, key=days[d], later=True) for d in sorted(days) if d > sheet.axis_end]
    if len(stops) == 1:
        stops[0].x = x0
        return stops
    weights = []
    for before, after in itertools.pairwise(stops):
        weights.append(math.sqrt(14) if after.later and not before.later else math.sqrt(after.day - before.day))
    available = x1 - x0
    min_gap = min(34.0, available / len(weights))
    spare = available - min_gap * len(weights)
    total = sum(weights)
    x = x0
    stops[0].x = x
    for stop, weight in zip(stops[1:], weights, strict=True):
        x += min_gap + spare * weight / total
        stop.x = x
    return stops


def _picture(painter: _Painter | None, fonts: _Fonts, sheet: Sheet, left: float, width: float, top: float) -> float:
    """Draw (or, without a painter, only measure) the timeline; returns its height."""
    y = top
    heading = 11.0
    if painter:
        painter.text(left, y + 0.8 * heading, "Your plan at a glance", fonts.bold, heading, ACCENT)
    y += heading * 1.25 + 6
    axis_y = y + 4
    pad = 20.0
    stops = _stops(sheet, left + pad, left + width - pad)
    axis_stops = [s for s in stops if not s.later]
    later = [s for s in stops if s.later]
    # Labels under the key days: "Day 7", weekday, date, times; stacked in lanes if they would touch.
    label_size, time_size = 7.8, 7.4
    blocks: list[tuple[_Stop, list[tuple[str, Any, float, Colour]], float, int]] = []
    lane_ends: list[float] = []
    for stop in stops:
        if stop.key is None:
            continue
        key = stop.key
        weekday, _, rest = key.date_text.partition(" ")
        label_lines: list[tuple[str, Any, float, Colour]] = [
            (key.label, fonts.bold, label_size, ACCENT if key.day == 0 else INK),
            (weekday, fonts.regular, label_size, BODY),
            (rest, fonts.regular, label_size, BODY),
        ]
        times = list(dict.fromkeys(e.time for e in key.entries))
        shown = times if len(times) <= 4 else [*times[:3], f"+{len(times) - 3} more"]
        label_lines += [(t, fonts.regular, time_size, MUTED) for t in shown]
        block_width = max(fonts.width(text, font, size) for text, font, size, _ in label_lines)
        lo = stop.x - block_width / 2
        lane = next((i for i, end in enumerate(lane_ends) if lo >= end + 4), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(0.0)
        lane_ends[lane] = stop.x + block_width / 2
        blocks.append((stop, label_lines, block_width, lane))
    block_height = max([sum(size * 1.22 for _, _, size, _ in block[1]) for block in blocks] + [0.0])
    labels_top = axis_y + 9
    labels_height = (block_height + 4) * max(len(lane_ends), 1)
    bars_top = labels_top + labels_height + 4
    # The bars: a label line (its dates after it), then the bar.
    bar_rows: list[tuple[SheetPeriod, list[str], float, float, float]] = []
    stop_x = {s.day: s.x for s in axis_stops}
    row_y = bars_top
    title_size, bar_height = 8.4, 7.0
    for period in sheet.periods:
        x_start, x_end = stop_x[period.first], stop_x[period.last + 1]
        text = f"{period.label} · {period.dates_text}"
        lines = wrap(fonts, text, fonts.bold, title_size, width)[:2]
        text_width = max(fonts.width(line, fonts.bold, title_size) for line in lines)
        text_x = max(left, min(x_start, left + width - text_width))
        bar_rows.append((period, lines, text_x, x_start, x_end))
        row_y += len(lines) * title_size * 1.2 + bar_height + 5
    bottom = row_y
    if painter is None:
        return bottom - top
    # Guides from each key day (below its labels) down through the bars, the bars' labels on white
    # over them, then the axis.
    for stop in stops:
        if stop.key is not None and sheet.periods:
            painter.line(stop.x, bars_top - 2, stop.x, bottom - 3, GUIDE, 0.6, dashes="[1.5 2] 0")
    row_y = bars_top
    for _period, lines, text_x, _start, _end in bar_rows:
        for line in lines:
            line_width = fonts.width(line, fonts.bold, title_size)
            painter.rect(text_x - 1.5, row_y - 0.5, text_x + line_width + 1.5, row_y + title_size * 1.1, WHITE)
            row_y += title_size * 1.2
        row_y += bar_height + 5
    first, last_on_axis = axis_stops[0].x, axis_stops[-1].x
    painter.line(first, axis_y, last_on_axis, axis_y, MUTED, 1.6)
    if later:
        mid = (last_on_axis + later[0].x) / 2
        painter.line(last_on_axis, axis_y, later[-1].x, axis_y, MUTED, 1.0, dashes="[2 2] 0")
        for dx in (-2.5, 2.5):  # the break: two slanted strokes
            painter.line(mid + dx - 2, axis_y + 4, mid + dx + 2, axis_y - 4, MUTED, 1.0)
    for stop in stops:
        if stop.key is None:
            painter.line(stop.x, axis_y - 3, stop.x, axis_y + 3, MUTED, 1.0)
        elif stop.day == 0:
            painter.circle(stop.x, axis_y, 5.2, WHITE, ACCENT, 2.0)
            painter.circle(stop.x, axis_y, 2.2, ACCENT)
        else:
            painter.circle(stop.x, axis_y, 3.6, ACCENT)
    for stop, label_lines, _width, lane in blocks:
        y = labels_top + lane * (block_height + 4)
        for text, font, size, colour in label_lines:
            w = fonts.width(text, font, size)
            x = min(max(stop.x - w / 2, left), left + width - w)
            painter.text(x, y + 0.8 * size, text, font, size, colour)
            y += size * 1.22
    row_y = bars_top
    for period, lines, text_x, x_start, x_end in bar_rows:
        colour = REBOOK if period.rebook else AVOID
        for line in lines:
            label, sep, dates = line.rpartition(" · ")
            if sep:
                drawn = painter.text(text_x, row_y + 0.8 * title_size, label + sep, fonts.bold, title_size, INK)
                painter.text(text_x + drawn, row_y + 0.8 * title_size, dates, fonts.regular, title_size, BODY)
            else:
                painter.text(text_x, row_y + 0.8 * title_size, line, fonts.bold, title_size, INK)
            row_y += title_size * 1.2
        painter.rect(x_start, row_y + 1, max(x_end, x_start + 3), row_y + 1 + bar_height, colour, radius=0.5)
        row_y += bar_height + 5
    return bottom - top


def _qr_matrix(data: str) -> list[list[bool]]:
    import segno

    try:
        qr = segno.make_qr(data, error=ERROR_LEVEL, boost_error=True)
    except segno.DataOverflowError:
        raise InputError(f"the link is too long for a QR code ({len(data)} characters)") from None
    return [[bool(dark) for dark in row] for row in qr.matrix_iter(scale=1, border=QUIET_ZONE)]


def _contact_box(fonts: _Fonts, sheet: Sheet, width: float) -> _Flow | None:
    clinic = sheet.clinic
    details = [d for d in (clinic.name, clinic.phone, clinic.url) if d]
    if not sheet.contacts and not details:
        return None
    flow = _Flow(fonts, width - 20)
    flow.text("When to contact the clinic", fonts.bold, 10.5, INK)
    flow.space(3)
    for contact in sheet.contacts:
        flow.text(f"{contact.title} ({contact.when})", fonts.bold, 8.8, INK, leading=1.22)
        flow.text(contact.text, fonts.regular, 8.4, BODY, leading=1.22)
        flow.space(4)
    if details:
        flow.text(" · ".join(details), fonts.bold, 9.2, INK, chars=False)
    else:
        flow.text("Contact the clinic that gave you this sheet.", fonts.regular, 8.6, BODY)
    return flow


@dataclass
class _QrBox:
    matrix: list[list[bool]]
    module: float
    side: float
    text: _Flow
    height: float


def _qr_box(fonts: _Fonts, link: str, width: float) -> _QrBox:
    """The QR code (about 38 mm: phones read it from arm's length) with the words and the link at its right."""
    matrix = _qr_matrix(link)
    side = min(108.0, width * 0.4)
    module = side / len(matrix)
    text = _Flow(fonts, width - 20 - side - 6)
    text.text("Put these reminders on your phone", fonts.bold, 10.5, INK, leading=1.2)
    text.space(2)
    text.text(SUBSCRIBE_LINE, fonts.regular, 8.2, BODY, leading=1.2)
    text.space(3)
    text.text(link, fonts.mono, 8.0, INK, chars=True, leading=1.2)
    text.space(2)
    text.text(PRIVATE_LINE, fonts.regular, 7.2, MUTED, leading=1.2)
    height = 8 + max(side, text.height + 2) + 8
    return _QrBox(matrix, module, side, text, height)


def _draw_qr(painter: _Painter, box: _QrBox, x: float, y: float) -> None:
    painter.rect(x, y, x + box.side, y + box.side, WHITE)
    runs: list[tuple[float, float, float]] = []
    for row_index, row in enumerate(box.matrix):
        col = 0
        while col < len(row):
            if not row[col]:
                col += 1
                continue
            start = col
            while col < len(row) and row[col]:
                col += 1
            # A hair of overlap so that no light seam shows between the runs of modules.
            runs.append((x + start * box.module, y + row_index * box.module, (col - start) * box.module + 0.05))
    painter.fill_rects([(x0, y0, x0 + w, y0 + box.module + 0.05) for x0, y0, w in runs], BLACK)


def _key_day_units(fonts: _Fonts, sheet: Sheet, width: float, layout: _Layout) -> list[_Flow]:
    """The key days as pieces a column break may come between: a day's heading stays with its first entry."""
    units = []
    time_width = fonts.width("00:00", fonts.bold, layout(8.8)) + 7
    for day in sheet.days:
        for index, entry in enumerate(day.entries):
            flow = _Flow(fonts, width)
            if index == 0:
                flow.space(layout(3))
                flow.text(f"{day.label} · {day.date_text}", fonts.bold, layout(9.6), ACCENT, leading=1.3)
                flow.space(layout(1))
            flow.lines.append((0.0, flow.height + 0.8 * layout(8.8), entry.time, fonts.bold, layout(8.8), INK))
            if not entry.alarm:
                y = flow.height + layout(8.8) * 1.22 + 0.8 * layout(6.6)
                flow.lines.append((0.0, y, "no alert", fonts.regular, layout(6.6), MUTED))
            flow.text(entry.title, fonts.bold, layout(8.8), INK, indent=time_width, leading=1.22)
            if entry.summary:
                flow.text(entry.summary, fonts.regular, layout(8.3), BODY, indent=time_width, leading=1.22)
            flow.space(layout(4))
            units.append(flow)
    return units


def _columns(units: list[_Flow], height: float | None, count: int = 2) -> tuple[list[list[_Flow]], list[_Flow]]:
    """Units into `count` columns no taller than `height` (None: balanced); the units left over."""
    if height is None:
        # Balanced: the break that makes the taller column shortest.
        best: list[list[_Flow]] = [units, []]
        best_height = sum(u.height for u in units)
        for cut in range(1, len(units)):
            first, second = sum(u.height for u in units[:cut]), sum(u.height for u in units[cut:])
            if max(first, second) < best_height:
                best_height, best = max(first, second), [units[:cut], units[cut:]]
        return best, []
    columns: list[list[_Flow]] = [[] for _ in range(count)]
    index = 0
    for column in columns:
        used = 0.0
        while index < len(units) and used + units[index].height <= height:
            used += units[index].height
            column.append(units[index])
            index += 1
    return columns, units[index:]


def _column_height(column: list[_Flow]) -> float:
    return sum(u.height for u in column)


@dataclass(frozen=True)
class Rendered:
    """A drawn handout: its bytes, its pages and where every piece of text went."""

    data: bytes
    pages: int
    page_size: tuple[float, float]
    boxes: tuple[TextBox, ...]


def render_handout(sheet: Sheet, *, paper: str = "a4", fmt: str = "pdf", dpi: int = PNG_DPI) -> Rendered:
    """Draw the sheet on `paper` ("a4" or "letter") as "pdf" or "png" bytes.

    One page where it fits (the key days' text shrinks a little first); otherwise the key days go
    on over more pages. A PNG is one image: a sheet longer than its paper becomes a longer image.
    """
    if paper not in PAPER_SIZES:
        raise InputError(f"unknown paper size {paper!r}: use a4 or letter")
    if fmt not in FORMATS:
        raise InputError(f"unknown handout format {fmt!r}: use pdf or png")
    check_installed()
    pymupdf = _mupdf()

    width, height = PAPER_SIZES[paper]
    fonts = _Fonts()
    content = width - 2 * MARGIN
    bottom_limit = height - MARGIN - 12  # the footer line sits below

    # The parts above the key days, measured.
    head_left, head_right = _header(fonts, sheet, content)
    head_height = max(head_left.height, head_right.height if head_right else 0.0)
    picture_height = _picture(None, fonts, sheet, MARGIN, content, 0.0)
    qr_width = content * 0.58 if sheet.link else 0.0
    qr = _qr_box(fonts, sheet.link, qr_width - 8) if sheet.link else None
    contact_width = content - qr_width
    contact = _contact_box(fonts, sheet, contact_width) if contact_width > 0 else None
    band_height = max(qr.height if qr else 0.0, (contact.height + 16) if contact else 0.0)
    top_height = head_height + 8 + GAP + picture_height + GAP + (band_height + GAP if band_height else 0.0)
    list_heading = 11.0 * 1.4

    column_gap = 18.0
    column_width = (content - column_gap) / 2
    layout = _Layout()
    first_page_room = bottom_limit - MARGIN - top_height - list_heading
    for scale in (1.0, 0.95, 0.9, 0.85, 0.8):  # the key days' text shrinks a little before a page is added
        layout.scale = scale
        units = _key_day_units(fonts, sheet, column_width, layout)
        columns, _ = _columns(units, None)
        tallest = max(_column_height(c) for c in columns)
        if tallest <= first_page_room:
            break
    pages_units: list[list[list[_Flow]]] = []
    if fmt == "png" or tallest <= first_page_room:
        pages_units.append(columns)
        if tallest > first_page_room:  # a PNG is one image: make the page as long as its content
            height = MARGIN + top_height + list_heading + tallest + MARGIN + 12
    else:
        columns, rest = _columns(units, first_page_room)
        pages_units.append(columns)
        while rest:
            columns, rest = _columns(rest, height - 2 * MARGIN - 12 - list_heading)
            if not any(columns):  # one unit taller than a page: cannot happen with these sizes
                raise OutputError("a key day's text is too long to print")
            pages_units.append(columns)

    doc = pymupdf.open()
    boxes: list[TextBox] = []
    for number, columns in enumerate(pages_units):
        page = doc.new_page(width=width, height=height)
        painter = _Painter(page, number, fonts, boxes)
        y = MARGIN
        if number == 0:
            head_left.draw(painter, MARGIN, y)
            if head_right is not None:
                head_right.draw(painter, MARGIN + content - head_right.width, y)
            y += head_height + 8
            painter.line(MARGIN, y, MARGIN + content, y, RULE, 0.8)
            y += GAP
            _picture(painter, fonts, sheet, MARGIN, content, y)
            y += picture_height + GAP
            if band_height:
                if contact is not None:
                    painter.rect(MARGIN, y, MARGIN + contact_width, y + band_height, CALL, radius=0.04)
                    contact.draw(painter, MARGIN + 10, y + 9)
                if qr is not None:
                    x = MARGIN + content - qr_width + 8
                    painter.rect(x, y, MARGIN + content, y + band_height, PANEL, radius=0.04)
                    _draw_qr(painter, qr, x + 8, y + 8)
                    qr.text.draw(painter, x + 8 + qr.side + 6, y + 10)
                y += band_height + GAP
        heading = "Key days: what to do" + (" (continued)" if number else "")
        painter.text(MARGIN, y + 0.8 * 11, heading, fonts.bold, 11, ACCENT)
        y += list_heading
        for index, column in enumerate(columns):
            x = MARGIN + index * (column_width + column_gap)
            column_y = y
            for unit in column:
                unit.draw(painter, x, column_y)
                column_y += unit.height
        footer = []
        if len(pages_units) > 1:
            footer.append(f"Page {number + 1} of {len(pages_units)}")
        footer.append(sheet.title)
        text = " · ".join(footer)
        painter.text(MARGIN, height - MARGIN + 2, fit(fonts, text, fonts.regular, 7, content), fonts.regular, 7, MUTED)
        painter.finish()
    # No patient name in the metadata: the title is the plan's, the dates are left out (same input, same bytes).
    doc.set_metadata({"title": sheet.title, "creator": "aftercal", "producer": "aftercal"})
    if fmt == "png":
        data = doc[0].get_pixmap(dpi=dpi, alpha=False).tobytes("png")
    else:
        doc.subset_fonts()
        data = doc.tobytes(garbage=3, deflate=True, no_new_id=True)
    pages = len(pages_units)
    doc.close()
    return Rendered(bytes(data), pages, (width, height), tuple(boxes))
