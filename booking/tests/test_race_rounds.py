"""The one-seat race, many times over: the figure "0 double bookings in N attempts" and,
beside it, the negative control's figure (the same race with the database guard off).

Each round is a fresh event and fresh buyers on the live server (real threads, real
HTTP, helpers of ``test_races``): every buyer asks to hold the one seat, then asks to
book it whether or not the hold was granted (a loser trying to skip the hold). In the
control rounds ``BOOKING_DB_GUARD = False`` and everyone books straight away.

Scale with the environment (defaults keep CI short; the README figure used 200 x 50):

    RACE_ROUNDS=200 RACE_BUYERS=50 .venv/bin/pytest booking/tests/test_race_rounds.py -q -s

``RACE_CONTROL_ROUNDS`` sets the control's rounds (default: a third of RACE_ROUNDS).
The figures are printed as lines starting with ``RACE-FIGURE`` (shown with ``-s``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from booking.models import Booking
from booking.tests.conftest import admit_users, seat_ids_of
from booking.tests.test_races import (
    RACE_DELAY_SECONDS,
    Buyer,
    assert_no_server_errors,
    confirmed_tickets_per_seat,
    make_buyers,
    race,
    race_server,  # noqa: F401  (fixture)
    statuses,
)
from events.models import Event, Seat, SeatStatus

# Eager Celery: the ticket mails of the winners are rendered in-process, not queued on
# the machine's broker.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("eager_celery"),
]

ROUNDS = int(os.environ.get("RACE_ROUNDS", "30"))
BUYERS = int(os.environ.get("RACE_BUYERS", "20"))
CONTROL_ROUNDS = int(os.environ.get("RACE_CONTROL_ROUNDS", max(1, ROUNDS // 3)))


@dataclass
class RoundResult:
    holds_granted: int
    bookings_created: int
    tickets_for_the_seat: int


def round_event(event_factory: Callable[..., Event], number: int) -> tuple[Event, int]:
    # Admission never lets in more buyers than seats are left: one seat per buyer, and
    # the race is for the first one.
    event = event_factory(title=f"Round {number}", rows=1, seats_per_row=BUYERS, capacity=BUYERS)
    return event, seat_ids_of(event, 1)[0]


def close_all(buyers: list[Buyer]) -> None:
    # The live server keeps a thread per keep-alive connection: hang up after each round.
    for buyer in buyers:
        buyer.session.close()


def guarded_round(server_url: str, event: Event, seat: int) -> RoundResult:
    buyers = make_buyers(BUYERS, server_url)
    admit_users(event, *(buyer.user for buyer in buyers))

    def hold_then_book_anyway(buyer: Buyer) -> tuple[requests.Response, requests.Response]:
        held = buyer.post(f"/api/events/{event.pk}/holds/", {"seat_ids": [seat]})
        return held, buyer.post("/api/bookings/", {"event_id": event.pk, "seat_ids": [seat]})

    try:
        results = race(buyers, hold_then_book_anyway)
    finally:
        close_all(buyers)
    holds = [held for held, _ in results]
    books = [booked for _, booked in results]
    assert_no_server_errors(holds + books)
    assert set(statuses(holds)) <= {201, 409}
    assert set(statuses(books)) <= {201, 409}
    assert {r.json()["code"] for r in books if r.status_code == 409} <= {"hold_missing", "seat_unavailable"}
    return RoundResult(
        holds_granted=statuses(holds)[201],
        bookings_created=statuses(books)[201],
        tickets_for_the_seat=confirmed_tickets_per_seat(event)[seat],
    )


def unguarded_round(server_url: str, event: Event, seat: int) -> RoundResult:
    buyers = make_buyers(BUYERS, server_url)
    try:
        results = race(
            buyers, lambda buyer: buyer.post("/api/bookings/", {"event_id": event.pk, "seat_ids": [seat]})
        )
    finally:
        close_all(buyers)
    assert_no_server_errors(results)
    return RoundResult(
        holds_granted=0,
        bookings_created=statuses(results)[201],
        tickets_for_the_seat=confirmed_tickets_per_seat(event)[seat],
    )


def test_one_seat_race_rounds_never_double_book(race_server, event_factory, settings):  # noqa: F811
    settings.BOOKING_RACE_DELAY_SECONDS = RACE_DELAY_SECONDS
    started = time.monotonic()
    results = []
    for number in range(ROUNDS):
        event, seat = round_event(event_factory, number)
        result = guarded_round(race_server.url, event, seat)
        results.append(result)
        # Per round: one hold, one booking, one ticket, the seat sold.
        assert (result.holds_granted, result.bookings_created, result.tickets_for_the_seat) == (1, 1, 1), (
            number,
            result,
        )
        assert Booking.objects.filter(event=event).count() == 1
        assert Seat.objects.get(pk=seat).status == SeatStatus.SOLD
    attempts = ROUNDS * BUYERS
    double_bookings = sum(max(0, result.tickets_for_the_seat - 1) for result in results)
    print(
        f"\nRACE-FIGURE guarded: {double_bookings} double bookings in {attempts} booking attempts "
        f"({ROUNDS} rounds x {BUYERS} buyers, one seat per round) in {time.monotonic() - started:.1f} s"
    )
    assert double_bookings == 0


def test_control_one_seat_race_rounds_without_the_guard_double_sell(
    race_server,  # noqa: F811
    event_factory,
    settings,
):
    settings.BOOKING_DB_GUARD = False
    settings.BOOKING_RACE_DELAY_SECONDS = RACE_DELAY_SECONDS
    started = time.monotonic()
    results = []
    for number in range(CONTROL_ROUNDS):
        event, seat = round_event(event_factory, number)
        results.append(unguarded_round(race_server.url, event, seat))
    double_sold = [result for result in results if result.tickets_for_the_seat >= 2]
    extra_tickets = sum(result.tickets_for_the_seat - 1 for result in double_sold)
    print(
        f"\nRACE-FIGURE control (BOOKING_DB_GUARD=False): {len(double_sold)} of {CONTROL_ROUNDS} rounds "
        f"double-sold the seat, {extra_tickets} extra tickets in {CONTROL_ROUNDS * BUYERS} attempts "
        f"({BUYERS} buyers per round) in {time.monotonic() - started:.1f} s"
    )
    # Without the guard the race must show, or the guarded figure proves nothing.
    assert double_sold, results
