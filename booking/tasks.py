"""Celery tasks of the booking app.

``send_*`` tasks are routed to the ``mail`` queue (settings.CELERY_TASK_ROUTES), so a
mail backlog never delays admission. They take ids, are acked late and retried with
backoff, and are idempotent (see booking.emails): a broker may deliver them twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from booking.emails import cancellation_email_send, ticket_email_send
from booking.selectors import bookings_with_unsent_mail

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


EMAIL_REQUEUE_AFTER = timedelta(minutes=10)
EMAIL_REQUEUE_BATCH = 200


@shared_task(name="booking.tasks.requeue_unsent_emails", ignore_result=True)
def requeue_unsent_emails() -> int:
    """Every minute: queue again the ticket and cancellation mails that should have gone
    out long ago (the broker was down at commit, or every retry failed). The send tasks
    are idempotent, so a mail still in the queue is never sent twice. Returns how many."""
    ticket_ids, cancel_ids = bookings_with_unsent_mail(
        before=timezone.now() - EMAIL_REQUEUE_AFTER, limit=EMAIL_REQUEUE_BATCH
    )
    for booking_id in ticket_ids:
        send_ticket_email.delay(booking_id)
    for booking_id in cancel_ids:
        send_cancellation_email.delay(booking_id)
    count = len(ticket_ids) + len(cancel_ids)
    if count:
        logger.warning("re-queued %d unsent booking e-mails", count)
    return count


@shared_task(name="booking.tasks.send_waiting_list_offer_email", **MAIL_TASK_OPTIONS)
def send_waiting_list_offer_email(offer_id: int) -> bool:
    from booking.emails import waiting_list_offer_email_send

    return waiting_list_offer_email_send(offer_id=offer_id)


@shared_task(name="booking.tasks.send_waiting_list_expired_email", **MAIL_TASK_OPTIONS)
def send_waiting_list_expired_email(offer_id: int) -> bool:
    from booking.emails import waiting_list_expired_email_send

    return waiting_list_expired_email_send(offer_id=offer_id)


@shared_task(name="booking.tasks.waiting_list_tick", ignore_result=True)
def waiting_list_tick_task(event_id: int, returned_seat_ids: list[int] | None = None) -> None:
    """One event's waiting-list tick, right after a change that returned seats."""
    from booking.waiting_list import waiting_list_tick

    waiting_list_tick(event_id, returned_seat_ids=returned_seat_ids)


@shared_task(name="booking.tasks.tick_waiting_lists", ignore_result=True)
def tick_waiting_lists() -> int:
    """Every 2 s (Celery beat): the tick of every event whose waiting list is live, so
    offers expire on time and seats that came back without a write (a lapsed hold) are
    offered. Returns how many lists were ticked."""
    from booking.waiting_list import waiting_list_event_ids, waiting_list_tick

    event_ids = waiting_list_event_ids()
    for event_id in event_ids:
        try:
            waiting_list_tick(event_id)
        except Exception:
            logger.exception("waiting list of event %s: tick failed", event_id)
    return len(event_ids)
