"""The drawn handout, read back with a reader's tools: pdftotext finds every key day with its date,
pdftoppm's picture of the page holds a QR code that decodes to the link, everything stays on one
page in every zone and on both papers, and the New York sheet still looks like its golden image.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import pytest

from aftercal.handouts import make_handout, write_handout
from calendars.handout import MARGIN, PAPER_SIZES, handout_sheet, render_handout
from reminders import CarePlan, make_plan
from reminders.schedule import PlanOptions
from tests.feed_page.qrtools import decode, png_size
from tests.handout.conftest import (
    CLINIC,
    LINK,
    PAPERS,
    ZONE_CASES,
    flat,
    new_york_plan,
    pdf_pages,
    pdf_words,
    pdftoppm_grey,
    pdftotext,
)

GOLDEN = Path(__file__).with_name("golden-new-york.png")
GOLDEN_DPI = 40
# Regenerate after an intended change of the layout, then look at the image before committing it:
#   AFTERCAL_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/handout/test_render.py -k golden
REGENERATE = os.environ.get("AFTERCAL_REGENERATE_GOLDEN") == "1"


def zone_plan(zone: str, start: str, **options: object) -> CarePlan:
    values: dict[str, object] = {"patient_name": "Zoë Núñez", "clinic": CLINIC, **options}
    return make_plan("microneedling", start, zone, treatment_id=f"T-{zone}", options=PlanOptions(**values))  # type: ignore[arg-type]


def write_pdf(tmp_path: Path, data: bytes, name: str = "handout.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("zone", "start"), ZONE_CASES)
@pytest.mark.parametrize("paper", PAPERS)
def test_the_text_carries_every_key_day_with_its_date_and_times(
    tmp_path: Path, zone: str, start: str, paper: str
) -> None:
    plan = zone_plan(zone, start)
    sheet = handout_sheet(plan, link=LINK)
    text = flat(pdftotext(write_pdf(tmp_path, render_handout(sheet, paper=paper).data)))
    for day in sheet.days:
        assert f"{day.label} · {day.date_text}" in text, (day.label, day.date_text)
        for entry in day.entries:
            assert f"{entry.time} {entry.title}" in text, entry
    for period in sheet.periods:
        assert period.dates_text in text
    assert "Zoë Núñez" in text
    assert sheet.zone_text in text


@pytest.mark.parametrize(("zone", "start"), ZONE_CASES)
@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("discreet", [False, True], ids=["plain", "discreet"])
def test_everything_stays_on_one_page(tmp_path: Path, zone: str, start: str, paper: str, discreet: bool) -> None:
    sheet = handout_sheet(zone_plan(zone, start, discreet=discreet), link=LINK)
    rendered = render_handout(sheet, paper=paper)
    width, height = PAPER_SIZES[paper]
    assert rendered.pages == 1
    pdf = write_pdf(tmp_path, rendered.data)
    assert pdf_pages(pdf) == 1
    words = pdf_words(pdf)
    assert words
    # As a reader finds it (pdftotext's boxes run from the font's top to its bottom): inside the
    # page, clear of the quarter inch that printers cannot print.
    for word in words:
        assert (round(word.page_width, 1), round(word.page_height, 1)) == (round(width, 1), round(height, 1))
        assert word.x0 >= 18 and word.x1 <= width - 18, word
        assert word.y0 >= 18 and word.y1 <= height - 18, word
    # As the layout placed it: inside the margins, and no piece of text over another.
    for box in rendered.boxes:
        assert box.x0 >= MARGIN - 0.01 and box.x1 <= width - MARGIN + 0.01, box
        assert box.y0 >= MARGIN - 0.01 and box.y1 <= height - MARGIN + 4, box
    for a, b in itertools.combinations(rendered.boxes, 2):
        overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
        overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
        assert overlap_x <= 0.5 or overlap_y <= 0.5, (a, b)


@pytest.mark.parametrize("paper", PAPERS)
def test_the_qr_code_on_the_page_decodes_to_the_link(tmp_path: Path, paper: str) -> None:
    pdf = write_pdf(tmp_path, make_handout(new_york_plan(), link=LINK, paper=paper))
    image = pdftoppm_grey(pdf, dpi=150)
    assert decode(image.grid(), scale=1) == LINK
    assert LINK in flat(pdftotext(pdf)).replace(" ", "") or LINK in pdftotext(pdf).replace("\n", "")


def test_without_a_link_there_is_no_qr_code(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path, make_handout(new_york_plan()))
    assert decode(pdftoppm_grey(pdf, dpi=100).grid(), scale=1) is None
    assert "Put these reminders on your phone" not in flat(pdftotext(pdf))


def test_discreet_text_has_no_treatment_word(tmp_path: Path) -> None:
    plan = new_york_plan(discreet=True)
    text = pdftotext(write_pdf(tmp_path, make_handout(plan, link=LINK))).lower()
    assert "skin care reminders" in text
    for word in plan.protocol.treatment_words:
        assert word.lower() not in text, word


def test_names_in_any_script_stay_text(tmp_path: Path) -> None:
    for name in ("Zoë Núñez", "Łucja Źdźbło", "Ἀθηνᾶ Παπαδοπούλου", "Жанна Ёлкина", "王小明"):
        plan = make_plan("microneedling", "2026-11-24T10:00", "Asia/Tokyo", options=PlanOptions(patient_name=name))
        text = flat(pdftotext(write_pdf(tmp_path, make_handout(plan))))
        assert f"For {name}" in text, name


def test_no_patient_name_without_patient_name(tmp_path: Path) -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "America/New_York", options=PlanOptions(clinic=CLINIC))
    text = flat(pdftotext(write_pdf(tmp_path, make_handout(plan, link=LINK))))
    assert text.startswith("Microneedling aftercare Lumière Skin Clinic")
    assert "Zoë" not in text and "Núñez" not in text
    named = write_pdf(tmp_path, make_handout(new_york_plan(), link=LINK), "named.pdf")
    assert "For Zoë Núñez" in flat(pdftotext(named))
    info = subprocess.run(["pdfinfo", str(named)], capture_output=True, text=True, check=False).stdout
    assert "Zo" not in info and "Microneedling aftercare" in info  # not in the metadata


def test_the_same_input_gives_the_same_bytes() -> None:
    assert make_handout(new_york_plan(), link=LINK) == make_handout(new_york_plan(), link=LINK)


def test_png_is_the_same_page_as_pixels(tmp_path: Path) -> None:
    data = make_handout(new_york_plan(), link=LINK, paper="letter", fmt="png")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert png_size(data) == (1275, 1650)  # US Letter at 150 dpi
    write_handout(new_york_plan(), tmp_path / "h.png", link=LINK, paper="a4")
    assert png_size((tmp_path / "h.png").read_bytes()) == (1241, 1754)  # A4 (595.28 pt) at 150 dpi, rounded up


def test_a_sheet_too_long_for_its_paper_goes_on_over_more_pages(tmp_path: Path) -> None:
    from dataclasses import replace

    sheet = handout_sheet(new_york_plan(), link=LINK)
    long_sheet = replace(sheet, days=sheet.days * 3)
    rendered = render_handout(long_sheet, paper="letter")
    assert rendered.pages > 1
    assert pdf_pages(write_pdf(tmp_path, rendered.data)) == rendered.pages
    png = render_handout(long_sheet, paper="letter", fmt="png").data
    assert png_size(png)[1] > 1650  # one image, longer than the paper


def test_the_new_york_handout_looks_like_its_golden_image() -> None:
    pymupdf = pytest.importorskip("pymupdf")
    pdf = make_handout(new_york_plan(), link=LINK, paper="a4")
    page = pymupdf.open(stream=pdf, filetype="pdf")[0]
    pixmap = page.get_pixmap(dpi=GOLDEN_DPI, colorspace=pymupdf.csGRAY, alpha=False)
    if REGENERATE or not GOLDEN.exists():
        GOLDEN.write_bytes(pixmap.tobytes("png"))
        if not REGENERATE:
            pytest.fail(f"{GOLDEN.name} was missing and has been written: look at it, then run again")
    golden = pymupdf.Pixmap(str(GOLDEN))
    assert (golden.width, golden.height, golden.n) == (pixmap.width, pixmap.height, pixmap.n)
    differing = sum(1 for a, b in zip(golden.samples, pixmap.samples, strict=True) if abs(a - b) > 48)
    share = differing / len(pixmap.samples)
    # Another build of the rasteriser may shade edges a little differently; a moved line of text
    # or a changed bar changes thousands of pixels (several per cent).
    assert share < 0.004, f"{share:.2%} of the pixels differ from {GOLDEN.name} (see the comment above to regenerate)"
