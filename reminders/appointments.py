"""Staff batches: a CSV of a day's treatments for `publish ... --from appointments.csv`.

Columns (header row required, any order, names case-insensitive):

    id        treatment id (required)
    protocol  protocol name or path (required)
    start     local start, e.g. 2026-11-24T10:00 (required)
    zone      IANA time zone (required)
    calendar  calendar to publish to (optional; overrides --calendar / --calendar-id)

A bad row is reported with its line number and skipped; the other rows go on. So is a row whose
treatment id an earlier row already has: it names both lines (the events of one treatment have one
set of ids: publishing both rows would write them twice, and which date stayed was chance). Rows
are read lazily, one at a time, so a caller can make and publish plans as it goes; the file itself
must be a regular file of at most MAX_CSV_BYTES (a day's list is kilobytes: 100,000 rows are ~6 MB).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reminders.errors import InputError
from reminders.files import read_bounded_text

REQUIRED = ("id", "protocol", "start", "zone")
MAX_CSV_BYTES = 16_000_000


@dataclass(frozen=True)
class Appointment:
    line: int
    treatment_id: str
    protocol: str
    start: str
    zone: str
    calendar: str | None


@dataclass(frozen=True)
class BadRow:
    line: int
    message: str


def read_appointments(path: str | Path) -> Iterator[Appointment | BadRow]:
    """Rows of an appointments CSV, read as they are iterated.

    The file and its header are checked at once: a missing, unreadable, oversized or headerless
    file is an InputError for the whole file, raised by this call (before any row is used).
    """
    text = read_bounded_text(path, MAX_CSV_BYTES, "an appointments CSV", encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{path}: empty file, expected a header row: id,protocol,start,zone[,calendar]") from None
    except csv.Error as exc:
        raise InputError(f"{path}: line 1: {exc}") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    index = {name: header.index(name) for name in (*REQUIRED, "calendar") if name in header}
    return _rows(reader, len(header), index)


def _rows(reader: Any, columns: int, index: dict[str, int]) -> Iterator[Appointment | BadRow]:
    """The rows after the header; `reader` is a csv.reader (its line_num numbers the rows)."""
    first_line: dict[str, int] = {}  # treatment id -> the line of its first row
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The quoting broke (a stray quote opens a field that never ends): nothing after
            # this line can be trusted to be split right, so the rest of the file is not read.
            yield BadRow(reader.line_num, f"{exc}; the rest of the file was not read")
            return
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < columns:
            yield BadRow(line, f"expected {columns} columns, found {len(row)}")
            continue
        values = {name: row[i].strip() for name, i in index.items()}
        empty = [c for c in REQUIRED if not values[c]]
        if empty:
            yield BadRow(line, f"empty {', '.join(empty)}")
            continue
        first = first_line.setdefault(values["id"], line)
        if first != line:
            yield BadRow(line, f"treatment id {values['id']!r} is already on line {first}: give each treatment one row")
            continue
        yield Appointment(
            line=line,
            treatment_id=values["id"],
            protocol=values["protocol"],
            start=values["start"],
            zone=values["zone"],
            calendar=values.get("calendar") or None,
        )
