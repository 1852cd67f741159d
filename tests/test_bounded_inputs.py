"""Inputs that never end (issue 14): a device or a FIFO where a file is expected, a file too large.

`/dev/zero` as an appointments CSV was read until memory ran out, a FIFO blocked forever. Both are
refused now before anything is read (one line, exit 2), by the helper protocol files use too
(reminders.files.read_bounded_text). The commands run in a subprocess with a time limit and an
address-space limit, so that a regression fails the test instead of the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from reminders import appointments
from reminders.errors import InputError, ProtocolError
from reminders.files import read_bounded_text

SERVER = ["--url", "http://127.0.0.1:9/", "--user", "clinic", "--calendar", "c"]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def aftercal(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AFTERCAL_CALDAV_PASSWORD": "x"}
    return subprocess.run(
        [sys.executable, "-m", "aftercal.cli", *args], capture_output=True, text=True, timeout=timeout, env=env,
        preexec_fn=_limit_memory, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_dev_zero_as_csv_is_refused_at_once() -> None:
    result = aftercal("publish", "caldav", "--from", "/dev/zero", *SERVER)
    assert result.returncode == 2
    assert one_line(result) == "aftercal: error: /dev/zero: not a regular file (a device)"


def test_fifo_as_csv_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "day.csv"
    os.mkfifo(fifo)
    result = aftercal("publish", "google", "--from", str(fifo), "--api-endpoint", "http://127.0.0.1:9/", "--no-auth")
    assert result.returncode == 2
    assert one_line(result) == f"aftercal: error: {fifo}: not a regular file (a pipe)"


def test_folder_as_csv_is_refused(tmp_path: Path) -> None:
    result = aftercal("publish", "caldav", "--from", str(tmp_path), *SERVER)
    assert result.returncode == 2
    assert one_line(result) == f"aftercal: error: {tmp_path}: not a regular file (a folder)"


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_protocol_path_that_never_ends_is_refused(tmp_path: Path, path: str) -> None:
    if path == "fifo":
        path = str(tmp_path / "clinic.toml")
        os.mkfifo(path)
    result = aftercal("plan", path, "--at", "2026-11-24T10:00", "--tz", "Europe/Paris")
    assert result.returncode == 2
    assert one_line(result).startswith(f"aftercal: error: {path}: not a regular file (a ")


def test_oversized_csv_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appointments, "MAX_CSV_BYTES", 1000)
    big = tmp_path / "day.csv"
    big.write_text("id,protocol,start,zone\n" + "T-1,microneedling,2026-11-24T10:00,Europe/Paris\n" * 50)
    with pytest.raises(InputError, match=r"day.csv: larger than 1,000 bytes: not an appointments CSV$"):
        appointments.read_appointments(big)


def test_csv_header_is_checked_before_any_row_is_read(tmp_path: Path) -> None:
    # The rows stream, but a file that is not an appointments CSV fails at once, as a whole.
    bad = tmp_path / "day.csv"
    bad.write_text("name,when\nx,y\n")
    with pytest.raises(InputError, match="line 1: missing column"):
        appointments.read_appointments(bad)


def test_broken_quoting_is_a_bad_row_not_an_internal_error(tmp_path: Path) -> None:
    csv = tmp_path / "day.csv"
    csv.write_text('id,protocol,start,zone\nT-1,microneedling,2026-11-24T10:00,Europe/Paris\n"' + "x" * 200_000 + "\n")
    rows = list(appointments.read_appointments(csv))
    assert isinstance(rows[0], appointments.Appointment)
    assert isinstance(rows[1], appointments.BadRow) and "the rest of the file was not read" in rows[1].message


def test_read_bounded_text_reads_a_file_up_to_its_limit(tmp_path: Path) -> None:
    exact = tmp_path / "exact.txt"
    exact.write_bytes(b"x" * 10)
    assert read_bounded_text(exact, 10, "a test file") == "x" * 10
    with pytest.raises(InputError, match="larger than 9 bytes: not a test file"):
        read_bounded_text(exact, 9, "a test file")
    with pytest.raises(ProtocolError, match="no such file"):
        read_bounded_text(tmp_path / "nope", 9, "x", error=lambda problem: ProtocolError("nope", problem))
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_bounded_text(tmp_path / "latin1.txt", 100, "x")
