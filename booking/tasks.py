"""Celery tasks of the booking app.

``send_*`` tasks are routed to the ``mail`` queue (settings.CELERY_TASK_ROUTES), so a
mail backlog never delays admission. They take ids, are acked late and retried with
backoff, and are idempotent (see booking.emails): a broker may deliver them twice.
"""

from __future__ import annotations

import logging

from celery import shared_task

from booking.emails import cancellation_email_send, ticket_email_send
from booking.services import seatmaps_reconcile, unsent_emails_requeue

logger = logging.getLogger(__name__)

MAIL_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
    "ignore_result": True,
}


@shared_task(name="booking.tasks.send_ticket_email", **MAIL_TASK_OPTIONS)
def send_ticket_email(booking_id: int) -> bool:
    return ticket_email_send(booking_id=booking_id)


@shared_task(name="booking.tasks.send_cancellation_email", **MAIL_TASK_OPTIONS)
def send_cancellation_email(booking_id: int) -> bool:
    return cancellation_email_send(booking_id=booking_id)


@shared_task(name="booking.tasks.reconcile_seatmaps", ignore_result=True)
def reconcile_seatmaps() -> dict[int, int]:
    """Every 30 s: repair seat maps and holds of events on sale from the database."""
    result = seatmaps_reconcile()
    logger.info("seat maps reconciled: %s", result)
    return result


@shared_task(name="booking.tasks.requeue_unsent_emails", ignore_result=True)
def requeue_unsent_emails() -> int:
    """Every minute: queue again ticket/cancellation mails that never went out."""
    count = unsent_emails_requeue()
    if count:
        logger.warning("re-queued %d unsent booking e-mails", count)
    return count
