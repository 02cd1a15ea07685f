"""Celery entry points of the events app: the admission tick (docs/ARCHITECTURE.md,
"admit") and the seat-map reconciler. Each task calls one service and returns.

Celery beat (django-celery-beat's DatabaseScheduler; the periodic task "Admit waiting
buyers" is created by migration 0002 so staff can see and change it in the admin) sends
``admit_on_sale_events`` every second to the ``admission`` queue (CELERY_TASK_ROUTES),
which only admission workers consume: an e-mail backlog can never stall admission.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from events.services.admission import admission_tick
from events.services.seat_map import seat_maps_reconcile

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
    return admission_tick()


@shared_task(name="events.tasks.reconcile_seat_maps", ignore_result=True)
def reconcile_seat_maps() -> dict[int, int]:
    """Every 30 s: repair seat maps and holds of events on sale from the database."""
    result = seat_maps_reconcile()
    logger.info("seat maps reconciled: %s", result)
    return result
