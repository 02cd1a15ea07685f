"""Which returned seats go to which waiting-list entry: the rule, as a pure function.

The rule (docs/ARCHITECTURE.md, "The waiting list"):

1. Entries are served in line order. The first entry whose party can be seated gets an
   offer at once when the pool has seats *together* for it (adjacent numbers in one row);
   a single seat always counts as together.
2. Seats that come back are gathered for ``gather_ms`` (counted from the oldest seat in
   the pool). Until the window is over nobody is served past an entry that can't be seated
   together yet, and no offer of seats apart is made (more seats may come back beside them).
3. When the window is over, an entry that still can't be seated together is offered the
   seats apart if the pool has enough (unless it asked for seats together only); if the
   pool can't seat it at all, it is passed over, once, and the next entries are served.
4. An entry that was passed over once is never passed again: the pool is kept for it
   until its party fits (nobody behind it gets seats meanwhile).

Why this is fair: nobody loses a place to luck or speed; a larger party is passed over
at most once and by at most one window's seats, so it can't starve behind a trickle of
single seats; a single buyer waits at most one window behind a larger party before it is
passed; staff can remove an entry or pause the list when a party can never be seated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PoolSeat:
    id: int
    section: str
    row: str
    number: int
    returned_ms: int


@dataclass(frozen=True)
class Waiter:
    entry_id: int
    party_size: int
    passed_over: bool = False
    together_only: bool = False


@dataclass(frozen=True)
class Offer:
    entry_id: int
    seat_ids: list[int]
    together: bool


@dataclass
class Decision:
    offers: list[Offer] = field(default_factory=list)
    passed_over: list[int] = field(default_factory=list)  # entry ids passed for the first time


def _place(seat: PoolSeat) -> tuple[str, str, int]:
    return (seat.section, seat.row, seat.number)


def seats_together(pool: list[PoolSeat], size: int) -> list[PoolSeat] | None:
    """The first ``size`` adjacent seats of one row (in section, row, number order)."""
    rows: dict[tuple[str, str], list[PoolSeat]] = defaultdict(list)
    for seat in sorted(pool, key=_place):
        rows[(seat.section, seat.row)].append(seat)
    for seats in rows.values():
        run: list[PoolSeat] = []
        for seat in seats:
            if run and seat.number != run[-1].number + 1:
                run = []
            run.append(seat)
            if len(run) == size:
                return run
    return None


def seats_apart(pool: list[PoolSeat], size: int) -> list[PoolSeat] | None:
    """``size`` seats as close as the pool allows: the fullest rows first."""
    if len(pool) < size:
        return None
    rows: dict[tuple[str, str], list[PoolSeat]] = defaultdict(list)
    for seat in sorted(pool, key=_place):
        rows[(seat.section, seat.row)].append(seat)
    chosen: list[PoolSeat] = []
    for seats in sorted(rows.values(), key=lambda seats: (-len(seats), _place(seats[0]))):
        chosen += seats[: size - len(chosen)]
        if len(chosen) == size:
            break
    return sorted(chosen, key=_place)


def allocate(*, pool: list[PoolSeat], waiters: list[Waiter], now_ms: int, gather_ms: int) -> Decision:
    """Applies the rule to the pool and the waiting entries (in line order)."""
    decision = Decision()
    remaining = list(pool)
    if not remaining:
        return decision
    window_over = now_ms - min(seat.returned_ms for seat in remaining) >= gather_ms
    # Entries passed on the way to the next offer: they count as passed over only if
    # somebody behind them is served (a pass that served nobody is not used up).
    passing: list[int] = []
    for waiter in waiters:
        if not remaining:
            break
        together = True
        seats = seats_together(remaining, waiter.party_size)
        if seats is None and window_over and not waiter.together_only:
            seats, together = seats_apart(remaining, waiter.party_size), False
        if seats is not None:
            decision.offers.append(
                Offer(entry_id=waiter.entry_id, seat_ids=[seat.id for seat in seats], together=together)
            )
            taken = {seat.id for seat in seats}
            remaining = [seat for seat in remaining if seat.id not in taken]
            decision.passed_over += passing
            passing = []
            continue
        if waiter.passed_over or not window_over:
            break
        passing.append(waiter.entry_id)
    return decision
