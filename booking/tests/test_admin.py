"""Booking admin: search, and the "Cancel selected bookings" action."""

from __future__ import annotations

import pytest

from booking.models import Booking, BookingStatus
from booking.services import booking_confirm
from booking.tests.conftest import admit_users, seat_ids_of
from events.models import Seat, SeatStatus
from queueing.holds import seats_hold

pytestmark = pytest.mark.django_db


@pytest.fixture
def booking(user, on_sale_event, django_capture_on_commit_callbacks) -> Booking:
    seats = seat_ids_of(on_sale_event, 2)
    admit_users(on_sale_event, user)
    seats_hold(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=seats, hold_seconds=60, cap=4)
    with django_capture_on_commit_callbacks(execute=True):
        booking, _ = booking_confirm(user_id=user.pk, event_id=on_sale_event.pk, seat_ids=seats)
    return booking


def test_search_by_code_and_email(client, staff_user, booking, user):
    client.force_login(staff_user)

    by_code = client.get("/admin/booking/booking/", {"q": booking.code})
    by_email = client.get("/admin/booking/booking/", {"q": user.email})
    detail = client.get(f"/admin/booking/booking/{booking.pk}/change/")

    assert booking.code in by_code.content.decode()
    assert booking.code in by_email.content.decode()
    assert detail.status_code == 200
    assert booking.tickets.first().code in detail.content.decode()


def test_cancel_action(client, staff_user, booking, django_capture_on_commit_callbacks):
    client.force_login(staff_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/booking/booking/",
            {"action": "cancel_selected", "_selected_action": [booking.pk]},
            follow=True,
        )

    assert response.status_code == 200
    assert "1 booking cancelled." in response.content.decode()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    assert booking.cancelled_by == staff_user
    assert set(Seat.objects.filter(tickets__booking=booking).values_list("status", flat=True)) == {
        SeatStatus.AVAILABLE
    }
