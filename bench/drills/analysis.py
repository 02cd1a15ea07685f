"""What a drill measures, from the ledger of what buyers were told (``load.Ledger``), from
Redis after the fault, and from the database (the final judge).

* ``outage_figures``: the 503s (count, first and last relative to the fault, per step)
  and the failed requests: anything that is neither a success, nor a refusal the contract
  expects under contention (``bench/tally.EXPECTED``), nor a 503 (a 503 with Retry-After
  is the designed answer while a backend is down; when it happens is the figure).
* ``redis_losses``: buyers told "waiting"/"active" before the fault whom the line no
  longer knows, and holds a buyer got 201 for whose seat key is gone before its expiry.
* ``map_vs_database``: seats whose state in the Redis seat map disagrees with the
  database (the reconciler's job).
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from bench.drills.load import HoldRecord, Ledger
from bench.tally import EXPECTED

OK_STATUSES = {200, 201, 204, 304}


def classify(step: str, status: int, code: str | None) -> str:
    """ok | expected | 503 | failed."""
    if status in OK_STATUSES:
        return "ok"
    if status == 503:
        return "503"
    allowed = EXPECTED.get(step, {}).get(status)
    if allowed is not None and code in allowed:
        return "expected"
    return "failed"


def outage_figures(ledger: Ledger, fault_at: float) -> dict[str, Any]:
    """503s and failures over the whole drill, times relative to ``fault_at`` (seconds)."""
    answers = list(ledger.answers)
    kinds = Counter(classify(step, status, code) for _, step, status, code, _took in answers)
    unavailable = sorted((when, step) for when, step, status, _code, _took in answers if status == 503)
    failed = Counter(
        f"{step} {status} {code or ''}".rstrip()
        for _, step, status, code, _took in answers
        if classify(step, status, code) == "failed"
    )
    figures: dict[str, Any] = {
        "requests": len(answers),
        "ok": kinds["ok"],
        "expected_refusals": kinds["expected"],
        "answers_503": len(unavailable),
        "failed": sum(failed.values()),
        "failed_by_kind": dict(failed),
        "503_by_step": dict(Counter(step for _, step in unavailable)),
    }
    if unavailable:
        first, last = unavailable[0][0] - fault_at, unavailable[-1][0] - fault_at
        figures.update(
            first_503_s=round(first, 2), last_503_s=round(last, 2), seconds_of_503=round(last - first, 2)
        )
    return figures


def latency_figures(ledger: Ledger, step: str, start: float, end: float) -> dict[str, Any]:
    """``step`` answers that came back between ``start`` and ``end`` (wall clock): how many,
    by status, and how long they took (p50, max seconds)."""
    within = [(status, took) for when, name, status, _code, took in ledger.answers
              if name == step and start <= when <= end]  # fmt: skip
    took = sorted(t for _, t in within)
    return {
        "answers": len(within),
        "by_status": dict(Counter(status for status, _ in within)),
        "p50_s": round(statistics.median(took), 2) if took else None,
        "max_s": round(took[-1], 2) if took else None,
    }


def in_line(ledger_state: dict[str, tuple[str, float]]) -> dict[str, str]:
    """Buyers whose last answer said they wait or hold a pass: buyer -> state."""
    return {buyer: state for buyer, (state, _when) in ledger_state.items() if state in ("waiting", "active")}


def redis_losses(
    ledger: Ledger,
    told_before: dict[str, tuple[str, float]],
    snapshot: dict[str, Any],
    fault_at: float,
) -> dict[str, Any]:
    """Entries and holds the servers confirmed before the fault and no longer have.

    ``told_before``: the ledger's buyer states copied just before the fault;
    ``snapshot``: ``redis_snapshot`` taken right after the failover (at ``snapshot["at"]``).
    A buyer who finished (booked, left) before the snapshot is not counted."""
    taken_at = snapshot["at"]
    finished = {buyer for buyer, (_outcome, when) in ledger.finished.items() if when <= taken_at}
    lost_waiting, lost_active = [], []
    for buyer, state in in_line(told_before).items():
        if buyer in finished:
            continue
        user = str(ledger.joins[buyer][0]) if buyer in ledger.joins else None
        if user is None:
            continue
        if state == "waiting" and user not in snapshot["waiting"] and user not in snapshot["active"]:
            lost_waiting.append(buyer)
        elif state == "active" and user not in snapshot["active"]:
            lost_active.append(buyer)
    lost_holds = [hold for hold in live_holds(ledger.holds, fault_at, taken_at) if not _held(hold, snapshot)]
    return {
        "told_waiting": sum(1 for s in in_line(told_before).values() if s == "waiting"),
        "told_active": sum(1 for s in in_line(told_before).values() if s == "active"),
        "lost_waiting": len(lost_waiting),
        "lost_passes": len(lost_active),
        "holds_checked": len(live_holds(ledger.holds, fault_at, taken_at)),
        "holds_lost": len(lost_holds),
        "examples": {
            "waiting": lost_waiting[:3],
            "active": lost_active[:3],
            "holds": [vars(h) for h in lost_holds[:3]],
        },
    }


def live_holds(holds: list[HoldRecord], before: float, at: float) -> list[HoldRecord]:
    """Holds granted before ``before`` that should still exist at ``at``: not ended by the
    buyer (booked) by then and not yet past their deadline (1 s of margin)."""
    return [
        hold
        for hold in list(holds)
        if hold.granted < before and hold.expires_at > at + 1 and (hold.ended is None or hold.ended > at)
    ]


def _held(hold: HoldRecord, snapshot: dict[str, Any]) -> bool:
    seat_keys = snapshot["seat_keys"]
    return all(seat_keys.get(seat) == str(hold.user_id) for seat in hold.seat_ids)


def redis_snapshot(client: Any, event_id: int, seat_ids: list[int]) -> dict[str, Any]:
    """The event's line, passes and the given seats' hold keys, in one MULTI/EXEC (every key
    of an event shares one hash tag, hence one node)."""
    import time

    from queueing.keys import EventKeys

    keys = EventKeys(event_id)
    seats = sorted(set(seat_ids))
    pipe = client.pipeline(transaction=True)
    pipe.zrange(keys.waiting, 0, -1)
    pipe.zrange(keys.active, 0, -1)
    pipe.get(keys.seq)
    if seats:
        pipe.mget([keys.seat(seat) for seat in seats])
    replies = pipe.execute()
    values = replies[3] if seats else []
    return {
        "at": time.time(),
        "waiting": set(replies[0]),
        "active": set(replies[1]),
        "seq": int(replies[2] or 0),
        "seat_keys": dict(zip(seats, values, strict=True)),
    }


def map_vs_database(client: Any, event_id: int) -> dict[str, int]:
    """Seats whose state in the Redis map disagrees with the database."""
    import time

    from events.models import Seat, SeatStatus
    from queueing.keys import EventKeys

    keys = EventKeys(event_id)
    seat_map = client.hgetall(keys.seatmap)
    db = dict(Seat.objects.filter(event_id=event_id).values_list("pk", "status"))
    now_ms = time.time() * 1000
    sold_not_shown = shown_sold_free = missing = stale_holds = 0
    for seat_id, status in db.items():
        value = seat_map.get(str(seat_id))
        if value is None:
            missing += 1
        elif status == SeatStatus.SOLD and value != "s":
            sold_not_shown += 1
        elif status != SeatStatus.SOLD and value == "s":
            shown_sold_free += 1
        elif value.startswith("h:") and float(value[2:]) < now_ms - 5000:
            stale_holds += 1  # a hold past its deadline that no sweep took back
    return {
        "sold_in_db_not_in_map": sold_not_shown,
        "sold_in_map_free_in_db": shown_sold_free,
        "missing_from_map": missing,
        "lapsed_holds_in_map": stale_holds,
        "total": sold_not_shown + shown_sold_free + missing + stale_holds,
    }


def mail_delays(event_id: int, windows: dict[str, tuple[float, float]]) -> dict[str, dict[str, Any]]:
    """Seconds from confirmation to ``emailed_at`` for the bookings confirmed in each window
    (wall-clock start, end): count, p50, max, and how many are still unsent."""
    from datetime import UTC, datetime

    from booking.models import Booking, BookingStatus

    rows = Booking.objects.filter(event_id=event_id, status=BookingStatus.CONFIRMED).values_list(
        "confirmed_at", "emailed_at"
    )
    result = {}
    for name, (start, end) in windows.items():
        lo, hi = datetime.fromtimestamp(start, tz=UTC), datetime.fromtimestamp(end, tz=UTC)
        chosen = [(c, e) for c, e in rows if lo <= c < hi]
        delays = [(e - c).total_seconds() for c, e in chosen if e is not None]
        result[name] = {
            "bookings": len(chosen),
            "unsent": sum(1 for _, e in chosen if e is None),
            "p50_s": round(statistics.median(delays), 1) if delays else None,
            "max_s": round(max(delays), 1) if delays else None,
        }
    return result
