"""The event on sale in a rehearsal and its buyers: created through ``manage.py`` (the
commands operators use), read back from the database and Redis while and after it runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.system import RunEnvironment, manage


@dataclass
class EventShape:
    seats: int = 400
    capacity: int = 100
    hold_seconds: int = 30
    pass_seconds: int = 60
    max_tickets: int = 4


def seat_layout(seats: int) -> tuple[list[str], int, int]:
    """Sections, rows per section and seats per row for at least ``seats`` seats."""
    sections = 4 if seats >= 400 else 2 if seats >= 40 else 1
    per_row = 20 if seats >= 200 else 10 if seats >= 20 else 1
    rows = max(1, math.ceil(seats / (sections * per_row)))
    return [chr(ord("A") + n) for n in range(sections)], rows, per_row


def create_event(run: RunEnvironment, shape: EventShape, *, title: str) -> dict[str, Any]:
    """A published event whose sales opened a minute ago; the JSON of ``create_event``."""
    sections, rows, per_row = seat_layout(shape.seats)
    output = manage(
        ["create_event", "--title", title, "--sections", ",".join(sections), "--rows", str(rows),
         "--seats-per-row", str(per_row), "--price", "55000", "--capacity", str(shape.capacity),
         "--hold-seconds", str(shape.hold_seconds), "--pass-seconds", str(shape.pass_seconds),
         "--max-tickets-per-user", str(shape.max_tickets), "--open-now", "--json"],
        run.env,
    )  # fmt: skip
    event = json.loads(output.strip().splitlines()[-1])
    event["layout"] = f"{len(sections)} sections x {rows} rows x {per_row}"
    return event


def create_buyers(
    run: RunEnvironment, count: int, *, token_minutes: int = 240, prefix: str | None = None
) -> Path:
    """``count`` buyer accounts with one shared password hash and a JWT access token each
    (nobody hits the token endpoint while we measure); the ``email,token`` file. The
    password is in ``run_dir/password`` (for the share that logs in). ``prefix`` names
    the accounts (default ``lt-<run>``; another one for each further event of a run)."""
    prefix = prefix or f"lt-{run.run_id}"
    buyers_file = run.run_dir / ("buyers.csv" if prefix == f"lt-{run.run_id}" else f"buyers-{prefix}.csv")
    manage(
        ["create_buyers", "--count", str(count), "--prefix", prefix,
         "--password-file", str(run.run_dir / "password"), "--tokens", str(buyers_file),
         "--token-minutes", str(token_minutes)],
        run.env,
    )  # fmt: skip
    return buyers_file


def read_buyers(path: Path) -> list[tuple[str, str]]:
    accounts = []
    for line in path.read_text().splitlines():
        email, _, token = line.strip().partition(",")
        if email and token:
            accounts.append((email, token))
    return accounts


def sale_figures(event_id: int, started_at: datetime) -> dict[str, Any]:
    """Bookings, seats sold and (when every seat sold) the sell-out time from the start."""
    from django.db.models import Count, Max, Min

    from booking.models import Booking, BookingStatus
    from events.models import Seat, SeatStatus

    seats = Seat.objects.filter(event_id=event_id)
    total = seats.count()
    sold = seats.filter(status=SeatStatus.SOLD).count()
    bookings = Booking.objects.filter(event_id=event_id, status=BookingStatus.CONFIRMED)
    agg = bookings.aggregate(n=Count("id"), first=Min("confirmed_at"), last=Max("confirmed_at"))
    figures: dict[str, Any] = {"seats": total, "sold": sold, "bookings": agg["n"]}
    if agg["first"]:
        figures["first_booking_s"] = round((agg["first"] - started_at).total_seconds(), 1)
        figures["last_booking_s"] = round((agg["last"] - started_at).total_seconds(), 1)
    figures["sold_out_s"] = figures.get("last_booking_s") if sold == total else None
    return figures


def sale_line(figures: dict[str, Any]) -> str:
    sold_out = (
        f"sold out {figures['sold_out_s']} s after the start"
        if figures["sold_out_s"] is not None
        else "not sold out"
    )
    first = f" (first booking at +{figures['first_booking_s']} s)" if "first_booking_s" in figures else ""
    return (
        f"sale: {figures['bookings']} bookings, {figures['sold']} of {figures['seats']} seats sold; "
        f"{sold_out}{first}"
    )


def live_figures(event_id: int) -> dict[str, int]:
    """Waiting, active, admitted so far, held and sold seats: one Redis round trip."""
    from queueing.connection import get_redis
    from queueing.keys import EventKeys

    keys = EventKeys(event_id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.zcard(keys.waiting)
    pipe.zcard(keys.active)
    pipe.hget(keys.ctl, "admitted_total")
    pipe.hvals(keys.seatmap)
    waiting, active, admitted, seatmap = pipe.execute()
    return {
        "waiting": int(waiting),
        "active": int(active),
        "admitted": int(admitted or 0),
        "held": sum(1 for value in seatmap if value.startswith("h:")),
        "sold": sum(1 for value in seatmap if value == "s"),
        "seats": len(seatmap),
    }


def progress_line(event_id: int, elapsed: float) -> str:
    f = live_figures(event_id)
    return (
        f"  t={elapsed:5.0f}s  waiting {f['waiting']:>5}  active {f['active']:>4}  "
        f"admitted {f['admitted']:>5}  held {f['held']:>4}  sold {f['sold']:>5}/{f['seats']}"
    )
