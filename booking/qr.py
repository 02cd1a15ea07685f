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

DARK, LIGHT = 0, 255  # zxing-cpp's module images
QUIET_ZONE = 4  # modules of light border the standard asks for
# Bytes that are neither DARK nor LIGHT, marking where qr_png puts a line's filter type and padding.
_FILTER_MARK, _PADDING_MARK = b"\x01", b"\x02"


def _symbol(data: str) -> tuple[bytes, int]:
    """The symbol's modules as zxing-cpp draws them, one byte a module (0 dark, 255
    light) row by row, without the quiet zone; and its width in modules."""
    image = memoryview(
        zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode, ec_level="M").to_image(
            scale=1, add_quiet_zones=False
        )
    )
    return image.tobytes(), image.shape[1]  # a QR symbol is square


def qr_matrix(data: str) -> list[list[bool]]:
    """The symbol's modules, row by row (True = dark), without the quiet zone."""
    pixels, width = _symbol(data)
    return [[pixel == DARK for pixel in pixels[y : y + width]] for y in range(0, len(pixels), width)]


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
    pixels, modules = _symbol(data)
    size = modules + 2 * QUIET_ZONE
    width = size * scale
    stride = 1 + -(-width // 8)  # a line: its filter type, then its pixels padded to whole bytes
    light_row = bytes([LIGHT]) * size
    quiet = bytes([LIGHT]) * QUIET_ZONE
    rows = [light_row] * QUIET_ZONE
    rows += [quiet + pixels[start : start + modules] + quiet for start in range(0, len(pixels), modules)]
    rows += [light_row] * QUIET_ZONE
    # Every line as binary digits at once (C loops, not a Python one per module): a marker
    # for the filter type (0: none) ahead of each row of modules and one for the padding
    # after it, then each module becomes ``scale`` digits (a set bit is white), the
    # filter type 8 zeros and the padding white. The digits read as one number are the
    # lines of one pixel's height; each is then repeated ``scale`` times.
    digits = (
        (_FILTER_MARK + (_PADDING_MARK + _FILTER_MARK).join(rows) + _PADDING_MARK)
        .replace(bytes([DARK]), b"0" * scale)
        .replace(bytes([LIGHT]), b"1" * scale)
        .replace(_FILTER_MARK, b"0" * 8)
        .replace(_PADDING_MARK, b"1" * (8 * stride - 8 - width))
    )
    lines = int(digits, 2).to_bytes(stride * size, "big")
    raw = b"".join([lines[start : start + stride] * scale for start in range(0, len(lines), stride)])
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        # zlib's default level: as small as level 9 for these images, in half the time.
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )
