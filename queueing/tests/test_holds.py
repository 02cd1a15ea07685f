"""Seat holds against a real Redis: all or nothing, the per-user cap, one deadline per
user (no countdown reset), compare-token release, expiry without writes, consume and the
reconciler's drop, plus a race of many users for the same seats."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from queueing.connection import get_redis
from queueing.holds import (
    Hold,
    HoldError,
    holds_consume,
    holds_drop_for_seats,
    holds_get,
    holds_release,
    holds_verify,
    seats_hold,
)
from queueing.keys import EventKeys
from queueing.pulse import pulse_read
from queueing.seatmap import seatmap_load
from queueing.tests.helpers import admit_users, expire_pass, redis_now_ms, seat_statuses

EVENT = 1


@pytest.fixture
def seats() -> list[int]:
    seat_ids = list(range(1, 11))
    statuses = {seat_id: "available" for seat_id in seat_ids}
    statuses[10] = "sold"
    seatmap_load(event_id=EVENT, statuses=statuses)
    return seat_ids


def hold(user_id: int, seat_ids: list[int], *, hold_seconds: int = 60, cap: int = 4) -> Hold:
    return seats_hold(event_id=EVENT, user_id=user_id, seat_ids=seat_ids, hold_seconds=hold_seconds, cap=cap)


def refused(user_id: int, seat_ids: list[int], **kwargs: int) -> HoldError:
    with pytest.raises(HoldError) as caught:
        hold(user_id, seat_ids, **kwargs)
    return caught.value


def test_a_hold_needs_a_live_pass(seats: list[int]) -> None:
    assert refused(1, [1]).code == "not_admitted"
    admit_users(event_id=EVENT, user_ids=[1])
    expire_pass(event_id=EVENT, user_id=1)
    assert refused(1, [1]).code == "not_admitted"
    assert seat_statuses(event_id=EVENT)[1] == "available"


def test_hold_is_all_or_nothing(seats: list[int]) -> None:
    admit_users(event_id=EVENT, user_ids=[1, 2])
    held = hold(1, [2, 1])
    assert held.seat_ids == [1, 2] and held.expires_at_ms > redis_now_ms()
    error = refused(2, [3, 2, 10])
    assert (error.code, sorted(error.seat_ids)) == ("seat_unavailable", [2, 10])
    # Seat 3 was free but is not taken: all or nothing.
    assert holds_get(event_id=EVENT, user_id=2) == Hold(seat_ids=[], expires_at_ms=None)
    assert seat_statuses(event_id=EVENT)[3] == "available"
    assert get_redis().get(EventKeys(EVENT).seat(3)) is None


def test_unknown_seats_and_a_missing_map_are_refused(seats: list[int]) -> None:
    admit_users(event_id=EVENT, user_ids=[1])
    error = refused(1, [1, 77, 78])
    assert (error.code, error.seat_ids) == ("invalid_seats", [77, 78])
    get_redis().delete(EventKeys(EVENT).seatmap)
    assert refused(1, [1]).code == "no_seatmap"


def test_the_per_user_cap_counts_live_holds_only(seats: list[int]) -> None:
    admit_users(event_id=EVENT, user_ids=[1])
    hold(1, [1, 2], cap=3)
    error = refused(1, [3, 4], cap=3)
    assert (error.code, error.seat_ids) == ("limit_exceeded", [3, 4])
    assert hold(1, [2, 3], cap=3).seat_ids == [1, 2, 3]  # seat 2 is already the user's
    holds_release(event_id=EVENT, user_id=1, seat_ids=[1])
    assert hold(1, [4], cap=3).seat_ids == [2, 3, 4]


def test_holding_again_never_resets_the_countdown(seats: list[int]) -> None:
    admit_users(event_id=EVENT, user_ids=[1])
    first = hold(1, [1], hold_seconds=60)
    time.sleep(0.05)
    assert hold(1, [1], hold_seconds=60).expires_at_ms == first.expires_at_ms  # same seat: no extension
    assert hold(1, [2], hold_seconds=60).expires_at_ms == first.expires_at_ms  # new seat: same deadline
    holds_release(event_id=EVENT, user_id=1)
    assert hold(1, [3], hold_seconds=60).expires_at_ms == first.expires_at_ms  # release + hold: same
    ttl_ms = get_redis().pttl(EventKeys(EVENT).seat(3))
    assert ttl_ms <= first.expires_at_ms - redis_now_ms() + 5


def test_a_new_deadline_starts_after_the_old_one_has_passed(seats: list[int]) -> None:
    admit_users(event_id=EVENT, user_ids=[1])
    first = hold(1, [1], hold_seconds=1)
    time.sleep(1.1)
    assert holds_get(event_id=EVENT, user_id=1).seat_ids == []
    second = hold(1, [2], hold_seconds=60)
    assert second.expires_at_ms > first.expires_at_ms + 50_000
    assert second.seat_ids == [2]


def test_an_expired_hold_turns_available_and_moves_the_version_without_anybodys_write(
    seats: list[int],
) -> None:
    admit_users(event_id=EVENT, user_ids=[1, 2])
    hold(1, [5], hold_seconds=1)
    held = pulse_read(event_id=EVENT).seat_version
    assert seat_statuses(event_id=EVENT)[5] == "held"
    time.sleep(1.1)
    # Nobody wrote; the next O(1) version check sweeps the lapsed hold.
    assert get_redis().hget(EventKeys(EVENT).seatmap, "5").startswith("h:")
    assert pulse_read(event_id=EVENT).seat_version == held + 1
    assert get_redis().hget(EventKeys(EVENT).seatmap, "5") == "a"
    assert seat_statuses(event_id=EVENT)[5] == "available"
    assert not holds_verify(event_id=EVENT, user_id=1, seat_ids=[5])
    assert hold(2, [5]).seat_ids == [5]  # and it can be taken again


def test_release_compares_the_token(seats: list[int]) -> None:
    admit_users(event_id=EVENT, user_ids=[1, 2])
    hold(1, [1, 2])
    holds_release(event_id=EVENT, user_id=2, seat_ids=[1, 2])  # not theirs
    assert holds_verify(event_id=EVENT, user_id=1, seat_ids=[1, 2])
    assert seat_statuses(event_id=EVENT)[1] == "held"
    holds_release(event_id=EVENT, user_id=1, seat_ids=[1])
    assert holds_get(event_id=EVENT, user_id=1).seat_ids == [2]
    assert seat_statuses(event_id=EVENT)[1] == "available"
    holds_release(event_id=EVENT, user_id=1)  # all of them
    assert holds_get(event_id=EVENT, user_id=1).seat_ids == []
    assert seat_statuses(event_id=EVENT)[2] == "available"


def test_release_of_an_expired_hold_retaken_by_someone_else_keeps_theirs(seats: list[int]) -> None:
    admit_users(event_id=EVENT, user_ids=[1, 2])
    hold(1, [1], hold_seconds=1)
    time.sleep(1.1)
    hold(2, [1])
    holds_release(event_id=EVENT, user_id=1)
    assert holds_verify(event_id=EVENT, user_id=2, seat_ids=[1])
    assert seat_statuses(event_id=EVENT)[1] == "held"


def test_verify_and_consume(seats: list[int]) -> None:
    admit_users(event_id=EVENT, user_ids=[1, 2])
    first = hold(1, [1, 2, 3])
    assert holds_verify(event_id=EVENT, user_id=1, seat_ids=[1, 2])
    assert not holds_verify(event_id=EVENT, user_id=2, seat_ids=[1])
    assert not holds_verify(event_id=EVENT, user_id=1, seat_ids=[1, 4])
    holds_consume(event_id=EVENT, user_id=1, seat_ids=[1, 2])
    seat_map = seat_statuses(event_id=EVENT)
    assert (seat_map[1], seat_map[2], seat_map[3]) == ("sold", "sold", "held")
    assert holds_get(event_id=EVENT, user_id=1) == Hold(seat_ids=[3], expires_at_ms=first.expires_at_ms)
    assert refused(2, [1]).code == "seat_unavailable"
    holds_consume(event_id=EVENT, user_id=1, seat_ids=[3])
    assert not get_redis().exists(EventKeys(EVENT).holds(1))  # fresh countdown next purchase


def test_the_reconciler_drops_holds_on_sold_seats(seats: list[int]) -> None:
    admit_users(event_id=EVENT, user_ids=[1])
    hold(1, [1, 2])
    holds_drop_for_seats(event_id=EVENT, seat_ids=[1])
    assert seat_statuses(event_id=EVENT)[1] == "sold"
    assert holds_get(event_id=EVENT, user_id=1).seat_ids == [2]
    assert hold(1, [3, 4, 5], cap=4).seat_ids == [2, 3, 4, 5]  # the dropped seat no longer counts


def test_many_users_racing_for_the_same_seats_never_share_one() -> None:
    users = list(range(1, 41))
    # Admit first: with the map loaded, admission would stop at the 9 free seats.
    admit_users(event_id=EVENT, user_ids=users)
    seatmap_load(event_id=EVENT, statuses={seat_id: "available" for seat_id in range(1, 10)})
    start = threading.Barrier(len(users))

    def try_hold(user_id: int) -> list[int]:
        wanted = [user_id % 9 + 1, (user_id + 1) % 9 + 1]
        start.wait(5)
        try:
            result = hold(user_id, wanted)
        except HoldError as error:
            assert error.code == "seat_unavailable"
            return []
        assert result.seat_ids == sorted(wanted)
        return wanted

    with ThreadPoolExecutor(len(users)) as pool:
        won = [seat for seats_won in pool.map(try_hold, users) for seat in seats_won]

    assert len(won) == len(set(won))  # no seat held twice
    assert won  # somebody won
    holders = get_redis().mget([EventKeys(EVENT).seat(seat_id) for seat_id in range(1, 10)])
    assert sorted(int(seat) for seat, holder in zip(range(1, 10), holders, strict=True) if holder) == sorted(
        won
    )


def test_negative_control_a_hold_checked_and_taken_in_separate_steps_double_books() -> None:
    """The hold without its script: each user checks the seat key is free, then sets it
    (no NX, separate round trips). Users who all checked before anyone set each believe
    they hold the seat. seats_hold.lua closes this gap by checking and taking at once."""
    redis = get_redis()
    seat_key = EventKeys(EVENT).seat(1)
    users = list(range(1, 9))
    all_checked = threading.Barrier(len(users))
    believers: list[int] = []

    def unguarded_hold(user_id: int) -> None:
        free = redis.get(seat_key) is None
        all_checked.wait(5)
        if free:
            redis.set(seat_key, str(user_id), px=60_000)
            believers.append(user_id)

    threads = [threading.Thread(target=unguarded_hold, args=(user_id,)) for user_id in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(believers) == len(users) > 1  # eight "successful" holds of one seat
