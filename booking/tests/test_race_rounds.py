"""The one-seat race, many times over, once per guard: each test proves one guard (or the
production pair) with "0 double bookings in N attempts", and the negative controls switch
off exactly the guard a test names and show the double sale. The figures are printed on
lines starting with ``RACE-FIGURE`` (shown with ``-s``).

Each round is a fresh event and fresh buyers on the live server (real threads, real HTTP,
``booking/tests/racing.py``), and every confirm of a round waits after its hold check
until all of them got there, so they all reach the database at the same instant.

(a) Holds intact: every buyer asks to hold the one seat (one gets it), then asks to book
    it whether or not the hold was granted (a loser trying to skip the hold).
    - both guards on (production): 1 booking;
    - the Redis hold check alone (fence off): 1 booking, the losers refused with
      ``hold_missing`` before the database is asked;
    - the database fence alone (hold check off): 1 booking, the losers refused with
      ``seat_unavailable`` by the conditional UPDATE;
    - control, both off: the seat is sold to every buyer. It differs from each of the two
      single-guard tests in exactly the guard that test keeps.
(b) Holds forged: each buyer in turn writes its own token into the seat key (as a Redis
    that lost or duplicated data would) and confirms, so every hold check passes and only
    the conditional UPDATE stands between the buyers.
    - fence on: 1 booking;
    - control, fence off (nothing else changed): the seat is sold to every buyer.

Scale with the environment (defaults keep CI short):

    RACE_ROUNDS=200 RACE_BUYERS=50 .venv/bin/pytest booking/tests/test_race_rounds.py -q -s

``RACE_CONTROL_ROUNDS`` sets the controls' rounds (default: a quarter of RACE_ROUNDS).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from booking.tests.conftest import admit_users, seat_ids_of
from booking.tests.racing import (
    RACE_TEST_MARKS,
    Buyer,
    ConfirmGate,
    assert_no_server_errors,
    close_all,
    confirm_on_forged_holds,
    confirmed_tickets_per_seat,
    fence_off,
    hold_check_off,
    in_threads,
    make_buyers,
    refusal_codes,
    statuses,
)
from events.models import Event, Seat, SeatStatus

pytestmark = RACE_TEST_MARKS

ROUNDS = int(os.environ.get("RACE_ROUNDS", "10"))
BUYERS = int(os.environ.get("RACE_BUYERS", "20"))
CONTROL_ROUNDS = int(os.environ.get("RACE_CONTROL_ROUNDS", max(1, ROUNDS // 4)))


@dataclass
class RoundResult:
    holds_granted: int  # through the API; 0 where the holds were forged
    checks_passed: int  # confirms that passed the Redis hold check (or found it switched off)
    bookings_created: int
    tickets_for_the_seat: int
    refusals: Counter[str]  # the losers' error codes


def round_event(event_factory: Callable[..., Event], number: int) -> tuple[Event, int]:
    # Admission never lets in more buyers than seats are left: one seat per buyer, and
    # the race is for the first one.
    event = event_factory(title=f"Round {number}", rows=1, seats_per_row=BUYERS, capacity=BUYERS)
    return event, seat_ids_of(event, 1)[0]


def holds_intact_round(server_url: str, event: Event, seat: int, gate: ConfirmGate) -> RoundResult:
    buyers = make_buyers(BUYERS, server_url)
    admit_users(event, *(buyer.user for buyer in buyers))
    gate.meet([buyer.user.pk for buyer in buyers])
    passed_before = len(gate.passed)

    def hold_then_book_anyway(buyer: Buyer) -> tuple[requests.Response, requests.Response]:
        return buyer.hold(event, [seat]), buyer.confirm(event, [seat])

    try:
        results = in_threads(buyers, hold_then_book_anyway)
    finally:
        close_all(buyers)
    holds = [held for held, _ in results]
    books = [booked for _, booked in results]
    assert_no_server_errors(holds + books)
    assert set(statuses(holds)) <= {201, 409}
    assert set(statuses(books)) <= {201, 409}
    return RoundResult(
        holds_granted=statuses(holds)[201],
        checks_passed=len(gate.passed) - passed_before,
        bookings_created=statuses(books)[201],
        tickets_for_the_seat=confirmed_tickets_per_seat(event)[seat],
        refusals=refusal_codes(books),
    )


def forged_holds_round(server_url: str, event: Event, seat: int, gate: ConfirmGate) -> RoundResult:
    buyers = make_buyers(BUYERS, server_url)
    admit_users(event, *(buyer.user for buyer in buyers))
    passed_before = len(gate.passed)
    try:
        books = confirm_on_forged_holds(buyers, event, [[seat]] * len(buyers), gate)
    finally:
        close_all(buyers)
    assert_no_server_errors(books)
    return RoundResult(
        holds_granted=0,
        checks_passed=len(gate.passed) - passed_before,
        bookings_created=statuses(books)[201],
        tickets_for_the_seat=confirmed_tickets_per_seat(event)[seat],
        refusals=refusal_codes(books),
    )


Play = Callable[[str, Event, int, ConfirmGate], RoundResult]


@pytest.fixture
def play_rounds(
    race_server: Any, event_factory: Callable[..., Event], monkeypatch: pytest.MonkeyPatch
) -> Callable[[Play, int], tuple[list[RoundResult], float]]:
    """Plays ``rounds`` rounds, each on a fresh event; returns the results and the seconds
    taken. The gate is built at the call, after the test switched its guard off."""

    def play_all(play: Play, rounds: int) -> tuple[list[RoundResult], float]:
        gate = ConfirmGate(monkeypatch)
        started = time.monotonic()
        results = []
        for number in range(rounds):
            event, seat = round_event(event_factory, number)
            results.append(play(race_server.url, event, seat, gate))
        return results, time.monotonic() - started

    return play_all


def report_no_doubles(label: str, results: list[RoundResult], seconds: float) -> int:
    double_bookings = sum(max(0, result.tickets_for_the_seat - 1) for result in results)
    refusals = sum((result.refusals for result in results), Counter())
    print(
        f"\nRACE-FIGURE {label}: {double_bookings} double bookings in {len(results) * BUYERS} booking "
        f"attempts ({len(results)} rounds x {BUYERS} buyers, one seat per round); "
        f"hold checks passed: {sum(result.checks_passed for result in results)}; "
        f"losers refused: {dict(refusals)}; {seconds:.1f} s"
    )
    return double_bookings


def report_doubles(label: str, results: list[RoundResult], seconds: float) -> int:
    double_sold = [result for result in results if result.tickets_for_the_seat >= 2]
    extra_tickets = sum(result.tickets_for_the_seat - 1 for result in double_sold)
    print(
        f"\nRACE-FIGURE {label}: {len(double_sold)} of {len(results)} rounds sold the seat more than "
        f"once, {extra_tickets} extra tickets in {len(results) * BUYERS} attempts "
        f"({BUYERS} buyers per round); {seconds:.1f} s"
    )
    return len(double_sold)


def assert_one_booking_per_round(results: list[RoundResult], *, refusal: str, checks_passed: int) -> None:
    for number, result in enumerate(results):
        assert (result.bookings_created, result.tickets_for_the_seat) == (1, 1), (number, result)
        assert result.refusals == Counter({refusal: BUYERS - 1}), (number, result)
        assert result.checks_passed == checks_passed, (number, result)


# --- (a) Holds intact --------------------------------------------------------------------


def keep_both_guards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production: nothing switched off."""


