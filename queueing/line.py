"""The waiting line in Redis: arrival-ordered waiting queue, bounded active queue
(passes), the admission step, staff controls and the rush figures (docs/ARCHITECTURE.md,
"join -> admit").

This is the Redis layer: it knows keys and scripts, not events or HTTP. Every state
change runs as one Lua script (``queueing/lua/``) so concurrent joins and overlapping
admission runs cannot interleave; the clock is always Redis ``TIME`` so web servers and
workers with skewed clocks agree on pass expiry. The event-aware service on top is
``events.services.waiting_room``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from queueing.connection import get_redis
from queueing.holds import holds_release
from queueing.join_limits import JoinLimited, JoinRefusal
from queueing.keys import EventKeys
from queueing.pulse import pulse_invalidate
from queueing.rates import RATE_WINDOW_SECONDS, measured_rate
from queueing.scripts import run_script


@dataclass(frozen=True)
class LineEntry:
    """One user's exact place, as the line's script saw it."""

    state: str  # "waiting" | "active" | "sold_out" | "review" (held for staff review) | "none"
    position: int | None  # 1-based place in the waiting line
    arrival: int | None  # the user's arrival number (score in the line), while in line
    preopen: bool  # the arrival number will be dealt again by the opening shuffle
    pass_expires_at_ms: int | None  # when state == "active"
    now_ms: int  # the Redis clock at that moment

    @property
    def ahead(self) -> int | None:
        return self.position - 1 if self.position is not None else None


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
    # rebuild the map from the database).
    available_seats: int | None = None
    dropped: int = 0  # waiters reached after going silent, taken off the line
    serving: int = 0  # the serving cursor after this run


def _entry(*, state: str, position: int, pass_ms: int, arrival: int, preopen: int, now_ms: int) -> LineEntry:
    return LineEntry(
        state=state,
        position=int(position) or None,
        arrival=int(arrival) or None,
        preopen=bool(int(preopen)),
        pass_expires_at_ms=(int(pass_ms) or None) if state == "active" else None,
        now_ms=int(now_ms),
    )


def line_join(
    *,
    event_id: int,
    user_id: int,
    sales_open_at_ms: int,
    pow_required: bool = False,
    pow_marker: str | None = None,
    pow_ttl_ms: int = 0,
    limits: tuple[list[str], list[str | int]] | None = None,
    review_threshold: int = 0,
) -> tuple[LineEntry, bool]:
    """Puts the user in line (idempotent: a re-join keeps its place). Returns the entry
    and whether this call added the user. A user with a live pass gets "active"; when
    the event is sold out a newcomer is not added ("sold_out"). Joining before
    ``sales_open_at_ms`` (Redis clock) marks the arrival for the opening shuffle.

    ``limits`` (``queueing.join_limits.limit_spec``) counts the attempt against the join
    limits first, in the same step: over one, ``JoinLimited`` is raised. Staff-blocked
    users get "blocked". With ``pow_required`` a newcomer must bring a verified solution,
    named by ``pow_marker`` (the solution's single-use key, kept ``pow_ttl_ms``): without
    one the state is "pow_required", with a spent one "pow_replayed"; someone already in
    line or admitted spends nothing.

    With ``review_threshold`` (and ``limits``, whose record of accounts per device and
    address it reads), once that many accounts tried to join from one device or address
    they are all held for staff review (state "review", ``queueing/lua/lib/review_hold.lua``).
    Accounts held that had a pass lose it and their seat holds. Returns the entry and
    whether this call added the user."""
    keys = EventKeys(event_id)
    pow_state = "given" if pow_marker else "required" if pow_required else "off"
    limit_keys, limit_args = limits or ([keys.ctl] * 7, [0, 0, int(user_id), 0, "-", 0, "-", "-"])
    state, position, pass_ms, newly, arrival, preopen, now_ms, *rest = run_script(
        "queue_join",
        keys=[
            keys.seq,
            keys.waiting,
            keys.active,
            keys.ctl,
            keys.seen,
            keys.blocked,
            pow_marker or keys.ctl,
            *limit_keys,
            keys.review,
            keys.review_sources,
        ],
        args=[
            int(user_id),
            int(sales_open_at_ms),
            pow_state,
            int(pow_ttl_ms),
            *limit_args,
            int(review_threshold) if limits else 0,
        ],
    )
    if state == "limited":
        raise JoinLimited(JoinRefusal(str(rest[0]), int(pass_ms)))
    entry = _entry(
        state=str(state), position=position, pass_ms=pass_ms, arrival=arrival, preopen=preopen, now_ms=now_ms
    )
    admitted_held = [int(member) for member in rest[1]] if len(rest) > 1 else []
    for held_user_id in admitted_held:
        holds_release(event_id=event_id, user_id=held_user_id)
    if admitted_held:
        pulse_invalidate(event_id)
    return entry, bool(int(newly))


def line_remove(*, event_id: int, user_ids: list[int]) -> int:
    """Takes users off the line for good: out of the waiting line, the active queue and
    review, and into the blocked set that ``queue_join`` checks, in one MULTI (one slot).
    Returns how many were in line, admitted or held for review."""
    keys = EventKeys(event_id)
    members = [int(user_id) for user_id in user_ids]
    pipe = get_redis().pipeline(transaction=True)
    pipe.sadd(keys.blocked, *members)
    pipe.zrem(keys.waiting, *members)
    pipe.zrem(keys.active, *members)
    pipe.zrem(keys.review, *members)
    pipe.zrem(keys.seen, *members)
    _, waiting, active, held, _ = pipe.execute()
    pulse_invalidate(event_id)
    return int(waiting) + int(active) + int(held)


def line_blocked(*, event_id: int) -> set[int]:
    return {int(member) for member in get_redis().smembers(EventKeys(event_id).blocked)}


def line_status(*, event_id: int, user_id: int) -> LineEntry:
    """The user's exact place: "active" (live pass), "waiting", "sold_out" (event sold
    out and no pass; the place is kept while in line), "review" (held for staff review,
    the place kept) or "none" (not in the line). Also counts as a sign of life for the
    silent-waiter rule."""
    keys = EventKeys(event_id)
    state, position, pass_ms, arrival, preopen, now_ms = run_script(
        "queue_status",
        keys=[keys.waiting, keys.active, keys.ctl, keys.seen, keys.review],
        args=[int(user_id)],
    )
    return _entry(
        state=str(state), position=position, pass_ms=pass_ms, arrival=arrival, preopen=preopen, now_ms=now_ms
    )


def line_join_refusable(*, event_id: int, user_id: int) -> bool:
    """True when ``line_join`` would answer this user "sold_out" now (sold out, and the
    user neither blocked, nor holding a live pass, nor held for review). Also counts as a
    sign of life for the silent-waiter rule (``queueing/lua/join_refusable.lua``)."""
    keys = EventKeys(event_id)
    return bool(
        run_script(
            "join_refusable",
            keys=[keys.ctl, keys.active, keys.blocked, keys.review, keys.seen],
            args=[int(user_id)],
        )
    )


def line_join_stamp(*, event_id: int) -> str:
    """Changes whenever a user's ``line_join_refusable`` could turn from True to False
    while the event stays sold out: someone admitted (a pass), blocked, or held for
    review. nginx keys its copies of that answer with it (and with the cursor's sold-out
    flag), so a copy never outlives the state it was read from by more than the cursor's
    age."""
    keys = EventKeys(event_id)
    pipe = get_redis().pipeline(transaction=True)
    pipe.hget(keys.ctl, "admitted_total")
    pipe.scard(keys.blocked)
    pipe.zcard(keys.review)
    admitted, blocked, held = pipe.execute()
    return f"{int(admitted or 0)}-{int(blocked)}-{int(held)}"


def line_leave(*, event_id: int, user_id: int) -> None:
    """Removes the user from the waiting line and the active queue (gives up the pass).
    Seat holds are separate: release them with ``queueing.holds.holds_release``."""
    keys = EventKeys(event_id)
    run_script("queue_leave", keys=[keys.waiting, keys.active, keys.seen, keys.review], args=[int(user_id)])


def review_release(*, event_id: int, kind: str, source: str) -> list[int]:
    """Staff let the accounts of one device or address (``kind``) through review: back in
    line with their arrival numbers, and the source never held again for this event.
    Returns the user ids that went back in line."""
    keys = EventKeys(event_id)
    released = run_script(
        "review_release",
        keys=[keys.review, keys.waiting, keys.seen, keys.review_sources, keys.accounts_of(kind, source)],
        args=[f"{kind}:{source}"],
    )
    pulse_invalidate(event_id)
    return sorted(int(member) for member in released)


@dataclass(frozen=True)
class ReviewState:
    """Which sources the automatic review acted on, and who waits in it."""

    sources: dict[str, str]  # "address:<ip>" / "device:<id>" -> "held" | "cleared"
    held: set[int]  # user ids held for review


def review_state(*, event_id: int) -> ReviewState:
    keys = EventKeys(event_id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.hgetall(keys.review_sources)
    pipe.zrange(keys.review, 0, -1)
    sources, held = pipe.execute()

    def text(value: bytes | str) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    return ReviewState(
        sources={text(name): text(state) for name, state in sources.items()},
        held={int(member) for member in held},
    )


def pass_expires_at_ms(*, event_id: int, user_id: int) -> int | None:
    """When the user's pass expires (ms, Redis clock), or None without a live pass."""
    keys = EventKeys(event_id)
    expires = int(run_script("pass_get", keys=[keys.active], args=[int(user_id)]))
    return expires or None


