"""The pulse of one event's waiting room: the serving cursor, the line's length, the
sold-out and paused flags, the measured admission rate and the seat map's version,
read from Redis in one script and kept by each process for a fraction of a second.

This is what lets the two hottest reads of a rush cost no Redis round trip per buyer:
a waiting-room poll from behind the cursor is answered from it (see
``events.services.waiting_room``), and a seat-map check compares the client's ETag with
the version. Whatever the crowd, a web process asks Redis at most once per
``QUEUE_PULSE_SECONDS`` per event (0.25 s by default).

The polls answered from the pulse still prove their buyer is there: each process notes
the user ids (``heartbeat_note``) and the next pulse read carries them to Redis in the
same round trip (``ZADD seen XX``), so the silent-waiter rule of the admission step sees
every live buyer without a write per poll.

Never a way to a pass: the pulse can only say "behind the cursor, still waiting"; a
stale pulse delays good news by a fraction of a second and admits nobody.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings

from queueing.keys import EventKeys
from queueing.rates import RATE_WINDOW_SECONDS, measured_rate
from queueing.scripts import run_script


@dataclass(frozen=True)
class Pulse:
    event_id: int
    read_at: float  # time.monotonic() of the read, in this process
    now_ms: int  # the Redis clock at the read
    serving: int  # the highest arrival number taken off the line (admitted or dropped)
    last_arrival: int  # the last arrival number handed out
    waiting: int  # people in the line
    sold_out: bool
    paused: bool
    shuffled: bool  # the opening shuffle has happened (pre-opening numbers were re-dealt)
    seat_version: int  # the seat map's version; 0 when there is no seat map in Redis
    admitted_per_second: float  # measured over the last minute

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.read_at


def pulse_read(*, event_id: int, heartbeats: list[int] | None = None) -> Pulse:
    """One round trip: sweeps lapsed holds, records the given users as present, and
    returns the event's pulse."""
    keys = EventKeys(event_id)
    reply = run_script(
        "pulse",
        keys=[
            keys.ctl,
            keys.seq,
            keys.waiting,
            keys.seen,
            keys.seatmap,
            keys.hold_expiries,
            keys.seatmap_version,
            keys.admissions,
        ],
        args=[RATE_WINDOW_SECONDS, *(int(user_id) for user_id in heartbeats or [])],
    )
    now_ms, serving, last, waiting, sold_out, paused, shuffled, version, admitted, first = (
        int(value) for value in reply
    )
    return Pulse(
        event_id=int(event_id),
        read_at=time.monotonic(),
        now_ms=now_ms,
        serving=serving,
        last_arrival=last,
        waiting=waiting,
        sold_out=bool(sold_out),
        paused=bool(paused),
        shuffled=bool(shuffled),
        seat_version=version,
        admitted_per_second=round(
            measured_rate(admitted_in_window=admitted, window_start_s=first, now_s=now_ms // 1000), 3
        ),
    )


class PulseCache:
    """Per process: the latest pulse of each event and the users seen since it.

    One thread refreshes an event's pulse while the others keep answering from the
    previous one (a refresh already in flight is not repeated); a process that has no
    pulse yet for an event waits for the first read. Thread-safe for gthread workers."""

    def __init__(self) -> None:
        self._pulses: dict[int, Pulse] = {}
        self._seen: dict[int, set[int]] = {}
        self._refreshing: set[int] = set()
        self._lock = threading.Lock()

    def get(self, event_id: int) -> Pulse:
        max_age = float(settings.QUEUE_PULSE_SECONDS)
        pulse = self._pulses.get(event_id)
        if pulse is not None and pulse.age() < max_age:
            return pulse
        with self._lock:
            pulse = self._pulses.get(event_id)
            if pulse is not None and (pulse.age() < max_age or event_id in self._refreshing):
                return pulse
            self._refreshing.add(event_id)
            heartbeats = list(self._seen.pop(event_id, ()))
        try:
            fresh = pulse_read(event_id=event_id, heartbeats=heartbeats)
        except BaseException:
            with self._lock:
                # Not lost: the next refresh carries them.
                self._seen.setdefault(event_id, set()).update(heartbeats)
                self._refreshing.discard(event_id)
            raise
        with self._lock:
            self._pulses[event_id] = fresh
            self._refreshing.discard(event_id)
        return fresh

    def note(self, event_id: int, user_id: int) -> None:
        with self._lock:
            self._seen.setdefault(event_id, set()).add(int(user_id))

    def invalidate(self, event_id: int) -> None:
        """Forget the event's pulse: this process just changed its seats, and its own
        next read must see the change (other processes follow within their max age)."""
        with self._lock:
            self._pulses.pop(event_id, None)

    def clear(self) -> None:
        with self._lock:
            self._pulses.clear()
            self._seen.clear()
            self._refreshing.clear()


pulse_cache = PulseCache()


def pulse_get(event_id: int) -> Pulse:
    """The event's pulse, at most ``QUEUE_PULSE_SECONDS`` old (one Redis round trip per
    process and event per that interval; Redis errors propagate)."""
    return pulse_cache.get(int(event_id))


def heartbeat_note(*, event_id: int, user_id: int) -> None:
    """The user showed up (a poll answered from the pulse): carried to Redis with the
    next pulse read of this process."""
    pulse_cache.note(int(event_id), user_id)


def pulse_invalidate(event_id: int) -> None:
    pulse_cache.invalidate(int(event_id))
