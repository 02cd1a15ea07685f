"""Helpers of the race tests (``test_races.py``, ``test_race_rounds.py``): buyers with their
own keep-alive connections to the live server and JWTs, released together by one barrier;
forged holds; and the only ways the tests meddle with ``booking_confirm``, all through the
seam ``booking.guards`` (pytest ``monkeypatch``, undone after the test):

- ``hold_check_off``: the Redis hold check lets everybody through; the fence stays.
- ``fence_off``: the conditional UPDATE loses its ``WHERE status = 'available'``; the hold
  check stays.
- ``ConfirmGate``: stops confirms after their hold check, before their write, until the
  test lets them go. Timing only: the check runs and its outcome is passed on unchanged.

A negative control calls exactly one of the two switches (or both, where the positive
test switched one off already), so each test proves the guard it names.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from booking import guards
from booking.models import BookingStatus, Ticket
from events.models import Event, Seat, SeatStatus
from queueing.connection import get_redis
from queueing.holds import _token as holder_token
from queueing.keys import EventKeys

REQUEST_TIMEOUT = 60

# The marks of every race test module: committed writes (the live server's threads have
# their own connections), slow, and eager Celery so that the winners' ticket mails are
# rendered in-process instead of being queued on the machine's broker.
RACE_TEST_MARKS = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("eager_celery"),
]


@dataclass
class Buyer:
    user: User
    session: requests.Session
    base_url: str

    def post(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self.session.post(f"{self.base_url}{path}", json=body or {}, timeout=REQUEST_TIMEOUT)

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base_url}{path}", timeout=REQUEST_TIMEOUT)

    def hold(self, event: Event, seat_ids: list[int]) -> requests.Response:
        return self.post(f"/api/events/{event.pk}/holds/", {"seat_ids": seat_ids})

    def confirm(self, event: Event, seat_ids: list[int]) -> requests.Response:
        return self.post("/api/bookings/", {"event_id": event.pk, "seat_ids": seat_ids})


def make_buyers(count: int, base_url: str) -> list[Buyer]:
    # A whole uuid: thousands of buyers are made in one test (rounds), a short suffix collides.
    users = User.objects.bulk_create(
        [User(email=f"racer{n}-{uuid.uuid4().hex}@example.com", name=f"Racer {n}") for n in range(count)]
    )
    if users[0].pk is None:  # backends that can't return ids from bulk inserts
        users = list(User.objects.filter(email__in=[user.email for user in users]).order_by("pk"))
    buyers = []
    for user in users:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {AccessToken.for_user(user)}"
        buyers.append(Buyer(user=user, session=session, base_url=base_url))
    return buyers


def close_all(buyers: list[Buyer]) -> None:
    # The live server keeps a thread per keep-alive connection: hang up when done.
    for buyer in buyers:
        buyer.session.close()


def in_threads(buyers: list[Buyer], action: Callable[[Buyer], Any], *, together: bool = True) -> list[Any]:
    """Runs ``action`` for every buyer on its own thread and returns the results in order.
    ``together``: every thread first opens its keep-alive connection, then all wait on one
    barrier and start at the same instant."""
    barrier = threading.Barrier(len(buyers))
    results: list[Any] = [None] * len(buyers)

    def run(index: int, buyer: Buyer) -> None:
        try:
            if together:
                buyer.get("/api/bookings/")  # connect before the start
                barrier.wait(timeout=REQUEST_TIMEOUT)
            results[index] = action(buyer)
        except Exception as exc:  # reported by the assertion below
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


def refusal_codes(responses: list[requests.Response]) -> Counter[str]:
    return Counter(response.json()["code"] for response in responses if response.status_code >= 400)


def assert_no_server_errors(responses: list[requests.Response]) -> None:
    failures = [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
    assert not failures, failures


def confirmed_tickets_per_seat(event: Event) -> Counter[int]:
    return Counter(
        Ticket.objects.filter(booking__event=event, booking__status=BookingStatus.CONFIRMED).values_list(
            "seat_id", flat=True
        )
    )


def forge_holds(event: Event, user_id: int, seat_ids: list[int]) -> None:
    """Writes the user's holder token into the seat keys directly, as a Redis that lost or
    duplicated data (a failover to a stale replica, a restore) or someone with access to it
    could: the hold check then passes for this user, whoever held the seats before. Only
    what ``holds_verify`` reads: no expiry, no map change, no per-user set."""
    keys = EventKeys(event.pk)
    get_redis().mset({keys.seat(seat_id): holder_token(user_id) for seat_id in seat_ids})


# --- The seam: booking.guards ------------------------------------------------------------


def hold_check_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every confirm passes the Redis hold check; nothing else changes."""
    monkeypatch.setattr(guards, "holds_require", lambda **_: None)


