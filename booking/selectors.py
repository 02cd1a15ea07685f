"""Reads of the booking app: bookings (every lookup by code is scoped to its owner:
another user's booking reads as missing, 404, never as forbidden) and what the booking
pages show a buyer (held seats with prices, the seat picker's state)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache

from django.db import connection
from django.db.models import Prefetch, QuerySet

from booking.models import Booking, BookingStatus, Ticket
from events.models import Seat
from events.selectors import event_settings_get
from events.services.seat_map import PublishedSeatMap, seat_map_current
from queueing.holds import Hold, holds_get
from queueing.line import pass_expires_at_ms
from ticketing.time import datetime_from_ms


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


def booking_get_for_mail(*, booking_id: int) -> Booking:
    """The booking with everything its mails show, in two queries: the event and the
    buyer joined, the tickets with their seats in seat order (``booking_get`` would load
    the buyer with a third)."""
    return _with_tickets(Booking.objects.filter(pk=booking_id)).select_related("user").get()


def booking_find_by_idempotency_key(*, user_id: int, idempotency_key: str) -> Booking | None:
    """The user's booking made with this Idempotency-Key, or None. Every confirm with a
    key asks first and nearly always finds nothing: that answer comes from a narrow
    query on the (user, key) unique index; the booking with its event and tickets is
    loaded only when there is one (building the select_related/prefetch query costs
    more than running it)."""
    booking_id = (
        Booking.objects.filter(user_id=user_id, idempotency_key=idempotency_key)
        .values_list("pk", flat=True)
        .first()
    )
    if booking_id is None:
        return None
    return _with_tickets(Booking.objects.filter(pk=booking_id)).first()


def seats_booked_count(*, event_id: int, user_id: int) -> int:
    """Seats the user owns in confirmed bookings of the event (they count against the
    per-user ticket limit). Asked on every hold: one fixed statement, the same the ORM
    builds for ``Ticket.objects.filter(booking__user_id=..., booking__event_id=...,
    booking__status=CONFIRMED).count()``, without building it each time."""
    with connection.cursor() as cursor:
        cursor.execute(_seats_booked_count_sql(), [user_id, event_id, BookingStatus.CONFIRMED.value])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


@cache
def _seats_booked_count_sql() -> str:
    # Only the models' own table and column names go into the text; the values are
    # parameters.
    quote = connection.ops.quote_name
    ticket, booking = quote(Ticket._meta.db_table), quote(Booking._meta.db_table)
    return (
        f"SELECT COUNT(*) FROM {ticket} INNER JOIN {booking} ON ({ticket}.{quote('booking_id')} = "  # noqa: S608
        f"{booking}.{quote('id')}) WHERE ({booking}.{quote('user_id')} = %s AND "
        f"{booking}.{quote('event_id')} = %s AND {booking}.{quote('status')} = %s)"
    )


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


# --- What the booking pages show -------------------------------------------------------


@dataclass(frozen=True)
class HeldSeats:
    """The seats a buyer holds now (database rows, with prices) and the hold's deadline."""

    seats: list[Seat]
    seats_total: Decimal
    booking_fee: Decimal  # the event's booking fee for these seats
    expires_at_ms: int | None

    @property
    def total(self) -> Decimal:
        """What confirming them costs: the seats plus the booking fee."""
        return self.seats_total + self.booking_fee

    @property
    def seat_ids(self) -> list[int]:
        return [seat.pk for seat in self.seats]

    @property
    def expires_at(self) -> datetime | None:
        return None if self.expires_at_ms is None else datetime_from_ms(self.expires_at_ms)


@dataclass(frozen=True)
class SeatPickerState:
    pass_expires_at_ms: int | None
    held: HeldSeats
    cap: int  # how many seats the buyer may hold at once (hold_cap)
    seat_map: PublishedSeatMap


def seats_in_seat_order(*, event_id: int, seat_ids: list[int]) -> list[Seat]:
    """The event's seats among ``seat_ids`` as a buyer reads them: by section, row, number."""
    return list(Seat.objects.filter(event_id=event_id, pk__in=seat_ids).order_by("section", "row", "number"))


def _held_seats(hold: Hold, *, event_id: int) -> HeldSeats:
    seats = seats_in_seat_order(event_id=event_id, seat_ids=hold.seat_ids)
    event = event_settings_get(event_id)
    fee = event.booking_fee if event is not None else Decimal("0")
    return HeldSeats(
        seats=seats,
        seats_total=sum((seat.price for seat in seats), Decimal("0")),
        booking_fee=fee * len(seats),
        expires_at_ms=hold.expires_at_ms,
    )


def held_seats_get(*, event_id: int, user_id: int) -> HeldSeats:
    """The user's live holds on the event (none: an empty list)."""
    return _held_seats(holds_get(event_id=event_id, user_id=user_id), event_id=event_id)


def pass_is_live(*, event_id: int, user_id: int) -> bool:
    return pass_expires_at_ms(event_id=event_id, user_id=user_id) is not None


def seat_picker_state(*, event_id: int, user_id: int, max_tickets_per_user: int) -> SeatPickerState | None:
    """What the seat picker shows the buyer, or None when the buyer may not be there:
    without a live pass only someone still holding seats may stay (to reach checkout)."""
    pass_expires = pass_expires_at_ms(event_id=event_id, user_id=user_id)
    hold = holds_get(event_id=event_id, user_id=user_id)
    if pass_expires is None and not hold.seat_ids:
        return None
    return SeatPickerState(
        pass_expires_at_ms=pass_expires,
        held=_held_seats(hold, event_id=event_id),
        cap=hold_cap(event_id=event_id, user_id=user_id, max_tickets_per_user=max_tickets_per_user),
        seat_map=seat_map_current(event_id),
    )
