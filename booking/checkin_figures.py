"""Reads of the door: the scanner's offline manifest and the dashboard's check-in figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from booking import ticket_signing
from booking.models import BookingStatus, CheckInLog, CheckInOutcome, Ticket
from events.models import Event

TIMELINE_MINUTES = 120


def _state(ticket: Ticket) -> str:
    if ticket.booking.status != BookingStatus.CONFIRMED:
        return "cancelled"
    return "checked_in" if ticket.checked_in_at is not None else "valid"


def manifest_get(*, event: Event) -> dict[str, Any]:
    """Everything a scanner needs to answer without the network: the public key to check
    signatures, and every ticket of the event (seat, holder, state, first entry)."""
    tickets = list(
        Ticket.objects.filter(booking__event=event)
        .select_related("booking__user", "seat")
        .order_by("seat__section", "seat__row", "seat__number", "pk")
    )
    return {
        "event_id": event.pk,
        "event_title": event.title,
        "algorithm": ticket_signing.ALGORITHM,
        "public_key": ticket_signing.public_key(),
        "generated_at": timezone.now(),
        "tickets": [
            {
                "code": ticket.code,
                "seat": ticket.seat.label,
                "section": ticket.seat.section,
                "row": ticket.seat.row,
                "number": ticket.seat.number,
                "holder": ticket.booking.user.name,
                "state": _state(ticket),
                "checked_in_at": ticket.checked_in_at,
                "gate": ticket.checked_in_gate or None,
            }
            for ticket in tickets
        ],
        "checked_in": sum(1 for t in tickets if t.checked_in_at is not None and _state(t) == "checked_in"),
        "total": sum(1 for t in tickets if t.booking.status == BookingStatus.CONFIRMED),
    }


def door_figures_get(*, event: Event, now: datetime | None = None) -> dict[str, Any]:
    """Checked in / tickets, per gate, per minute (last two hours), repeats and conflicts."""
    now = now or timezone.now()
    valid = Ticket.objects.filter(booking__event=event, booking__status=BookingStatus.CONFIRMED)
    inside = valid.filter(checked_in_at__isnull=False)
    per_gate = list(
        inside.values("checked_in_gate").annotate(count=Count("pk")).order_by("-count", "checked_in_gate")
    )
    per_minute = list(
        inside.filter(checked_in_at__gte=now - timedelta(minutes=TIMELINE_MINUTES))
        # In UTC: the database needs no time zone tables (stock MariaDB has none), and a
        # minute is the same minute in every whole-minute offset.
        .annotate(minute=TruncMinute("checked_in_at", tzinfo=UTC))
        .values("minute")
        .annotate(count=Count("pk"))
        .order_by("minute")
    )
    outcomes = dict(
        CheckInLog.objects.filter(event=event)
        .values_list("outcome")
        .annotate(count=Count("pk"))
        .values_list("outcome", "count")
    )
    return {
        "checked_in": inside.count(),
        "tickets": valid.count(),
        "per_gate": [{"gate": row["checked_in_gate"], "count": row["count"]} for row in per_gate],
        "per_minute": [{"minute": row["minute"], "count": row["count"]} for row in per_minute],
        "repeat_scans": outcomes.get(CheckInOutcome.REPEAT, 0),
        "conflicts": outcomes.get(CheckInOutcome.SUPERSEDED, 0),
        "undone": outcomes.get(CheckInOutcome.UNDONE, 0),
    }
