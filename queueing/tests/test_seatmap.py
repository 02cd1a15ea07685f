from __future__ import annotations

import pytest

from queueing.connection import get_redis
from queueing.holds import holds_verify, seats_hold
from queueing.keys import EventKeys
from queueing.seatmap import seatmap_load, seatmap_mark
from queueing.tests.helpers import admit_users, seat_statuses, seatmap_exists

EVENT = 1


def test_a_missing_map_reads_none_and_marks_write_nothing() -> None:
    assert seat_statuses(event_id=EVENT) is None
    assert not seatmap_exists(event_id=EVENT)
    seatmap_mark(event_id=EVENT, seat_ids=[1], status="sold")
    assert not seatmap_exists(event_id=EVENT)  # no partial map posing as a whole one


def test_load_replaces_the_whole_map() -> None:
    seatmap_load(event_id=EVENT, statuses={1: "available", 2: "sold", 3: "available"})
    seatmap_load(event_id=EVENT, statuses={1: "sold", 4: "available"})
    assert seatmap_exists(event_id=EVENT)
    assert seat_statuses(event_id=EVENT) == {1: "sold", 4: "available"}


def test_load_keeps_live_holds_unless_the_database_says_sold() -> None:
    seatmap_load(event_id=EVENT, statuses={1: "available", 2: "available", 3: "available"})
    admit_users(event_id=EVENT, user_ids=[7])
    seats_hold(event_id=EVENT, user_id=7, seat_ids=[1, 2], hold_seconds=60, cap=4)
    seatmap_load(event_id=EVENT, statuses={1: "available", 2: "sold", 3: "available"})
    assert seat_statuses(event_id=EVENT) == {1: "held", 2: "sold", 3: "available"}
    assert holds_verify(event_id=EVENT, user_id=7, seat_ids=[1])


def test_mark_sold_and_available_but_never_over_a_live_hold() -> None:
    seatmap_load(event_id=EVENT, statuses={1: "available", 2: "available", 3: "available"})
    seatmap_mark(event_id=EVENT, seat_ids=[1, 2], status="sold")
    assert seat_statuses(event_id=EVENT) == {1: "sold", 2: "sold", 3: "available"}
    seatmap_mark(event_id=EVENT, seat_ids=[2], status="available")
    admit_users(event_id=EVENT, user_ids=[7])
    seats_hold(event_id=EVENT, user_id=7, seat_ids=[3], hold_seconds=60, cap=4)
    seatmap_mark(event_id=EVENT, seat_ids=[3, 99], status="available")
    assert seat_statuses(event_id=EVENT) == {1: "sold", 2: "available", 3: "held"}
    assert not get_redis().hexists(EventKeys(EVENT).seatmap, "99")


def test_statuses_are_validated() -> None:
    with pytest.raises(ValueError):
        seatmap_load(event_id=EVENT, statuses={1: "held"})
    with pytest.raises(ValueError):
        seatmap_mark(event_id=EVENT, seat_ids=[1], status="held")


def test_a_large_map_loads_in_one_script() -> None:
    statuses = {seat_id: ("sold" if seat_id % 3 == 0 else "available") for seat_id in range(1, 20_001)}
    seatmap_load(event_id=EVENT, statuses=statuses)
    assert seat_statuses(event_id=EVENT) == statuses
