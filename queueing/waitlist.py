"""The waiting list's side of Redis (booking.waiting_list decides; this only moves keys).

The list is one more holder of seats: a seat it took back has a seat key with the token
``w`` (a user's token is their id: digits) and reads held in the seat map, so the holds, the sweep, the seat map
and the admission stop need no change. While its gate is up, ``seats_hold.lua`` gives no
newly free seat to the regular sale.
"""

from __future__ import annotations

from dataclasses import dataclass

from queueing.connection import get_redis
from queueing.holds import Hold, HoldError
from queueing.keys import EventKeys
from queueing.pulse import pulse_invalidate
from queueing.scripts import run_script

# The list's seat keys and gate live this long without a tick; the tick runs every few
# seconds, so only a stopped worker lets them lapse (and the sale takes the seats back).
WAITLIST_KEY_TTL_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class Pool:
    """Seats the list holds and has not offered: seat id -> when it came back (ms)."""

    returned_ms: dict[int, int]


def waitlist_sync(
    *,
    event_id: int,
    open_: bool,
    now_ms: int,
    offered_seat_ids: list[int] = (),  # type: ignore[assignment]
    returned_seat_ids: list[int] = (),  # type: ignore[assignment]
) -> Pool:
    """One tick: raise or lower the gate, keep the offered seats the list's, put the seats
    of ended offers back in the pool, and (open) take every free seat into the pool or
    (closed) give the pool back to the sale. Returns the pool."""
    keys = EventKeys(event_id)
    offered = [int(seat_id) for seat_id in offered_seat_ids]
    flat = run_script(
        "waitlist_sync",
        keys=[keys.waitlist_gate, keys.waitlist_pool, keys.seatmap, keys.hold_expiries, keys.seatmap_version],
        args=[
            "open" if open_ else "closed",
            WAITLIST_KEY_TTL_MS,
            int(now_ms),
            keys.seat_prefix,
            len(offered),
            *offered,
            *(int(seat_id) for seat_id in returned_seat_ids),
        ],
    )
    pulse_invalidate(event_id)
    return Pool(returned_ms={int(flat[i]): int(float(flat[i + 1])) for i in range(0, len(flat), 2)})


def waitlist_pool_take(*, event_id: int, seat_ids: list[int]) -> None:
    """After an offer committed: its seats leave the pool (their keys stay the list's)."""
    if seat_ids:
        get_redis().zrem(EventKeys(event_id).waitlist_pool, *(int(seat_id) for seat_id in seat_ids))


def waitlist_seats_not_held(*, event_id: int, seat_ids: list[int]) -> list[int]:
    """The seats among ``seat_ids`` whose key is not the list's (a buyer holds it, e.g.
    after accepting an earlier offer, or it is free again): one MGET."""
    keys = EventKeys(event_id)
    values = get_redis().mget([keys.seat(seat_id) for seat_id in seat_ids])
    return [seat_id for seat_id, value in zip(seat_ids, values, strict=True) if value != "w"]


def waitlist_gate_is_up(*, event_id: int) -> bool:
    return bool(get_redis().exists(EventKeys(event_id).waitlist_gate))


def waitlist_accept(*, event_id: int, user_id: int, seat_ids: list[int], hold_seconds: int) -> Hold:
    """Hands an accepted offer's seats to the buyer as holds with a fresh countdown.
    Raises HoldError("seat_unavailable") when somebody else holds one of them."""
    keys = EventKeys(event_id)
    seats = sorted({int(seat_id) for seat_id in seat_ids})
    reply = run_script(
        "waitlist_accept",
        keys=[
            keys.seatmap,
            keys.holds(user_id),
            keys.hold_expiries,
            keys.seatmap_version,
            keys.waitlist_pool,
            *(keys.seat(seat_id) for seat_id in seats),
        ],
        args=[str(int(user_id)), int(hold_seconds) * 1000, keys.seat_prefix, *seats],
    )
    if reply[0] == "err":
        raise HoldError(str(reply[1]), [int(seat_id) for seat_id in reply[2:]])
    pulse_invalidate(event_id)
    held = sorted(int(seat_id) for seat_id in reply[2:])
    return Hold(seat_ids=held, expires_at_ms=int(reply[1]))
