"""Concurrency: real threads sending real HTTP requests to a live server.

Each race comes with its negative control (STYLE.md, pretix
``test_quota_race_condition_happens_if_we_disable_locks``): the same race with the
database guard off (``BOOKING_DB_GUARD = False``, which also skips the Redis hold check)
must sell a seat twice, or the positive test proves nothing. The controls widen the
read-to-write gap with ``BOOKING_RACE_DELAY_SECONDS`` so the race is reliable.

Every request thread first opens a keep-alive connection, then all wait on one barrier
and fire together.

Databases: MariaDB/MySQL (CI: DATABASE_URL=mysql://...) and a file SQLite test database
run these exactly as written: no 5xx is tolerated. The default in-memory SQLite test
database is shared-cache: a connection meeting another's table write lock fails at once
("database table is locked", no busy wait), which the API answers with 503 +
Retry-After; there, and only there, the buyers retry a 503 like a real client would.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from django.db import connection
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from booking.models import Booking, BookingStatus, Ticket
from booking.tests.conftest import admit_users, seat_ids_of
from events.models import Event, Seat, SeatStatus
from queueing.connection import get_redis
from queueing.holds import holds_get, seats_hold
from queueing.keys import EventKeys

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RACE_DELAY_SECONDS = 0.3
REQUEST_TIMEOUT = 60
SQLITE_503_RETRIES = 20


def in_memory_sqlite() -> bool:
    return connection.vendor == "sqlite" and connection.is_in_memory_db()


@dataclass
class Buyer:
    user: User
    session: requests.Session
    base_url: str

    def post(self, path: str, body: dict[str, Any] | None = None, **headers: str) -> requests.Response:
        response = self.session.post(
            f"{self.base_url}{path}", json=body or {}, headers=headers, timeout=REQUEST_TIMEOUT
        )
        # In-memory SQLite only (see race_server): a reader meeting a writer's table lock
        # gets 503 + Retry-After at once, with no busy wait; a real client retries.
        for _attempt in range(SQLITE_503_RETRIES if in_memory_sqlite() else 0):
            if response.status_code != 503 or "Retry-After" not in response.headers:
                break
            time.sleep(random.uniform(0.05, 0.2))  # Retry-After, shortened for the test
            response = self.session.post(
                f"{self.base_url}{path}", json=body or {}, headers=headers, timeout=REQUEST_TIMEOUT
            )
        return response

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base_url}{path}", timeout=REQUEST_TIMEOUT)


@pytest.fixture
def race_server(live_server: Any) -> Any:
    """The live server, with one database connection per request thread.

    pytest-django shares the main thread's connection with the server when the test
    database is in-memory SQLite; concurrent requests would then run their
    transactions on one connection. Dropping the override makes each request thread
    open its own connection to the same shared-cache in-memory database (MySQL/MariaDB
    and file SQLite never use the override)."""
    httpd = live_server.thread.httpd
    shared = httpd.connections_override
    httpd.connections_override = {}
    # 50 simultaneous connects overflow the dev server's default listen backlog (10).
    httpd.socket.listen(256)
    yield live_server
    httpd.connections_override = shared


def make_buyers(count: int, base_url: str) -> list[Buyer]:
    users = User.objects.bulk_create(
        [User(email=f"racer{n}-{uuid.uuid4().hex[:6]}@example.com", name=f"Racer {n}") for n in range(count)]
    )
    if users[0].pk is None:  # backends that can't return ids from bulk inserts
        users = list(User.objects.filter(email__in=[user.email for user in users]).order_by("pk"))
    buyers = []
    for user in users:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {AccessToken.for_user(user)}"
        buyers.append(Buyer(user=user, session=session, base_url=base_url))
    return buyers


def race(buyers: list[Buyer], action: Callable[[Buyer], Any]) -> list[Any]:
    """Runs ``action`` for every buyer on its own thread, all released at once."""
    barrier = threading.Barrier(len(buyers))
    results: list[Any] = [None] * len(buyers)

    def run(index: int, buyer: Buyer) -> None:
        try:
            buyer.get("/api/bookings/")  # open the keep-alive connection before the start
            barrier.wait(timeout=REQUEST_TIMEOUT)
            results[index] = action(buyer)
        except Exception as exc:  # reported by the assertions below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index, buyer)) for index, buyer in enumerate(buyers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT * 2)
    errors = [result for result in results if isinstance(result, Exception)]
    assert not errors, errors
    return results


def statuses(responses: list[requests.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def confirmed_tickets_per_seat(event: Event) -> Counter[int]:
    return Counter(
        Ticket.objects.filter(booking__event=event, booking__status=BookingStatus.CONFIRMED).values_list(
            "seat_id", flat=True
        )
    )


def assert_no_server_errors(responses: list[requests.Response]) -> None:
    failures = [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
    assert not failures, failures


@pytest.fixture
def big_event(event_factory: Callable[..., Event]) -> Event:
    # Admission never lets in more buyers than seats are left: 50 buyers need 50 seats.
    return event_factory(title="Rush", rows=6, seats_per_row=10, capacity=1000)


# --- 1. Fifty buyers, one seat -------------------------------------------------------


def test_fifty_buyers_one_seat_one_hold_one_booking(race_server, big_event, settings):
    settings.BOOKING_RACE_DELAY_SECONDS = RACE_DELAY_SECONDS
    buyers = make_buyers(50, race_server.url)
    admit_users(big_event, *(buyer.user for buyer in buyers))
    seat = seat_ids_of(big_event, 1)[0]

    def hold_then_confirm(buyer: Buyer) -> tuple[requests.Response, requests.Response | None]:
        held = buyer.post(f"/api/events/{big_event.pk}/holds/", {"seat_ids": [seat]})
        if held.status_code != 201:
            return held, None
        return held, buyer.post("/api/bookings/", {"event_id": big_event.pk, "seat_ids": [seat]})

    results = race(buyers, hold_then_confirm)

    holds = [held for held, _ in results]
    confirms = [confirmed for _, confirmed in results if confirmed is not None]
    assert_no_server_errors(holds + confirms)
    assert statuses(holds) == {201: 1, 409: 49}
    assert {r.json()["code"] for r in holds if r.status_code == 409} == {"seat_unavailable"}
    assert statuses(confirms) == {201: 1}
    assert Booking.objects.filter(event=big_event).count() == 1
    assert confirmed_tickets_per_seat(big_event) == {seat: 1}
    assert Seat.objects.get(pk=seat).status == SeatStatus.SOLD


def test_control_fifty_buyers_one_seat_without_guard_double_sells(race_server, big_event, settings):
    settings.BOOKING_DB_GUARD = False
    settings.BOOKING_RACE_DELAY_SECONDS = RACE_DELAY_SECONDS
    buyers = make_buyers(50, race_server.url)
    seat = seat_ids_of(big_event, 1)[0]

    # No holds at all: with the guard off nothing but a stale read stands in the way.
    results = race(
        buyers, lambda buyer: buyer.post("/api/bookings/", {"event_id": big_event.pk, "seat_ids": [seat]})
    )

    assert_no_server_errors(results)
    assert statuses(results)[201] >= 2
    assert confirmed_tickets_per_seat(big_event)[seat] >= 2


# --- 2. Overlapping multi-seat requests in opposite order ----------------------------


def overlapping_selections(event: Event) -> list[list[int]]:
    a, b, c, d, e = seat_ids_of(event, 5)
    return [[a, b, c], [c, b, a], [c, d], [d, c], [d, e, a], [a, e, d]]


def test_overlapping_holds_in_opposite_order_are_all_or_nothing(race_server, big_event, settings):
    settings.BOOKING_RACE_DELAY_SECONDS = RACE_DELAY_SECONDS
    buyers = make_buyers(30, race_server.url)
    admit_users(big_event, *(buyer.user for buyer in buyers))
    selections = overlapping_selections(big_event)
    wanted = {buyer.user.pk: selections[index % len(selections)] for index, buyer in enumerate(buyers)}

    def hold_then_confirm(buyer: Buyer) -> tuple[requests.Response, requests.Response | None]:
        seats = wanted[buyer.user.pk]
        held = buyer.post(f"/api/events/{big_event.pk}/holds/", {"seat_ids": seats})
        if held.status_code != 201:
            return held, None
        return held, buyer.post("/api/bookings/", {"event_id": big_event.pk, "seat_ids": seats})

    results = race(buyers, hold_then_confirm)

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


def test_control_overlapping_confirms_without_guard_double_sell(race_server, big_event, settings):
    settings.BOOKING_DB_GUARD = False
    settings.BOOKING_RACE_DELAY_SECONDS = RACE_DELAY_SECONDS
    buyers = make_buyers(30, race_server.url)
    selections = overlapping_selections(big_event)
    wanted = {buyer.user.pk: selections[index % len(selections)] for index, buyer in enumerate(buyers)}

    results = race(
        buyers,
        lambda buyer: buyer.post(
            "/api/bookings/", {"event_id": big_event.pk, "seat_ids": wanted[buyer.user.pk]}
        ),
    )

    assert_no_server_errors(results)
    assert max(confirmed_tickets_per_seat(big_event).values()) >= 2


# --- 3. A hold that expires while its confirm is in flight ---------------------------


def expiring_hold_race(race_server: Any, event: Event) -> list[requests.Response]:
    """Buyer A holds a seat for 1 s and confirms; the confirm stalls (race delay) past
    the hold's expiry. Buyer B takes the freed seat through the API and confirms too.
    Returns [A's confirm, B's hold, B's confirm]."""
    first, second = make_buyers(2, race_server.url)
    admit_users(event, first.user, second.user)
    seat = seat_ids_of(event, 1)[0]
    seat_key = EventKeys(event.pk).seat(seat)
    seats_hold(event_id=event.pk, user_id=first.user.pk, seat_ids=[seat], hold_seconds=1, cap=4)
    first.get("/api/bookings/")
    second.get("/api/bookings/")

    first_confirm: list[requests.Response] = []
    confirming = threading.Thread(
        target=lambda: first_confirm.append(
            first.post("/api/bookings/", {"event_id": event.pk, "seat_ids": [seat]})
        )
    )
    confirming.start()
    deadline = time.monotonic() + 5
    while get_redis().exists(seat_key) and time.monotonic() < deadline:
        time.sleep(0.02)
    second_hold = second.post(f"/api/events/{event.pk}/holds/", {"seat_ids": [seat]})
    second_confirm = second.post("/api/bookings/", {"event_id": event.pk, "seat_ids": [seat]})
    confirming.join(REQUEST_TIMEOUT)
    assert first_confirm, "the first confirm did not finish"
    return [first_confirm[0], second_hold, second_confirm]


def test_hold_expiring_mid_confirm_gives_at_most_one_booking(race_server, big_event, settings):
    # Longer than the hold: the first confirm reads the seat, then writes after expiry.
    settings.BOOKING_RACE_DELAY_SECONDS = 1.5
    first_confirm, second_hold, second_confirm = expiring_hold_race(race_server, big_event)

    assert_no_server_errors([first_confirm, second_hold, second_confirm])
    assert second_hold.status_code == 201  # the expired hold really freed the seat in Redis
    created = [r for r in (first_confirm, second_confirm) if r.status_code == 201]
    assert len(created) <= 1
    refused = [r for r in (first_confirm, second_confirm) if r.status_code != 201]
    assert {r.json()["code"] for r in refused} <= {"seat_unavailable", "hold_missing"}
    assert max(confirmed_tickets_per_seat(big_event).values(), default=0) <= 1


def test_control_hold_expiring_mid_confirm_without_guard_double_sells(race_server, big_event, settings):
    settings.BOOKING_DB_GUARD = False
    settings.BOOKING_RACE_DELAY_SECONDS = 1.5
    first_confirm, second_hold, second_confirm = expiring_hold_race(race_server, big_event)

    assert_no_server_errors([first_confirm, second_hold, second_confirm])
    assert (first_confirm.status_code, second_hold.status_code, second_confirm.status_code) == (201, 201, 201)
    assert max(confirmed_tickets_per_seat(big_event).values()) == 2