def pass_release(*, event_id: int, user_id: int) -> None:
    """Ends the user's pass so the slot goes to the next in line (after a confirmed
    booking). One key, one command: no script needed."""
    get_redis().zrem(EventKeys(event_id).active, str(int(user_id)))


def line_admit(
    *,
    event_id: int,
    capacity: int,
    pass_seconds: int,
    shuffle_seed: int | None = None,
    silent_seconds: int = 0,
) -> AdmitResult:
    """One admission step (Celery beat, every second): shuffles the pre-opening arrivals
    once (when ``shuffle_seed`` is given), drops expired passes and sweeps lapsed holds,
    then moves up to ``capacity - active`` users from waiting to active in arrival order,
    never more than the seats left; a waiter silent for more than ``silent_seconds``
    (0 = never) is dropped when reached. Publishes the serving cursor. Staff overrides in
    ctl (capacity, pass_seconds, paused) win over the arguments. Atomic: overlapping
    runs can never exceed capacity."""
    if capacity < 0 or pass_seconds < 1 or silent_seconds < 0:
        raise ValueError("capacity and silent_seconds must be >= 0 and pass_seconds >= 1")
    keys = EventKeys(event_id)
    reply = run_script(
        "admit",
        keys=[
            keys.waiting,
            keys.active,
            keys.ctl,
            keys.seatmap,
            keys.admissions,
            keys.seen,
            keys.hold_expiries,
            keys.seatmap_version,
            keys.waitlist_gate,
        ],
        args=[
            int(capacity),
            int(pass_seconds) * 1000,
            "" if shuffle_seed is None else int(shuffle_seed),
            int(silent_seconds) * 1000,
        ],
    )
    # This process sees the move at once (its web views, the tests); others within a pulse.
    pulse_invalidate(event_id)
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
        dropped=int(reply[8]),
        serving=int(reply[9]),
    )


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _controls(ctl: dict[str, str]) -> dict[str, Any]:
    return {
        "paused": ctl.get("paused") == "1",
        "capacity": _int_or_none(ctl.get("capacity")),
        "pass_seconds": _int_or_none(ctl.get("pass_seconds")),
    }


