"""Fixtures of the booking tests: admitted buyers, expired holds, the live server for races
(eager Celery is in the root conftest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from booking.checkins import door_staff_group
from booking.models import Booking
from booking.services import booking_confirm
from events.models import Event, Seat
from queueing.connection import get_redis
from queueing.holds import seats_hold
from queueing.keys import EventKeys
from queueing.line import line_admit, line_join


def admit_users(event: Event, *users: Any) -> None:
    """Joins the users in order and admits all of them (a pass each); capacity is ample
    so users admitted earlier don't block them."""
    for user in users:
        line_join(event_id=event.pk, user_id=user.pk, sales_open_at_ms=0)
    result = line_admit(event_id=event.pk, capacity=100_000, pass_seconds=event.queue_pass_seconds)
    assert result.waiting == 0, result


def expire_hold(event: Event, seat_ids: list[int]) -> None:
    """Deletes the seats' hold keys: exactly what Redis does when the hold's PX runs out."""
    keys = EventKeys(event.pk)
    get_redis().delete(*(keys.seat(seat_id) for seat_id in seat_ids))


def seat_ids_of(event: Event, count: int | None = None) -> list[int]:
    ids = list(
        Seat.objects.filter(event=event).order_by("section", "row", "number").values_list("pk", flat=True)
    )
    return ids if count is None else ids[:count]


def book_seats(event: Event, user: Any, seat_ids: list[int]) -> Booking:
    """A confirmed booking of ``seat_ids`` for ``user``, made as a buyer makes one:
    admitted, holding the seats, confirming."""
    admit_users(event, user)
    seats_hold(event_id=event.pk, user_id=user.pk, seat_ids=seat_ids, hold_seconds=60, cap=20)
    booking, _ = booking_confirm(user_id=user.pk, event_id=event.pk, seat_ids=seat_ids)
    return booking


@pytest.fixture
def door_staff(user_factory: Callable[..., Any]) -> Any:
    """A user in the "Door staff" group: may check in tickets of every event, nothing else."""
    user = user_factory(name="Gate Keeper")
    user.groups.add(door_staff_group())
    return user


@pytest.fixture
def admitted() -> Callable[..., None]:
    return admit_users


@pytest.fixture
def race_server(live_server: Any) -> Any:
    """The live server, ready for a crowd: 50 simultaneous connects overflow the dev
    server's default listen backlog (10). Each request thread has its own database
    connection (the SQLite test database is a file, see settings.py)."""
    live_server.thread.httpd.socket.listen(256)
    return live_server


def sell_out(event: Event, make_user: Callable[..., Any], per_buyer: int = 4) -> list[Booking]:
    """Sells every seat of the event through real bookings, ``per_buyer`` seats each, in
    seat order (the first booking has the first seats). Returns the bookings."""
    seats = seat_ids_of(event)
    bookings = []
    for start in range(0, len(seats), per_buyer):
        buyer = make_user(name=f"Early buyer {start // per_buyer + 1}")
        bookings.append(book_seats(event, buyer, seats[start : start + per_buyer]))
    return bookings


@pytest.fixture
def sold_out_event(
    event_factory: Callable[..., Any], user_factory: Callable[..., Any], eager_celery: None
) -> Any:
    """An on-sale event of 10 seats (row 1: 1-5, row 2: 1-5) sold out by three buyers
    (4 + 4 + 2 seats, in seat order); ``event.sell_out_bookings`` lists their bookings.
    Celery runs eagerly, so a cancellation's waiting-list tick runs on commit."""
    event = event_factory()
    Event.objects.filter(pk=event.pk).update(waiting_list_gather_seconds=0)
    event.waiting_list_gather_seconds = 0
    event.sell_out_bookings = sell_out(event, user_factory)
    return event
