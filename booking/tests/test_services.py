"""booking.services beyond what the API tests cover: cancel rules, reconciliation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from booking.models import BookingStatus
from booking.services import _is_transient, booking_cancel, booking_confirm, code_generate
from booking.tests.conftest import admit_users, seat_ids_of
from events.models import Event, Seat, SeatStatus
from events.services.seat_map import seat_map_current, seat_maps_reconcile
from queueing.connection import get_redis
from queueing.holds import holds_get, holds_verify, seats_hold
from queueing.keys import EventKeys
from ticketing.errors import DomainError

pytestmark = pytest.mark.django_db


def confirmed_booking(user, event, seat_ids, capture):
    admit_users(event, user)
    seats_hold(event_id=event.pk, user_id=user.pk, seat_ids=seat_ids, hold_seconds=60, cap=10)
    with capture(execute=True):
        booking, created = booking_confirm(user_id=user.pk, event_id=event.pk, seat_ids=seat_ids)
    assert created
    return booking


def test_codes_are_unambiguous():
    code = code_generate(8)
    assert len(code) == 8
    assert not set(code) & set("01OI")


def test_staff_may_cancel_anyones_booking(
    user, staff_user, on_sale_event, django_capture_on_commit_callbacks
):
    booking = confirmed_booking(
        user, on_sale_event, seat_ids_of(on_sale_event, 1), django_capture_on_commit_callbacks
    )

    cancelled = booking_cancel(booking=booking, by_user=staff_user)

    assert cancelled.status == BookingStatus.CANCELLED
    assert cancelled.cancelled_by_id == staff_user.pk


def test_other_buyer_may_not_cancel(user, user_factory, on_sale_event, django_capture_on_commit_callbacks):
    booking = confirmed_booking(
        user, on_sale_event, seat_ids_of(on_sale_event, 1), django_capture_on_commit_callbacks
    )

    with pytest.raises(DomainError) as refused:
        booking_cancel(booking=booking, by_user=user_factory())

    assert refused.value.status == 404


def test_buyer_cannot_cancel_after_the_event_started(user, on_sale_event, django_capture_on_commit_callbacks):
    booking = confirmed_booking(
        user, on_sale_event, seat_ids_of(on_sale_event, 1), django_capture_on_commit_callbacks
    )
    Event.objects.filter(pk=on_sale_event.pk).update(starts_at=timezone.now() - timedelta(minutes=1))

    with pytest.raises(DomainError) as refused:
        booking_cancel(booking=booking, by_user=user)

    assert refused.value.code == "not_cancellable"


def test_transient_errors_are_recognised():
    assert _is_transient(OperationalError(1213, "Deadlock found when trying to get lock"))
    assert _is_transient(OperationalError(1205, "Lock wait timeout exceeded"))
    assert _is_transient(OperationalError("database is locked"))
    assert not _is_transient(OperationalError(2006, "MySQL server has gone away"))


def test_reconcile_drops_holds_on_sold_seats_and_rebuilds_the_map(user, user_factory, on_sale_event):
    a, b, c = seat_ids_of(on_sale_event, 3)
    admit_users(on_sale_event, user)
    seats_hold(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=[a, b], hold_seconds=60, cap=10)
    # The database sold seat a behind Redis's back (e.g. a restore); seat c's map entry is lost.
    Seat.objects.filter(pk=a).update(status=SeatStatus.SOLD)
    get_redis().hdel(EventKeys(on_sale_event.pk).seatmap, str(c))

    assert seat_maps_reconcile() == {on_sale_event.pk: 1}

    statuses = seat_map_current(on_sale_event.pk).statuses
    assert (statuses[a], statuses[b], statuses[c]) == ("sold", "held", "available")
    assert not holds_verify(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=[a])
    assert holds_verify(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=[b])
    assert holds_get(event_id=on_sale_event.pk, user_id=user.pk).seat_ids == [b]


def test_reconcile_rebuilds_a_wiped_map(on_sale_event):
    Seat.objects.filter(pk__in=seat_ids_of(on_sale_event, 2)).update(status=SeatStatus.SOLD)
    get_redis().delete(EventKeys(on_sale_event.pk).seatmap)

    seat_maps_reconcile()

    assert sorted(seat_map_current(on_sale_event.pk).statuses.values()).count("sold") == 2


def test_reconcile_skips_events_not_on_sale(event_factory):
    event_factory(open_now=False)

    assert seat_maps_reconcile() == {}


def test_periodic_tasks_are_scheduled():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="events.tasks.reconcile_seat_maps")
    assert (task.interval.every, task.interval.period, task.enabled) == (30, "seconds", True)
