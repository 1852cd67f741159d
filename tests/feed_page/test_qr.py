"""QR codes of feed links: terminal text, SVG and PNG each decode back to the same link."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from calendars.feeds.qr import PNG_SCALE, qr_terminal, write_qr
from reminders.errors import InputError, OutputError

from .qrtools import decode, png_size, read_png, read_svg, read_terminal

# ISO/IEC 18004 asks for a light border of 4 modules around a QR code.
QUIET_ZONE = 4
LINK = "webcal://127.0.0.1:8765/feed/Zq3x-K9vT2mWb8YpL0aRsE4u/care.ics"


def quiet_zone_is_light(grid: list[list[bool]], width: int) -> bool:
    rows_ok = all(not any(row) for row in grid[:width] + grid[-width:])
    cols_ok = all(not any(row[:width]) and not any(row[-width:]) for row in grid)
    return rows_ok and cols_ok


def test_terminal_qr_decodes_to_the_link() -> None:
    text = qr_terminal(LINK)
    assert set(text) <= {"\u2588", "\u2580", "\u2584", " ", "\n"}
    lines = text.rstrip("\n").split("\n")
    assert len({len(line) for line in lines}) == 1, "ragged lines"
    grid = read_terminal(text)
    modules = len(lines[0]) - 2 * QUIET_ZONE
    assert (modules - 17) % 4 == 0 and modules >= 21, "not a QR code symbol size"
    assert quiet_zone_is_light(grid[: len(lines[0])], QUIET_ZONE)
    assert decode(grid) == LINK


def test_terminal_qr_differs_by_link() -> None:
    other = LINK.replace("Zq3x", "Zq3y")
    assert qr_terminal(LINK) != qr_terminal(other)
    assert decode(read_terminal(qr_terminal(other))) == other


def test_png_is_valid_sized_and_decodes(tmp_path: Path) -> None:
    target = tmp_path / "link.PNG"
    write_qr(LINK, target)
    data = target.read_bytes()
    grid = read_png(data)  # checks signature, CRCs, IDAT size
    width, height = png_size(data)
    assert width == height and width % PNG_SCALE == 0
    modules = width // PNG_SCALE - 2 * QUIET_ZONE
    assert (modules - 17) % 4 == 0
    assert quiet_zone_is_light(grid, QUIET_ZONE * PNG_SCALE)
    assert decode(grid, scale=1) == LINK
    assert [p.name for p in tmp_path.iterdir()] == ["link.PNG"], "temporary file left behind"


def test_svg_parses_as_xml_and_decodes(tmp_path: Path) -> None:
    target = tmp_path / "link.svg"
    write_qr(LINK, str(target))
    root, grid = read_svg(target.read_bytes())
    assert root.attrib["width"] == root.attrib["height"]
    backgrounds = [p for p in root.iter("{http://www.w3.org/2000/svg}path") if p.attrib.get("fill") == "#fff"]
    assert backgrounds, "the SVG needs an opaque light background"
    assert quiet_zone_is_light(grid, QUIET_ZONE)
    assert decode(grid) == LINK


def test_all_three_renderings_agree(tmp_path: Path) -> None:
    write_qr(LINK, tmp_path / "a.png")
    write_qr(LINK, tmp_path / "a.svg")
    png = read_png((tmp_path / "a.png").read_bytes())
    png_modules = [row[::PNG_SCALE] for row in png[::PNG_SCALE]]
    _, svg = read_svg((tmp_path / "a.svg").read_bytes())
    text = read_terminal(qr_terminal(LINK))[: len(svg)]
    assert png_modules == svg == text


@pytest.mark.parametrize("name", ["link.jpg", "link", "link.svg.txt", "link.pdf"])
def test_other_suffix_is_refused_and_nothing_written(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match=r"\.svg or \.png") as caught:
        write_qr(LINK, tmp_path / name)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        write_qr(LINK, tmp_path / "nope" / "link.png")


def test_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "link.png"
    target.write_bytes(b"old")
    write_qr(LINK, target)
    assert decode(read_png(target.read_bytes()), scale=1) == LINK


def test_empty_and_oversized_text_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        qr_terminal("")
    with pytest.raises(InputError, match="too long"):
        write_qr("x" * 5000, tmp_path / "big.svg")
    assert list(tmp_path.iterdir()) == []


def test_importing_costs_no_segno() -> None:
    code = "import sys, calendars.feeds.qr, calendars.feeds.landing; print('segno' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
