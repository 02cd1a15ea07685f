"""Ticket and cancellation mails: one per booking, none on rollback, none twice."""

from __future__ import annotations

import pytest
from django.core import mail

from booking.emails import qr_content_id
from booking.models import Booking
from booking.services import booking_cancel, booking_confirm
from booking.tasks import send_cancellation_email, send_ticket_email
from booking.tests.conftest import admit_users, seat_ids_of
from events.models import Seat, SeatStatus
from queueing.holds import seats_hold
from ticketing.errors import DomainError

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def held(event, user, seat_ids):
    admit_users(event, user)
    seats_hold(event_id=event.pk, user_id=user.pk, seat_ids=seat_ids, hold_seconds=60, cap=10)


def confirm(user, event, seat_ids, capture, **kwargs):
    with capture(execute=True):
        booking, _ = booking_confirm(user_id=user.pk, event_id=event.pk, seat_ids=seat_ids, **kwargs)
    return booking


def test_one_ticket_mail_per_confirmed_booking(user, on_sale_event, django_capture_on_commit_callbacks):
    seats = seat_ids_of(on_sale_event, 2)
    held(on_sale_event, user, seats)

    booking = confirm(user, on_sale_event, seats, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]
    assert booking.code in message.subject
    assert "Test concert" in message.subject
    for text in (message.body, message.alternatives[0][0]):
        assert booking.code in text
        assert "Section A, row A-1" in text
        assert "Section A, row A-2" in text
        assert "Main Hall" in text
        assert "110,000" in text
        assert "http://127.0.0.1:8000/my/tickets/" in text
    html = message.alternatives[0][0]
    tickets = list(booking.tickets.all())
    # One inline QR PNG per ticket, referenced from the HTML by Content-ID.
    images = [part for part in message.attachments if getattr(part, "get_content_type", None)]
    assert sorted(image["Content-ID"] for image in images) == sorted(
        f"<{qr_content_id(t.code)}>" for t in tickets
    )
    assert all(image.get_payload(decode=True).startswith(b"\x89PNG") for image in images)
    for ticket in tickets:
        assert f"cid:{qr_content_id(ticket.code)}" in html
        assert ticket.code in message.body
    assert "multipart/related" in message.message().as_string()
    booking.refresh_from_db()
    assert booking.emailed_at is not None


def test_no_mail_when_the_confirm_rolls_back(user, on_sale_event, django_capture_on_commit_callbacks):
    a, b = seat_ids_of(on_sale_event, 2)
    held(on_sale_event, user, [a, b])
    Seat.objects.filter(pk=b).update(status=SeatStatus.SOLD)

    with pytest.raises(DomainError), django_capture_on_commit_callbacks(execute=True) as callbacks:
        booking_confirm(user_id=user.pk, event_id=on_sale_event.pk, seat_ids=[a, b])

    assert callbacks == []
    assert mail.outbox == []
    assert not Booking.objects.exists()


def test_task_run_twice_sends_once(user, on_sale_event, django_capture_on_commit_callbacks):
    seats = seat_ids_of(on_sale_event, 1)
    held(on_sale_event, user, seats)
    booking = confirm(user, on_sale_event, seats, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1

    # A redelivered message: the broker hands the same task to a worker again.
    send_ticket_email.delay(booking.pk)
    send_ticket_email.apply(args=[booking.pk])

    assert len(mail.outbox) == 1


def test_idempotent_confirm_retry_sends_no_second_mail(
    user, on_sale_event, django_capture_on_commit_callbacks
):
    seats = seat_ids_of(on_sale_event, 1)
    held(on_sale_event, user, seats)
    confirm(user, on_sale_event, seats, django_capture_on_commit_callbacks, idempotency_key="k1")
    confirm(user, on_sale_event, seats, django_capture_on_commit_callbacks, idempotency_key="k1")

    assert len(mail.outbox) == 1


def test_mail_in_the_buyers_language(user, on_sale_event, django_capture_on_commit_callbacks):
    seats = seat_ids_of(on_sale_event, 1)
    held(on_sale_event, user, seats)

    booking = confirm(user, on_sale_event, seats, django_capture_on_commit_callbacks, language="ko")

    assert booking.language == "ko"
    assert len(mail.outbox) == 1
    assert '<html lang="ko">' in mail.outbox[0].alternatives[0][0]


def test_cancellation_mail_once(user, on_sale_event, django_capture_on_commit_callbacks):
    seats = seat_ids_of(on_sale_event, 1)
    held(on_sale_event, user, seats)
    booking = confirm(user, on_sale_event, seats, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking=booking, by_user=user)
    send_cancellation_email.apply(args=[booking.pk])

    assert len(mail.outbox) == 2
    cancellation = mail.outbox[1]
    assert booking.code in cancellation.subject
    assert "cancelled" in cancellation.body
    assert "Section A, row A-1" in cancellation.body
    booking.refresh_from_db()
    assert booking.cancellation_emailed_at is not None


def test_unsent_mails_are_requeued(user, on_sale_event, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from booking.tasks import requeue_unsent_emails

    seats = seat_ids_of(on_sale_event, 1)
    held(on_sale_event, user, seats)
    # The broker was down at commit: the booking exists, its mail was never queued.
    booking, _ = booking_confirm(user_id=user.pk, event_id=on_sale_event.pk, seat_ids=seats)
    Booking.objects.filter(pk=booking.pk).update(confirmed_at=timezone.now() - timedelta(hours=1))
    assert mail.outbox == []

    assert requeue_unsent_emails() == 1
    assert requeue_unsent_emails() == 0
    assert len(mail.outbox) == 1


def test_ticket_mail_bytes_parse_back_into_its_parts(user, on_sale_event, django_capture_on_commit_callbacks):
    """The multipart boundaries are set by TicketEmail.message(), not the email package:
    what a mail server receives still parses into the text, the HTML and the QR codes."""
    from email import message_from_bytes, policy

    seats = seat_ids_of(on_sale_event, 2)
    held(on_sale_event, user, seats)
    booking = confirm(user, on_sale_event, seats, django_capture_on_commit_callbacks, language="ko")

    sent = mail.outbox[0]
    parsed = message_from_bytes(sent.message().as_bytes(), policy=policy.default)
    alternative, *images = parsed.iter_parts()
    text, html = alternative.iter_parts()
    assert parsed.get_content_type() == "multipart/related"
    assert (text.get_content(), html.get_content()) == (sent.body, sent.alternatives[0][0])
    assert sorted(image["Content-ID"] for image in images) == sorted(
        f"<{qr_content_id(ticket.code)}>" for ticket in booking.tickets.all()
    )
    assert [image.get_content() for image in images] == [
        part.get_payload(decode=True) for part in sent.attachments
    ]
