"""The waiting room: arrival-ordered waiting queue, bounded active queue (passes),
admission, staff controls and the rush figures (DESIGN.md "The rush", steps 1-2).

Every state change runs as one Lua script (``queueing/lua/``) so concurrent joins and
overlapping admission runs cannot interleave; the clock is always Redis ``TIME`` so web
servers and workers with skewed clocks agree on pass expiry.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.scripts import run_script

# The ETA and the dashboard average admissions over this window (seconds).
RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class QueueStatus:
    state: str  # "waiting" | "active" | "sold_out" | "none"
    position: int | None  # 1-based place in the waiting queue
    ahead: int | None  # people ahead (position - 1)
    pass_expires_at_ms: int | None  # when state == "active"
    admitted_per_second: float  # measured over the last 60 s; 0.0 when nobody was admitted
    eta_seconds: int | None  # None when no admission rate is known yet


@dataclass
class AdmitResult:
    admitted: int  # users moved from waiting to active by this run
    expired: int  # expired passes dropped by this run
    active: int  # active users after this run
    waiting: int  # waiting users after this run
    sold_out: bool  # no seat left unsold (nothing available, nothing held)
    paused: bool  # staff paused admission
    shuffled: bool  # True only for the run that performed the pre-opening shuffle
    # Seats neither sold nor held by a live hold; None when the seat map is missing
    # (stock unknown: admission is then bounded by capacity only, and the caller should
    # rebuild the map from the database with seatmap_load).
    available_seats: int | None = None


def _measured_rate(*, admitted_in_window: int, window_start_s: int, now_s: int) -> float:
    """Admissions per second over the recorded part of the last 60 s.

    Dividing by the span actually covered (not a fixed 60) keeps the first minute of a
    sale honest: 300 admitted in the first 3 s is 100/s, not 5/s."""
    if admitted_in_window <= 0 or window_start_s <= 0:
        return 0.0
    span = max(1, min(RATE_WINDOW_SECONDS, now_s - window_start_s + 1))
    return admitted_in_window / span


def _eta_seconds(*, ahead: int | None, rate: float) -> int | None:
    if ahead is None or rate <= 0:
        return None
    return math.ceil(ahead / rate)


def _status_from_reply(reply: list[Any]) -> tuple[QueueStatus, bool]:
    # Reply of queue_join.lua / queue_status.lua:
    # {state, position (0 = none), pass_expires_at_ms (0 = none), newly_joined (0/1),
    #  admitted_in_window, window_start_s (0 = no record), now_s}
    state = str(reply[0])
    position = int(reply[1]) or None
    pass_expires = int(reply[2]) or None
    newly_joined = bool(int(reply[3]))
    rate = _measured_rate(admitted_in_window=int(reply[4]), window_start_s=int(reply[5]), now_s=int(reply[6]))
    ahead = position - 1 if position is not None else None
    eta = _eta_seconds(ahead=ahead, rate=rate) if state == "waiting" else None
    status = QueueStatus(
        state=state,
        position=position,
        ahead=ahead,
        pass_expires_at_ms=pass_expires if state == "active" else None,
        admitted_per_second=round(rate, 3),
        eta_seconds=eta,
    )
    return status, newly_joined


def queue_join(*, event_id: int, user_id: int, sales_open_at_ms: int) -> tuple[QueueStatus, bool]:
    """Puts the user in line (idempotent: a re-join keeps its place). Returns the status
    and whether this call added the user. A user with a live pass gets "active"; when
    the event is sold out a newcomer is not added ("sold_out"). Joining before
    ``sales_open_at_ms`` (Redis clock) marks the arrival for the opening shuffle."""
    keys = EventKeys(event_id)
    reply = run_script(
        "queue_join",
        keys=[keys.seq, keys.waiting, keys.active, keys.ctl, keys.admissions],
        args=[int(user_id), int(sales_open_at_ms), RATE_WINDOW_SECONDS],
    )
    return _status_from_reply(reply)


def queue_status(*, event_id: int, user_id: int) -> QueueStatus:
    """The user's place: "active" (live pass), "waiting" (position, ETA), "sold_out"
    (event sold out and the user holds no pass; position kept if still in line) or
    "none" (not in the queue)."""
    keys = EventKeys(event_id)
    reply = run_script(
        "queue_status",
        keys=[keys.waiting, keys.active, keys.ctl, keys.admissions],
        args=[int(user_id), RATE_WINDOW_SECONDS],
    )
    status, _ = _status_from_reply(reply)
    return status


def queue_leave(*, event_id: int, user_id: int) -> None:
    """Removes the user from the waiting queue and the active queue (gives up the pass).
    Seat holds are separate: release them with ``holds_release``."""
    keys = EventKeys(event_id)
    run_script("queue_leave", keys=[keys.waiting, keys.active], args=[int(user_id)])


def pass_expires_at_ms(*, event_id: int, user_id: int) -> int | None:
    """When the user's pass expires (ms, Redis clock), or None without a live pass."""
    keys = EventKeys(event_id)
    expires = int(run_script("pass_get", keys=[keys.active], args=[int(user_id)]))
    return expires or None


def pass_release(*, event_id: int, user_id: int) -> None:
    """Ends the user's pass so the slot goes to the next in line (after a confirmed
    booking). One key, one command: no script needed."""
    get_redis().zrem(EventKeys(event_id).active, str(int(user_id)))


