"""The waiting room against a real Redis: order, idempotence, the capacity bound under
overlapping admission runs (with negative controls), pause, expiry, the stock-aware
stop, the opening shuffle, the measured ETA and the staff figures."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from queueing.connection import get_redis
from queueing.holds import seats_hold
from queueing.keys import EventKeys
from queueing.line import (
    controls_get,
    controls_set,
    line_admit,
    line_join,
    line_leave,
    line_status,
    pass_expires_at_ms,
    pass_release,
    rush_figures,
)
from queueing.pulse import pulse_read
from queueing.rates import eta_seconds
from queueing.seatmap import seatmap_load, seatmap_mark
from queueing.tests.helpers import NEVER, OPEN, admit_users, expire_pass, redis_now_ms, waiting_order

EVENT = 1


def test_a_thousand_concurrent_joins_get_positions_1_to_1000() -> None:
    def join(user_id: int) -> int:
        status, newly_joined = line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
        assert newly_joined and status.state == "waiting"
        return status.position

    with ThreadPoolExecutor(64) as pool:
        positions = list(pool.map(join, range(1, 1001)))

    assert sorted(positions) == list(range(1, 1001))
    # Each reported position is the user's real place, i.e. arrival order is kept.
    order = waiting_order(event_id=EVENT)
    assert {user: order.index(user) + 1 for user in order} == dict(
        zip(range(1, 1001), positions, strict=True)
    )


def test_negative_control_a_join_split_in_round_trips_reports_duplicate_positions() -> None:
    """The same steps as queue_join.lua (INCR, ZADD, ZRANK) in separate round trips:
    a later arrival slipping in between gives two users the same position. This is
    why the join is one script."""
    keys = EventKeys(EVENT)
    redis = get_redis()
    first_took_number = threading.Event()
    second_done = threading.Event()
    positions: dict[str, int] = {}

    def split_join(user: str, *, before: threading.Event | None, after: threading.Event | None) -> None:
        if before is not None:
            before.wait(5)
        seq = redis.incr(keys.seq)
        if user == "early":
            first_took_number.set()
            second_done.wait(5)
        redis.zadd(keys.waiting, {user: seq}, nx=True)
        positions[user] = redis.zrank(keys.waiting, user) + 1
        if after is not None:
            after.set()

    early = threading.Thread(target=split_join, args=("early",), kwargs={"before": None, "after": None})
    late = threading.Thread(
        target=split_join, args=("late",), kwargs={"before": first_took_number, "after": second_done}
    )
    early.start()
    late.start()
    early.join()
    late.join()
    assert positions["early"] == positions["late"] == 1


def test_rejoin_keeps_place_and_is_not_new() -> None:
    for user_id in (10, 11, 12):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    status, newly_joined = line_join(event_id=EVENT, user_id=11, sales_open_at_ms=OPEN)
    assert (status.state, status.position, status.ahead, newly_joined) == ("waiting", 2, 1, False)
    assert waiting_order(event_id=EVENT) == [10, 11, 12]


def test_join_with_a_live_pass_reports_active_and_does_not_requeue() -> None:
    admit_users(event_id=EVENT, user_ids=[5])
    status, newly_joined = line_join(event_id=EVENT, user_id=5, sales_open_at_ms=OPEN)
    assert status.state == "active" and not newly_joined
    assert status.pass_expires_at_ms == pass_expires_at_ms(event_id=EVENT, user_id=5)
    assert waiting_order(event_id=EVENT) == []


def test_status_of_a_stranger_is_none_and_leave_moves_the_line_up() -> None:
    assert line_status(event_id=EVENT, user_id=99).state == "none"
    for user_id in (1, 2, 3):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    line_leave(event_id=EVENT, user_id=1)
    assert line_status(event_id=EVENT, user_id=1).state == "none"
    assert line_status(event_id=EVENT, user_id=3).position == 2


def test_leave_gives_up_the_pass_too() -> None:
    admit_users(event_id=EVENT, user_ids=[1])
    line_leave(event_id=EVENT, user_id=1)
    assert pass_expires_at_ms(event_id=EVENT, user_id=1) is None
    assert line_status(event_id=EVENT, user_id=1).state == "none"


def test_admission_is_fifo_and_bounded_by_capacity() -> None:
    for user_id in range(1, 8):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    result = line_admit(event_id=EVENT, capacity=3, pass_seconds=60)
    assert (result.admitted, result.active, result.waiting) == (3, 3, 4)
    assert [line_status(event_id=EVENT, user_id=u).state for u in (1, 2, 3, 4)] == ["active"] * 3 + [
        "waiting"
    ]
    assert line_status(event_id=EVENT, user_id=4).position == 1
    assert line_admit(event_id=EVENT, capacity=3, pass_seconds=60).admitted == 0


def test_overlapping_admission_runs_never_exceed_capacity() -> None:
    for user_id in range(1, 301):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    capacity = 25
    start = threading.Barrier(32)

    def run() -> int:
        start.wait(5)
        return sum(line_admit(event_id=EVENT, capacity=capacity, pass_seconds=60).admitted for _ in range(5))

    with ThreadPoolExecutor(32) as pool:
        admitted = sum(pool.map(lambda _: run(), range(32)))

    assert admitted == capacity
    assert get_redis().zcard(EventKeys(EVENT).active) == capacity
    # The first 25 arrivals got in, nobody else.
    assert waiting_order(event_id=EVENT) == list(range(26, 301))


def test_negative_control_admission_outside_one_script_exceeds_capacity() -> None:
    """The admission step done in separate round trips (read active, then move people):
    overlapping runs each see the same free slots and overfill the active queue. This is
    the race admit.lua closes."""
    keys = EventKeys(EVENT)
    redis = get_redis()
    for user_id in range(1, 101):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    capacity, runs = 10, 8
    all_have_read = threading.Barrier(runs)

    def unguarded_admit() -> None:
        free = capacity - redis.zcard(keys.active)
        all_have_read.wait(5)
        for member, _score in redis.zpopmin(keys.waiting, free):
            redis.zadd(keys.active, {member: 2**50})

    threads = [threading.Thread(target=unguarded_admit) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert redis.zcard(keys.active) == capacity * runs > capacity


def test_a_paused_event_admits_nobody_until_resumed() -> None:
    for user_id in (1, 2):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    assert controls_set(event_id=EVENT, paused=True) == {
        "paused": True,
        "capacity": None,
        "pass_seconds": None,
    }
    result = line_admit(event_id=EVENT, capacity=10, pass_seconds=60)
    assert (result.admitted, result.paused, result.waiting) == (0, True, 2)
    controls_set(event_id=EVENT, paused=False)
    assert line_admit(event_id=EVENT, capacity=10, pass_seconds=60).admitted == 2


def test_staff_capacity_and_pass_length_override_the_defaults() -> None:
    for user_id in range(1, 6):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    assert controls_set(event_id=EVENT, capacity=2, pass_seconds=30) == {
        "paused": False,
        "capacity": 2,
        "pass_seconds": 30,
    }
    assert controls_get(event_id=EVENT) == {"paused": False, "capacity": 2, "pass_seconds": 30}
    result = line_admit(event_id=EVENT, capacity=100, pass_seconds=600)
    assert result.admitted == 2
    status = line_status(event_id=EVENT, user_id=1)
    remaining_ms = status.pass_expires_at_ms - redis_now_ms()
    assert 28_000 < remaining_ms <= 30_000


def test_expired_passes_free_their_slots() -> None:
    for user_id in (1, 2, 3):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    assert line_admit(event_id=EVENT, capacity=2, pass_seconds=1).admitted == 2
    assert line_admit(event_id=EVENT, capacity=2, pass_seconds=1).admitted == 0
    time.sleep(1.1)  # real expiry on the Redis clock
    assert line_status(event_id=EVENT, user_id=1).state == "none"
    assert pass_expires_at_ms(event_id=EVENT, user_id=1) is None
    result = line_admit(event_id=EVENT, capacity=2, pass_seconds=60)
    assert (result.expired, result.admitted, result.active) == (2, 1, 1)
    assert line_status(event_id=EVENT, user_id=3).state == "active"


def test_pass_release_frees_the_slot_for_the_next_in_line() -> None:
    for user_id in (1, 2):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    line_admit(event_id=EVENT, capacity=1, pass_seconds=60)
    pass_release(event_id=EVENT, user_id=1)
    assert pass_expires_at_ms(event_id=EVENT, user_id=1) is None
    assert line_admit(event_id=EVENT, capacity=1, pass_seconds=60).admitted == 1
    assert line_status(event_id=EVENT, user_id=2).state == "active"


def test_admission_stops_when_every_seat_is_held_but_it_is_not_sold_out() -> None:
    seatmap_load(event_id=EVENT, statuses={1: "available", 2: "available"})
    admit_users(event_id=EVENT, user_ids=[100])
    seats_hold(event_id=EVENT, user_id=100, seat_ids=[1, 2], hold_seconds=60, cap=4)
    for user_id in (1, 2):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    result = line_admit(event_id=EVENT, capacity=10, pass_seconds=60)
    assert (result.admitted, result.sold_out, result.available_seats) == (0, False, 0)
    assert line_status(event_id=EVENT, user_id=1).state == "waiting"


def test_admission_never_exceeds_the_seats_left() -> None:
    seatmap_load(event_id=EVENT, statuses={1: "available", 2: "available", 3: "sold"})
    for user_id in range(1, 6):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    result = line_admit(event_id=EVENT, capacity=10, pass_seconds=60)
    assert (result.admitted, result.available_seats) == (2, 2)


def test_sold_out_stops_admission_and_tells_every_waiter_then_clears_on_a_return() -> None:
    seatmap_load(event_id=EVENT, statuses={1: "sold", 2: "sold"})
    for user_id in (1, 2):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    result = line_admit(event_id=EVENT, capacity=10, pass_seconds=60)
    assert (result.admitted, result.sold_out) == (0, True)
    status = line_status(event_id=EVENT, user_id=2)
    assert (status.state, status.position) == ("sold_out", 2)  # place kept, told at once
    # A newcomer is not added; a re-join keeps the place but says sold out.
    newcomer, newly_joined = line_join(event_id=EVENT, user_id=3, sales_open_at_ms=OPEN)
    assert (newcomer.state, newcomer.position, newly_joined) == ("sold_out", None, False)
    assert line_status(event_id=EVENT, user_id=3).state == "sold_out"
    assert line_join(event_id=EVENT, user_id=1, sales_open_at_ms=OPEN)[0].state == "sold_out"
    assert waiting_order(event_id=EVENT) == [1, 2]

    seatmap_mark(event_id=EVENT, seat_ids=[2], status="available")  # a cancellation
    result = line_admit(event_id=EVENT, capacity=10, pass_seconds=60)
    assert (result.admitted, result.sold_out) == (1, False)
    assert line_status(event_id=EVENT, user_id=1).state == "active"
    assert line_status(event_id=EVENT, user_id=2).state == "waiting"


def test_opening_shuffle_reorders_early_arrivals_once_and_keeps_later_ones_behind() -> None:
    early, late = list(range(1, 41)), list(range(41, 51))
    for user_id in early:
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=NEVER)
    for user_id in late:
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)

    result = line_admit(event_id=EVENT, capacity=0, pass_seconds=60, shuffle_seed=1234)
    assert result.shuffled
    shuffled = waiting_order(event_id=EVENT)
    assert sorted(shuffled[:40]) == early and shuffled[:40] != early
    assert shuffled[40:] == late
    positions = [line_status(event_id=EVENT, user_id=u).position for u in shuffled]
    assert positions == list(range(1, 51))

    again = line_admit(event_id=EVENT, capacity=0, pass_seconds=60, shuffle_seed=999)
    assert not again.shuffled
    assert waiting_order(event_id=EVENT) == shuffled
    assert rush_figures(event_id=EVENT)["shuffle_seed"] == 1234
    # Newcomers after the opening still join at the back.
    line_join(event_id=EVENT, user_id=51, sales_open_at_ms=OPEN)
    assert waiting_order(event_id=EVENT)[-1] == 51


def test_the_shuffle_is_reproducible_from_the_published_seed() -> None:
    orders = []
    for event_id in (2, 3):
        for user_id in range(1, 31):
            line_join(event_id=event_id, user_id=user_id, sales_open_at_ms=NEVER)
        line_admit(event_id=event_id, capacity=0, pass_seconds=60, shuffle_seed=2**40 + 7)
        orders.append(waiting_order(event_id=event_id))
    assert orders[0] == orders[1] != list(range(1, 31))


def test_the_rate_is_unknown_until_admissions_are_measured_then_follows_them() -> None:
    for user_id in range(1, 31):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    assert pulse_read(event_id=EVENT).admitted_per_second == 0.0
    assert eta_seconds(ahead=19, rate=0.0) is None

    line_admit(event_id=EVENT, capacity=10, pass_seconds=60)
    status = line_status(event_id=EVENT, user_id=30)
    assert status.position == 20 and status.ahead == 19
    rate = pulse_read(event_id=EVENT).admitted_per_second
    assert rate > 0
    assert eta_seconds(ahead=19, rate=rate) == -(-19 // rate)  # ceil


def test_rush_figures_describe_the_rush() -> None:
    seatmap_load(event_id=EVENT, statuses={1: "available", 2: "available", 3: "sold", 4: "available"})
    admit_users(event_id=EVENT, user_ids=[1, 2])
    seats_hold(event_id=EVENT, user_id=1, seat_ids=[1], hold_seconds=60, cap=4)
    for user_id in range(3, 8):
        line_join(event_id=EVENT, user_id=user_id, sales_open_at_ms=OPEN)
    expire_pass(event_id=EVENT, user_id=2)
    controls_set(event_id=EVENT, paused=True)

    figures = rush_figures(event_id=EVENT)
    assert figures["waiting"] == 5
    assert figures["active"] == 1  # the expired pass does not count
    assert figures["admitted_total"] == 2
    assert figures["admitted_per_second"] > 0
    assert (figures["held_seats"], figures["sold_seats"], figures["available_seats"]) == (1, 1, 2)
    assert figures["paused"] is True and figures["shuffle_seed"] is None
    assert figures["history"][-1]["admitted"] == 2
    assert set(figures["history"][-1]) == {"t", "admitted", "waiting", "active"}


def test_rush_figures_of_an_untouched_event() -> None:
    figures = rush_figures(event_id=EVENT)
    assert figures["waiting"] == figures["active"] == figures["admitted_total"] == 0
    assert figures["available_seats"] is None and figures["history"] == []
