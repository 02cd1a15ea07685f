"""Cache invalidation: any change of an event or its seats is visible at once."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from events.caching import invalidate_event
from events.models import Event, Seat
from events.services.seat_map import seats_changed


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
