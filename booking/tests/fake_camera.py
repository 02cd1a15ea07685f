"""A fake phone camera for the scanner's browser test: a YUV4MPEG2 (.y4m) video that
Chromium plays as its camera (``--use-file-for-fake-video-capture``), looping.

The video shows a ticket's QR code for a moment, then an empty frame for longer than the
scanner's same-code cooldown (3 s), and loops: like a door where the ticket is shown,
taken away, and shown again later, so a second scan of the same ticket really happens.

``booking.qr.qr_matrix`` (what the mails and pages draw) gives the QR matrix; the frames are written here as raw planar YUV 4:2:0 (no
Pillow, no ffmpeg): Y is the picture in grey levels, U and V are flat grey (128).
"""

from __future__ import annotations

from pathlib import Path

from booking.qr import QUIET_ZONE, qr_matrix

# Studio-range luma (what a camera sends): black and white of the picture.
_BLACK = 16
_WHITE = 235
_BACKGROUND = 200  # a light grey wall behind the ticket


def qr_luma(payload: str, *, width: int, height: int, scale: int, offset_x: int = 0) -> bytes:
    """The Y plane of one frame: the payload's QR code (with its quiet zone), centred."""
    modules = qr_matrix(payload)
    blank = [False] * (len(modules) + 2 * QUIET_ZONE)
    bordered = [blank] * QUIET_ZONE + [[False] * QUIET_ZONE + row + [False] * QUIET_ZONE for row in modules]
    bordered += [blank] * QUIET_ZONE
    matrix = [[dark for dark in row for _ in range(scale)] for row in bordered for _ in range(scale)]
    side = len(matrix)
    if side > min(width, height):
        raise ValueError(f"a QR of {side} px does not fit a {width}x{height} frame")
    top = (height - side) // 2
    left = (width - side) // 2 + offset_x
    plane = bytearray([_BACKGROUND]) * (width * height)
    for y, row in enumerate(matrix):
        line = bytes(_BLACK if dark else _WHITE for dark in row)
        start = (top + y) * width + left
        plane[start : start + side] = line
    return bytes(plane)


def write_qr_video(
    path: Path,
    payload: str,
    *,
    width: int = 480,
    height: int = 360,
    fps: int = 5,
    shown_seconds: float = 1.6,
    hidden_seconds: float = 4.4,
    scale: int = 5,
) -> Path:
    """Writes the looping video and returns its path. Frame rate and lengths are small
    on purpose: the file is read raw (480x360 at 5 fps is ~260 kB a frame)."""
    if width % 2 or height % 2:
        raise ValueError("4:2:0 needs an even width and height")
    with_code = qr_luma(payload, width=width, height=height, scale=scale)
    without_code = bytes([_BACKGROUND]) * (width * height)
    chroma = bytes([128]) * ((width // 2) * (height // 2) * 2)  # U then V: no colour
    frames = [with_code] * round(shown_seconds * fps) + [without_code] * round(hidden_seconds * fps)
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for luma in frames:
            video.write(b"FRAME\n")
            video.write(luma)
            video.write(chroma)
    return path
