"""Signal receivers of the booking app: queue the ticket / cancellation e-mail after
the booking's transaction commits (none on rollback).

``robust=True``: should the broker be down at that instant, the booking still answers
201; ``booking.tasks.requeue_unsent_emails`` sends the mail later (emailed_at is NULL).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from booking.signals import booking_cancelled, booking_confirmed


@receiver(booking_confirmed, dispatch_uid="booking_queue_ticket_email")
def queue_ticket_email(sender: Any, booking_id: int, **kwargs: Any) -> None:
    from booking.tasks import send_ticket_email

    transaction.on_commit(lambda: send_ticket_email.delay(booking_id), robust=True)


@receiver(booking_cancelled, dispatch_uid="booking_queue_cancellation_email")
def queue_cancellation_email(sender: Any, booking_id: int, **kwargs: Any) -> None:
    from booking.tasks import send_cancellation_email

    transaction.on_commit(lambda: send_cancellation_email.delay(booking_id), robust=True)


@receiver(booking_cancelled, dispatch_uid="booking_offer_returned_seats")
def offer_returned_seats(sender: Any, booking_id: int, **kwargs: Any) -> None:
    """Seats of a cancelled booking go to the event's waiting list first (if anyone waits)."""
    from booking.models import Booking
    from booking.tasks import waiting_list_tick_task
    from booking.waiting_list import waiting_list_has_waiters

    event_id = Booking.objects.filter(pk=booking_id).values_list("event_id", flat=True).first()
    if event_id is not None and waiting_list_has_waiters(event_id):
        transaction.on_commit(lambda: waiting_list_tick_task.delay(event_id), robust=True)
