"""Cache keys and invalidation for the catalogue (django-redis) and the per-process
event-settings cache used by the hot queue endpoints."""

from __future__ import annotations

from django.core.cache import cache

from ticketing.local_cache import local_cache

EVENT_LIST_VERSION_KEY = "events:list:version"


def event_list_key(page: int) -> str:
    version = cache.get(EVENT_LIST_VERSION_KEY, 0)
    return f"events:list:v{version}:p{page}"


def event_detail_key(event_id: int) -> str:
    return f"events:detail:{event_id}"


def seat_layout_key(event_id: int) -> str:
    return f"events:seats:{event_id}"


def event_settings_key(event_id: int) -> str:
    # v2: EventSettings gained a field; a pickle of the old shape must not be read back.
    return f"events:settings:v2:{event_id}"


def invalidate_event(event_id: int) -> None:
    """Drops every cached view of one event and bumps the list version, so a change
    (or a new event) shows at once on the next request."""
    cache.delete_many([event_detail_key(event_id), seat_layout_key(event_id), event_settings_key(event_id)])
    try:
        cache.incr(EVENT_LIST_VERSION_KEY)
    except ValueError:
        cache.set(EVENT_LIST_VERSION_KEY, 1, timeout=None)
    local_cache.delete(("event_settings", event_id))
    local_cache.delete(("event_detail", event_id))
    local_cache.delete(("event_detail_body", event_id))


def invalidate_availability(event_id: int) -> None:
    """After a sale or cancellation: the list and detail show seat counts."""
    cache.delete(event_detail_key(event_id))
    try:
        cache.incr(EVENT_LIST_VERSION_KEY)
    except ValueError:
        cache.set(EVENT_LIST_VERSION_KEY, 1, timeout=None)