def seats_sell_unconditionally(*, event_id: int, seat_ids: list[int]) -> int:
    """``guards.seats_sell`` without its ``status = 'available'`` condition."""
    return Seat.objects.filter(event_id=event_id, pk__in=seat_ids).update(status=SeatStatus.SOLD)


def fence_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database fence is an unconditional UPDATE; nothing else changes."""
    monkeypatch.setattr(guards, "seats_sell", seats_sell_unconditionally)


@dataclass
class Stop:
    """Confirms stopped by a ``ConfirmGate``: ``checked`` counts those past their hold
    check; they write once ``go`` is set."""

    checked: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    go: threading.Event = field(default_factory=threading.Event)

    def wait_checked(self, count: int = 1) -> None:
        for _ in range(count):
            assert self.checked.acquire(timeout=REQUEST_TIMEOUT), "a confirm never reached the gate"


class ConfirmGate:
    """Stops the next confirm of chosen buyers after its hold check and before its write
    (around ``guards.holds_require`` as installed when the gate is built: switch a guard
    off first). A confirm goes through the gate once; every other one passes freely."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._check = guards.holds_require
        self._lock = threading.Lock()
        self._waits: dict[int, Callable[[], object]] = {}
        self.passed: list[int] = []  # users whose hold check passed, in order
        monkeypatch.setattr(guards, "holds_require", self._check_then_wait)

    def meet(self, user_ids: list[int]) -> None:
        """Their next confirms wait for each other, then all write at the same instant."""
        barrier = threading.Barrier(len(user_ids), timeout=REQUEST_TIMEOUT)
        with self._lock:
            self._waits |= dict.fromkeys(user_ids, barrier.wait)

    def stop(self, user_ids: list[int]) -> Stop:
        """Their next confirms wait until the test sets ``go`` on the returned Stop."""
        stop = Stop()

        def wait() -> None:
            stop.checked.release()
            if not stop.go.wait(REQUEST_TIMEOUT):
                raise TimeoutError("the test never let this confirm write")

        with self._lock:
            self._waits |= dict.fromkeys(user_ids, wait)
        return stop

    def _check_then_wait(self, *, event_id: int, user_id: int, seat_ids: list[int]) -> None:
        with self._lock:
            wait = self._waits.pop(user_id, None)
        try:
            self._check(event_id=event_id, user_id=user_id, seat_ids=seat_ids)
            with self._lock:
                self.passed.append(user_id)
        finally:
            # Refused confirms wait too: the ones that passed then all write together.
            if wait is not None:
                wait()


def confirm_on_forged_holds(
    buyers: list[Buyer], event: Event, selections: list[list[int]], gate: ConfirmGate
) -> list[requests.Response]:
    """Each buyer in turn forges holds on its selection and sends its confirm, which passes
    the hold check and stops at the gate; the next forgery overwrites the tokens only then.
    When every confirm has passed its check, all write at the same instant. Returns the
    confirms' responses in the buyers' order."""
    stop = gate.stop([buyer.user.pk for buyer in buyers])
    responses: list[Any] = [None] * len(buyers)

    def confirm(index: int) -> None:
        try:
            responses[index] = buyers[index].confirm(event, selections[index])
        except Exception as exc:  # reported by the assertion below
            responses[index] = exc

    threads = [threading.Thread(target=confirm, args=(index,)) for index in range(len(buyers))]
    try:
        for index, buyer in enumerate(buyers):
            forge_holds(event, buyer.user.pk, selections[index])
            threads[index].start()
            stop.wait_checked()
        stop.go.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT * 2)
    finally:
        stop.go.set()  # never leave a server thread waiting when something failed above
    errors = [response for response in responses if not isinstance(response, requests.Response)]
    assert not errors, errors
    return responses
