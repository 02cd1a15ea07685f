"""Cancelling under the event's policy (events/policy.py, booking.services.booking_cancel):
the refund follows the fee table, buyers can't cancel online after the deadline while
staff still can, and the amount is shown before the buyer confirms, recorded on the
booking, given by the API and stated in the cancellation mail, in both languages."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone, translation

from booking.emails import cancellation_email_send
from booking.models import Booking, BookingStatus
from booking.services import booking_cancel
from booking.tests.conftest import book_seats, seat_ids_of
from conftest import make_auth_client
from events.models import Event, Seat, SeatStatus
from ticketing.errors import DomainError

pytestmark = pytest.mark.django_db

TABLE = [
    {"days_before": 9, "fee_percent": 10},
    {"days_before": 6, "fee_percent": 20},
    {"days_before": 2, "fee_percent": 30},
]


def starting_in(event: Event, delta: timedelta) -> Event:
    """The event with the demo's policy, starting ``delta`` from now."""
    Event.objects.filter(pk=event.pk).update(
        starts_at=timezone.now() + delta, cancellation_fees=TABLE, cancellation_deadline_hours=24
    )
    event.refresh_from_db()
    return event


@pytest.fixture
def booking(user, on_sale_event, django_capture_on_commit_callbacks) -> Booking:
    """Two seats at 55,000 (110,000 in all), booked as a buyer books them."""
    with django_capture_on_commit_callbacks(execute=True):
        return book_seats(on_sale_event, user, seat_ids_of(on_sale_event, 2))


@pytest.mark.parametrize(
    ("days", "fee", "refund"),
    [
        (12, "0.00", "110000.00"),  # before the table: free
        (10, "0.00", "110000.00"),
        (9, "11000.00", "99000.00"),  # 10 %
        (7, "11000.00", "99000.00"),
        (6, "22000.00", "88000.00"),  # 20 %
        (3, "22000.00", "88000.00"),
        (2, "33000.00", "77000.00"),  # 30 %, still before the deadline (24 h)
    ],
)
def test_the_refund_follows_the_fee_table(days, fee, refund, user, booking, on_sale_event):
    starting_in(on_sale_event, timedelta(days=days))

    response = make_auth_client(user).post(f"/api/bookings/{booking.code}/cancel/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["total"], body["cancellation_fee"], body["refund"]) == (
        "cancelled",
        "110000.00",
        fee,
        refund,
    )
    stored = Booking.objects.get(pk=booking.pk)
    assert (stored.cancellation_fee, stored.refund) == (Decimal(fee), Decimal(refund))
    assert set(
        Seat.objects.filter(pk__in=seat_ids_of(on_sale_event, 2)).values_list("status", flat=True)
    ) == {SeatStatus.AVAILABLE}


def test_a_confirmed_booking_has_no_refund_yet(user, booking):
    body = make_auth_client(user).get(f"/api/bookings/{booking.code}/").json()
    assert (body["cancellation_fee"], body["refund"]) == (None, None)


