"""The waiting list's rule (booking.waiting_list_rule) as a pure function: seats together,
seats apart, the gathering window, passing a party over once and never again; and a
hypothesis model: whatever the pool and the line, no seat is offered twice, an entry gets
one offer, and nobody is served past an entry unless the rule allows it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from booking.waiting_list_rule import PoolSeat, Waiter, allocate, seats_apart, seats_together

NOW = 1_000_000
WINDOW = 30_000


def seat(seat_id: int, row: str, number: int, back_ms_ago: int = 0, section: str = "A") -> PoolSeat:
    return PoolSeat(id=seat_id, section=section, row=row, number=number, returned_ms=NOW - back_ms_ago)


def test_seats_together_takes_the_first_run_of_one_row() -> None:
    pool = [seat(1, "1", 1), seat(2, "1", 3), seat(3, "2", 2), seat(4, "2", 3), seat(5, "2", 4)]
    assert [s.id for s in seats_together(pool, 2)] == [3, 4]
    assert [s.id for s in seats_together(pool, 3)] == [3, 4, 5]
    assert seats_together(pool, 4) is None
    assert [s.id for s in seats_together(pool, 1)] == [1]


def test_seats_in_different_sections_or_rows_are_not_together() -> None:
    pool = [seat(1, "1", 1), seat(2, "1", 2, section="B"), seat(3, "2", 2)]
    assert seats_together(pool, 2) is None
    assert [s.id for s in seats_apart(pool, 2)] == [1, 3]


def test_seats_apart_prefers_the_fullest_row() -> None:
    pool = [seat(1, "1", 1), seat(2, "2", 1), seat(3, "2", 5), seat(4, "2", 9)]
    assert [s.id for s in seats_apart(pool, 3)] == [2, 3, 4]
    assert seats_apart(pool, 5) is None


def test_the_first_entry_that_fits_together_is_served_at_once() -> None:
    decision = allocate(
        pool=[seat(1, "1", 1), seat(2, "1", 2)],
        waiters=[Waiter(10, 2), Waiter(11, 1)],
        now_ms=NOW,
        gather_ms=WINDOW,
    )
    assert [(o.entry_id, o.seat_ids, o.together) for o in decision.offers] == [(10, [1, 2], True)]


def test_within_the_window_nobody_is_served_past_a_party_that_does_not_fit() -> None:
    decision = allocate(
        pool=[seat(1, "1", 1, back_ms_ago=WINDOW - 1)],
        waiters=[Waiter(10, 2), Waiter(11, 1)],
        now_ms=NOW,
        gather_ms=WINDOW,
    )
    assert decision.offers == [] and decision.passed_over == []


def test_after_the_window_the_party_is_passed_over_once() -> None:
    decision = allocate(
        pool=[seat(1, "1", 1, back_ms_ago=WINDOW)],
        waiters=[Waiter(10, 2), Waiter(11, 1)],
        now_ms=NOW,
        gather_ms=WINDOW,
    )
    assert decision.passed_over == [10]
    assert [(o.entry_id, o.seat_ids) for o in decision.offers] == [(11, [1])]


def test_a_party_passed_over_once_is_never_passed_again() -> None:
    decision = allocate(
        pool=[seat(1, "1", 1, back_ms_ago=10 * WINDOW)],
        waiters=[Waiter(10, 2, passed_over=True), Waiter(11, 1)],
        now_ms=NOW,
        gather_ms=WINDOW,
    )
    assert decision.offers == [] and decision.passed_over == []


def test_after_the_window_a_party_gets_seats_apart_unless_it_waits_for_seats_together() -> None:
    pool = [seat(1, "1", 1, back_ms_ago=WINDOW), seat(2, "2", 7, back_ms_ago=WINDOW)]
    apart = allocate(pool=pool, waiters=[Waiter(10, 2)], now_ms=NOW, gather_ms=WINDOW)
    assert [(o.entry_id, o.together) for o in apart.offers] == [(10, False)]
    together_only = allocate(
        pool=pool, waiters=[Waiter(10, 2, together_only=True)], now_ms=NOW, gather_ms=WINDOW
    )
    assert together_only.offers == [] and together_only.passed_over == []
    behind = allocate(
        pool=pool, waiters=[Waiter(10, 2, together_only=True), Waiter(11, 1)], now_ms=NOW, gather_ms=WINDOW
    )
    assert behind.passed_over == [10] and [o.entry_id for o in behind.offers] == [11]


def test_a_pass_that_serves_nobody_is_not_used_up() -> None:
    decision = allocate(
        pool=[seat(1, "1", 1, back_ms_ago=WINDOW)], waiters=[Waiter(10, 3)], now_ms=NOW, gather_ms=WINDOW
    )
    assert decision.offers == [] and decision.passed_over == []


def test_within_the_window_seats_apart_are_not_offered() -> None:
    pool = [seat(1, "1", 1), seat(2, "2", 7)]
    decision = allocate(pool=pool, waiters=[Waiter(10, 2), Waiter(11, 1)], now_ms=NOW, gather_ms=WINDOW)
    assert decision.offers == []


pools = st.lists(
    st.tuples(st.sampled_from("12"), st.integers(1, 8), st.integers(0, 2 * WINDOW)),
    max_size=12,
    unique_by=lambda t: t[:2],
)
lines = st.lists(st.tuples(st.integers(1, 4), st.booleans(), st.booleans()), max_size=8)


@given(pools, lines)
def test_model_no_seat_twice_one_offer_per_entry_order_kept(raw_pool: list, raw_line: list) -> None:
    pool = [seat(index + 1, row, number, back) for index, (row, number, back) in enumerate(raw_pool)]
    waiters = [
        Waiter(100 + index, size, passed, together) for index, (size, passed, together) in enumerate(raw_line)
    ]
    decision = allocate(pool=pool, waiters=waiters, now_ms=NOW, gather_ms=WINDOW)

    offered = [seat_id for offer in decision.offers for seat_id in offer.seat_ids]
    assert len(offered) == len(set(offered))
    assert set(offered) <= {s.id for s in pool}
    entries = [offer.entry_id for offer in decision.offers]
    assert len(entries) == len(set(entries))
    by_id = {waiter.entry_id: waiter for waiter in waiters}
    for offer in decision.offers:
        assert len(offer.seat_ids) == by_id[offer.entry_id].party_size
        if by_id[offer.entry_id].together_only:
            assert offer.together
    # Everyone ahead of a served entry was served too, or passed over now for the first time.
    served = set(entries)
    for offer in decision.offers:
        for waiter in waiters:
            if waiter.entry_id == offer.entry_id:
                break
            assert waiter.entry_id in served or waiter.entry_id in decision.passed_over
            assert not (waiter.passed_over and waiter.entry_id not in served)
