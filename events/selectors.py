"""Reads for events and seats: the cached catalogue, the event settings the hot queue
endpoints need, and the live seat map (static layout cached, status from Redis)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from events.caching import event_detail_key, event_settings_key, seat_layout_key
from events.models import Event, Seat, SeatStatus
from queueing.seatmap import seatmap_codes, seatmap_load, seatmap_read
from ticketing.local_cache import local_cache

EVENT_SETTINGS_LOCAL_TTL = 2.0
SEAT_LAYOUT_LOCAL_TTL = 5.0


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


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

    def sales_closed(self, now_ms: int) -> bool:
        return now_ms >= self.sales_close_at_ms

    def sales_open(self, now_ms: int) -> bool:
        return self.sales_open_at_ms <= now_ms < self.sales_close_at_ms


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
                sales_open_at_ms=_ms(event.sales_open_at),
                sales_close_at_ms=_ms(event.sales_close_at),
                hold_seconds=event.hold_seconds,
                max_tickets_per_user=event.max_tickets_per_user,
                queue_capacity=event.queue_capacity,
                queue_pass_seconds=event.queue_pass_seconds,
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
    """The annotated event for the detail API/page, cached until it changes."""
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


def seatmap_rebuild(event_id: int) -> dict[int, str]:
    """Rebuilds the Redis seat map from the database (the source of truth)."""
    statuses = dict(Seat.objects.filter(event_id=event_id).values_list("pk", "status"))
    seatmap_load(event_id=event_id, statuses=statuses)
    return seatmap_read(event_id=event_id) or {}


def seat_statuses(event_id: int) -> dict[int, str]:
    """Live seat statuses (available/held/sold) from Redis, rebuilt from the DB if missing."""
    statuses = seatmap_read(event_id=event_id)
    if statuses is None:
        statuses = seatmap_rebuild(event_id)
    return statuses


@dataclass(frozen=True)
class SeatMap:
    event_id: int
    digest: str
    seats: list[dict[str, Any]]

    @property
    def version(self) -> int:
        return int(self.digest[:8], 16)

    @property
    def etag(self) -> str:
        return _seat_map_etag(self.event_id, self.digest)


def _layout(event_id: int) -> list[dict[str, Any]]:
    # The layout never changes during a sale: keep it in the process for a few seconds
    # rather than unpickling thousands of seats from the cache on every poll.
    return local_cache.get_or_set(
        ("seat_layout", event_id), SEAT_LAYOUT_LOCAL_TTL, lambda: seat_layout(event_id)
    )


def _live_codes(event_id: int, known_digest: str = "") -> tuple[str, dict[int, str] | None]:
    digest, statuses = seatmap_codes(event_id=event_id, known_digest=known_digest)
    if not digest:  # the map is missing (Redis restarted or wiped): rebuild from the DB
        seatmap_rebuild(event_id)
        digest, statuses = seatmap_codes(event_id=event_id)
    return digest, statuses


def _with_statuses(layout: list[dict[str, Any]], statuses: dict[int, str]) -> list[dict[str, Any]]:
    return [{**seat, "status": statuses.get(seat["id"], SeatStatus.SOLD)} for seat in layout]


def seat_map_get(event_id: int) -> SeatMap:
    """The live seat map for pages: layout plus statuses (available/held/sold)."""
    digest, statuses = _live_codes(event_id)
    return SeatMap(event_id=event_id, digest=digest, seats=_with_statuses(_layout(event_id), statuses or {}))


_STATUS_BY_CODE = {"a": "available", "h": "held", "s": "sold"}
_encoded_seat_maps: dict[int, tuple[tuple[str, int], bytes]] = {}


def _seat_map_etag(event_id: int, digest: str) -> str:
    return f'"seats-{event_id}-{digest}"'


def seat_map_json(event_id: int, *, if_none_match: str = "") -> tuple[str, bytes | None]:
    """The seat map API answer: ``(ETag, JSON bytes)``, or ``(ETag, None)`` when the
    client's ``If-None-Match`` is still current (304). The digest is computed in Redis,
    so an unchanged map costs one short round trip; a changed one is encoded once per
    version and process and shared by every poll."""
    prefix = f'"seats-{event_id}-'
    known = if_none_match[len(prefix) : -1] if if_none_match.startswith(prefix) else ""
    digest, statuses = _live_codes(event_id, known)
    etag = _seat_map_etag(event_id, digest)
    if statuses is None:
        return etag, None
    layout = _layout(event_id)
    identity = (digest, id(layout))
    cached = _encoded_seat_maps.get(event_id)
    if cached is None or cached[0] != identity:
        body = {"event": event_id, "version": int(digest[:8], 16), "seats": _with_statuses(layout, statuses)}
        cached = (identity, json.dumps(body, separators=(",", ":")).encode())
        _encoded_seat_maps[event_id] = cached
    return etag, cached[1]
