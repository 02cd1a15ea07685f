"""The admission rate and the waiting time it predicts (pure arithmetic, shared by the
line, the pulse and the staff figures)."""

from __future__ import annotations

import math

# The ETA and the dashboard average admissions over this window (seconds).
RATE_WINDOW_SECONDS = 60


def measured_rate(*, admitted_in_window: int, window_start_s: int, now_s: int) -> float:
    """Admissions per second over the recorded part of the last 60 s.

    Dividing by the span actually covered (not a fixed 60) keeps the first minute of a
    sale honest: 300 admitted in the first 3 s is 100/s, not 5/s."""
    if admitted_in_window <= 0 or window_start_s <= 0:
        return 0.0
    span = max(1, min(RATE_WINDOW_SECONDS, now_s - window_start_s + 1))
    return admitted_in_window / span


def eta_seconds(*, ahead: int | None, rate: float) -> int | None:
    """How long the people ahead take at the measured rate; None while no rate is known."""
    if ahead is None or rate <= 0:
        return None
    return math.ceil(ahead / rate)
