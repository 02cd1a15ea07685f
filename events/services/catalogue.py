"""Writes of the catalogue: events and their seats (admin, demo data, commands, tests)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from events.models import Event, Seat
from events.services.seat_map import seats_changed


@dataclass(frozen=True)
class SectionSpec:
    """One block of seats: ``rows`` rows of ``seats_per_row`` seats of one grade and price."""

    name: str
    grade: str
    price: Decimal


def row_labels(count: int) -> list[str]:
    """A, B, ..., Z, AA, AB, ... as on real seat plans."""
    letters = string.ascii_uppercase
    labels = []
    for index in range(count):
        label, n = "", index
        while True:
            label = letters[n % 26] + label
            n = n // 26 - 1
            if n < 0:
                break
        labels.append(label)
    return labels


@transaction.atomic
def seats_generate(*, event: Event, sections: list[SectionSpec], rows: int, seats_per_row: int) -> int:
    """Adds a block of seats to ``event``; existing seats with the same place are kept.
    Returns the number of seats created."""
    if rows < 1 or seats_per_row < 1:
        raise ValueError("rows and seats_per_row must be at least 1")
    existing = set(event.seats.values_list("section", "row", "number"))
    new_seats = [
        Seat(event=event, section=spec.name, row=row, number=number, grade=spec.grade, price=spec.price)
        for spec in sections
        for row in row_labels(rows)
        for number in range(1, seats_per_row + 1)
        if (spec.name, row, number) not in existing
    ]
    Seat.objects.bulk_create(new_seats, batch_size=1000)
    transaction.on_commit(lambda: seats_changed(event.pk))
    return len(new_seats)


def event_create_with_seats(
    *,
    title: str,
    sections: list[str] | list[SectionSpec],
    rows: int,
    seats_per_row: int,
    price: Decimal | str | int = Decimal("55000"),
    grade: str = "R",
    venue: str = "Main Hall",
    description: str = "",
    capacity: int = 100,
    pass_seconds: int = 600,
    hold_seconds: int = 300,
    max_tickets_per_user: int = 4,
    open_now: bool = False,
    sales_open_at: datetime | None = None,
    sales_close_at: datetime | None = None,
    starts_at: datetime | None = None,
    pow_difficulty: int = 0,
    human_check: bool = False,
    review_threshold: int = 0,
) -> Event:
    """Creates a published event and its seats in one transaction (admin, demo data,
    the ``create_event`` command and the load test use it). Proof-of-work on join, the
    human check and the review of shared addresses stay off unless asked for."""
    now = timezone.now()
    if sales_open_at is None:
        sales_open_at = now - timedelta(minutes=1) if open_now else now + timedelta(days=7)
    sales_close_at = sales_close_at or sales_open_at + timedelta(days=14)
    starts_at = starts_at or sales_close_at + timedelta(days=1)
    specs = [
        spec if isinstance(spec, SectionSpec) else SectionSpec(name=spec, grade=grade, price=Decimal(price))
        for spec in sections
    ]
    with transaction.atomic():
        event = Event.objects.create(
            title=title,
            venue=venue,
            description=description,
            starts_at=starts_at,
            sales_open_at=sales_open_at,
            sales_close_at=sales_close_at,
            queue_capacity=capacity,
            queue_pass_seconds=pass_seconds,
            hold_seconds=hold_seconds,
            max_tickets_per_user=max_tickets_per_user,
            pow_difficulty=pow_difficulty,
            human_check=human_check,
            review_threshold=review_threshold,
        )
        seats_generate(event=event, sections=specs, rows=rows, seats_per_row=seats_per_row)
    return event
