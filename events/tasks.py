"""Celery tasks of the events app: the admission tick (DESIGN.md "The rush", step 2).

Celery beat (django-celery-beat's DatabaseScheduler; the periodic task "Admit waiting
buyers" is created by migration 0002 so staff can see and change it in the admin) sends
``admit_on_sale_events`` every second to the ``admission`` queue (CELERY_TASK_ROUTES),
which only admission workers consume: an e-mail backlog can never stall admission.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict
from typing import Any

from celery import shared_task
from redis.exceptions import RedisError

from events.selectors import event_ids_on_sale, event_settings_get, seatmap_rebuild
from queueing.waiting_room import admit

logger = logging.getLogger(__name__)

ADMISSION_TASK_NAME = "events.tasks.admit_on_sale_events"
# A tick older than this is dropped unrun: after a worker outage the backlog of ticks
# must not replay (the next fresh tick does all the work anyway).
ADMISSION_TASK_EXPIRES_SECONDS = 2


@shared_task(
    name=ADMISSION_TASK_NAME,
    ignore_result=True,
    expires=ADMISSION_TASK_EXPIRES_SECONDS,
    # A lost tick costs nothing (another comes a second later), so no late ack and no
    # redelivery: a redelivered tick would only be a stale duplicate.
    acks_late=False,
)
def admit_on_sale_events() -> dict[int, dict[str, Any]]:
    """One admission step for every event on sale; returns each event's ``AdmitResult``
    (as a dict) for logging and tests.

    Idempotent and safe to overlap: ``admit`` is one atomic script that never exceeds
    capacity. The shuffle seed is drawn on every tick but only the first admission of an
    event after the opening uses it (the script records it), so the order among the
    pre-opening arrivals is drawn exactly once."""
    results: dict[int, dict[str, Any]] = {}
    for event_id in event_ids_on_sale():
        event = event_settings_get(event_id)
        if event is None:
            continue
        try:
            result = admit(
                event_id=event_id,
                capacity=event.queue_capacity,
                pass_seconds=event.queue_pass_seconds,
                shuffle_seed=secrets.randbits(63),
            )
            if result.available_seats is None:
                # No seat map (Redis was wiped or restarted): this tick was bounded by
                # capacity only; rebuild it from the database for the next one.
                seatmap_rebuild(event_id)
        except RedisError:
            # One event's failure must not stop the others; the next tick retries.
            logger.warning("admission for event %s failed: Redis unavailable", event_id, exc_info=True)
            continue
        if result.admitted or result.expired or result.shuffled:
            logger.info("event %s admission: %s", event_id, result)
        results[event_id] = asdict(result)
    return results
