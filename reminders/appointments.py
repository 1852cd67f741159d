"""Staff batches: a CSV of a day's treatments for `publish ... --from appointments.csv`.

Columns (header row required, any order, names case-insensitive):

    id        treatment id (required)
    protocol  protocol name or path (required)
    start     local start, e.g. 2026-11-24T10:00 (required)
    zone      IANA time zone (required)
    calendar  calendar to publish to (optional; overrides --calendar / --calendar-id)

A bad row is reported with its line number and skipped; the other rows go on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reminders.errors import InputError

REQUIRED = ("id", "protocol", "start", "zone")


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
    """Rows of an appointments CSV; a missing file or header is an InputError for the whole file."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{path}: empty file, expected a header row: id,protocol,start,zone[,calendar]") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    index = {name: header.index(name) for name in (*REQUIRED, "calendar") if name in header}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            yield BadRow(line, f"expected {len(header)} columns, found {len(row)}")
            continue
        values = {name: row[i].strip() for name, i in index.items()}
        empty = [c for c in REQUIRED if not values[c]]
        if empty:
            yield BadRow(line, f"empty {', '.join(empty)}")
            continue
        yield Appointment(
            line=line,
            treatment_id=values["id"],
            protocol=values["protocol"],
            start=values["start"],
            zone=values["zone"],
            calendar=values.get("calendar") or None,
        )
