"""The seat map hash: seat id -> "a" (available), "s" (sold) or "h:<expiry_ms>" (held).

It is a derived view for drawing the map and for the stock-aware admission stop; the
database stays the judge of what is sold. A hold's expiry needs no write: an "h:" value
whose expiry (Redis clock) has passed reads, and counts, as available.
"""

from __future__ import annotations

from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.scripts import run_script

AVAILABLE = "available"
HELD = "held"
SOLD = "sold"

_DB_STATUS_CODES = {AVAILABLE: "a", SOLD: "s"}


def seat_status_from_value(value: str, *, now_ms: int) -> str:
    """Decodes one seat map value into "available" / "held" / "sold"."""
    if value == "s":
        return SOLD
    if value.startswith("h:") and int(value[2:]) > now_ms:
        return HELD
    return AVAILABLE


def seatmap_load(*, event_id: int, statuses: dict[int, str]) -> None:
    """Replaces the whole map from the database's statuses ("available" / "sold") in one
    atomic script, so readers never see a half-built map. Live holds survive the
    rebuild (their seat key is still set) unless the database says the seat is sold."""
    keys = EventKeys(event_id)
    seat_ids = sorted(int(seat_id) for seat_id in statuses)
    args: list[str | int | float] = []
    for seat_id in seat_ids:
        status = statuses[seat_id]
        if status not in _DB_STATUS_CODES:
            raise ValueError(f"seat {seat_id}: status must be 'available' or 'sold', not {status!r}")
        args += [seat_id, _DB_STATUS_CODES[status]]
    run_script(
        "seatmap_load",
        keys=[keys.seatmap, *(keys.seat(seat_id) for seat_id in seat_ids)],
        args=args,
    )


def seatmap_exists(*, event_id: int) -> bool:
    return bool(get_redis().exists(EventKeys(event_id).seatmap))


def seatmap_read(*, event_id: int) -> dict[int, str] | None:
    """Seat id -> "available" / "held" / "sold", judged by the Redis clock (one round
    trip); None when the map is missing (rebuild it with ``seatmap_load``)."""
    keys = EventKeys(event_id)
    reply = run_script("seatmap_read", keys=[keys.seatmap], args=[])
    now_ms = int(reply[0])
    flat = reply[1]
    if not flat:
        return None
    return {
        int(flat[index]): seat_status_from_value(flat[index + 1], now_ms=now_ms)
        for index in range(0, len(flat), 2)
    }


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
        keys=[keys.seatmap],
        args=[_DB_STATUS_CODES[status], *(int(seat_id) for seat_id in seat_ids)],
    )


_CODE_STATUS = {"a": AVAILABLE, "h": HELD, "s": SOLD}


def seatmap_codes(*, event_id: int, known_digest: str = "") -> tuple[str, dict[int, str] | None]:
    """The derived statuses and their digest in one short reply (for the polled seat map
    API). Returns ``(digest, statuses)``; ``statuses`` is None when the digest equals
    ``known_digest`` (unchanged). ``("", None)`` when the map is missing."""
    digest, body = run_script("seatmap_codes", keys=[EventKeys(event_id).seatmap], args=[known_digest])
    if not digest or not body:
        return digest, None
    statuses: dict[int, str] = {}
    for item in body.split(","):
        seat_id, _, code = item.partition(":")
        statuses[int(seat_id)] = _CODE_STATUS[code]
    return digest, statuses
