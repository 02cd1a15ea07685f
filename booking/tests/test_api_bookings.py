"""POST/GET /api/bookings/, GET /api/bookings/CODE/, POST .../cancel/ (API.md "Bookings")."""

from __future__ import annotations

import pytest

from booking.models import Booking, BookingStatus
from booking.tests.conftest import admit_users, expire_hold, seat_ids_of
from conftest import make_auth_client
from events.models import Seat, SeatStatus
from events.services.seat_map import seat_map_current
from queueing.holds import seats_hold
from queueing.line import pass_expires_at_ms

pytestmark = pytest.mark.django_db

BOOKINGS = "/api/bookings/"


def hold(client, event, seat_ids):
    response = client.post(f"/api/events/{event.pk}/holds/", {"seat_ids": seat_ids}, format="json")
    assert response.status_code == 201, response.json()


@pytest.fixture
def buyer(user_factory, on_sale_event):
    client = make_auth_client(user_factory())
    admit_users(on_sale_event, client.user)
    return client


def test_confirm_held_seats(buyer, on_sale_event, django_capture_on_commit_callbacks):
    seats = seat_ids_of(on_sale_event, 2)
    hold(buyer, on_sale_event, seats)

    with django_capture_on_commit_callbacks(execute=True):
        response = buyer.post(BOOKINGS, {"event_id": on_sale_event.pk, "seat_ids": seats}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"code", "event_id", "status", "seats", "total", "created_at", "confirmed_at"}
    assert body["event_id"] == on_sale_event.pk
    assert body["status"] == "confirmed"
    assert body["total"] == "110000.00"
    assert [seat["id"] for seat in body["seats"]] == seats
    first = dict(body["seats"][0])
    ticket_code, payload = first.pop("ticket_code"), first.pop("qr_payload")
    assert first == {"id": seats[0], "section": "A", "row": "A", "number": 1, "price": "55000.00"}
    assert payload.startswith(f"TK1.{on_sale_event.pk}.{ticket_code}.")
    assert len(body["code"]) == 8
    assert set(Seat.objects.filter(pk__in=seats).values_list("status", flat=True)) == {SeatStatus.SOLD}
    # After commit: the map says sold, the holds are gone and the pass is handed back.
    assert {seat_map_current(on_sale_event.pk).statuses[seat] for seat in seats} == {"sold"}
    assert buyer.get(f"/api/events/{on_sale_event.pk}/holds/").json()["seat_ids"] == []
    assert pass_expires_at_ms(event_id=on_sale_event.pk, user_id=buyer.user.pk) is None