DEADLINE_PASSED = {
    "en": "Online cancellation for this event closed at",
    "ko": "이 공연의 온라인 취소는",
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_after_the_deadline_buyers_cannot_cancel_online(lang, user, booking, on_sale_event):
    starting_in(on_sale_event, timedelta(hours=23))  # the deadline (24 h before) has passed
    client = make_auth_client(user)

    response = client.post(f"/api/bookings/{booking.code}/cancel/", HTTP_ACCEPT_LANGUAGE=lang)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "not_cancellable"
    assert body["detail"].startswith(DEADLINE_PASSED[lang])
    assert ".." not in body["detail"]  # "10:35 p.m. Please", not "p.m.. Please"
    assert Booking.objects.get(pk=booking.pk).status == BookingStatus.CONFIRMED
    assert set(
        Seat.objects.filter(pk__in=seat_ids_of(on_sale_event, 2)).values_list("status", flat=True)
    ) == {SeatStatus.SOLD}


def test_staff_can_still_cancel_after_the_deadline_and_the_table_applies(staff_user, booking, on_sale_event):
    starting_in(on_sale_event, timedelta(hours=23))

    cancelled = booking_cancel(booking=booking, by_user=staff_user)

    assert cancelled.status == BookingStatus.CANCELLED
    assert (cancelled.cancellation_fee, cancelled.refund) == (Decimal("33000"), Decimal("77000.00"))


def test_the_buyers_own_rules_still_hold_under_a_policy(user, booking, on_sale_event):
    """The policy adds a refusal; the existing ones are kept (the event has started)."""
    Event.objects.filter(pk=on_sale_event.pk).update(
        starts_at=timezone.now() - timedelta(minutes=1), cancellation_deadline_hours=0
    )
    with translation.override("en"), pytest.raises(DomainError) as refused:
        booking_cancel(booking=booking, by_user=user)
    assert refused.value.code == "not_cancellable"
    assert refused.value.detail == "The event has started; this booking can't be cancelled."


CANCEL_PAGE = {
    "en": (
        "You paid",
        "110,000 KRW",
        "Cancellation fee",
        "22,000 KRW",
        "20% of the ticket price, 5 days before the show",
        "Refund",
        "88,000 KRW",
    ),
    "ko": (
        "결제 금액",
        "110,000원",
        "취소수수료",
        "22,000원",
        "티켓 금액의 20%, 관람일 5일 전",
        "환불 금액",
        "88,000원",
    ),
}


def page_client(user: Any, lang: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(user)
    return client


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_cancel_page_shows_the_refund_before_the_buyer_confirms(lang, user, booking, on_sale_event):
    starting_in(on_sale_event, timedelta(days=5))

    html = page_client(user, lang).get(f"/my/tickets/{booking.code}/cancel/").content.decode()

    for text in CANCEL_PAGE[lang]:
        assert text in html, text
    assert '<form method="post">' in html
    assert Booking.objects.get(pk=booking.pk).status == BookingStatus.CONFIRMED  # nothing happened yet


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_after_the_deadline_the_pages_say_to_contact_the_organiser(lang, user, booking, on_sale_event):
    starting_in(on_sale_event, timedelta(hours=23))
    client = page_client(user, lang)

    cancel_page = client.get(f"/my/tickets/{booking.code}/cancel/").content.decode()
    detail_page = client.get(f"/my/tickets/{booking.code}/").content.decode()

    assert DEADLINE_PASSED[lang] in cancel_page
    assert ".. " not in cancel_page
    assert '<form method="post">' not in cancel_page
    closed = {
        "en": "Online cancellation has closed for this event: please contact the organiser.",
        "ko": "이 공연의 온라인 취소가 마감되었습니다. 주최 측에 문의해 주세요.",
    }[lang]
    assert closed in detail_page
    assert f"/my/tickets/{booking.code}/cancel/" not in detail_page


MAIL = {
    "en": ("Cancellation fee: 11,000 KRW", "Refund: 99,000 KRW"),
    "ko": ("취소수수료: 11,000원", "환불 금액: 99,000원"),
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_cancellation_mail_states_the_refund(
    lang, user, booking, on_sale_event, django_capture_on_commit_callbacks
):
    Booking.objects.filter(pk=booking.pk).update(language=lang)
    starting_in(on_sale_event, timedelta(days=8))
    with django_capture_on_commit_callbacks(execute=False):
        booking_cancel(booking=booking, by_user=user)

    assert cancellation_email_send(booking_id=booking.pk)

    message = mail.outbox[-1]
    html = message.alternatives[0][0]
    for text in MAIL[lang]:
        assert text in message.body, text
    assert MAIL[lang][1].split(": ")[1] in html


def test_the_booking_page_shows_what_was_refunded(user, booking, on_sale_event):
    starting_in(on_sale_event, timedelta(days=8))
    booking_cancel(booking=booking, by_user=user)

    html = page_client(user, "en").get(f"/my/tickets/{booking.code}/").content.decode()

    assert "Cancellation fee</dt><dd>11,000 KRW" in html
    assert "Refund</dt><dd>99,000 KRW" in html


def test_the_booking_fee_is_charged_per_ticket_and_refunded_with_the_tickets(
    user, on_sale_event, django_capture_on_commit_callbacks
):
    """A 2,000 fee per ticket: two seats at 55,000 cost 114,000 at checkout and in the
    booking; 6 days before the show the table's 20 % is of the tickets' 110,000 only."""
    Event.objects.filter(pk=on_sale_event.pk).update(booking_fee=Decimal("2000"))
    with django_capture_on_commit_callbacks(execute=True):
        booked = book_seats(on_sale_event, user, seat_ids_of(on_sale_event, 2))
    assert booked.total == Decimal("114000")
    starting_in(on_sale_event, timedelta(days=6))

    response = make_auth_client(user).post(f"/api/bookings/{booked.code}/cancel/")

    body = response.json()
    assert (body["total"], body["cancellation_fee"], body["refund"]) == ("114000.00", "22000.00", "92000.00")


def test_checkout_shows_the_booking_fee_in_the_total(user, on_sale_event, client):
    from booking.tests.conftest import admit_users
    from queueing.holds import seats_hold

    Event.objects.filter(pk=on_sale_event.pk).update(booking_fee=Decimal("2000"))
    admit_users(on_sale_event, user)
    seats_hold(
        event_id=on_sale_event.pk,
        user_id=user.pk,
        seat_ids=seat_ids_of(on_sale_event, 2),
        hold_seconds=60,
        cap=4,
    )
    client.force_login(user)

    page = client.get(f"/events/{on_sale_event.pk}/checkout/").content.decode()

    assert "Booking fee" in page
    assert "114,000" in page


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_cancel_form_applies_the_fee_table(lang, user, booking, on_sale_event):
    """Through the pages: the buyer confirms on the cancel page, the booking records the
    fee of the table (20 % five days before) and its page shows the refund."""
    starting_in(on_sale_event, timedelta(days=5))
    client = Client(HTTP_ACCEPT_LANGUAGE=lang, enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(f"/my/tickets/{booking.code}/cancel/").content.decode()

    response = client.post(
        f"/my/tickets/{booking.code}/cancel/", {"csrfmiddlewaretoken": csrf_of(page)}, follow=True
    )

    stored = Booking.objects.get(pk=booking.pk)
    assert (stored.status, stored.cancellation_fee, stored.refund) == (
        BookingStatus.CANCELLED,
        Decimal("22000"),
        Decimal("88000"),
    )
    html = response.content.decode()
    refund = {"en": "88,000 KRW", "ko": "88,000원"}[lang]
    assert refund in html


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_cancel_form_sent_after_the_deadline_is_refused(lang, user, booking, on_sale_event):
    """A cancel page opened before the deadline and sent after it: refused, and said so."""
    starting_in(on_sale_event, timedelta(days=5))
    client = Client(HTTP_ACCEPT_LANGUAGE=lang, enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(f"/my/tickets/{booking.code}/cancel/").content.decode()
    starting_in(on_sale_event, timedelta(hours=23))

    response = client.post(
        f"/my/tickets/{booking.code}/cancel/", {"csrfmiddlewaretoken": csrf_of(page)}, follow=True
    )

    assert response.redirect_chain[-1][0] == f"/my/tickets/{booking.code}/"
    assert DEADLINE_PASSED[lang] in response.content.decode()
    stored = Booking.objects.get(pk=booking.pk)
    assert (stored.status, stored.refund) == (BookingStatus.CONFIRMED, None)
    assert set(
        Seat.objects.filter(pk__in=seat_ids_of(on_sale_event, 2)).values_list("status", flat=True)
    ) == {SeatStatus.SOLD}
