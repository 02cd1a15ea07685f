"""The rehearsal's waiting-list invariants (``bench/invariants.py``): "no seat offered
twice" and "waiting-list order kept", each on small cases built by hand, one that keeps
the rule and ones that break it in each way the row looks for. Plain rows: no database."""

from __future__ import annotations

from bench.invariants import (
    EntryRow,
    OfferRow,
    SaleRow,
    offers_exclusive,
    waiting_list_order,
)

T0 = 1_800_000_000.0  # seconds; every time below counts from here


def offer(
    pk: int,
    entry: int,
    seats: tuple[int, ...],
    created: float,
    closed: float | None,
    *,
    state: str = "accepted",
    together: bool = True,
    user: int | None = None,
) -> OfferRow:
    return OfferRow(
        id=pk,
        entry_id=entry,
        user_id=user if user is not None else 100 + entry,
        seat_ids=seats,
        together=together,
        state=state if closed is not None else "out",
        created_at=T0 + created,
        closed_at=T0 + closed if closed is not None else None,
    )


def entry(
    pk: int, joined: float, party: int = 1, *, state: str = "accepted", passed_over: bool = False
) -> EntryRow:
    return EntryRow(
        id=pk,
        user_id=100 + pk,
        party_size=party,
        state=state,
        joined_at=T0 + joined,
        passed_over=passed_over,
        together_only=False,
        updated_at=T0 + 500,
    )


def sale(seat: int, user: int, confirmed: float, cancelled: float | None = None) -> SaleRow:
    return SaleRow(
        seat_id=seat,
        user_id=user,
        code=f"B{seat}{user}",
        confirmed_at=T0 + confirmed,
        cancelled_at=T0 + cancelled if cancelled is not None else None,
    )


# --- No seat offered twice --------------------------------------------------------------


def test_a_seat_offered_again_after_the_first_offer_ended_passes() -> None:
    offers = [
        offer(1, entry=1, seats=(7, 8), created=10, closed=40, state="declined"),
        offer(2, entry=2, seats=(7, 8), created=41, closed=50),
    ]
    # Sold to the first holder until it cancelled, then to the buyer who accepted.
    sales = [sale(7, user=999, confirmed=0, cancelled=9.5), sale(7, user=102, confirmed=52)]
    result = offers_exclusive(offers, sales)
    assert result.ok, result
    assert result.seats == 2


def test_two_offers_of_one_seat_at_once_are_caught() -> None:
    offers = [
        offer(1, entry=1, seats=(7,), created=10, closed=40, state="declined"),
        offer(2, entry=2, seats=(7, 9), created=20, closed=None),
    ]
    result = offers_exclusive(offers, [])
    assert not result.ok
    assert result.overlapping == [(7, 1, 2, 20.0)]


def test_two_offers_still_out_for_one_seat_are_caught() -> None:
    offers = [
        offer(1, entry=1, seats=(7,), created=10, closed=None),
        offer(2, entry=2, seats=(7,), created=30, closed=None),
    ]
    result = offers_exclusive(offers, [])
    assert result.both_out == [(7, 1, 2)]


def test_a_seat_sold_to_someone_else_while_on_offer_is_caught() -> None:
    offers = [offer(1, entry=1, seats=(7,), created=10, closed=70, state="expired")]
    result = offers_exclusive(offers, [sale(7, user=555, confirmed=30)])
    assert not result.ok
    assert [(seat, pk, code) for seat, pk, code, _s in result.sold_during] == [(7, 1, "B7555")]


def test_a_seat_offered_while_still_sold_is_caught() -> None:
    offers = [offer(1, entry=1, seats=(7,), created=10, closed=70, state="expired")]
    result = offers_exclusive(offers, [sale(7, user=555, confirmed=0, cancelled=30)])
    assert not result.ok


