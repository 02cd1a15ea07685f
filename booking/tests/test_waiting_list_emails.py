"""Waiting-list mails: the offer (seats, together or apart, deadline, link) and its expiry,
in the language the buyer joined in, each sent once however often its task runs.

The offers come from real cancellations: the list's tick runs on commit (eager Celery),
so these tests commit their transactions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import formats, timezone, translation

from booking.emails import waiting_list_expired_email_send, waiting_list_offer_email_send
from booking.models import WaitingListOffer, WaitingListOfferState
from booking.services import booking_cancel
from booking.tasks import send_waiting_list_expired_email, send_waiting_list_offer_email
from booking.tests.conftest import sell_out
from booking.waiting_list import offer_accept, waiting_list_join, waiting_list_tick

pytestmark = pytest.mark.django_db(transaction=True)


def join(event: Any, user: Any, party_size: int, language: str = "en") -> None:
    waiting_list_join(event_id=event.pk, user_id=user.pk, party_size=party_size, language=language)


def cancel(booking: Any) -> None:
    booking_cancel(booking=booking, by_user=booking.user)


def offer_mails(user: Any) -> list[Any]:
    """Mails to ``user`` (the cancellation mails go to the early buyers)."""
    return [message for message in mail.outbox if message.to == [user.email]]


def deadline_text(offer: WaitingListOffer, language: str) -> str:
    """The deadline as the mail must show it: in the site's time zone, in the language's format."""
    with translation.override(language):
        return formats.date_format(timezone.localtime(offer.expires_at), "DATETIME_FORMAT")


def test_offer_mail_in_english(user, sold_out_event):
    join(sold_out_event, user, 2)

    cancel(sold_out_event.sell_out_bookings[2])  # row B, seats 4-5

    offer = WaitingListOffer.objects.get(entry__user=user)
    [message] = offer_mails(user)
    html = message.alternatives[0][0]
    assert "Test concert" in message.subject
    assert offer.expires_at.astimezone(timezone.get_default_timezone()).strftime("%H:%M") in message.subject
    assert '<html lang="en">' in html
    for text in (message.body, html):
        assert f"Hello {user.name}," in text
        assert "Section A, row B-4" in text
        assert "Section A, row B-5" in text
        assert "The seats are together." in text
        assert "NOT together" not in text
        assert deadline_text(offer, "en") in text
        assert "(KST)" in text  # the site's zone, Asia/Seoul
        assert f"http://127.0.0.1:8000/events/{sold_out_event.pk}/waiting-list/" in text
        # Decline from the mail: a link to the page's decline buttons (never a declining GET).
        assert f"http://127.0.0.1:8000/events/{sold_out_event.pk}/waiting-list/#decline" in text
        assert "Main Hall" in text
    assert "To decline them:" in message.body
    assert ">Decline the seats</a>" in html
    offer.refresh_from_db()
    assert offer.emailed_at is not None


def test_offer_mail_in_korean_when_the_buyer_joined_in_korean(user, sold_out_event):
    join(sold_out_event, user, 2, language="ko")

    cancel(sold_out_event.sell_out_bookings[2])

    offer = WaitingListOffer.objects.get(entry__user=user)
    [message] = offer_mails(user)
    html = message.alternatives[0][0]
    # Rendered under Korean: the page language and the Korean date format (ticketing/formats/ko).
    assert '<html lang="ko">' in html
    korean_deadline = deadline_text(offer, "ko")
    assert "년" in korean_deadline
    assert korean_deadline in message.body
    assert korean_deadline in html
    assert deadline_text(offer, "en") not in message.body
    assert "거절하려면:" in message.body
    assert ">좌석 거절하기</a>" in html


def test_offer_mail_says_when_the_seats_are_not_together(user, user_factory, event_factory, eager_celery):
    event = event_factory(title="Small hall")
    event.__class__.objects.filter(pk=event.pk).update(waiting_list_gather_seconds=0)
    bookings = sell_out(event, user_factory, per_buyer=1)
    join(event, user, 2)

    cancel(bookings[0])  # row A seat 1
    cancel(bookings[2])  # row A seat 3: apart from seat 1

    [message] = offer_mails(user)
    for text in (message.body, message.alternatives[0][0]):
        assert "Section A, row A-1" in text
        assert "Section A, row A-3" in text
        assert "NOT together" in text
        assert "keep your place in line for seats together" in text


def test_offer_mail_sent_once_even_if_the_task_runs_again(user, sold_out_event):
    join(sold_out_event, user, 2)
    cancel(sold_out_event.sell_out_bookings[2])
    offer = WaitingListOffer.objects.get(entry__user=user)
    assert len(offer_mails(user)) == 1

    # A redelivered message: the broker hands the same task to a worker again.
    send_waiting_list_offer_email.delay(offer.pk)
    send_waiting_list_offer_email.apply(args=[offer.pk])

    assert len(offer_mails(user)) == 1
    assert waiting_list_offer_email_send(offer_id=offer.pk) is False


def test_no_offer_mail_for_an_offer_already_answered(user, sold_out_event):
    join(sold_out_event, user, 2)
    cancel(sold_out_event.sell_out_bookings[2])
    offer = WaitingListOffer.objects.get(entry__user=user)
    # As if the mail task had not run yet when the buyer accepted on the site.
    WaitingListOffer.objects.filter(pk=offer.pk).update(emailed_at=None)
    offer_accept(event_id=sold_out_event.pk, user_id=user.pk)

    assert waiting_list_offer_email_send(offer_id=offer.pk) is False


def test_expiry_mail_sent_once_even_if_the_task_runs_twice(user, sold_out_event):
    join(sold_out_event, user, 2, language="ko")
    cancel(sold_out_event.sell_out_bookings[2])
    offer = WaitingListOffer.objects.get(entry__user=user)
    later = offer.expires_at + timedelta(seconds=1)

    waiting_list_tick(sold_out_event.pk, now=later)
    waiting_list_tick(sold_out_event.pk, now=later)  # the tick again: nothing more to expire
    send_waiting_list_expired_email.apply(args=[offer.pk])  # a redelivered task
    send_waiting_list_expired_email.apply(args=[offer.pk])

    offer.refresh_from_db()
    assert offer.state == WaitingListOfferState.EXPIRED
    assert offer.expiry_emailed_at is not None
    _offer_mail, expiry_mail = offer_mails(user)
    assert "Test concert" in expiry_mail.subject
    assert '<html lang="ko">' in expiry_mail.alternatives[0][0]
    assert deadline_text(offer, "ko") in expiry_mail.body
    assert f"http://127.0.0.1:8000/events/{sold_out_event.pk}/" in expiry_mail.body
    assert waiting_list_expired_email_send(offer_id=offer.pk) is False


def test_expiry_mail_in_english(user, sold_out_event):
    join(sold_out_event, user, 2)
    cancel(sold_out_event.sell_out_bookings[2])
    offer = WaitingListOffer.objects.get(entry__user=user)

    waiting_list_tick(sold_out_event.pk, now=offer.expires_at + timedelta(seconds=1))

    _, message = offer_mails(user)
    html = message.alternatives[0][0]
    assert '<html lang="en">' in html
    for text in (message.body, html):
        assert "were not accepted by" in text
        assert "went to the next person on the waiting list" in text
        assert deadline_text(offer, "en") in text
        assert f"http://127.0.0.1:8000/events/{sold_out_event.pk}/" in text


def test_no_expiry_mail_for_an_offer_that_did_not_expire(user, sold_out_event):
    join(sold_out_event, user, 2)
    cancel(sold_out_event.sell_out_bookings[2])
    offer = WaitingListOffer.objects.get(entry__user=user)

    assert waiting_list_expired_email_send(offer_id=offer.pk) is False
    assert len(offer_mails(user)) == 1
