"""The admission tick (docs/ARCHITECTURE.md, "admit"): every second, for every event on
sale, one atomic step lets the next people in line through (``queueing.line.line_admit``).

Safe to run twice at once (two beats started by mistake, a slow tick overlapping the
next): the step is one Lua script that never exceeds capacity and takes the line in
arrival order, so a duplicate tick only finds less to do.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from events.selectors import event_ids_on_sale, event_settings_get
from events.services.seat_map import seat_map_rebuild
from queueing.line import line_admit

logger = logging.getLogger(__name__)


def admission_tick() -> dict[int, dict[str, Any]]:
    """One admission step for every event on sale; returns each event's ``AdmitResult``
    (as a dict) for logging and tests.

    The shuffle seed is drawn on every tick but only the first admission of an event
    after the opening uses it (the script records it), so the order among the
    pre-opening arrivals is drawn exactly once."""
    results: dict[int, dict[str, Any]] = {}
    for event_id in event_ids_on_sale():
        event = event_settings_get(event_id)
        if event is None:
            continue
        try:
            result = line_admit(
                event_id=event_id,
                capacity=event.queue_capacity,
                pass_seconds=event.queue_pass_seconds,
                shuffle_seed=secrets.randbits(63),
                silent_seconds=settings.QUEUE_SILENT_SECONDS,
            )
            if result.available_seats is None:
                # No seat map (Redis was wiped or restarted): this tick was bounded by
                # capacity only; rebuild it from the database for the next one.
                seat_map_rebuild(event_id)
        except RedisError:
            # One event's failure must not stop the others; the next tick retries.
            logger.warning("admission for event %s failed: Redis unavailable", event_id, exc_info=True)
            continue
        if result.admitted or result.expired or result.shuffled or result.dropped:
            logger.info("event %s admission: %s", event_id, result)
        results[event_id] = asdict(result)
    return results
