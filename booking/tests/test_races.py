"""Concurrency, one scenario at a time: real threads sending real HTTP requests to the
live server, a real database and Redis. (``test_race_rounds.py`` repeats the one-seat
races many times and prints the figures.)

Each test names the guard it proves, and its negative control switches off exactly that
guard through ``booking.guards`` (``booking/tests/racing.py``) and shows the double sale
(STYLE.md; pretix ``test_quota_race_condition_happens_if_we_disable_locks``):

- overlapping multi-seat holds are all or nothing: the guard is the hold script, whose
  control is ``queueing/tests/test_holds.py::test_negative_control_a_hold_checked_and_
  taken_in_separate_steps_double_books`` (the same hold in separate steps);
- overlapping multi-seat bookings on forged holds, and a hold expiring while its confirm
  is in flight: every confirm passes the hold check, so only the database fence (the
  conditional UPDATE) stands between the buyers; the controls turn just that off.

Databases: SQLite (the file test database of settings.py) and MariaDB/MySQL
(DATABASE_URL=mysql://...) run these as written; no 5xx is tolerated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from booking.models import Booking
from booking.tests.conftest import admit_users, seat_ids_of
from booking.tests.racing import (
    RACE_TEST_MARKS,
    REQUEST_TIMEOUT,
    Buyer,
    ConfirmGate,
    assert_no_server_errors,
    close_all,
    confirm_on_forged_holds,
    confirmed_tickets_per_seat,
    fence_off,
    in_threads,
    make_buyers,
    refusal_codes,
    statuses,
)
from events.models import Event
from queueing.connection import get_redis
from queueing.holds import holds_get, seats_hold
from queueing.keys import EventKeys

pytestmark = RACE_TEST_MARKS


@pytest.fixture
def big_event(event_factory: Callable[..., Event]) -> Event:
    # Admission never lets in more buyers than seats are left: 30 buyers need 30 seats.
    return event_factory(title="Rush", rows=6, seats_per_row=10, capacity=1000)


def overlapping_selections(event: Event) -> list[list[int]]:
    a, b, c, d, e = seat_ids_of(event, 5)
    return [[a, b, c], [c, b, a], [c, d], [d, c], [d, e, a], [a, e, d]]


# --- 1. Overlapping multi-seat holds in opposite order (the hold script) ---------------


def test_overlapping_holds_in_opposite_order_are_all_or_nothing(race_server: Any, big_event: Event) -> None:
    buyers = make_buyers(30, race_server.url)
    admit_users(big_event, *(buyer.user for buyer in buyers))
    selections = overlapping_selections(big_event)
    wanted = {buyer.user.pk: selections[index % len(selections)] for index, buyer in enumerate(buyers)}

    def hold_then_confirm(buyer: Buyer) -> tuple[requests.Response, requests.Response | None]:
        held = buyer.hold(big_event, wanted[buyer.user.pk])
        if held.status_code != 201:
            return held, None
        return held, buyer.confirm(big_event, wanted[buyer.user.pk])

    try:
        results = in_threads(buyers, hold_then_confirm)
    finally:
        close_all(buyers)

    holds = [held for held, _ in results]
    confirms = [confirmed for _, confirmed in results if confirmed is not None]
    assert_no_server_errors(holds + confirms)
    assert set(statuses(holds)) <= {201, 409}
    assert statuses(holds)[201] >= 1
    winners = [buyer for buyer, (held, _) in zip(buyers, results, strict=True) if held.status_code == 201]
    for buyer, (held, _) in zip(buyers, results, strict=True):
        # All or nothing: a winner held exactly its selection, a loser nothing.
        expected = sorted(wanted[buyer.user.pk]) if held.status_code == 201 else []
        assert sorted(held.json().get("seat_ids", [])) == expected or held.status_code == 409
        assert holds_get(event_id=big_event.pk, user_id=buyer.user.pk).seat_ids in ([], expected)
    won = [seat for buyer in winners for seat in wanted[buyer.user.pk]]
    assert len(won) == len(set(won)), "two winners share a seat"
    assert statuses(confirms) == {201: len(winners)}
    assert max(confirmed_tickets_per_seat(big_event).values()) == 1


# --- 2. Overlapping multi-seat bookings on forged holds (the fence alone) --------------

FORGERS = 12


def forged_overlapping_confirms(
    server_url: str, event: Event, gate: ConfirmGate
) -> list[tuple[Buyer, list[int], requests.Response]]:
    """Every buyer forges holds on its selection and confirms (racing.confirm_on_forged_holds):
    all pass the hold check, then all write at once. Returns (buyer, selection, response)."""
    buyers = make_buyers(FORGERS, server_url)
    admit_users(event, *(buyer.user for buyer in buyers))
    selections = overlapping_selections(event)
    wanted = [selections[index % len(selections)] for index in range(len(buyers))]
    try:
        responses = confirm_on_forged_holds(buyers, event, wanted, gate)
    finally:
        close_all(buyers)
    assert sorted(gate.passed) == sorted(buyer.user.pk for buyer in buyers), "a hold check refused"
    return list(zip(buyers, wanted, responses, strict=True))


def test_overlapping_confirms_on_forged_holds_the_fence_sells_each_seat_once_and_whole(
    race_server: Any, big_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = forged_overlapping_confirms(race_server.url, big_event, ConfirmGate(monkeypatch))

    responses = [response for _, _, response in results]
    assert_no_server_errors(responses)
    assert statuses(responses)[201] >= 1
    assert set(refusal_codes(responses)) <= {"seat_unavailable"}
    assert max(confirmed_tickets_per_seat(big_event).values()) == 1
    # All or nothing: a winner booked its whole selection, a loser nothing at all.
    for buyer, selection, response in results:
        booked = Booking.objects.filter(user=buyer.user).values_list("tickets__seat_id", flat=True)
        assert sorted(booked) == (sorted(selection) if response.status_code == 201 else [])


def test_control_overlapping_confirms_on_forged_holds_without_the_fence_double_sell(
    race_server: Any, big_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    fence_off(monkeypatch)
    results = forged_overlapping_confirms(race_server.url, big_event, ConfirmGate(monkeypatch))

    responses = [response for _, _, response in results]
    assert_no_server_errors(responses)
    assert statuses(responses) == {201: FORGERS}
    assert max(confirmed_tickets_per_seat(big_event).values()) >= 2


# --- 3. A hold that expires while its confirm is in flight (the fence alone) -----------


def expiring_hold_race(server_url: str, event: Event, gate: ConfirmGate) -> list[requests.Response]:
    """Buyer A holds a seat for 1 s and confirms; the confirm passes the hold check and
    stops there until the hold has expired in Redis, buyer B has held the freed seat
    through the API and B's confirm (which nothing stops) has answered. Then A writes.
    Returns [A's confirm, B's hold, B's confirm]."""
    first, second = make_buyers(2, server_url)
    admit_users(event, first.user, second.user)
    seat = seat_ids_of(event, 1)[0]
    seat_key = EventKeys(event.pk).seat(seat)
    seats_hold(event_id=event.pk, user_id=first.user.pk, seat_ids=[seat], hold_seconds=1, cap=4)
    stop = gate.stop([first.user.pk])
    first_confirm: list[requests.Response] = []
    confirming = threading.Thread(target=lambda: first_confirm.append(first.confirm(event, [seat])))
    try:
        confirming.start()
        stop.wait_checked()
        deadline = time.monotonic() + 5
        while get_redis().exists(seat_key) and time.monotonic() < deadline:
            time.sleep(0.02)
        second_hold = second.hold(event, [seat])
        second_confirm = second.confirm(event, [seat])
        stop.go.set()
        confirming.join(REQUEST_TIMEOUT)
    finally:
        stop.go.set()
        close_all([first, second])
    assert first_confirm, "the first confirm did not finish"
    assert gate.passed == [first.user.pk, second.user.pk]  # both passed the hold check
    return [first_confirm[0], second_hold, second_confirm]


def test_hold_expiring_mid_confirm_the_fence_keeps_one_booking(
    race_server: Any, big_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_confirm, second_hold, second_confirm = expiring_hold_race(
        race_server.url, big_event, ConfirmGate(monkeypatch)
    )

    assert_no_server_errors([first_confirm, second_hold, second_confirm])
    assert second_hold.status_code == 201  # the expired hold really freed the seat in Redis
    assert second_confirm.status_code == 201
    assert first_confirm.status_code == 409
    assert first_confirm.json()["code"] == "seat_unavailable"
    assert list(confirmed_tickets_per_seat(big_event).values()) == [1]


def test_control_hold_expiring_mid_confirm_without_the_fence_double_sells(
    race_server: Any, big_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    fence_off(monkeypatch)
    first_confirm, second_hold, second_confirm = expiring_hold_race(
        race_server.url, big_event, ConfirmGate(monkeypatch)
    )

    assert_no_server_errors([first_confirm, second_hold, second_confirm])
    assert (first_confirm.status_code, second_hold.status_code, second_confirm.status_code) == (201, 201, 201)
    assert list(confirmed_tickets_per_seat(big_event).values()) == [2]
