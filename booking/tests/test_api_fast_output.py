"""The hot answers built without a serializer (booking.api: ``confirmed_booking_data``,
``hold_data``) say exactly what the documented serializers say."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.utils import timezone

from booking.api.bookings import BookingOutputSerializer, confirmed_booking_data
from booking.api.holds import HoldOutputSerializer, hold_as_dict, hold_data
from booking.models import Booking, BookingStatus
from booking.selectors import booking_get_for_user, seats_booked_count
from booking.services import booking_confirm
from booking.tests.conftest import admit_users, seat_ids_of
from queueing.holds import Hold, seats_hold

pytestmark = pytest.mark.django_db


def _json(data: object) -> object:
    return json.loads(json.dumps(data))


def test_confirmed_booking_data_is_the_serializer_output(user_factory, on_sale_event):
    user = user_factory()
    seats = seat_ids_of(on_sale_event, 3)
    admit_users(on_sale_event, user)
    seats_hold(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=seats, hold_seconds=60, cap=20)
    booking, created = booking_confirm(user_id=user.pk, event_id=on_sale_event.pk, seat_ids=seats)
    assert created

    fast = confirmed_booking_data(booking, event_title=on_sale_event.title)
    # The serializer of the same just-written booking, and of the booking read back.
    assert fast == _json(BookingOutputSerializer(booking).data)
    stored = booking_get_for_user(code=booking.code, user_id=user.pk)
    assert fast == _json(BookingOutputSerializer(stored).data)
    assert list(fast) == list(BookingOutputSerializer(booking).data)


def test_confirmed_booking_data_of_a_cancelled_shape(user_factory, on_sale_event):
    """Every nullable field formatted as the serializer formats it once it is set."""
    user = user_factory()
    seats = seat_ids_of(on_sale_event, 1)
    admit_users(on_sale_event, user)
    seats_hold(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=seats, hold_seconds=60, cap=20)
    booking, _ = booking_confirm(user_id=user.pk, event_id=on_sale_event.pk, seat_ids=seats)
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = timezone.now()
    booking.cancellation_fee = Decimal("1234.5")
    booking.refund = Decimal("7")
    assert confirmed_booking_data(booking, event_title=on_sale_event.title) == _json(
        BookingOutputSerializer(booking).data
    )


@pytest.mark.parametrize(
    "hold",
    [Hold(seat_ids=[], expires_at_ms=None), Hold(seat_ids=[3, 5, 8], expires_at_ms=1_790_000_000_123)],
)
def test_hold_data_is_the_serializer_output(hold):
    assert hold_data(hold) == _json(HoldOutputSerializer(hold_as_dict(hold)).data)


def test_seats_booked_count_matches_the_orm(user_factory, on_sale_event):
    user, other = user_factory(), user_factory()
    seats = seat_ids_of(on_sale_event, 5)
    admit_users(on_sale_event, user, other)
    for who, mine in ((user, seats[:2]), (user, seats[2:3]), (other, seats[3:])):
        seats_hold(event_id=on_sale_event.pk, user_id=who.pk, seat_ids=mine, hold_seconds=60, cap=20)
        booking_confirm(user_id=who.pk, event_id=on_sale_event.pk, seat_ids=mine)
    Booking.objects.filter(user=user, tickets__seat_id=seats[2]).update(status=BookingStatus.CANCELLED)

    assert seats_booked_count(event_id=on_sale_event.pk, user_id=user.pk) == 2
    assert seats_booked_count(event_id=on_sale_event.pk, user_id=other.pk) == 2
    assert seats_booked_count(event_id=on_sale_event.pk + 1000, user_id=user.pk) == 0
