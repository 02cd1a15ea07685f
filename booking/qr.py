"""QR codes of ticket codes: inline SVG for the "my tickets" page, PNG bytes for mail.

The symbol comes from zxing-cpp (C++; error correction M, the mask chosen by the
standard's penalty rules): 0.6 ms a code, against 38 ms for a pure-Python encoder, whose
mask selection was most of the cost of a ticket mail and so the mail worker's biggest
share of a rush's CPU. Only the module matrix is taken from it; the SVG and the PNG are
written here, a few lines each: the SVG as one path with a rectangle per run of dark
modules, the PNG as one bit per pixel.
"""

from __future__ import annotations

import struct
import zlib
from html import escape

import zxingcpp

DARK = 0  # zxing-cpp's module images: 0 dark, 255 light
QUIET_ZONE = 4  # modules of light border the standard asks for


def qr_matrix(data: str) -> list[list[bool]]:
    """The symbol's modules, row by row (True = dark), without the quiet zone."""
    image = memoryview(
        zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode, ec_level="M").to_image(
            scale=1, add_quiet_zones=False
        )
    )
    height, width = image.shape
    pixels = image.tobytes()
    return [[pixels[y * width + x] == DARK for x in range(width)] for y in range(height)]


def _runs(row: list[bool]) -> list[tuple[int, int]]:
    """(start, length) of each run of dark modules."""
    runs, start = [], None
    for x, dark in enumerate([*row, False]):
        if dark and start is None:
            start = x
        elif not dark and start is not None:
            runs.append((start, x - start))
            start = None
    return runs


def qr_svg(data: str, *, scale: int = 4, title: str | None = None) -> str:
    """An ``<svg>`` element (no XML declaration) to embed in a page: no script, no style
    attribute, the title escaped; sized by CSS (``.ticket-qr svg``), ``scale`` px a module
    otherwise."""
    matrix = qr_matrix(data)
    size = len(matrix) + 2 * QUIET_ZONE
    path = "".join(
        f"M{x + QUIET_ZONE} {y + QUIET_ZONE}h{length}v1h-{length}z"
        for y, row in enumerate(matrix)
        for x, length in _runs(row)
    )
    heading = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="qr" viewBox="0 0 {size} {size}" '
        f'width="{size * scale}" height="{size * scale}" shape-rendering="crispEdges">{heading}'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path class="qr-line" fill="#000" d="{path}"/></svg>'
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def qr_png(data: str, *, scale: int = 6) -> bytes:
    """PNG bytes (for a mail attachment referenced by Content-ID): 1 bit per pixel, the
    quiet zone included, ``scale`` pixels a module."""
    matrix = qr_matrix(data)
    modules = len(matrix) + 2 * QUIET_ZONE
    width = modules * scale
    light_row = [False] * modules
    rows = [light_row] * QUIET_ZONE + [[False] * QUIET_ZONE + row + [False] * QUIET_ZONE for row in matrix]
    rows += [light_row] * QUIET_ZONE
    raw = bytearray()
    for row in rows:
        # A set bit is white in a 1-bit greyscale PNG; pad the line to whole bytes.
        bits = "".join(("0" if dark else "1") * scale for dark in row).ljust(-(-width // 8) * 8, "1")
        line = b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big")  # filter type 0: none
        raw += line * scale
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _chunk(b"IEND", b"")
    )
