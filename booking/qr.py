"""QR codes of ticket codes: inline SVG for the "my tickets" page, PNG bytes for mail.

segno is pure Python (no Pillow). ``micro=False``: segno would pick a Micro QR for a
short code, which many phone scanners and gate readers can't read.
"""

from __future__ import annotations

import io

import segno


def _qr(data: str) -> segno.QRCode:
    return segno.make(data, error="m", micro=False)


def qr_svg(data: str, *, scale: int = 4, title: str | None = None) -> str:
    """An ``<svg>`` element (no XML declaration) to embed in a page. With CSP
    ``script-src 'self'`` inline SVG is fine: it carries no script and no style."""
    return _qr(data).svg_inline(
        scale=scale, border=4, title=title, svgclass="qr", lineclass="qr-line", omitsize=True
    )


def qr_png(data: str, *, scale: int = 6) -> bytes:
    """PNG bytes (for a mail attachment referenced by Content-ID)."""
    buffer = io.BytesIO()
    _qr(data).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
