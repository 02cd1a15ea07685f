"""Races on the waiting list: a seat is never offered to two people, nor while sold, and an
accepted offer never sells a seat twice, however ticks, accepts, declines and
cancellations interleave. The guard is ``booking.guards.seats_offer`` (the conditional
``UPDATE ... SET status = 'offered' WHERE status = 'available'``); each negative control
replaces exactly that one with an unconditional UPDATE and shows the double offer. The
second guard, the offer's check that Redis still gives the seats to the list (an accepted
offer's seats are ``available`` in the database while the buyer holds them), has its own
test and control (``keys_not_checked``).

Timing only: ``PoolTakeGate`` holds a tick after its offer committed and before it takes
the seats out of the Redis pool (``queueing.waitlist.waitlist_pool_take``), the window in
which a second tick still sees them there, and the crowd's buyers read an offer for
0.3-0.6 s before answering it, as people do. Neither changes an outcome, only when it
happens; both widen the windows so the negative control shows the race on every run.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest
import requests
from django.db import connection
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from booking import guards
from booking.models import (
    BookingStatus,
    Ticket,
    WaitingListEntry,
    WaitingListOffer,
    WaitingListOfferState,
    WaitingListState,
)
from booking.services import booking_cancel, booking_confirm
from booking.tests.conftest import sell_out
from booking.tests.racing import REQUEST_TIMEOUT
from booking.waiting_list import offer_accept, seats_on_offer, waiting_list_join, waiting_list_tick
from events.models import Event, Seat, SeatStatus
from queueing import waitlist as waitlist_store
from queueing.connection import get_redis
from queueing.keys import EventKeys
from ticketing.errors import DomainError

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("eager_celery"),
]


def seats_offer_unconditionally(*, event_id: int, seat_ids: list[int]) -> int:
    """The negative control: the guard without its ``WHERE status = 'available'``."""
    return Seat.objects.filter(event_id=event_id, pk__in=seat_ids).update(status=SeatStatus.OFFERED)


def guard_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guards, "seats_offer", seats_offer_unconditionally)


def seats_offered_twice() -> dict[int, int]:
    """Seat id -> how many offers held it at one moment (only seats with more than one)."""
    now = timezone.now()
    spans: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for offer in WaitingListOffer.objects.all():
        end = offer.closed_at or (now if offer.state == WaitingListOfferState.OUT else offer.expires_at)
        for seat_id in offer.seat_ids:
            spans[seat_id].append((offer.created_at, end))
    twice = {}
    for seat_id, intervals in spans.items():
        intervals.sort()
        overlaps = sum(1 for (_, end), (start, _) in pairwise(intervals) if start < end)
        if overlaps:
            twice[seat_id] = overlaps + 1
    return twice


def seats_sold_twice(event: Event) -> list[int]:
    owners: dict[int, int] = defaultdict(int)
    for seat_id in Ticket.objects.filter(
        booking__event=event, booking__status=BookingStatus.CONFIRMED
    ).values_list("seat_id", flat=True):
        owners[seat_id] += 1
    return [seat_id for seat_id, count in owners.items() if count > 1]


def offered_while_sold(event: Event) -> list[int]:
    out = seats_on_offer(event.pk)
    return list(Seat.objects.filter(pk__in=out, status=SeatStatus.SOLD).values_list("pk", flat=True))


class PoolTakeGate:
    """Stops the pool take of the ticks run in chosen threads (or delays every one) until
    the test lets them go."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, delay: float = 0.0) -> None:
        self._take = waitlist_store.waitlist_pool_take
        self.delay = delay
        self.held_threads: set[int] = set()
        self.committed = threading.Event()
        self.go = threading.Event()
        monkeypatch.setattr(waitlist_store, "waitlist_pool_take", self._wait_then_take)

    def _wait_then_take(self, **kwargs: Any) -> None:
        if threading.get_ident() in self.held_threads:
            self.committed.set()
            self.go.wait(timeout=30)
        elif self.delay:
            time.sleep(self.delay)
        self._take(**kwargs)


