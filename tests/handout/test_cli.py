"""`aftercal handout` and the --handout options of `treatments add` and `treatments link --rotate`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from tests.feed.conftest import links_from
from tests.feed_page.qrtools import decode
from tests.handout.conftest import LINK, flat, pdftoppm_grey, pdftotext
from tests.helpers import new_store

runner = CliRunner()
HANDOUT = ["handout", "microneedling", "--at", "2026-11-24T10:00", "--tz", "America/New_York"]
ADD = ["treatments", "add", "microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Madrid", "--id", "T-1001"]
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_handout_writes_a_pdf_that_honours_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "handout.pdf"
    with umask(0o022):
        result = runner.invoke(app, [*HANDOUT, "--clinic-name", "Riverside", "--paper", "letter", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF-")
    assert mode(out) == 0o644
    assert "Wrote the handout (letter)" in result.stderr
    text = flat(pdftotext(out))
    assert "Riverside" in text and "Today · Tue 24 Nov" in text


@pytest.mark.parametrize("extra", [["--patient-name", "Zoë Núñez"], ["--link", LINK]], ids=["patient-name", "link"])
def test_a_handout_with_a_name_or_a_link_is_private(tmp_path: Path, extra: list[str]) -> None:
    out = tmp_path / "handout.png"
    out.write_bytes(b"old")
    out.chmod(0o644)  # even a file it replaces becomes private
    with umask(0o022):
        result = runner.invoke(app, [*HANDOUT, *extra, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")
    assert mode(out) == 0o600


def test_the_link_given_is_the_qr_code_printed(tmp_path: Path) -> None:
    out = tmp_path / "handout.pdf"
    result = runner.invoke(app, [*HANDOUT, "--link", LINK, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert decode(pdftoppm_grey(out).grid(), scale=1) == LINK


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "handout.svg"], "use a file name ending in .pdf or .png"),
        (["--paper", "a5", "-o", "h.pdf"], "--paper 'a5': use a4 or letter"),
        (["--link", "javascript:alert(1)", "-o", "h.pdf"], "must be an absolute http:// or https:// address"),
        (["-o", "no-such-folder/h.pdf"], "does not exist"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*HANDOUT, *args])
    assert result.exit_code in (1, 2), result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_treatments_add_writes_the_handout_of_the_new_link(tmp_path: Path) -> None:
    db, out = new_store(tmp_path / "clinic.db"), tmp_path / "t-1001.pdf"
    result = runner.invoke(
        app,
        [*ADD, "--db", db, "--no-qr", "--base-url", "https://care.example", "--patient-name", "Ana Ruiz",
         "--handout", str(out), "--paper", "a4"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = links_from(result.stdout)["Page"]
    assert decode(pdftoppm_grey(out).grid(), scale=1) == page
    text = flat(pdftotext(out))
    assert "For Ana Ruiz" in text  # the handout is for the patient's hands; the feed stays nameless
    assert "Madrid time" in text
    assert mode(out) == 0o600
    assert f"to {out}" in result.stderr


def test_treatments_link_rotate_writes_a_handout_with_the_new_link(tmp_path: Path) -> None:
    db, out = new_store(tmp_path / "clinic.db"), tmp_path / "new.png"
    assert runner.invoke(app, [*ADD, "--db", db, "--no-qr"]).exit_code == 0
    refused = runner.invoke(app, ["treatments", "link", "T-1001", "--handout", str(out), "--db", db])
    assert refused.exit_code == 2
    assert "--new --handout" in refused.stderr
    rotated = runner.invoke(
        app, ["treatments", "link", "T-1001", "--rotate", "--no-qr", "--handout", str(out), "--db", db]
    )
    assert rotated.exit_code == 0, rotated.output
    assert out.read_bytes().startswith(b"\x89PNG") and mode(out) == 0o600


def test_a_bad_handout_file_is_refused_before_the_link_is_made(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db")
    result = runner.invoke(app, [*ADD, "--db", db, "--no-qr", "--handout", str(tmp_path / "h.doc")])
    assert result.exit_code == 2
    listed = runner.invoke(app, ["treatments", "list", "--db", db])
    assert "T-1001" not in listed.stdout  # nothing was stored: no link was made and lost


def test_a_missing_extra_says_which_to_install(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['pymupdf'] = None\n"  # as if the `handout` extra were not installed
        f"sys.argv = ['aftercal', *{[*HANDOUT, '-o', str(tmp_path / 'h.pdf')]!r}]\n"
        "from aftercal.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert proc.returncode == 1
    assert "pip install 'aftercal[handout]'" in proc.stderr
    assert not (tmp_path / "h.pdf").exists()


def test_other_commands_do_not_load_the_drawing_libraries() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['aftercal', 'plan', 'microneedling', '--at', '2026-11-24T10:00', '--tz', 'Asia/Tokyo',"
        " '-o', '-']\n"
        "from aftercal.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pymupdf', 'fitz', 'segno', 'calendars')),"
        " file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = proc.stderr.strip().splitlines()[-1]
    assert "pymupdf" not in loaded and "segno" not in loaded and "calendars.handout" not in loaded, loaded