def admit(*, event_id: int, capacity: int, pass_seconds: int, shuffle_seed: int | None = None) -> AdmitResult:
    """One admission step (Celery beat, every second): shuffles the pre-opening arrivals
    once (when ``shuffle_seed`` is given), drops expired passes, then moves up to
    ``capacity - active`` users from waiting to active, never more than the seats left.
    Staff overrides in ctl (capacity, pass_seconds, paused) win over the arguments.
    Atomic: overlapping runs can never exceed capacity."""
    if capacity < 0 or pass_seconds < 1:
        raise ValueError("capacity must be >= 0 and pass_seconds >= 1")
    keys = EventKeys(event_id)
    reply = run_script(
        "admit",
        keys=[keys.waiting, keys.active, keys.ctl, keys.seatmap, keys.admissions],
        args=[int(capacity), int(pass_seconds) * 1000, "" if shuffle_seed is None else int(shuffle_seed)],
    )
    # {admitted, expired, active, waiting, sold_out, paused, shuffled_now, available (-1 = unknown)}
    available = int(reply[7])
    return AdmitResult(
        admitted=int(reply[0]),
        expired=int(reply[1]),
        active=int(reply[2]),
        waiting=int(reply[3]),
        sold_out=bool(int(reply[4])),
        paused=bool(int(reply[5])),
        shuffled=bool(int(reply[6])),
        available_seats=available if available >= 0 else None,
    )


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _controls(ctl: dict[str, str]) -> dict[str, Any]:
    return {
        "paused": ctl.get("paused") == "1",
        "capacity": _int_or_none(ctl.get("capacity")),
        "pass_seconds": _int_or_none(ctl.get("pass_seconds")),
    }


def control_get(*, event_id: int) -> dict[str, Any]:
    """Staff controls: {"paused": bool, "capacity": int | None, "pass_seconds": int | None};
    None means "use the event's default" (the admission task's arguments)."""
    return _controls(get_redis().hgetall(EventKeys(event_id).ctl))


def control_set(
    *,
    event_id: int,
    paused: bool | None = None,
    capacity: int | None = None,
    pass_seconds: int | None = None,
) -> dict[str, Any]:
    """Changes the given staff controls (None = leave unchanged); the next admission run
    applies them. Returns the controls after the change. One hash: HSET is atomic."""
    if capacity is not None and capacity < 0:
        raise ValueError("capacity must be >= 0")
    if pass_seconds is not None and pass_seconds < 1:
        raise ValueError("pass_seconds must be >= 1")
    changes: dict[str, str] = {}
    if paused is not None:
        changes["paused"] = "1" if paused else "0"
    if capacity is not None:
        changes["capacity"] = str(int(capacity))
    if pass_seconds is not None:
        changes["pass_seconds"] = str(int(pass_seconds))
    key = EventKeys(event_id).ctl
    client = get_redis()
    if changes:
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, mapping=changes)
        pipe.hgetall(key)
        ctl = pipe.execute()[-1]
    else:
        ctl = client.hgetall(key)
    return _controls(ctl)


def rush_figures(*, event_id: int) -> dict[str, Any]:
    """The live on-sale dashboard's numbers, read in one script (one consistent moment):
    waiting, active, admitted_total, admitted_per_second (last 60 s), held_seats,
    sold_seats, available_seats (None without a seat map), paused, capacity,
    pass_seconds, sold_out, shuffle_seed, and ``history``: one
    {"t": epoch_s, "admitted": n, "waiting": w, "active": a} per second in which an
    admission run happened, over the last 5 minutes, oldest first."""
    keys = EventKeys(event_id)
    raw = run_script(
        "rush_figures",
        keys=[keys.waiting, keys.active, keys.ctl, keys.seatmap, keys.admissions],
        args=[300],
    )
    data = json.loads(raw)
    now_s = int(data["now_s"])
    history = []
    # cjson encodes an empty Lua table as {}, hence the isinstance check.
    for member in data["history"] if isinstance(data["history"], list) else []:
        second, admitted, waiting, active = (int(part) for part in member.split(":"))
        history.append({"t": second, "admitted": admitted, "waiting": waiting, "active": active})
    history.sort(key=lambda row: row["t"])
    window = [row for row in history if row["t"] > now_s - RATE_WINDOW_SECONDS]
    rate = _measured_rate(
        admitted_in_window=sum(row["admitted"] for row in window),
        window_start_s=window[0]["t"] if window else 0,
        now_s=now_s,
    )
    ctl: dict[str, str] = data["ctl"] if isinstance(data["ctl"], dict) else {}
    has_map = bool(data["has_map"])
    return {
        "waiting": int(data["waiting"]),
        "active": int(data["active"]),
        "admitted_total": int(ctl.get("admitted_total") or 0),
        "admitted_per_second": round(rate, 3),
        "held_seats": int(data["held"]) if has_map else 0,
        "sold_seats": int(data["sold"]) if has_map else 0,
        "available_seats": int(data["available"]) if has_map else None,
        "sold_out": ctl.get("sold_out") == "1",
        "shuffle_seed": _int_or_none(ctl.get("shuffle_seed")),
        **_controls(ctl),
        "history": history,
    }
