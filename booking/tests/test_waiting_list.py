"""The waiting list through its API (API.md "Waiting list"): joining a sold-out event, offers
in line order when seats come back, accept → booking, decline and deadline → next entry,
parties seated together, the gathering rule, and the regular sale kept off returned seats.
Real Redis, real database, Celery eager (a cancellation's tick runs on commit)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from booking.models import WaitingListEntry, WaitingListOffer
from booking.services import booking_cancel
from booking.tests.conftest import admit_users, sell_out
from booking.waiting_list import waiting_list_tick
from conftest import make_auth_client
from events.models import Event, Seat, SeatStatus
from events.services.seat_map import seat_map_current
from queueing.line import line_admit, line_join

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def _url(event: Event, tail: str = "") -> str:
    return f"/api/events/{event.pk}/waiting-list/{tail}"


def _join(client: Any, event: Event, party_size: int) -> Any:
    return client.post(_url(event), {"party_size": party_size}, format="json")


def _cancel(booking: Any) -> None:
    booking_cancel(booking=booking, by_user=booking.user)


def _waiter(user_factory: Any, event: Event, party_size: int, name: str) -> Any:
    user = user_factory(name=name)
    client = make_auth_client(user)
    assert _join(client, event, party_size).status_code == 201
    client.user = user
    return client


def _offer(client: Any, event: Event) -> dict[str, Any] | None:
    response = client.get(_url(event))
    assert response.status_code == 200, response.content
    return response.json()["offer"]


def test_join_is_refused_while_seats_are_on_sale(on_sale_event: Event, auth_client: Any) -> None:
    response = _join(auth_client, on_sale_event, 2)
    assert response.status_code == 409
    assert response.json()["code"] == "not_sold_out"


def test_join_sold_out_event_gives_a_place_in_arrival_order(sold_out_event: Event, user_factory: Any) -> None:
    first = _waiter(user_factory, sold_out_event, 2, "First")
    second = _waiter(user_factory, sold_out_event, 1, "Second")
    assert first.get(_url(sold_out_event)).json()["position"] == 1
    body = second.get(_url(sold_out_event)).json()
    assert body == {**body, "position": 2, "party_size": 1, "state": "waiting", "offer": None}
    # Asking again changes the party size and keeps the place.
    again = second.post(_url(sold_out_event), {"party_size": 2}, format="json")
    assert again.status_code == 200
    assert again.json()["position"] == 2 and again.json()["party_size"] == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"party_size": 0}, 400, "invalid"),
        ({"party_size": "two"}, 400, "invalid"),
        ({}, 400, "invalid"),
        ({"party_size": 5}, 400, "limit_exceeded"),  # the event's cap is 4
    ],
)
def test_bad_join_bodies_get_a_clear_error(
    sold_out_event: Event, auth_client: Any, body: dict[str, Any], status: int, code: str
) -> None:
    response = auth_client.post(_url(sold_out_event), body, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert not WaitingListEntry.objects.exists()


def test_anonymous_and_strangers(sold_out_event: Event, api_client: Any, auth_client: Any) -> None:
    assert api_client.get(_url(sold_out_event)).status_code == 401
    response = auth_client.get(_url(sold_out_event))
    assert response.status_code == 404
    assert response.json()["code"] == "not_on_waiting_list"
    assert auth_client.post(_url(sold_out_event, "offer/accept/")).json()["code"] == "not_on_waiting_list"
    assert auth_client.get("/api/events/999999/waiting-list/").status_code == 404


def test_cancellation_offers_the_seats_to_the_first_entry_and_accept_books_them(
    sold_out_event: Event, user_factory: Any
) -> None:
    first = _waiter(user_factory, sold_out_event, 2, "First")
    second = _waiter(user_factory, sold_out_event, 2, "Second")
    returned = sold_out_event.sell_out_bookings[2]  # row 2, seats 4-5
    _cancel(returned)
    offer = _offer(first, sold_out_event)
    seats = sorted(returned.tickets.values_list("seat_id", flat=True))
    assert offer["seat_ids"] == seats and offer["together"] is True
    assert _offer(second, sold_out_event) is None
    assert set(Seat.objects.filter(pk__in=seats).values_list("status", flat=True)) == {SeatStatus.OFFERED}

    accepted = first.post(_url(sold_out_event, "offer/accept/"))
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["seat_ids"] == seats
    booked = first.post("/api/bookings/", {"event_id": sold_out_event.pk, "seat_ids": seats}, format="json")
    assert booked.status_code == 201, booked.content
    assert set(Seat.objects.filter(pk__in=seats).values_list("status", flat=True)) == {SeatStatus.SOLD}
    assert first.get(_url(sold_out_event)).json()["state"] == "accepted"
    assert second.get(_url(sold_out_event)).json()["position"] == 1


def test_decline_passes_the_seats_to_the_next_entry(sold_out_event: Event, user_factory: Any) -> None:
    first = _waiter(user_factory, sold_out_event, 2, "First")
    second = _waiter(user_factory, sold_out_event, 2, "Second")
    _cancel(sold_out_event.sell_out_bookings[2])
    seats = _offer(first, sold_out_event)["seat_ids"]
    declined = first.post(_url(sold_out_event, "offer/decline/"))
    assert declined.status_code == 200
    assert declined.json()["state"] == "declined"
    assert _offer(second, sold_out_event)["seat_ids"] == seats


def test_deadline_passes_the_seats_to_the_next_entry(sold_out_event: Event, user_factory: Any) -> None:
    first = _waiter(user_factory, sold_out_event, 2, "First")
    second = _waiter(user_factory, sold_out_event, 2, "Second")
    _cancel(sold_out_event.sell_out_bookings[2])
    seats = _offer(first, sold_out_event)["seat_ids"]
    WaitingListOffer.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    report = waiting_list_tick(sold_out_event.pk)
    assert report.expired == 1 and report.offers == 1
    assert first.get(_url(sold_out_event)).json()["state"] == "expired"
    assert _offer(second, sold_out_event)["seat_ids"] == seats
    late = first.post(_url(sold_out_event, "offer/accept/"))
    assert late.status_code == 409 and late.json()["code"] == "no_offer"


def test_accept_after_the_deadline_is_refused(sold_out_event: Event, user_factory: Any) -> None:
    first = _waiter(user_factory, sold_out_event, 2, "First")
    _cancel(sold_out_event.sell_out_bookings[2])
    WaitingListOffer.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = first.post(_url(sold_out_event, "offer/accept/"))
    assert response.status_code == 409 and response.json()["code"] == "offer_expired"


def test_a_party_of_three_gets_three_adjacent_seats_in_one_offer(
    sold_out_event: Event, user_factory: Any
) -> None:
    party = _waiter(user_factory, sold_out_event, 3, "Party of three")
    single = _waiter(user_factory, sold_out_event, 1, "Single")
    returned = sold_out_event.sell_out_bookings[0]  # row 1, seats 1-4
    _cancel(returned)
    seats = list(Seat.objects.filter(pk__in=_offer(party, sold_out_event)["seat_ids"]).order_by("number"))
    assert len(seats) == 3 and len({seat.row for seat in seats}) == 1
    assert [seat.number for seat in seats] == [1, 2, 3]
    assert _offer(party, sold_out_event)["together"] is True
    # The fourth seat goes to the next entry.
    assert [Seat.objects.get(pk=pk).number for pk in _offer(single, sold_out_event)["seat_ids"]] == [4]


def test_single_seats_trickling_back_follow_the_gathering_rule(event_factory: Any, user_factory: Any) -> None:
    """A party of 2 first in line, single buyers behind it, single seats coming back
    apart: within the gathering window nobody is served past the party; after it the
    single behind is served and the party is marked passed over; from then on the
    seats are kept for the party until it fits."""
    event = event_factory(rows=2, seats_per_row=5)
    Event.objects.filter(pk=event.pk).update(waiting_list_gather_seconds=30)
    bookings = sell_out(event, user_factory, per_buyer=1)  # ten one-seat bookings, in seat order
    party = _waiter(user_factory, event, 2, "Party")
    single = _waiter(user_factory, event, 1, "Single")
    late_single = _waiter(user_factory, event, 1, "Late single")

    _cancel(bookings[0])  # row 1 seat 1
    assert _offer(party, event) is None and _offer(single, event) is None  # gathering

    later = timezone.now() + timedelta(seconds=31)
    waiting_list_tick(event.pk, now=later)
    assert _offer(party, event) is None
    assert _offer(single, event)["seat_ids"] == [bookings[0].tickets.get().seat_id]
    assert WaitingListEntry.objects.get(user=party.user).passed_over

    _cancel(bookings[2])  # row 1 seat 3: not beside anything in the pool
    waiting_list_tick(event.pk, now=later + timedelta(seconds=31))
    assert _offer(party, event) is None
    assert _offer(late_single, event) is None  # the party was passed once: never again

    _cancel(bookings[3])  # row 1 seat 4: beside seat 3
    offer = _offer(party, event)
    assert offer["together"] is True
    assert offer["seat_ids"] == sorted([bookings[2].tickets.get().seat_id, bookings[3].tickets.get().seat_id])


def test_seats_apart_after_the_window_and_keep_place(event_factory: Any, user_factory: Any) -> None:
    event = event_factory(rows=2, seats_per_row=5)
    bookings = sell_out(event, user_factory, per_buyer=1)
    party = _waiter(user_factory, event, 2, "Party")
    _cancel(bookings[0])  # row 1 seat 1
    _cancel(bookings[9])  # row 2 seat 5
    waiting_list_tick(event.pk, now=timezone.now() + timedelta(seconds=31))
    offer = _offer(party, event)
    assert offer["together"] is False and len(offer["seat_ids"]) == 2
    kept = party.post(_url(event, "offer/decline/"), {"keep_place": True}, format="json")
    assert kept.status_code == 200
    assert kept.json() == {**kept.json(), "state": "waiting", "position": 1, "together_only": True}
    # Seats apart are never offered to it again.
    waiting_list_tick(event.pk, now=timezone.now() + timedelta(seconds=120))
    assert _offer(party, event) is None


def test_keep_place_is_only_for_seats_apart(sold_out_event: Event, user_factory: Any) -> None:
    first = _waiter(user_factory, sold_out_event, 2, "First")
    _cancel(sold_out_event.sell_out_bookings[2])
    response = first.post(_url(sold_out_event, "offer/decline/"), {"keep_place": True}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_leaving_with_an_offer_out_passes_it_on(sold_out_event: Event, user_factory: Any) -> None:
    first = _waiter(user_factory, sold_out_event, 2, "First")
    second = _waiter(user_factory, sold_out_event, 2, "Second")
    _cancel(sold_out_event.sell_out_bookings[2])
    seats = _offer(first, sold_out_event)["seat_ids"]
    assert first.delete(_url(sold_out_event)).status_code == 204
    assert first.get(_url(sold_out_event)).json()["state"] == "left"
    assert _offer(second, sold_out_event)["seat_ids"] == seats
    assert WaitingListOffer.objects.filter(entry__user=first.user).get().state == "withdrawn"


def test_the_regular_sale_cannot_take_a_returned_seat_while_someone_waits(
    event_factory: Any, user_factory: Any
) -> None:
    """A buyer still holding a pass (admitted before the sell-out) sees two seats come
    free and tries to hold the one the first entry was not offered: the list keeps it for
    the party of 2 behind. With nobody waiting any more, the seat goes back on sale."""
    sold_out_event = event_factory()
    Event.objects.filter(pk=sold_out_event.pk).update(waiting_list_gather_seconds=0)
    quick = user_factory(name="Quick refresher")
    admit_users(sold_out_event, quick)
    sold_out_event.sell_out_bookings = sell_out(sold_out_event, user_factory)
    quick_client = make_auth_client(quick)
    single = _waiter(user_factory, sold_out_event, 1, "Single")
    pair = _waiter(user_factory, sold_out_event, 2, "Pair")
    returned = sold_out_event.sell_out_bookings[2]
    seats = sorted(returned.tickets.values_list("seat_id", flat=True))
    _cancel(returned)
    assert _offer(single, sold_out_event)["seat_ids"] == seats[:1]
    assert _offer(pair, sold_out_event) is None
    taken = quick_client.post(
        f"/api/events/{sold_out_event.pk}/holds/", {"seat_ids": seats[1:]}, format="json"
    )
    assert taken.status_code == 409 and taken.json()["code"] == "seat_unavailable"
    assert seat_map_current(sold_out_event.pk).statuses[seats[1]] == "held"

    assert pair.delete(_url(sold_out_event)).status_code == 204
    assert seat_map_current(sold_out_event.pk).statuses[seats[1]] == "available"
    held = quick_client.post(
        f"/api/events/{sold_out_event.pk}/holds/", {"seat_ids": seats[1:]}, format="json"
    )
    assert held.status_code == 201, held.content


def test_offers_are_mailed(sold_out_event: Event, user_factory: Any) -> None:
    first = _waiter(user_factory, sold_out_event, 2, "First")
    mail.outbox.clear()
    _cancel(sold_out_event.sell_out_bookings[2])
    assert _offer(first, sold_out_event) is not None
    assert any(first.user.email in message.to for message in mail.outbox)


def test_while_the_list_holds_the_returned_seats_the_waiting_room_says_sold_out(
    sold_out_event: Event, user_factory: Any
) -> None:
    """Seats the list holds (offered, or gathered for the next entry) never go to the
    regular sale while someone waits: a newcomer in the waiting room could never get one.
    The admission step counts the event sold out then, so the waiting room answers
    ``sold_out`` (its text and page point to the list) instead of a place in a line that
    never moves; once nobody waits and the seats go back on sale, the line moves again."""
    first = _waiter(user_factory, sold_out_event, 2, "First")
    second = _waiter(user_factory, sold_out_event, 2, "Second")
    in_line = user_factory(name="Already in line")
    line_join(event_id=sold_out_event.pk, user_id=in_line.pk, sales_open_at_ms=0)
    _cancel(sold_out_event.sell_out_bookings[2])
    assert _offer(first, sold_out_event) is not None
    line_admit(event_id=sold_out_event.pk, capacity=100, pass_seconds=60)

    newcomer = make_auth_client(user_factory(name="Newcomer"))
    joined = newcomer.post(f"/api/events/{sold_out_event.pk}/queue/", {}, format="json")
    assert joined.status_code == 409, joined.content
    assert joined.json()["code"] == "sold_out"
    assert "waiting list" in joined.json()["detail"]
    assert joined.json()["waiting_list"] == _url(sold_out_event)
    waiting = make_auth_client(in_line).get(f"/api/events/{sold_out_event.pk}/queue/")
    assert waiting.json()["state"] == "sold_out"

    assert first.post(_url(sold_out_event, "offer/decline/")).status_code == 200
    assert second.post(_url(sold_out_event, "offer/decline/")).status_code == 200
    line_admit(event_id=sold_out_event.pk, capacity=100, pass_seconds=60)
    assert (
        make_auth_client(in_line).get(f"/api/events/{sold_out_event.pk}/queue/").json()["state"] == "active"
    )
