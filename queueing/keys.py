"""Every Redis key of the queueing app is built here and nowhere else.

All keys of one event share the hash tag ``{ev:<id>}`` so every multi-key Lua script
runs unchanged on Redis Cluster (one slot per event). The deployment prefix
``settings.QUEUE_KEY_PREFIX`` is read when an ``EventKeys`` is built, i.e. at call time,
never at import time: tests (and a re-configured process) change it on the fly.
"""

from __future__ import annotations

from django.conf import settings


class EventKeys:
    """The key names of one event (see DESIGN.md "Redis layout")."""

    __slots__ = ("_base", "event_id")

    def __init__(self, event_id: int) -> None:
        self.event_id = int(event_id)
        self._base = f"{settings.QUEUE_KEY_PREFIX}{{ev:{self.event_id}}}:"

    def _key(self, name: str) -> str:
        return f"{self._base}{name}"

    @property
    def seq(self) -> str:
        """string: INCR counter giving each arrival its place."""
        return self._key("seq")

    @property
    def waiting(self) -> str:
        """zset: member user id, score arrival seq (FIFO)."""
        return self._key("waiting")

    @property
    def active(self) -> str:
        """zset: admitted users, score = pass expiry in ms (Redis TIME)."""
        return self._key("active")

    @property
    def seen(self) -> str:
        """zset: waiting users, score = when they last showed up (ms, Redis TIME); the
        admission drops a waiter reached after going silent (queueing/lua/admit.lua)."""
        return self._key("seen")

    @property
    def ctl(self) -> str:
        """hash: staff controls (paused, capacity, pass_seconds), sold_out, shuffle state,
        admitted_total, dropped_total, serving (the highest arrival number taken off the
        line: the serving cursor)."""
        return self._key("ctl")

    @property
    def seatmap(self) -> str:
        """hash: seat id -> "a" | "s" | "h:<expiry_ms>" (derived view for the seat map)."""
        return self._key("seatmap")

    @property
    def seatmap_version(self) -> str:
        """string: the seat map's version, moved by every change of a seat's state (the
        seat map's ETag); starts at the build time in µs so it never repeats."""
        return self._key("seatmap:version")

    @property
    def hold_expiries(self) -> str:
        """zset: one member per held seat, score = the hold's deadline (ms): lets a sweep
        find the holds that lapsed without a write, in time proportional to them."""
        return self._key("seatmap:expiries")

    @property
    def admissions(self) -> str:
        """zset: one member per second with admissions, score = epoch second, member
        ``"<second>:<admitted>:<waiting>:<active>"``; feeds the measured admission rate
        (ETA) and the staff dashboard's history. Trimmed to ~10 minutes."""
        return self._key("admissions")

    @property
    def seat_prefix(self) -> str:
        """Prefix of the seat hold keys; ``seat_prefix + str(seat_id) == seat(seat_id)``.

        Only handed to Lua scripts that must look at seat keys they cannot know in
        advance (the members of a user's holds set). Same hash tag, so same slot."""
        return self._key("seat:")

    def seat(self, seat_id: int) -> str:
        """string: a seat hold, ``SET NX PX``, value = holder token."""
        return f"{self.seat_prefix}{int(seat_id)}"

    def holds(self, user_id: int) -> str:
        """set: the seats a user holds, plus one ``deadline:<ms>`` marker member; the key
        expires at that deadline (PEXPIREAT)."""
        return self._key(f"holds:{int(user_id)}")

    @property
    def blocked(self) -> str:
        """set: user ids staff took off this event's line (or whose account was blocked);
        ``queue_join.lua`` refuses them, so they never reach the line or a pass."""
        return self._key("blocked")

    def pow_used(self, signature: str) -> str:
        """string, with the challenge's remaining lifetime as TTL: a proof-of-work
        solution already spent on a join (single use)."""
        return self._key(f"pow:{signature}")

    def join_attempts(self, kind: str, who: str) -> str:
        """zset: one member per join attempt, score = ms (Redis clock); the sliding window
        of one account, device or address (``queueing/lua/join_limit.lua``)."""
        return self._key(f"attempts:{kind}:{who}")

    def accounts_of(self, kind: str, who: str) -> str:
        """set: the accounts that tried to join from one device or address."""
        return self._key(f"accounts:{kind}:{who}")

    def accounts_count(self, kind: str) -> str:
        """zset: device or address -> how many accounts tried to join from it."""
        return self._key(f"accounts:{kind}")

    @property
    def review(self) -> str:
        """zset: buyers held for staff review (many accounts from one device or address),
        score = their arrival number (0 for one who had been admitted). Out of the line and
        the active queue: admission never reaches them until staff let them through."""
        return self._key("review")

    @property
    def review_sources(self) -> str:
        """hash: "device:<id>" or "address:<ip>" -> "held" (its accounts wait for review)
        or "cleared" (staff let it through; never held again for this event)."""
        return self._key("review:sources")

    @property
    def fast_joins(self) -> str:
        """zset: user id -> ms the proof-of-work took, for joins faster than any honest
        device could solve it."""
        return self._key("fast_joins")

    def human(self, user_id: int) -> str:
        """string, expiring with the user's pass: the human check before seat selection
        was passed during this pass."""
        return self._key(f"human:{int(user_id)}")

    @property
    def waitlist_gate(self) -> str:
        """string with a TTL: present while the event's waiting list takes every seat that
        comes back (``seats_hold.lua`` then holds no newly free seat for the regular sale).
        Set and refreshed by the waiting-list tick (booking.waiting_list)."""
        return self._key("wl:gate")

    @property
    def waitlist_pool(self) -> str:
        """zset: seats the waiting list took back and has not offered yet, score = when
        each came back (ms). Their seat keys hold ``WAITLIST_TOKEN``."""
        return self._key("wl:pool")
