"""One treatment id twice in a `--from` file (issue 16, item 5): the second row is refused, with both lines.

Publishing both would send the same event ids twice (Google runs a batch's parts in any order, so
which date won was chance) and report the treatment twice. The first row stays; the second is a
bad row like any other: one line naming both lines, skipped, and the run ends with exit code 1.
"""

from __future__ import annotations

from pathlib import Path

from reminders.appointments import Appointment, BadRow, read_appointments


def test_second_row_of_a_treatment_is_a_bad_row_naming_the_first(tmp_path: Path) -> None:
    csv = tmp_path / "day.csv"
    csv.write_text(
        "id,protocol,start,zone\n"
        "T-1,microneedling,2026-11-24T09:00,Europe/Paris\n"
        "\n"
        "T-2,microneedling,2026-11-24T10:00,Europe/Paris\n"
        " T-1 ,microneedling,2026-11-30T15:00,Europe/Paris\n"
        "t-1,microneedling,2026-11-30T15:00,Europe/Paris\n",
        encoding="utf-8",
    )
    rows = list(read_appointments(csv))
    assert [type(row) for row in rows] == [Appointment, Appointment, BadRow, Appointment]
    bad = rows[2]
    assert isinstance(bad, BadRow) and bad.line == 5
    assert bad.message == "treatment id 'T-1' is already on line 2: give each treatment one row"
    assert isinstance(rows[3], Appointment) and rows[3].treatment_id == "t-1"  # ids are case-sensitive
