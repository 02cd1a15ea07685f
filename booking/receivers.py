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