def test_an_overlap_within_the_tick_tolerance_is_counted_not_failed() -> None:
    """Stamps precede their commits: a cancellation stamped inside a transaction that
    waited on a lock may read 0.3 s after the offer of its seat."""
    offers = [offer(1, entry=1, seats=(7,), created=10, closed=20)]
    result = offers_exclusive(offers, [sale(7, user=555, confirmed=0, cancelled=10.3)], tolerance=1.0)
    assert result.ok
    assert result.within_tolerance == 1


# --- Waiting-list order kept --------------------------------------------------------------


def test_offers_in_line_order_pass() -> None:
    entries = [entry(1, joined=0), entry(2, joined=1), entry(3, joined=2, state="waiting")]
    offers = [
        offer(10, entry=1, seats=(7,), created=10, closed=12),
        offer(11, entry=2, seats=(8,), created=20, closed=25),
    ]
    result = waiting_list_order(entries, offers)
    assert result.ok, result
    assert result.skips == 0
    assert result.offers_checked == 2


def test_serving_past_a_waiting_entry_not_passed_over_is_caught() -> None:
    entries = [entry(1, joined=0, party=2, state="waiting"), entry(2, joined=1)]
    result = waiting_list_order(entries, [offer(10, entry=2, seats=(8,), created=20, closed=25)])
    assert not result.ok
    assert result.not_passed_over == [(10, 1)]


def test_a_party_passed_over_for_a_seat_too_few_passes() -> None:
    """Rule 3: the window is over and one seat can't seat a party of 2: it is passed."""
    entries = [entry(1, joined=0, party=2, state="waiting", passed_over=True), entry(2, joined=1)]
    result = waiting_list_order(entries, [offer(10, entry=2, seats=(8,), created=20, closed=25)])
    assert result.ok, result
    assert result.skips == 1


def test_a_party_passed_over_although_the_seats_fit_it_is_caught() -> None:
    entries = [entry(1, joined=0, party=2, state="waiting", passed_over=True), entry(2, joined=1, party=2)]
    result = waiting_list_order(entries, [offer(10, entry=2, seats=(8, 9), created=20, closed=25)])
    assert result.passed_though_fit == [(10, 1)]


def test_a_party_passed_over_in_two_rounds_is_caught() -> None:
    entries = [
        entry(1, joined=0, party=2, state="waiting", passed_over=True),
        entry(2, joined=1),
        entry(3, joined=2),
    ]
    offers = [
        offer(10, entry=2, seats=(8,), created=20, closed=25),
        offer(11, entry=3, seats=(9,), created=60, closed=65),
    ]
    result = waiting_list_order(entries, offers)
    assert [pk for pk, _gap in result.passed_twice] == [1]


def test_an_earlier_entry_served_by_a_concurrent_tick_first_is_not_a_skip() -> None:
    """Its offer carries a later stamp but a smaller id: it committed first."""
    entries = [entry(1, joined=0), entry(2, joined=1)]
    offers = [
        offer(10, entry=1, seats=(7,), created=20.4, closed=30),
        offer(11, entry=2, seats=(8,), created=20.0, closed=30),
    ]
    assert waiting_list_order(entries, offers).ok


def test_an_entry_that_joined_while_the_tick_ran_is_not_a_skip() -> None:
    """Entry 1's join is stamped before entry 2's but committed after the tick read the
    line (stamps precede commits): within the tolerance it is not counted as waiting."""
    entries = [entry(1, joined=19.6, state="waiting"), entry(2, joined=19.7)]
    offers = [offer(10, entry=2, seats=(8,), created=20.0, closed=25)]
    assert waiting_list_order(entries, offers, tolerance=1.0).ok
    assert not waiting_list_order(entries, offers, tolerance=0.1).ok


def test_an_entry_that_joined_again_after_an_offer_is_left_out() -> None:
    """Joining again resets joined_at: the entry's earlier spells are unknown."""
    entries = [entry(1, joined=100, state="waiting"), entry(2, joined=110)]
    offers = [offer(10, entry=1, seats=(7,), created=20, closed=30, state="declined")]
    result = waiting_list_order(entries, offers)
    assert result.unreconstructable == 1
    assert result.offers_checked == 0
