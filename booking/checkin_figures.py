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
from ticketing.local_cache import local_cache

TIMELINE_MINUTES = 120


# A scanner refreshes its manifest every minute; a thousand gates on one event would ask
# ~17 times a second. Each process builds an event's manifest at most this often.
MANIFEST_SECONDS = 15.0


def manifest_get(*, event: Event) -> dict[str, Any]:
    """Everything a scanner needs to answer without the network: the public key to check
    signatures, and every ticket of the event (seat, holder, state, first entry). Read as
    plain rows (no models: 50,000 tickets), and kept ``MANIFEST_SECONDS`` per process."""
    return local_cache.get_or_set(("checkin-manifest", event.pk), MANIFEST_SECONDS, lambda: _manifest(event))


def _manifest(event: Event) -> dict[str, Any]:
    rows = (
        Ticket.objects.filter(booking__event=event)
        .order_by("seat__section", "seat__row", "seat__number", "pk")
        .values_list(
            "code",
            "seat__section",
            "seat__row",
            "seat__number",
            "booking__user__name",
            "booking__status",
            "checked_in_at",
            "checked_in_gate",
        )
    )
    tickets = []
    checked_in = total = 0
    for code, section, row, number, holder, status, at, gate in rows:
        valid = status == BookingStatus.CONFIRMED
        total += valid
        checked_in += valid and at is not None
        state = "cancelled" if not valid else "checked_in" if at is not None else "valid"
        tickets.append(
            {
                "code": code,
                "seat": f"{section} {row}-{number}",  # events.models.Seat.label
                "section": section,
                "row": row,
                "number": number,
                "holder": holder,
                "state": state,
                "checked_in_at": at,
                "gate": gate or None,
            }
        )
    return {
        "event_id": event.pk,
        "event_title": event.title,
        "algorithm": ticket_signing.ALGORITHM,
        "public_key": ticket_signing.public_key(),
        "generated_at": timezone.now(),
        "tickets": tickets,
        "checked_in": checked_in,
        "total": total,
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
