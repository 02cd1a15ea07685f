"""The ticket QR codes of mails (PNG) and pages (SVG) decode to the signed payload the
door scanner checks: read back with zxing-cpp's decoder, from the bytes we wrote."""

from __future__ import annotations

import re
import struct
import zlib

import pytest
import zxingcpp

from booking.qr import QUIET_ZONE, qr_matrix, qr_png, qr_svg

PAYLOAD = "TK1.42.ABCDEFGHJKLMNPQR.2vWq8N3XjC0lK7q1H5b2nYQ9s5r8ZdX6m0pUuT4aEwXyZk1L0Jq5Rz9Vb3Nc7Md1Fg2"


def png_luma(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and 8-bit grey pixels of a 1-bit greyscale PNG without filters."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    position, chunks = 8, {}
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        body = png[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", png[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks[kind] = body
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour, interlace) == (1, 0, 0)
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + -(-width // 8)
    pixels = bytearray()
    for y in range(height):
        line = raw[y * stride : (y + 1) * stride]
        assert line[0] == 0  # filter: none
        bits = "".join(f"{byte:08b}" for byte in line[1:])[:width]
        pixels += bytes(255 if bit == "1" else 0 for bit in bits)
    return width, height, bytes(pixels)


def decode(width: int, height: int, pixels: bytes) -> zxingcpp.Barcode:
    found = zxingcpp.read_barcode(memoryview(pixels).cast("B", shape=[height, width]))
    assert found is not None and found.valid
    return found


def test_the_mail_png_decodes_to_the_payload() -> None:
    width, height, pixels = png_luma(qr_png(PAYLOAD, scale=6))
    found = decode(width, height, pixels)

    assert found.text == PAYLOAD
    assert found.format == zxingcpp.BarcodeFormat.QRCode and found.ec_level == "M"
    assert width == height == (len(qr_matrix(PAYLOAD)) + 2 * QUIET_ZONE) * 6


def test_the_page_svg_draws_exactly_the_dark_modules() -> None:
    svg = qr_svg(PAYLOAD, title="Ticket <b>&")
    matrix = qr_matrix(PAYLOAD)
    size = len(matrix) + 2 * QUIET_ZONE
    drawn = [[False] * size for _ in range(size)]
    for x, y, length in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", svg):
        for column in range(int(x), int(x) + int(length)):
            drawn[int(y)][column] = True
    pixels = bytes(0 if dark else 255 for row in drawn for dark in row for _ in range(4))
    upscaled = b"".join(pixels[y * size * 4 : (y + 1) * size * 4] * 4 for y in range(size))

    assert decode(size * 4, size * 4, upscaled).text == PAYLOAD
    assert drawn[QUIET_ZONE:-QUIET_ZONE] == [
        [False] * QUIET_ZONE + row + [False] * QUIET_ZONE for row in matrix
    ]
    assert "<title>Ticket &lt;b&gt;&amp;</title>" in svg and "<script" not in svg


@pytest.mark.parametrize("scale", [1, 3, 6, 8])
def test_the_mail_png_draws_exactly_the_modules(scale: int) -> None:
    matrix = qr_matrix(PAYLOAD)
    size = len(matrix) + 2 * QUIET_ZONE
    rows = [[False] * size] * QUIET_ZONE
    rows += [[False] * QUIET_ZONE + row + [False] * QUIET_ZONE for row in matrix]
    rows += [[False] * size] * QUIET_ZONE
    expected = bytes(
        0 if dark else 255 for row in rows for _ in range(scale) for dark in row for _ in range(scale)
    )

    assert png_luma(qr_png(PAYLOAD, scale=scale)) == (size * scale, size * scale, expected)