def test_idempotent_retry_returns_the_same_booking(buyer, on_sale_event):
    seats = seat_ids_of(on_sale_event, 1)
    hold(buyer, on_sale_event, seats)
    body = {"event_id": on_sale_event.pk, "seat_ids": seats}

    first = buyer.post(BOOKINGS, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-123")
    second = buyer.post(BOOKINGS, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-123")

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    assert Booking.objects.filter(user=buyer.user).count() == 1


def test_same_key_for_a_different_purchase_is_refused(buyer, on_sale_event):
    a, b = seat_ids_of(on_sale_event, 2)
    hold(buyer, on_sale_event, [a, b])
    assert (
        buyer.post(
            BOOKINGS, {"event_id": on_sale_event.pk, "seat_ids": [a]}, format="json", HTTP_IDEMPOTENCY_KEY="k"
        ).status_code
        == 201
    )

    response = buyer.post(
        BOOKINGS, {"event_id": on_sale_event.pk, "seat_ids": [b]}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


def test_idempotency_key_too_long(buyer, on_sale_event):
    response = buyer.post(
        BOOKINGS,
        {"event_id": on_sale_event.pk, "seat_ids": seat_ids_of(on_sale_event, 1)},
        format="json",
        HTTP_IDEMPOTENCY_KEY="x" * 65,
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_confirm_without_hold_but_with_pass_is_hold_missing(buyer, on_sale_event):
    response = buyer.post(
        BOOKINGS, {"event_id": on_sale_event.pk, "seat_ids": seat_ids_of(on_sale_event, 1)}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "hold_missing"


def test_confirm_without_pass_or_hold_is_not_admitted(auth_client, on_sale_event):
    response = auth_client.post(
        BOOKINGS, {"event_id": on_sale_event.pk, "seat_ids": seat_ids_of(on_sale_event, 1)}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_admitted"


def test_confirm_on_expired_hold_is_hold_missing(buyer, on_sale_event):
    seats = seat_ids_of(on_sale_event, 2)
    hold(buyer, on_sale_event, seats)
    expire_hold(on_sale_event, seats[:1])

    response = buyer.post(BOOKINGS, {"event_id": on_sale_event.pk, "seat_ids": seats}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "hold_missing"
    assert not Booking.objects.exists()
    assert set(Seat.objects.filter(pk__in=seats).values_list("status", flat=True)) == {SeatStatus.AVAILABLE}


def test_confirm_on_seats_held_by_someone_else_is_hold_missing(buyer, user_factory, on_sale_event):
    other = make_auth_client(user_factory())
    admit_users(on_sale_event, other.user)
    seats = seat_ids_of(on_sale_event, 1)
    hold(other, on_sale_event, seats)

    response = buyer.post(BOOKINGS, {"event_id": on_sale_event.pk, "seat_ids": seats}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "hold_missing"


def test_confirm_rolls_back_when_the_database_says_a_seat_is_taken(buyer, on_sale_event):
    """The database is the judge: a seat sold behind Redis's back (say, Redis was wiped)
    refuses the whole booking, and the other seat stays available."""
    a, b = seat_ids_of(on_sale_event, 2)
    hold(buyer, on_sale_event, [a, b])
    Seat.objects.filter(pk=b).update(status=SeatStatus.SOLD)

    response = buyer.post(BOOKINGS, {"event_id": on_sale_event.pk, "seat_ids": [a, b]}, format="json")

    assert response.status_code == 409
    assert response.json() | {"detail": ""} == {"code": "seat_unavailable", "detail": "", "seat_ids": [b]}
    assert Seat.objects.get(pk=a).status == SeatStatus.AVAILABLE
    assert not Booking.objects.exists()


def test_confirm_validates_input(buyer, on_sale_event):
    for body in ({"seat_ids": [1]}, {"event_id": on_sale_event.pk, "seat_ids": []}, {"event_id": "x"}):
        response = buyer.post(BOOKINGS, body, format="json")
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"


def test_confirm_unknown_event_is_404(buyer):
    response = buyer.post(BOOKINGS, {"event_id": 999_999, "seat_ids": [1]}, format="json")

    assert response.status_code == 404


def book(client, event, seat_ids):
    hold(client, event, seat_ids)
    response = client.post(BOOKINGS, {"event_id": event.pk, "seat_ids": seat_ids}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_list_shows_only_own_bookings(buyer, user_factory, on_sale_event):
    other = make_auth_client(user_factory())
    admit_users(on_sale_event, other.user)
    mine = book(buyer, on_sale_event, seat_ids_of(on_sale_event)[:1])
    book(other, on_sale_event, seat_ids_of(on_sale_event)[1:2])

    response = buyer.get(BOOKINGS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["next"] is None
    assert [row["code"] for row in body["results"]] == [mine["code"]]


def test_detail_and_cancel_of_another_users_booking_are_404(buyer, user_factory, on_sale_event):
    booking = book(buyer, on_sale_event, seat_ids_of(on_sale_event, 1))
    stranger = make_auth_client(user_factory())

    assert buyer.get(f"{BOOKINGS}{booking['code']}/").status_code == 200
    assert stranger.get(f"{BOOKINGS}{booking['code']}/").status_code == 404
    response = stranger.post(f"{BOOKINGS}{booking['code']}/cancel/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert Booking.objects.get(code=booking["code"]).status == BookingStatus.CONFIRMED


def test_cancel_frees_the_seats(buyer, user_factory, on_sale_event, django_capture_on_commit_callbacks):
    seats = seat_ids_of(on_sale_event, 2)
    with django_capture_on_commit_callbacks(execute=True):
        booking = book(buyer, on_sale_event, seats)
    assert {seat_map_current(on_sale_event.pk).statuses[seat] for seat in seats} == {"sold"}

    with django_capture_on_commit_callbacks(execute=True):
        response = buyer.post(f"{BOOKINGS}{booking['code']}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelled_at"] is not None
    assert [seat["id"] for seat in response.json()["seats"]] == seats  # kept as history
    assert set(Seat.objects.filter(pk__in=seats).values_list("status", flat=True)) == {SeatStatus.AVAILABLE}
    assert {seat_map_current(on_sale_event.pk).statuses[seat] for seat in seats} == {"available"}
    # Someone else can now hold and buy them.
    other = make_auth_client(user_factory())
    admit_users(on_sale_event, other.user)
    assert book(other, on_sale_event, seats)["status"] == "confirmed"


def test_cancel_twice_is_not_cancellable(buyer, on_sale_event):
    booking = book(buyer, on_sale_event, seat_ids_of(on_sale_event, 1))
    assert buyer.post(f"{BOOKINGS}{booking['code']}/cancel/").status_code == 200

    response = buyer.post(f"{BOOKINGS}{booking['code']}/cancel/")

    assert response.status_code == 409
    assert response.json()["code"] == "not_cancellable"


def test_bookings_require_authentication(api_client):
    assert api_client.get(BOOKINGS).status_code == 401
    assert api_client.post(BOOKINGS, {}, format="json").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_confirm_with_the_token_of_a_deleted_account_is_401(user_factory, on_sale_event):
    """Stateless tokens outlive a deleted account for minutes: confirm must refuse it
    cleanly (the foreign key fails), never answer 5xx."""
    buyer = user_factory()
    client = make_auth_client(buyer)
    seat = on_sale_event.seats.first()
    admit_users(on_sale_event, buyer)
    seats_hold(event_id=on_sale_event.pk, user_id=buyer.pk, seat_ids=[seat.pk], hold_seconds=60, cap=4)
    buyer.delete()
    response = client.post(
        "/api/bookings/", {"event_id": on_sale_event.pk, "seat_ids": [seat.pk]}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    seat.refresh_from_db()
    assert seat.status == "available"
