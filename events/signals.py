"""Cache invalidation: any change of an event or its seats is visible at once."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from redis.exceptions import RedisError

from events.caching import invalidate_event
from events.models import Event, Seat
from events.selectors import seatmap_rebuild

logger = logging.getLogger(__name__)


def seats_changed(event_id: int) -> None:
    """After seats were added, edited or removed: fresh caches and a fresh seat map."""
    invalidate_event(event_id)
    try:
        seatmap_rebuild(event_id)
    except RedisError:
        # The reconciler rebuilds it once Redis answers again.
        logger.warning("seat map of event %s not rebuilt: Redis unavailable", event_id)


@receiver(post_save, sender=Event, dispatch_uid="events_event_saved")
@receiver(post_delete, sender=Event, dispatch_uid="events_event_deleted")
def event_changed(sender: type, instance: Event, **kwargs: Any) -> None:
    event_id = instance.pk
    transaction.on_commit(lambda: invalidate_event(event_id))


@receiver(post_save, sender=Seat, dispatch_uid="events_seat_saved")
@receiver(post_delete, sender=Seat, dispatch_uid="events_seat_deleted")
def seat_changed(sender: type, instance: Seat, **kwargs: Any) -> None:
    event_id = instance.event_id
    transaction.on_commit(lambda: seats_changed(event_id))
