"""Small helpers shared by the queueing tests (real Redis, per-test key prefix)."""

from __future__ import annotations

from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import line_admit, line_join
from queueing.seatmap import seatmap_snapshot

OPEN = 0  # sales_open_at_ms in the past: a normal (post-opening) arrival
NEVER = 2**62  # sales_open_at_ms far in the future: a pre-opening arrival


def redis_now_ms() -> int:
    seconds, micros = get_redis().time()
    return seconds * 1000 + micros // 1000


def expire_pass(*, event_id: int, user_id: int) -> None:
    """Moves a pass expiry into the past (deterministic stand-in for waiting it out)."""
    get_redis().zadd(EventKeys(event_id).active, {str(user_id): 1}, xx=True)


def admit_users(*, event_id: int, user_ids: list[int], pass_seconds: int = 600) -> None:
    """Joins the users in order and admits exactly them (the queue must be empty)."""
    for user_id in user_ids:
        line_join(event_id=event_id, user_id=user_id, sales_open_at_ms=OPEN)
    result = line_admit(event_id=event_id, capacity=len(user_ids), pass_seconds=pass_seconds)
    assert result.admitted == len(user_ids)


def waiting_order(*, event_id: int) -> list[int]:
    return [int(member) for member in get_redis().zrange(EventKeys(event_id).waiting, 0, -1)]


def seat_statuses(*, event_id: int) -> dict[int, str] | None:
    """The seat map as statuses (available / held / sold), or None when it is missing."""
    snapshot = seatmap_snapshot(event_id=event_id)
    return snapshot.statuses if snapshot is not None else None


def seatmap_exists(*, event_id: int) -> bool:
    return bool(get_redis().exists(EventKeys(event_id).seatmap))