def controls_get(*, event_id: int) -> dict[str, Any]:
    """Staff controls: {"paused": bool, "capacity": int | None, "pass_seconds": int | None};
    None means "use the event's default" (the admission task's arguments)."""
    return _controls(get_redis().hgetall(EventKeys(event_id).ctl))


def controls_set(
    *,
    event_id: int,
    paused: bool | None = None,
    capacity: int | None = None,
    pass_seconds: int | None = None,
) -> dict[str, Any]:
    """Changes the given staff controls (None = leave unchanged); the next admission run
    applies them. Returns the controls after the change. One hash, one HSET: atomic."""
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
        client.hset(key, mapping=changes)
        pulse_invalidate(event_id)
    return _controls(client.hgetall(key))


def rush_figures(*, event_id: int) -> dict[str, Any]:
    """The live on-sale dashboard's numbers, read in one script (one consistent moment):
    waiting, active, admitted_total, dropped_total, serving, admitted_per_second (last
    60 s), held_seats, sold_seats, available_seats (None without a seat map), paused,
    capacity, pass_seconds, sold_out, shuffle_seed, and ``history``: one
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
    rate = measured_rate(
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
        "dropped_total": int(ctl.get("dropped_total") or 0),
        "serving": int(ctl.get("serving") or 0),
        "admitted_per_second": round(rate, 3),
        "held_seats": int(data["held"]) if has_map else 0,
        "sold_seats": int(data["sold"]) if has_map else 0,
        "available_seats": int(data["available"]) if has_map else None,
        "sold_out": ctl.get("sold_out") == "1",
        "shuffle_seed": _int_or_none(ctl.get("shuffle_seed")),
        **_controls(ctl),
        "history": history,
    }
