"""Model-based test: random sequences of join / leave / admit / expire / release against
a plain Python model of the waiting room. After every step the Redis state must match
the model: arrival order, one place per user, and never more live passes than capacity.
Expiry is made deterministic by rewriting pass scores into the past (helpers.expire_pass).
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import line_admit, line_join, line_leave, line_status, pass_release
from queueing.tests.helpers import OPEN, expire_pass, redis_now_ms, waiting_order

USERS = st.integers(min_value=1, max_value=8)
_event_ids = itertools.count(1000)


class WaitingRoomMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.event_id = next(_event_ids)  # a fresh event per example: no leftover state
        self.capacity = 3
        self.waiting: list[int] = []  # arrival order
        self.live: set[int] = set()  # live passes
        self.expired: set[int] = set()  # passes past expiry, still in the active zset

    @initialize(capacity=st.integers(min_value=0, max_value=4))
    def set_capacity(self, capacity: int) -> None:
        self.capacity = capacity

    @rule(user=USERS)
    def join(self, user: int) -> None:
        status, newly_joined = line_join(event_id=self.event_id, user_id=user, sales_open_at_ms=OPEN)
        if user in self.live:
            assert (status.state, newly_joined) == ("active", False)
        elif user in self.waiting:
            assert (status.state, status.position, newly_joined) == (
                "waiting",
                self.waiting.index(user) + 1,
                False,
            )
        else:
            self.waiting.append(user)
            assert (status.state, status.position, newly_joined) == ("waiting", len(self.waiting), True)

    @rule(user=USERS)
    def leave(self, user: int) -> None:
        line_leave(event_id=self.event_id, user_id=user)
        if user in self.waiting:
            self.waiting.remove(user)
        self.live.discard(user)
        self.expired.discard(user)

    @rule()
    def run_admission(self) -> None:
        result = line_admit(event_id=self.event_id, capacity=self.capacity, pass_seconds=600)
        assert result.expired == len(self.expired)
        self.expired.clear()
        count = max(0, min(self.capacity - len(self.live), len(self.waiting)))
        admitted, self.waiting = self.waiting[:count], self.waiting[count:]
        self.live.update(admitted)
        assert (result.admitted, result.active, result.waiting) == (count, len(self.live), len(self.waiting))

    @rule(user=USERS)
    def expire(self, user: int) -> None:
        if user in self.live:
            expire_pass(event_id=self.event_id, user_id=user)
            self.live.remove(user)
            self.expired.add(user)

    @rule(user=USERS)
    def release(self, user: int) -> None:
        pass_release(event_id=self.event_id, user_id=user)
        self.live.discard(user)
        self.expired.discard(user)

    @invariant()
    def redis_matches_the_model(self) -> None:
        assert waiting_order(event_id=self.event_id) == self.waiting
        for user in range(1, 9):
            status = line_status(event_id=self.event_id, user_id=user)
            if user in self.live:
                assert status.state == "active"
            elif user in self.waiting:
                assert (status.state, status.position) == ("waiting", self.waiting.index(user) + 1)
            else:
                assert status.state == "none"

    @invariant()
    def live_passes_never_exceed_capacity(self) -> None:
        live = get_redis().zcount(EventKeys(self.event_id).active, f"({redis_now_ms()}", "+inf")
        assert live == len(self.live) <= self.capacity

    @invariant()
    def one_place_per_user(self) -> None:
        assert len(set(self.waiting)) == len(self.waiting)
        assert not self.live & set(self.waiting)  # admitted users leave the line


def test_waiting_room_follows_the_model() -> None:
    run_state_machine_as_test(
        WaitingRoomMachine,
        settings=settings(
            max_examples=100,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