def in_thread(work: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _one_seat_back_two_waiting(event_factory: Any, user_factory: Any) -> tuple[Event, int]:
    """A sold-out event, two single buyers waiting, one seat back on the map but not yet in
    the list's pool (it came back while the list was paused; the pause is lifted without
    a tick). Returns (event, that seat)."""
    event = event_factory(rows=1, seats_per_row=4)
    Event.objects.filter(pk=event.pk).update(waiting_list_gather_seconds=0)
    bookings = sell_out(event, user_factory, per_buyer=1)
    for name in ("First", "Second"):
        waiting_list_join(event_id=event.pk, user_id=user_factory(name=name).pk, party_size=1, language="en")
    Event.objects.filter(pk=event.pk).update(waiting_list_paused=True)
    waiting_list_tick(event.pk)
    booking_cancel(booking=bookings[0], by_user=bookings[0].user)
    Event.objects.filter(pk=event.pk).update(waiting_list_paused=False)
    return event, bookings[0].tickets.get().seat_id


def _two_ticks_meet(event: Event, gate: PoolTakeGate) -> None:
    """Tick 1 offers the seat and stops before taking it out of the pool; tick 2 runs
    whole meanwhile, sees the seat still pooled and the first entry no longer waiting."""

    def first_tick() -> None:
        gate.held_threads.add(threading.get_ident())
        waiting_list_tick(event.pk)

    first = in_thread(first_tick)
    assert gate.committed.wait(timeout=30)
    waiting_list_tick(event.pk)
    gate.go.set()
    first.join(timeout=30)


def test_two_ticks_meeting_offer_a_seat_once(
    event_factory: Any, user_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event, seat_id = _one_seat_back_two_waiting(event_factory, user_factory)
    _two_ticks_meet(event, PoolTakeGate(monkeypatch))
    out = WaitingListOffer.objects.filter(state=WaitingListOfferState.OUT)
    assert [offer.seat_ids for offer in out] == [[seat_id]]
    assert seats_offered_twice() == {}


def test_control_two_ticks_meeting_without_the_guard_offer_a_seat_twice(
    event_factory: Any, user_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event, seat_id = _one_seat_back_two_waiting(event_factory, user_factory)
    guard_off(monkeypatch)
    _two_ticks_meet(event, PoolTakeGate(monkeypatch))
    out = WaitingListOffer.objects.filter(state=WaitingListOfferState.OUT)
    assert [offer.seat_ids for offer in out] == [[seat_id], [seat_id]]
    assert seats_offered_twice() == {seat_id: 2}


def _sold_seat_shown_free(sold_out_event: Event, user_factory: Any) -> int:
    """Redis lost the sale of a seat (a failover dropped the write): the map shows it
    free while the database says sold, and a buyer waits."""
    waiting_list_join(event_id=sold_out_event.pk, user_id=user_factory().pk, party_size=1, language="en")
    seat_id = sold_out_event.sell_out_bookings[0].tickets.first().seat_id
    get_redis().hset(EventKeys(sold_out_event.pk).seatmap, str(seat_id), "a")
    return seat_id


def test_a_sold_seat_the_map_shows_free_is_never_offered(sold_out_event: Event, user_factory: Any) -> None:
    _sold_seat_shown_free(sold_out_event, user_factory)
    report = waiting_list_tick(sold_out_event.pk)
    assert report.offers == 0
    assert not WaitingListOffer.objects.exists()
    assert offered_while_sold(sold_out_event) == []


def test_control_without_the_guard_a_sold_seat_is_offered(
    sold_out_event: Event, user_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seat_id = _sold_seat_shown_free(sold_out_event, user_factory)
    guard_off(monkeypatch)
    waiting_list_tick(sold_out_event.pk)
    assert [offer.seat_ids for offer in WaitingListOffer.objects.all()] == [[seat_id]]


def keys_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative control of the second guard: the offer's transaction no longer asks
    Redis whether the list still holds the seats."""
    monkeypatch.setattr(waitlist_store, "waitlist_seats_not_held", lambda **_: [])


def _a_stale_tick_meets_an_accept(
    event_factory: Any, user_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Event, int, WaitingListEntry, WaitingListEntry]:
    """Tick A offers the seat to the first entry and stalls before taking it out of the
    pool. Tick B reads the pool (the seat still in it), then the first buyer accepts (the
    seat is ``available`` in the database again: it is their hold until they book), then
    tick B offers what it read to the second entry. Returns (event, seat, first, second)."""
    event, seat_id = _one_seat_back_two_waiting(event_factory, user_factory)
    first, second = WaitingListEntry.objects.filter(event=event).order_by("joined_at", "pk")
    take, sync = waitlist_store.waitlist_pool_take, waitlist_store.waitlist_sync
    monkeypatch.setattr(waitlist_store, "waitlist_pool_take", lambda **_: None)
    waiting_list_tick(event.pk)
    assert [offer.seat_ids for offer in WaitingListOffer.objects.all()] == [[seat_id]]
    monkeypatch.setattr(waitlist_store, "waitlist_pool_take", take)

    def sync_then_accept(**kwargs: Any) -> Any:
        pool = sync(**kwargs)
        if kwargs["open_"]:  # not the tick's closing sync once the last waiter has seats
            assert seat_id in pool.returned_ms
            offer_accept(event_id=event.pk, user_id=first.user_id)
        return pool

    monkeypatch.setattr(waitlist_store, "waitlist_sync", sync_then_accept)
    waiting_list_tick(event.pk)
    monkeypatch.setattr(waitlist_store, "waitlist_sync", sync)
    return event, seat_id, first, second


def test_a_stale_tick_never_offers_seats_an_accepted_buyer_holds(
    event_factory: Any, user_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event, seat_id, first, second = _a_stale_tick_meets_an_accept(event_factory, user_factory, monkeypatch)
    assert not WaitingListOffer.objects.filter(state=WaitingListOfferState.OUT).exists()
    assert WaitingListEntry.objects.get(pk=second.pk).state == WaitingListState.WAITING
    booking, _ = booking_confirm(user_id=first.user_id, event_id=event.pk, seat_ids=[seat_id])
    assert list(booking.tickets.values_list("seat_id", flat=True)) == [seat_id]


def test_control_without_the_key_check_a_stale_tick_offers_an_accepted_seat_again(
    event_factory: Any, user_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_not_checked(monkeypatch)
    event, seat_id, first, second = _a_stale_tick_meets_an_accept(event_factory, user_factory, monkeypatch)
    out = WaitingListOffer.objects.get(state=WaitingListOfferState.OUT)
    assert (out.entry_id, out.seat_ids) == (second.pk, [seat_id])
    # The first buyer holds the seat and can't book it: it was offered twice.
    with pytest.raises(DomainError) as refused:
        booking_confirm(user_id=first.user_id, event_id=event.pk, seat_ids=[seat_id])
    assert refused.value.code == "seat_unavailable"


# --- 20 threads at once over HTTP -------------------------------------------------------------

CROWD_SECONDS = 5.0


def _session(user: Any) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {AccessToken.for_user(user)}"
    return session


def _crowd(base_url: str, event: Event, user_factory: Any) -> dict[str, int]:
    """5 buyers cancel their bookings, 10 waiters accept (then book) or decline their
    offers as they come, 5 workers tick, all released at once; returns counts."""
    bookings = event.sell_out_bookings
    waiters = [user_factory(name=f"Waiter {n}") for n in range(10)]
    for number, waiter in enumerate(waiters):
        waiting_list_join(event_id=event.pk, user_id=waiter.pk, party_size=1 + number % 2, language="en")
    start = threading.Barrier(20)
    counts: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    deadline = time.monotonic() + CROWD_SECONDS
    list_url = f"{base_url}/api/events/{event.pk}/waiting-list/"

    def count(what: str) -> None:
        with lock:
            counts[what] += 1

    def cancel(booking: Any) -> Callable[[], None]:
        def run() -> None:
            session = _session(booking.user)
            start.wait()
            response = session.post(
                f"{base_url}/api/bookings/{booking.code}/cancel/", timeout=REQUEST_TIMEOUT
            )
            count(f"cancel {response.status_code}")

        return run

    def wait_for_offer(waiter: Any, accept: bool) -> Callable[[], None]:
        def run() -> None:
            session = _session(waiter)
            start.wait()
            while time.monotonic() < deadline:
                offer = session.get(list_url, timeout=REQUEST_TIMEOUT).json().get("offer")
                if offer is None:
                    time.sleep(0.05)
                    continue
                time.sleep(random.uniform(0.3, 0.6))  # a person reads the offer first
                if not accept:
                    response = session.post(f"{list_url}offer/decline/", json={}, timeout=REQUEST_TIMEOUT)
                    count(f"decline {response.status_code}")
                    return
                response = session.post(f"{list_url}offer/accept/", json={}, timeout=REQUEST_TIMEOUT)
                count(f"accept {response.status_code}")
                if response.status_code == 200:
                    booked = session.post(
                        f"{base_url}/api/bookings/",
                        json={"event_id": event.pk, "seat_ids": response.json()["seat_ids"]},
                        timeout=REQUEST_TIMEOUT,
                    )
                    count(f"book {booked.status_code}")
                return

        return run

    def ticker() -> None:
        start.wait()
        while time.monotonic() < deadline:
            waiting_list_tick(event.pk)
            time.sleep(random.uniform(0, 0.02))

    work = [cancel(booking) for booking in bookings[:5]]
    work += [wait_for_offer(waiter, accept=number % 3 != 2) for number, waiter in enumerate(waiters)]
    work += [ticker] * 5
    threads = [in_thread(job) for job in work]
    for thread in threads:
        thread.join(timeout=60)
    return dict(counts)


@pytest.fixture
def crowd_event(event_factory: Any, user_factory: Any) -> Event:
    event = event_factory(rows=4, seats_per_row=5)
    Event.objects.filter(pk=event.pk).update(waiting_list_gather_seconds=0)
    event.sell_out_bookings = sell_out(event, user_factory, per_buyer=4)
    return event


def double_offers(counts: dict[str, int]) -> dict[str, object]:
    """Every sign of a seat offered to two buyers: two offers out on it at once, or an offer
    made after an earlier one was accepted (the first buyer then holds the seat: the
    second one's accept, or the first one's booking, is refused with 409)."""
    found = {
        "offered twice at once": seats_offered_twice(),
        "accepts refused": counts.get("accept 409", 0),
        "bookings after an accept refused": counts.get("book 409", 0),
    }
    return {what: value for what, value in found.items() if value}


def test_twenty_threads_accepting_declining_cancelling_never_double_offer_or_double_sell(
    race_server: Any, crowd_event: Event, user_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    PoolTakeGate(monkeypatch, delay=0.5)
    counts = _crowd(race_server.url, crowd_event, user_factory)
    assert counts.get("cancel 200") == 5, counts
    assert WaitingListOffer.objects.count() >= 5, counts
    assert double_offers(counts) == {}, counts
    assert seats_sold_twice(crowd_event) == []
    assert offered_while_sold(crowd_event) == []
    assert all(not key.startswith(("accept 5", "book 5", "decline 5")) for key in counts), counts
    assert counts.get("book 201", 0) >= 3, counts


def test_control_twenty_threads_without_the_guard_offer_seats_twice(
    race_server: Any, crowd_event: Event, user_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard_off(monkeypatch)
    PoolTakeGate(monkeypatch, delay=0.5)
    counts = _crowd(race_server.url, crowd_event, user_factory)
    assert double_offers(counts), counts
