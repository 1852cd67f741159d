"""Fixtures for the handout tests, and readers built on Debian's poppler-utils.

`pdftotext` and `pdftoppm` (package poppler-utils; scripts/test.sh installs it as root) read the
PDFs as a reader's tools do; without them those tests are skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import pytest

from reminders import CarePlan, Clinic, PlanOptions, make_plan

LINK = "https://care.example/f/Zx3k9QmV0pLr7TnB2yWc5Hd8JfKa1GsE4uIo6PqRtYw"
CLINIC = Clinic(name="Lumière Skin Clinic", phone="+1 212 555 0142", url="https://lumiere.example/aftercare")
START = "2026-11-24T10:00"
# A handful of zones: New York with a DST change inside the plan (it starts in October), a
# quarter-hour offset, the earliest zone on Earth, one south of the equator, one in the west.
ZONE_CASES = [
    ("America/New_York", "2026-10-20T10:00"),
    ("Asia/Kathmandu", START),
    ("Pacific/Kiritimati", START),
    ("Australia/Sydney", "2026-09-22T16:30"),
    ("Europe/Paris", "2026-10-13T22:00"),
]
PAPERS = ("a4", "letter")


def new_york_plan(**options: object) -> CarePlan:
    """The New York plan of the golden image: a named patient, a clinic with all its details."""
    values: dict[str, object] = {"patient_name": "Zoë Núñez", "clinic": CLINIC, **options}
    return make_plan("microneedling", START, "America/New_York", treatment_id="T-1001", options=PlanOptions(**values))  # type: ignore[arg-type]


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} is missing: install Debian's poppler-utils (scripts/test.sh does as root)")
    return found


def pdftotext(pdf: Path) -> str:
    """The PDF's text as pdftotext extracts it (reading order)."""
    return subprocess.run([require("pdftotext"), str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def flat(text: str) -> str:
    """Whitespace collapsed: a wrapped title reads as one line again."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Word:
    page: int
    page_width: float
    page_height: float
    x0: float
    y0: float
    x1: float
    y1: float
    text: str


def pdf_words(pdf: Path) -> list[Word]:
    """Every word pdftotext finds, with its box on its page (pdftotext -bbox)."""
    html = subprocess.run(
        [require("pdftotext"), "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    words: list[Word] = []
    for number, page in enumerate(re.findall(r"<page (.*?)>(.*?)</page>", html, re.S)):
        attrs, body = page
        width = float(re.search(r'width="([\d.]+)"', attrs).group(1))  # type: ignore[union-attr]
        height = float(re.search(r'height="([\d.]+)"', attrs).group(1))  # type: ignore[union-attr]
        for x0, y0, x1, y1, text in re.findall(
            r'<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">(.*?)</word>', body
        ):
            words.append(Word(number, width, height, float(x0), float(y0), float(x1), float(y1), unescape(text)))
    return words


def pdf_pages(pdf: Path) -> int:
    html = subprocess.run(
        [require("pdftotext"), "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return html.count("<page ")


@dataclass(frozen=True)
class GreyImage:
    width: int
    height: int
    pixels: bytes  # one byte per pixel, rows top to bottom

    def grid(self) -> list[list[bool]]:
        """Dark (True) and light pixels, as tests/feed_page/qrtools.decode takes them."""
        w = self.width
        return [[value < 128 for value in self.pixels[y * w : (y + 1) * w]] for y in range(self.height)]


def pdftoppm_grey(pdf: Path, dpi: int = 150) -> GreyImage:
    """The first page in shades of grey, rasterised by poppler (not by the library that drew it)."""
    out = subprocess.run(
        [require("pdftoppm"), "-r", str(dpi), "-gray", "-singlefile", "-f", "1", "-l", "1", str(pdf)],
        capture_output=True,
        check=True,
    ).stdout
    match = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", out)
    assert match, out[:20]
    width, height = int(match.group(1)), int(match.group(2))
    pixels = out[match.end() :]
    assert len(pixels) == width * height
    return GreyImage(width, height, pixels)
