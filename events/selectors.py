"""Reads for events and seats: the cached catalogue, the event settings the hot queue
endpoints need, and the seat layout. Read-only: the live seat map (which may have to be
rebuilt, a write) is ``events.services.seat_map``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from events.caching import event_detail_key, event_settings_key, seat_layout_key
from events.models import Event, Seat, SeatStatus
from ticketing.local_cache import local_cache
from ticketing.time import iso_from_ms, ms_from_datetime

EVENT_SETTINGS_LOCAL_TTL = 2.0
# Seconds an event page's data may be reused in one process: its answer is public, max-age=1.
EVENT_DETAIL_LOCAL_TTL = 1.0


@dataclass(frozen=True)
class EventSettings:
    """What the queue, hold and booking paths need to know about an event, cacheable."""

    id: int
    title: str
    is_published: bool
    sales_open_at_ms: int
    sales_close_at_ms: int
    hold_seconds: int
    max_tickets_per_user: int
    queue_capacity: int
    queue_pass_seconds: int
    sales_open_at_iso: str  # formatted once: every waiting-room answer carries it
    pow_difficulty: int = 0  # proof-of-work on join; 0 = off
    human_check: bool = False  # a check once per pass before seats may be held
    review_threshold: int = 0  # accounts from one address or device before review; 0 = off
    booking_fee: Decimal = Decimal("0")  # per ticket, added to a booking's total

    def sales_closed(self, now_ms: int) -> bool:
        return now_ms >= self.sales_close_at_ms


def event_settings_get(event_id: int) -> EventSettings | None:
    """Per-process (2 s) over django-redis over the database; None for an unknown or
    unpublished event. No database query on the hot path once warm."""

    def load() -> EventSettings | None:
        cached = cache.get(event_settings_key(event_id))
        if cached is not None:
            return cached or None
        event = Event.objects.filter(pk=event_id, is_published=True).first()
        settings_ = (
            EventSettings(
                id=event.pk,
                title=event.title,
                is_published=event.is_published,
                sales_open_at_ms=ms_from_datetime(event.sales_open_at),
                sales_close_at_ms=ms_from_datetime(event.sales_close_at),
                hold_seconds=event.hold_seconds,
                max_tickets_per_user=event.max_tickets_per_user,
                queue_capacity=event.queue_capacity,
                queue_pass_seconds=event.queue_pass_seconds,
                sales_open_at_iso=iso_from_ms(ms_from_datetime(event.sales_open_at)),
                pow_difficulty=event.pow_difficulty,
                human_check=event.human_check,
                review_threshold=event.review_threshold,
                booking_fee=event.booking_fee,
            )
            if event
            else None
        )
        cache.set(event_settings_key(event_id), settings_ or False, timeout=300)
        return settings_

    return local_cache.get_or_set(("event_settings", event_id), EVENT_SETTINGS_LOCAL_TTL, load)


def events_published() -> QuerySet[Event]:
    return (
        Event.objects.filter(is_published=True)
        .annotate(
            seats_total=Count("seats"),
            seats_available=Count("seats", filter=Q(seats__status=SeatStatus.AVAILABLE)),
            min_price=Min("seats__price"),
            max_price=Max("seats__price"),
        )
        .order_by("sales_open_at", "id")
    )


def events_for_catalogue() -> QuerySet[Event]:
    """Events a buyer can still act on: upcoming or on sale (closed ones drop off)."""
    return events_published().filter(sales_close_at__gt=timezone.now())


def event_ids_on_sale() -> list[int]:
    now = timezone.now()
    return list(
        Event.objects.filter(is_published=True, sales_open_at__lte=now, sales_close_at__gt=now).values_list(
            "pk", flat=True
        )
    )


def event_status(event: Event) -> str:
    return event.sales_status(seats_available=getattr(event, "seats_available", 1))


def event_summary(event: Event) -> dict[str, Any]:
    """The list/detail fields of API.md; ``event`` comes from ``events_published()``."""
    return {
        "id": event.pk,
        "title": event.title,
        "venue": event.venue,
        "starts_at": event.starts_at,
        "sales_open_at": event.sales_open_at,
        "sales_close_at": event.sales_close_at,
        "status": event_status(event),
        "seats_total": event.seats_total,
        "seats_available": event.seats_available,
        "min_price": event.min_price,
        "max_price": event.max_price,
    }


def event_detail_get(event_id: int) -> Event | None:
    """The annotated event for the detail API/page: cached in Redis until it changes, and
    in each process for ``EVENT_DETAIL_LOCAL_TTL`` (the public max-age of the answer).
    Every sale drops the Redis copy (the seat counts move); without the process copy, a
    rush of event pages after each sale would all miss at once and all count the seats."""
    return local_cache.get_or_set(
        ("event_detail", event_id), EVENT_DETAIL_LOCAL_TTL, lambda: _event_detail_load(event_id)
    )


def _event_detail_load(event_id: int) -> Event | None:
    key = event_detail_key(event_id)
    event = cache.get(key)
    if event is None:
        event = events_published().filter(pk=event_id).first()
        cache.set(key, event or False, timeout=300)
    return event or None


def seat_layout(event_id: int) -> list[dict[str, Any]]:
    """The static part of the seat map (never changes during a sale), cached."""
    key = seat_layout_key(event_id)
    layout = cache.get(key)
    if layout is None:
        layout = [
            {
                "id": seat.pk,
                "section": seat.section,
                "row": seat.row,
                "number": seat.number,
                "grade": seat.grade,
                "price": str(seat.price),
            }
            for seat in Seat.objects.filter(event_id=event_id).order_by("section", "row", "number", "pk")
        ]
        cache.set(key, layout, timeout=3600)
    return layout
