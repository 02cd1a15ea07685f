"""An event's fees and cancellation policy for the pages: ``{% load policy %}``, then
``{% event_policy event as policy %}`` (templates/events/_policy.html) or
``{% refund_quote booking as quote %}`` (the cancel page, the booking page). Pure
computations on rows the view already loaded (events.policy): no query."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from booking.models import Booking, BookingStatus
from events.models import Event
from events.policy import CancellationPolicy, RefundQuote, moment_before_full_stop

register = template.Library()


@register.simple_tag
def event_policy(event: Event) -> CancellationPolicy:
    return CancellationPolicy.of(event)


@register.simple_tag
def refund_quote(booking: Booking) -> RefundQuote | None:
    """What cancelling the booking now would cost and refund (None once cancelled)."""
    if booking.status != BookingStatus.CONFIRMED:
        return None
    ticket_price = sum((ticket.price for ticket in booking.tickets.all()), Decimal("0"))
    return CancellationPolicy.of(booking.event).quote(total=booking.total, ticket_price=ticket_price)


@register.filter
def before_full_stop(moment: Any) -> str:
    """A moment for a sentence with a full stop right after it (events.policy)."""
    return moment_before_full_stop(moment)


@register.simple_tag
def booking_fee_for(policy: CancellationPolicy, seats: Any) -> Decimal:
    """The booking fee of ``seats`` (a count or a list of seats)."""
    count = seats if isinstance(seats, int) else len(seats)
    return policy.booking_fee * count
