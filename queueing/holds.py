"""Seat holds (DESIGN.md "The rush", step 3): ``SET seat NX PX`` locks whose value is the
holder token, a per-user set for the cap, and the seat map kept in step, all changed by
one Lua script per operation so no two users ever hold one seat and a hold is all or
nothing. Release and consume compare the token, so nobody can free someone else's seat.

A user's holds share one deadline: the first hold sets it, later holds reuse it, so
clicking again never resets the countdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.pulse import pulse_invalidate
from queueing.scripts import run_script

HOLD_ERROR_CODES = frozenset(
    {"not_admitted", "seat_unavailable", "limit_exceeded", "invalid_seats", "no_seatmap"}
)


class HoldError(Exception):
    """A refused hold. ``code`` is one of HOLD_ERROR_CODES; ``seat_ids`` lists the seats
    concerned (unknown ids for invalid_seats, taken ids for seat_unavailable)."""

    def __init__(self, code: str, seat_ids: list[int] | None = None) -> None:
        self.code = code
        self.seat_ids: list[int] = list(seat_ids or [])
        super().__init__(f"{code}: {self.seat_ids}" if self.seat_ids else code)


@dataclass(frozen=True)
class Hold:
    seat_ids: list[int] = field(default_factory=list)  # every seat the user holds now, sorted
    expires_at_ms: int | None = None  # the shared deadline (Redis clock); None when no holds


def _token(user_id: int) -> str:
    """The holder token stored in a seat key (the user id: stable across retries)."""
    return str(int(user_id))


def _unique(seat_ids: list[int]) -> list[int]:
    return list(dict.fromkeys(int(seat_id) for seat_id in seat_ids))


def _hold_from_reply(reply: list[str]) -> Hold:
    # {deadline_ms (0 = none), seat ids...}
    deadline = int(reply[0])
    seats = sorted(int(seat_id) for seat_id in reply[1:])
    if not seats:
        return Hold(seat_ids=[], expires_at_ms=None)
    return Hold(seat_ids=seats, expires_at_ms=deadline or None)


def seats_hold(*, event_id: int, user_id: int, seat_ids: list[int], hold_seconds: int, cap: int) -> Hold:
    """Holds all of ``seat_ids`` for the user or none of them.

    Requires a live pass (not_admitted), known seats (invalid_seats; no_seatmap when the
    map is missing: rebuild it with seatmap_load and retry), free seats (seat_unavailable;
    a seat the user already holds counts as free and is not extended), and at most ``cap``
    seats held at once (limit_exceeded). Returns every seat the user now holds with the
    shared deadline."""
    seats = _unique(seat_ids)
    if not seats:
        raise HoldError("invalid_seats", [])
    if hold_seconds < 1:
        raise ValueError("hold_seconds must be >= 1")
    keys = EventKeys(event_id)
    reply = run_script(
        "seats_hold",
        keys=[
            keys.active,
            keys.seatmap,
            keys.holds(user_id),
            keys.hold_expiries,
            keys.seatmap_version,
            keys.waitlist_gate,
            *(keys.seat(seat_id) for seat_id in seats),
        ],
        args=[_token(user_id), int(hold_seconds) * 1000, int(cap), keys.seat_prefix, *seats],
    )
    if reply[0] == "err":
        raise HoldError(str(reply[1]), [int(seat_id) for seat_id in reply[2:]])
    pulse_invalidate(event_id)
    return _hold_from_reply(reply[1:])


def holds_get(*, event_id: int, user_id: int) -> Hold:
    """The user's live holds and their deadline (expires_at_ms None when none)."""
    keys = EventKeys(event_id)
    reply = run_script("holds_get", keys=[keys.holds(user_id)], args=[_token(user_id), keys.seat_prefix])
    return _hold_from_reply(reply)


def holds_release(*, event_id: int, user_id: int, seat_ids: list[int] | None = None) -> None:
    """Releases the user's holds on ``seat_ids`` (all of the user's holds when None).
    Seats held by someone else are left alone (compare token). The deadline stays: a
    release followed by a new hold does not restart the countdown."""
    keys = EventKeys(event_id)
    seats = [] if seat_ids is None else _unique(seat_ids)
    if seat_ids is not None and not seats:
        return
    run_script(
        "holds_release",
        keys=[
            keys.seatmap,
            keys.holds(user_id),
            keys.hold_expiries,
            keys.seatmap_version,
            *(keys.seat(seat_id) for seat_id in seats),
        ],
        args=[_token(user_id), keys.seat_prefix, "all" if seat_ids is None else "listed", *seats],
    )
    pulse_invalidate(event_id)


def holds_verify(*, event_id: int, user_id: int, seat_ids: list[int]) -> bool:
    """True when every seat is held by this user right now (False for an empty list: there
    is nothing to book). One MGET: the seat keys of an event share a slot, and an expired
    key reads as missing."""
    seats = _unique(seat_ids)
    if not seats:
        return False
    keys = EventKeys(event_id)
    values = get_redis().mget([keys.seat(seat_id) for seat_id in seats])
    token = _token(user_id)
    return all(value == token for value in values)


def holds_consume(*, event_id: int, user_id: int, seat_ids: list[int]) -> None:
    """After a booking committed: deletes the user's hold keys on those seats (compare
    token), drops them from the user's set and marks them sold in the map (the database
    says so, whoever held them). When no hold is left the deadline goes too, so a later
    purchase starts a fresh countdown."""
    seats = _unique(seat_ids)
    if not seats:
        return
    keys = EventKeys(event_id)
    run_script(
        "holds_consume",
        keys=[
            keys.seatmap,
            keys.holds(user_id),
            keys.hold_expiries,
            keys.seatmap_version,
            *(keys.seat(seat_id) for seat_id in seats),
        ],
        args=[_token(user_id), keys.seat_prefix, *seats],
    )
    pulse_invalidate(event_id)


def holds_drop_for_seats(*, event_id: int, seat_ids: list[int]) -> None:
    """Reconciler: force-releases any hold on seats the database says are sold and marks
    them sold in the map. The holders' sets are pruned lazily (their members no longer
    carry the holder's token)."""
    seats = _unique(seat_ids)
    if not seats:
        return
    keys = EventKeys(event_id)
    run_script(
        "holds_drop_for_seats",
        keys=[
            keys.seatmap,
            keys.hold_expiries,
            keys.seatmap_version,
            *(keys.seat(seat_id) for seat_id in seats),
        ],
        args=seats,
    )
    pulse_invalidate(event_id)
