"""Booking pages: seat picker (works without JS), checkout, my tickets, cancel."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from booking.models import Booking, BookingStatus
from booking.tests.conftest import admit_users, expire_hold, seat_ids_of
from events.models import Seat, SeatStatus
from queueing.holds import holds_get

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.user = user
    return client


def csrf_of(response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()).group(1)


def test_pages_need_login(client, on_sale_event):
    for url in (f"/events/{on_sale_event.pk}/pick/", f"/events/{on_sale_event.pk}/checkout/", "/my/tickets/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_picker_without_pass_goes_to_the_waiting_room(browser, on_sale_event):
    response = browser.get(f"/events/{on_sale_event.pk}/pick/")

    assert response.status_code == 302
    assert response["Location"] == f"/events/{on_sale_event.pk}/queue/"


def test_picker_renders_the_map_server_side(browser, on_sale_event):
    admit_users(on_sale_event, browser.user)

    response = browser.get(f"/events/{on_sale_event.pk}/pick/")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('name="seat_ids"') == 10
    assert 'aria-label="Section A row A seat 1, 55,000 KRW, available"' in html
    assert 'src="/static/js/seat_picker.js"' in html
    assert "/static/css/booking.css" in html
    assert "<script>" not in html  # CSP: script-src 'self', no inline scripts
    assert f'data-holds-url="/api/events/{on_sale_event.pk}/holds/"' in html


def test_hold_checkout_and_confirm_without_javascript(
    browser, on_sale_event, django_capture_on_commit_callbacks
):
    admit_users(on_sale_event, browser.user)
    a, b = seat_ids_of(on_sale_event, 2)
    picker = browser.get(f"/events/{on_sale_event.pk}/pick/")

    # Each seat button submits the form: press two seats one after the other.
    for seat in (a, b):
        response = browser.post(
            f"/events/{on_sale_event.pk}/pick/", {"seat_ids": [seat], "csrfmiddlewaretoken": csrf_of(picker)}
        )
        assert response.status_code == 302
    assert holds_get(event_id=on_sale_event.pk, user_id=browser.user.pk).seat_ids == [a, b]
    picker = browser.get(f"/events/{on_sale_event.pk}/pick/")
    assert "seat 1, 55,000 KRW, your choice" in picker.content.decode()

    # "Next" goes on to checkout.
    next_step = browser.post(
        f"/events/{on_sale_event.pk}/pick/", {"action": "next", "csrfmiddlewaretoken": csrf_of(picker)}
    )
    assert next_step.status_code == 302
    assert next_step["Location"] == f"/events/{on_sale_event.pk}/checkout/"
    checkout = browser.get(f"/events/{on_sale_event.pk}/checkout/")
    html = checkout.content.decode()
    assert checkout.status_code == 200
    assert "110,000" in html
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html).group(1)
    form = {"csrfmiddlewaretoken": csrf_of(checkout), "idempotency_key": key, "seat_ids": [a, b]}

    with django_capture_on_commit_callbacks(execute=True):
        first = browser.post(f"/events/{on_sale_event.pk}/checkout/", form)
    second = browser.post(f"/events/{on_sale_event.pk}/checkout/", form)  # double submit

    booking = Booking.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/my/tickets/{booking.code}/"
    assert set(Seat.objects.filter(pk__in=[a, b]).values_list("status", flat=True)) == {SeatStatus.SOLD}


def test_next_without_seats_stays_on_the_picker_and_says_why(browser, on_sale_event):
    admit_users(on_sale_event, browser.user)
    picker = browser.get(f"/events/{on_sale_event.pk}/pick/")

    response = browser.post(
        f"/events/{on_sale_event.pk}/pick/",
        {"action": "next", "csrfmiddlewaretoken": csrf_of(picker)},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == f"/events/{on_sale_event.pk}/pick/"
    assert "Choose at least one seat." in response.content.decode()


def test_picker_shows_steps_stage_grades_and_one_clock(browser, on_sale_event):
    admit_users(on_sale_event, browser.user)

    html = browser.get(f"/events/{on_sale_event.pk}/pick/").content.decode()

    steps = re.search(r'<ol class="steps"[^>]*>(.*?)</ol>', html, re.S).group(1)
    assert re.search(r'<li class="is-current" aria-current="step">.*Choose seats', steps)
    assert steps.count("aria-current") == 1
    assert '<p class="stage">Stage</p>' in html
    legend = re.search(r'<ul class="grade-legend".*?</ul>', html, re.S).group(0)
    assert re.search(r'class="swatch tone-1" aria-hidden="true"></span> Section A · R · 55,000 KRW', legend)
    assert "Time left to choose seats:" in html
    assert "Time left to pay" not in html
    assert 'data-role="next"' in html
    for jargon in ("hold", "Hold", "pass ", "Pass "):
        visible = re.sub(r"<[^>]+>", " ", html.split('<main id="main">')[1])
        assert jargon not in visible, jargon


def test_checkout_shows_step_two_and_the_time_left_to_pay(browser, on_sale_event):
    admit_users(on_sale_event, browser.user)
    picker = browser.get(f"/events/{on_sale_event.pk}/pick/")
    browser.post(
        f"/events/{on_sale_event.pk}/pick/",
        {"seat_ids": seat_ids_of(on_sale_event, 1), "csrfmiddlewaretoken": csrf_of(picker)},
    )

    html = browser.get(f"/events/{on_sale_event.pk}/checkout/").content.decode()

    assert re.search(r'<li class="is-current" aria-current="step">.*Review and pay', html)
    assert "Time left to pay:" in html
    assert "Time left to choose seats" not in html
    assert "If time runs out, they go back on sale and you choose again." in html
    assert "Pay 55,000 KRW" in html


def test_seats_that_ran_out_at_checkout_are_explained_in_plain_words(browser, on_sale_event):
    admit_users(on_sale_event, browser.user)
    seat = seat_ids_of(on_sale_event, 1)
    picker = browser.get(f"/events/{on_sale_event.pk}/pick/")
    browser.post(
        f"/events/{on_sale_event.pk}/pick/", {"seat_ids": seat, "csrfmiddlewaretoken": csrf_of(picker)}
    )
    checkout = browser.get(f"/events/{on_sale_event.pk}/checkout/")
    expire_hold(on_sale_event, seat)

    response = browser.post(
        f"/events/{on_sale_event.pk}/checkout/",
        {"csrfmiddlewaretoken": csrf_of(checkout), "seat_ids": seat},
        follow=True,
    )

    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/events/{on_sale_event.pk}/pick/"
    assert "The time to pay for these seats ran out, so they went back on sale." in html
    assert "hold" not in re.sub(r"<[^>]+>", " ", html.split('<main id="main">')[1])


def test_the_new_booking_shows_the_last_step_once(browser, on_sale_event, django_capture_on_commit_callbacks):
    booking = book_via_pages(browser, on_sale_event, django_capture_on_commit_callbacks)

    first = browser.get(f"/my/tickets/{booking.code}/").content.decode()
    again = browser.get(f"/my/tickets/{booking.code}/").content.decode()

    assert re.search(r'<li class="is-current" aria-current="step">.*Ticket', first)
    assert 'class="steps"' not in again  # looked at later: a ticket, not a step


def test_checkout_without_holds_goes_back_to_the_picker(browser, on_sale_event):
    admit_users(on_sale_event, browser.user)

    response = browser.get(f"/events/{on_sale_event.pk}/checkout/")

    assert response.status_code == 302
    assert response["Location"] == f"/events/{on_sale_event.pk}/pick/"


def test_hold_of_a_taken_seat_shows_a_message(browser, user_factory, on_sale_event):
    from queueing.holds import seats_hold

    other = user_factory()
    admit_users(on_sale_event, browser.user, other)
    seat = seat_ids_of(on_sale_event, 1)
    seats_hold(event_id=on_sale_event.pk, user_id=other.pk, seat_ids=seat, hold_seconds=60, cap=4)
    picker = browser.get(f"/events/{on_sale_event.pk}/pick/")

    response = browser.post(
        f"/events/{on_sale_event.pk}/pick/",
        {"seat_ids": seat, "csrfmiddlewaretoken": csrf_of(picker)},
        follow=True,
    )

    assert "just taken" in response.content.decode()


def book_via_pages(browser, event, capture) -> Booking:
    admit_users(event, browser.user)
    picker = browser.get(f"/events/{event.pk}/pick/")
    seat = seat_ids_of(event, 1)
    browser.post(f"/events/{event.pk}/pick/", {"seat_ids": seat, "csrfmiddlewaretoken": csrf_of(picker)})
    checkout = browser.get(f"/events/{event.pk}/checkout/")
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', checkout.content.decode()).group(1)
    with capture(execute=True):
        browser.post(
            f"/events/{event.pk}/checkout/",
            {"csrfmiddlewaretoken": csrf_of(checkout), "idempotency_key": key, "seat_ids": seat},
        )
    return Booking.objects.get(user=browser.user)


def test_my_tickets_detail_with_qr_and_cancel(browser, on_sale_event, django_capture_on_commit_callbacks):
    booking = book_via_pages(browser, on_sale_event, django_capture_on_commit_callbacks)

    listing = browser.get("/my/tickets/")
    assert booking.code in listing.content.decode()
    detail = browser.get(f"/my/tickets/{booking.code}/")
    html = detail.content.decode()
    assert detail.status_code == 200
    assert html.count("<svg") == 1
    assert booking.tickets.get().code in html

    confirm_page = browser.get(f"/my/tickets/{booking.code}/cancel/")
    assert confirm_page.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            f"/my/tickets/{booking.code}/cancel/", {"csrfmiddlewaretoken": csrf_of(confirm_page)}
        )
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED


def test_cancel_page_refuses_a_post_without_csrf(browser, on_sale_event, django_capture_on_commit_callbacks):
    booking = book_via_pages(browser, on_sale_event, django_capture_on_commit_callbacks)

    response = browser.post(f"/my/tickets/{booking.code}/cancel/")

    assert response.status_code == 403
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED


def test_another_users_booking_page_is_404(
    browser, user_factory, on_sale_event, django_capture_on_commit_callbacks
):
    booking = book_via_pages(browser, on_sale_event, django_capture_on_commit_callbacks)
    stranger = Client()
    stranger.force_login(user_factory())

    assert stranger.get(f"/my/tickets/{booking.code}/").status_code == 404
    assert stranger.post(f"/my/tickets/{booking.code}/cancel/").status_code == 404


def test_korean_page_renders(browser, on_sale_event):
    admit_users(on_sale_event, browser.user)

    response = browser.get(f"/events/{on_sale_event.pk}/pick/", HTTP_ACCEPT_LANGUAGE="ko")

    assert response.status_code == 200
    assert '<html lang="ko">' in response.content.decode()
