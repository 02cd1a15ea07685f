"""The seat map hash: seat id -> "a" (available), "s" (sold) or "h:<expiry_ms>" (held),
and its version (the seat map's ETag).

It is a derived view for drawing the map and for the stock-aware admission stop; the
database stays the judge of what is sold. Every script that changes a seat's state moves
the version in the same step; a hold that lapses without a write is swept (turned "a",
version moved) by the next pulse, snapshot or admission run (``lua/lib/
sweep_expired_holds.lua``), so comparing versions is O(1) whatever the size of the map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from queueing.keys import EventKeys
from queueing.pulse import pulse_invalidate
from queueing.scripts import run_script

AVAILABLE = "available"
HELD = "held"
SOLD = "sold"

_DB_STATUS_CODES = {AVAILABLE: "a", SOLD: "s"}
# The two values nearly every seat has, decoded without a call (seat_status_from_value's
# answer for them); only "h:<expiry_ms>" (and anything unexpected) takes the full path.
_PLAIN_VALUES = {"a": AVAILABLE, "s": SOLD}


def seat_status_from_value(value: str, *, now_ms: int) -> str:
    """Decodes one seat map value into "available" / "held" / "sold". A hold is live up
    to and including its deadline (a Redis key expires when the clock is past it)."""
    if value == "s":
        return SOLD
    if value.startswith("h:") and int(value[2:]) >= now_ms:
        return HELD
    return AVAILABLE


@dataclass(frozen=True)
class SeatMapSnapshot:
    version: int
    statuses: dict[int, str]  # seat id -> "available" / "held" / "sold"


def seatmap_load(*, event_id: int, statuses: dict[int, str]) -> int:
    """Replaces the whole map from the database's statuses ("available" / "sold") in one
    atomic script, so readers never see a half-built map. Live holds survive the
    rebuild (their seat key is still set) unless the database says the seat is sold.
    Returns the map's version (moved only if a seat's status changed)."""
    keys = EventKeys(event_id)
    seat_ids = sorted(int(seat_id) for seat_id in statuses)
    args: list[str | int | float] = []
    for seat_id in seat_ids:
        status = statuses[seat_id]
        if status not in _DB_STATUS_CODES:
            raise ValueError(f"seat {seat_id}: status must be 'available' or 'sold', not {status!r}")
        args += [seat_id, _DB_STATUS_CODES[status]]
    _written, version = run_script(
        "seatmap_load",
        keys=[
            keys.seatmap,
            keys.hold_expiries,
            keys.seatmap_version,
            *(keys.seat(seat_id) for seat_id in seat_ids),
        ],
        args=args,
    )
    pulse_invalidate(event_id)
    return int(version)


def seatmap_snapshot(*, event_id: int) -> SeatMapSnapshot | None:
    """The whole map and its version at one moment (lapsed holds swept first); None when
    the map is missing (rebuild it from the database with ``seatmap_load``)."""
    keys = EventKeys(event_id)
    version, now_ms, flat = run_script(
        "seatmap_snapshot", keys=[keys.seatmap, keys.hold_expiries, keys.seatmap_version], args=[]
    )
    if not flat:
        return None
    now_ms = int(now_ms)
    # Run once per new version and process over every seat of the map, so in bulk: the
    # common values by a dict lookup, then only the rest (holds, live or lapsed) through
    # seat_status_from_value.
    values = flat[1::2]
    decoded: list[str | None] = list(map(_PLAIN_VALUES.get, values))
    for index in [index for index, status in enumerate(decoded) if status is None]:
        decoded[index] = seat_status_from_value(values[index], now_ms=now_ms)
    statuses: dict[int, str] = dict(zip(map(int, flat[0::2]), cast("list[str]", decoded), strict=True))
    return SeatMapSnapshot(version=int(version), statuses=statuses)


def seatmap_mark(*, event_id: int, seat_ids: list[int], status: str) -> None:
    """Marks seats "sold" or "available" after a database change (booking, cancel).

    Never creates a partial map (no-op when the map is missing; the next reader rebuilds
    it from the database) and never adds seats the map doesn't know. Marking "available"
    keeps a live hold's "h:" value: that seat is still held by someone."""
    if status not in _DB_STATUS_CODES:
        raise ValueError("status must be 'available' or 'sold'")
    if not seat_ids:
        return
    keys = EventKeys(event_id)
    run_script(
        "seatmap_mark",
        keys=[keys.seatmap, keys.hold_expiries, keys.seatmap_version],
        args=[_DB_STATUS_CODES[status], *(int(seat_id) for seat_id in seat_ids)],
    )
    pulse_invalidate(event_id)
