"""Reads of the booking app. Every lookup by code is scoped to its owner: another
user's booking reads as missing (404), never as forbidden."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, QuerySet

from booking.models import Booking, BookingStatus, Ticket


def _with_tickets(queryset: QuerySet[Booking]) -> QuerySet[Booking]:
    return queryset.select_related("event").prefetch_related(
        Prefetch(
            "tickets",
            queryset=Ticket.objects.select_related("seat").order_by(
                "seat__section", "seat__row", "seat__number", "pk"
            ),
        )
    )


def booking_list_for_user(*, user_id: int) -> QuerySet[Booking]:
    """The user's bookings, newest first, with event and tickets (seats) loaded."""
    return _with_tickets(Booking.objects.filter(user_id=user_id)).order_by("-created_at", "-id")


def booking_get_for_user(*, code: str, user_id: int) -> Booking | None:
    """The user's booking with this code, or None (unknown code or someone else's)."""
    return _with_tickets(Booking.objects.filter(user_id=user_id, code=code.upper())).first()


def booking_get(*, booking_id: int) -> Booking | None:
    return _with_tickets(Booking.objects.filter(pk=booking_id)).first()


def booking_find_by_idempotency_key(*, user_id: int, idempotency_key: str) -> Booking | None:
    return _with_tickets(Booking.objects.filter(user_id=user_id, idempotency_key=idempotency_key)).first()


def seats_booked_count(*, event_id: int, user_id: int) -> int:
    """Seats the user owns in confirmed bookings of the event (they count against the
    per-user ticket limit)."""
    return Ticket.objects.filter(
        booking__user_id=user_id, booking__event_id=event_id, booking__status=BookingStatus.CONFIRMED
    ).count()


def hold_cap(*, event_id: int, user_id: int, max_tickets_per_user: int) -> int:
    """How many seats the user may hold at once: the per-user limit minus the seats the
    user already owns in confirmed bookings of this event (API.md "Seat holds")."""
    return max(0, max_tickets_per_user - seats_booked_count(event_id=event_id, user_id=user_id))


def bookings_with_unsent_mail(*, before: datetime, limit: int) -> tuple[list[int], list[int]]:
    """Ids of bookings whose ticket mail (confirmed before ``before``) or cancellation
    mail (cancelled before ``before``) has not gone out: (ticket ids, cancellation ids)."""
    ticket_ids = list(
        Booking.objects.filter(
            status=BookingStatus.CONFIRMED, emailed_at__isnull=True, confirmed_at__lt=before
        ).values_list("pk", flat=True)[:limit]
    )
    cancel_ids = list(
        Booking.objects.filter(
            status=BookingStatus.CANCELLED, cancellation_emailed_at__isnull=True, cancelled_at__lt=before
        ).values_list("pk", flat=True)[:limit]
    )
    return ticket_ids, cancel_ids
