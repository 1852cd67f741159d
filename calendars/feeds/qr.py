"""QR codes of feed links, for the clinic to show or print: in the terminal, as SVG or as PNG.

`segno` (pure Python, no dependencies; in the `serve` extra) is imported inside the functions,
so importing this module costs nothing.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from reminders.errors import InputError
from reminders.files import write_atomic

# Medium error correction: survives a smudged print or a phone screen's glare.
ERROR_LEVEL = "m"
QUIET_ZONE = 4  # modules of light border that scanners need around a QR code
PNG_SCALE = 8  # pixels per module: a link-sized code becomes a ~300-400 px image
SVG_SCALE = 4

# Half-block characters for two module rows per text line: (top is light, bottom is light).
_BLOCKS = {
    (True, True): "\u2588",  # full block
    (True, False): "\u2580",  # upper half block
    (False, True): "\u2584",  # lower half block
    (False, False): " ",
}


def _make(data: str) -> Any:
    if not data:
        raise InputError("cannot make a QR code of an empty text")
    import segno

    try:
        return segno.make_qr(data, error=ERROR_LEVEL, boost_error=True)
    except segno.DataOverflowError:
        raise InputError(f"text too long for a QR code ({len(data)} characters)") from None


def qr_terminal(data: str) -> str:
    """The QR code of `data` as text, two module rows per line, with a 4-module quiet zone.

    Light modules are drawn with block characters and dark ones left blank, as for a terminal with
    light text on a dark background (the usual case; phone scanners also read the inverse).
    """
    qr = _make(data)
    rows = [[not dark for dark in row] for row in qr.matrix_iter(scale=1, border=QUIET_ZONE)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))  # below the quiet zone: blank
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        lines.append("".join(_BLOCKS[pair] for pair in zip(top, bottom, strict=True)))
    return "\n".join(lines) + "\n"


def preflight(path: str | Path | None) -> None:
    """Fail now, before a link is made, if its QR code could not be drawn or written later.

    A new link exists in clear only once: a QR failure after the store changed would lose it.
    """
    import segno  # noqa: F401 - only checks that the `serve` extra is installed

    if path is None:
        return
    target = Path(path)
    if target.suffix.lower() not in (".svg", ".png"):
        raise InputError(f"cannot write a QR code to {target.name!r}: use a file name ending in .svg or .png")
    if not target.parent.is_dir():
        raise InputError(f"cannot write a QR code to {target}: folder {target.parent} does not exist")


def write_qr(data: str, path: str | Path) -> None:
    """Write the QR code of `data` to `path`: SVG or PNG by the file's suffix, atomically."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise InputError(f"cannot write a QR code to {target.name!r}: use a file name ending in .svg or .png")
    qr = _make(data)
    buffer = io.BytesIO()
    if suffix == ".svg":
        # An explicit white background: a transparent one vanishes on a dark page or screen.
        colours = {"dark": "#000", "light": "#fff"}
        qr.save(buffer, kind="svg", scale=SVG_SCALE, border=QUIET_ZONE, title="QR code", unit="px", **colours)
    else:
        qr.save(buffer, kind="png", scale=PNG_SCALE, border=QUIET_ZONE, dark="#000", light="#fff")
    write_atomic(target, buffer.getvalue())
