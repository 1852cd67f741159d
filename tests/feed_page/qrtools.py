"""Read QR images back without Pillow: a small PNG decoder, an SVG path rasterizer, a text reader.

Each gives a grid of booleans (True = dark); `decode` hands the grid to zxing-cpp's decoder.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any
from xml.etree import ElementTree

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"

Grid = list[list[bool]]


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG signature"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(data: bytes) -> Grid:
    """Greyscale or palette PNG (bit depth 1-8, no interlace) as a dark/light grid."""
    chunks = png_chunks(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert colour in (0, 3) and depth in (1, 2, 4, 8) and interlace == 0, (colour, depth, interlace)
    palette = next((body for kind, body in chunks if kind == b"PLTE"), None)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = (width * depth + 7) // 8
    bpp = max(1, depth // 8)
    assert len(raw) == height * (stride + 1), "IDAT size does not match IHDR"
    previous = bytearray(stride)
    grid: Grid = []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            upper_left = previous[i - bpp] if i >= bpp else 0
            predictor = (0, left, up, (left + up) // 2, _paeth(left, up, upper_left))[kind]
            line[i] = (line[i] + predictor) & 0xFF
        previous = line
        values = []
        for x in range(width):
            bit = x * depth
            values.append((line[bit // 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1))
        if colour == 3:
            assert palette is not None
            grey = [palette[3 * v] for v in values]
        else:
            grey = [v * 255 // ((1 << depth) - 1) for v in values]
        grid.append([g < 128 for g in grey])
    return grid


def png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png_chunks(data)[0][1][:8])
    return width, height


def read_svg(data: bytes) -> tuple[ElementTree.Element, Grid]:
    """Parse the SVG as XML and draw segno's horizontal-line path into a module grid."""
    root = ElementTree.fromstring(data)
    assert root.tag == SVG_NS + "svg"
    _, _, vb_w, vb_h = (float(v) for v in root.attrib["viewBox"].split())
    group = root.find(SVG_NS + "g")
    scale = 1.0
    if group is not None and "transform" in group.attrib:
        scale = float(re.fullmatch(r"scale\(([\d.]+)\)", group.attrib["transform"]).group(1))  # type: ignore[union-attr]
    size = round(vb_w / scale)
    assert round(vb_h / scale) == size
    grid = [[False] * size for _ in range(size)]
    dark_paths = [p for p in root.iter(SVG_NS + "path") if p.attrib.get("stroke")]
    assert len(dark_paths) == 1
    x = y = 0.0
    for command, a, b in re.findall(r"([MmHhV])(-?[\d.]+)(?:[ ,](-?[\d.]+))?", dark_paths[0].attrib["d"]):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        elif command == "h":
            row = int(y)  # the line runs through the middle of its module row (y = row + 0.5)
            for col in range(int(x), int(x + float(a))):
                grid[row][col] = True
            x += float(a)
        else:
            raise AssertionError(f"unexpected path command {command}")
    return root, grid


def read_terminal(text: str) -> Grid:
    """Half-block text (block = light) back to a module grid, two rows per line."""
    light = {"\u2588": (True, True), "\u2580": (True, False), "\u2584": (False, True), " ": (False, False)}
    grid: Grid = []
    for line in text.rstrip("\n").split("\n"):
        pairs = [light[ch] for ch in line]
        grid.append([not top for top, _ in pairs])
        grid.append([not bottom for _, bottom in pairs])
    return grid


def decode(grid: Grid, scale: int = 4) -> str | None:
    """Decode a grid with zxing-cpp (test extra); returns the text or None if no QR code is found."""
    import zxingcpp

    height, width = len(grid) * scale, len(grid[0]) * scale
    pixels = bytearray()
    for row in grid:
        line = bytearray()
        for dark in row:
            line += (b"\x00" if dark else b"\xff") * scale
        pixels += bytes(line) * scale
    image: Any = memoryview(bytes(pixels)).cast("B", (height, width))
    result = zxingcpp.read_barcode(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return None if result is None else str(result.text)