@pytest.mark.parametrize(
    ("switch_off", "label", "refusal", "checks_passed"),
    [
        (keep_both_guards, "both guards on (production)", "hold_missing", 1),
        (fence_off, "the Redis hold check alone (fence off)", "hold_missing", 1),
        (hold_check_off, "the database fence alone (hold check off)", "seat_unavailable", BUYERS),
    ],
    ids=["both_guards", "hold_check_alone", "fence_alone"],
)
def test_rounds_holds_intact_never_double_book(
    play_rounds: Any,
    monkeypatch: pytest.MonkeyPatch,
    switch_off: Callable[[pytest.MonkeyPatch], None],
    label: str,
    refusal: str,
    checks_passed: int,
) -> None:
    switch_off(monkeypatch)
    results, seconds = play_rounds(holds_intact_round, ROUNDS)
    doubles = report_no_doubles(f"holds intact, {label}", results, seconds)
    assert all(result.holds_granted == 1 for result in results), results
    assert_one_booking_per_round(results, refusal=refusal, checks_passed=checks_passed)
    assert Seat.objects.filter(event__title__startswith="Round", status=SeatStatus.SOLD).count() == ROUNDS
    assert doubles == 0


def test_control_rounds_holds_intact_both_guards_off_double_sell(
    play_rounds: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold_check_off(monkeypatch)
    fence_off(monkeypatch)
    results, seconds = play_rounds(holds_intact_round, CONTROL_ROUNDS)
    double_sold = report_doubles("control, holds intact, hold check and fence off", results, seconds)
    assert all(result.holds_granted == 1 for result in results), results
    # Without either guard the race must show, or the single-guard figures prove nothing.
    assert double_sold == CONTROL_ROUNDS, results


# --- (b) Holds forged: only the conditional UPDATE stands --------------------------------


def test_rounds_forged_holds_the_fence_alone_never_double_books(play_rounds: Any) -> None:
    results, seconds = play_rounds(forged_holds_round, ROUNDS)
    doubles = report_no_doubles("holds forged, every hold check passed, the fence on", results, seconds)
    assert_one_booking_per_round(results, refusal="seat_unavailable", checks_passed=BUYERS)
    assert doubles == 0


def test_control_rounds_forged_holds_without_the_fence_double_sell(
    play_rounds: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fence_off(monkeypatch)
    results, seconds = play_rounds(forged_holds_round, CONTROL_ROUNDS)
    double_sold = report_doubles("control, holds forged, the fence off", results, seconds)
    assert all(result.checks_passed == BUYERS for result in results), results
    assert double_sold == CONTROL_ROUNDS, results
