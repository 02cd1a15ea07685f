"""The waiting-list page as a buyer uses it: join with a party size, see the place in
line, get an offer after a cancellation (page and banner), accept and book at checkout,
decline (the next entry is offered), decline seats apart keeping the place. Real Redis
and database; forms posted with CSRF enforced.

Tests in which a cancellation hands seats to the list run with committed transactions:
the list's tick runs on commit (eager Celery)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from booking.models import (
    Booking,
    BookingStatus,
    WaitingListEntry,
    WaitingListOffer,
    WaitingListOfferState,
    WaitingListState,
)
from booking.services import booking_cancel
from booking.tests.conftest import sell_out
from booking.waiting_list import waiting_list_join, waiting_list_tick
from events.models import Seat, SeatStatus
from queueing.holds import holds_get
from queueing.line import pass_expires_at_ms

pytestmark = pytest.mark.django_db


def csrf_of(response: Any) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()).group(1)


def browser_for(user: Any) -> Client:
    """A logged-in browser whose POSTs need the page's CSRF token, as a real one's do."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.user = user
    return client


def page_url(event: Any) -> str:
    return f"/events/{event.pk}/waiting-list/"


def post_action(browser: Client, event: Any, action: str, **fields: Any) -> Any:
    """Loads the page and submits one of its forms (the token comes from the page)."""
    page = browser.get(page_url(event))
    return browser.post(page_url(event), {"csrfmiddlewaretoken": csrf_of(page), "action": action, **fields})


def join(browser: Client, event: Any, party_size: int) -> None:
    response = post_action(browser, event, "join", party_size=party_size)
    assert response.status_code == 302
    assert response["Location"] == page_url(event)


def cancel(booking: Booking) -> None:
    """The booking's owner cancels it (its seats go to the waiting list on commit)."""
    booking_cancel(booking=booking, by_user=booking.user)


def seat_labels(html: str) -> list[str]:
    return re.findall(r"Section A, row [AB]-\d", html)


@pytest.fixture
def buyer(user_factory: Any) -> Client:
    return browser_for(user_factory(name="Waiting Buyer"))


def test_page_needs_login(client, sold_out_event):
    response = client.get(page_url(sold_out_event))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_join_from_the_page_with_csrf_and_see_the_place(buyer, user_factory, sold_out_event):
    page = buyer.get(page_url(sold_out_event))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Join the waiting list" in html
    assert "yours alone for 15 minutes" in html  # event.waiting_list_offer_minutes
    assert "in the order people joined the list" in html
    assert "seats together in one row" in html
    # 1 up to what the buyer may still buy (max_tickets_per_user, nothing bought yet).
    sizes = re.findall(r'<option value="(\d+)"', html)
    assert sizes == [str(n) for n in range(1, sold_out_event.max_tickets_per_user + 1)]

    forged = buyer.post(page_url(sold_out_event), {"action": "join", "party_size": 2})
    assert forged.status_code == 403
    assert not WaitingListEntry.objects.exists()

    join(buyer, sold_out_event, 2)
    second = browser_for(user_factory())
    join(second, sold_out_event, 1)

    html = buyer.get(page_url(sold_out_event)).content.decode()
    assert "You are on the waiting list" in html
    assert re.search(r'data-field="position">1<', html)
    assert re.search(r"Seats needed</dt><dd>2<", html)
    assert "Leave the waiting list" in html
    assert re.search(r'data-field="position">2<', second.get(page_url(sold_out_event)).content.decode())
    entry = WaitingListEntry.objects.get(user=buyer.user)
    assert (entry.party_size, entry.state, entry.language) == (2, WaitingListState.WAITING, "en")


def test_change_party_size_keeps_the_place_then_leave(buyer, user_factory, sold_out_event):
    join(buyer, sold_out_event, 1)
    join(browser_for(user_factory()), sold_out_event, 1)

    join(buyer, sold_out_event, 3)

    html = buyer.get(page_url(sold_out_event)).content.decode()
    assert "Party size changed to 3. You keep your place in line." in html
    assert re.search(r'data-field="position">1<', html)
    assert re.search(r"Seats needed</dt><dd>3<", html)

    response = post_action(buyer, sold_out_event, "leave")

    assert response.status_code == 302
    html = buyer.get(page_url(sold_out_event)).content.decode()
    assert "You left the waiting list." in html
    assert "Join the waiting list again" in html
    assert WaitingListEntry.objects.get(user=buyer.user).state == WaitingListState.LEFT


def test_a_party_over_the_cap_is_refused_with_a_message(buyer, sold_out_event):
    response = post_action(buyer, sold_out_event, "join", party_size=sold_out_event.max_tickets_per_user + 1)

    assert response.status_code == 302
    html = buyer.get(page_url(sold_out_event)).content.decode()
    assert "Choose how many seats you need: from 1 to 4." in html
    assert not WaitingListEntry.objects.exists()


def test_not_joinable_while_seats_are_on_sale(buyer, on_sale_event):
    html = buyer.get(page_url(on_sale_event)).content.decode()

    assert "Seats are on sale right now" in html
    assert f'href="/events/{on_sale_event.pk}/queue/"' in html
    assert 'name="party_size"' not in html

    # A refusal of the service (DomainError not_sold_out) is a message, not a 500.
    response = post_action(buyer, on_sale_event, "join", party_size=1)
    assert response.status_code == 302
    html = buyer.get(page_url(on_sale_event)).content.decode()
    assert "Seats are still on sale" in html
    assert not WaitingListEntry.objects.exists()


def test_answering_without_an_offer_is_a_message(buyer, sold_out_event):
    join(buyer, sold_out_event, 1)

    for action in ("accept", "decline"):
        response = post_action(buyer, sold_out_event, action)
        assert response.status_code == 302
        assert response["Location"] == page_url(sold_out_event)
        assert (
            "No seats are offered to you right now." in buyer.get(page_url(sold_out_event)).content.decode()
        )


def test_entry_points_on_the_event_page_and_the_waiting_room(buyer, sold_out_event, on_sale_event):
    link = f'href="/events/{sold_out_event.pk}/waiting-list/"'

    detail = buyer.get(f"/events/{sold_out_event.pk}/").content.decode()
    room = buyer.get(f"/events/{sold_out_event.pk}/queue/").content.decode()
    anonymous = Client().get(f"/events/{sold_out_event.pk}/").content.decode()

    for html in (detail, room, anonymous):
        assert link in html
        assert "Join the waiting list" in html
    # Seats on sale: nothing to wait for.
    assert "waiting-list" not in buyer.get(f"/events/{on_sale_event.pk}/").content.decode()

    join(buyer, sold_out_event, 1)
    detail = buyer.get(f"/events/{sold_out_event.pk}/").content.decode()
    assert link in detail
    assert "Your place on the waiting list" in detail


def test_removed_buyer_sees_it(buyer, staff_user, sold_out_event):
    from booking.waiting_list import waiting_list_entry_remove

    join(buyer, sold_out_event, 1)
    entry = WaitingListEntry.objects.get(user=buyer.user)
    waiting_list_entry_remove(event_id=sold_out_event.pk, entry_id=entry.pk, by_id=staff_user.pk)

    html = buyer.get(page_url(sold_out_event)).content.decode()
    assert "The organiser removed you from this waiting list." in html
    assert 'name="party_size"' not in html


# --- Offers (a cancellation hands seats to the list on commit) ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_cancellation_offer_banner_accept_and_book_at_checkout(buyer, user_factory, sold_out_event):
    join(buyer, sold_out_event, 2)
    returned = sold_out_event.sell_out_bookings[2]  # row B, seats 4-5

    cancel(returned)

    offer = WaitingListOffer.objects.get(entry__user=buyer.user)
    assert offer.state == WaitingListOfferState.OUT
    page = buyer.get(page_url(sold_out_event))
    html = page.content.decode()
    assert "Seats are offered to you" in html
    assert seat_labels(html) == ["Section A, row B-4", "Section A, row B-5"]
    assert "The seats are together." in html
    assert "NOT together" not in html
    assert f'data-expires-at="{int(offer.expires_at.timestamp() * 1000)}"' in html
    assert 'data-role="countdown"' in html
    assert 'src="/static/js/waiting_list.js"' in html
    assert "<script>" not in html  # CSP: script-src 'self', no inline scripts
    assert "Decline and keep my place" not in html  # only for seats apart
    # The banner on another page (not on the waiting-list page itself).
    home = buyer.get("/").content.decode()
    assert 'class="offer-banner"' in home
    assert f'href="{page_url(sold_out_event)}"' in home
    assert "Seats for Test concert are offered to you." in home
    assert 'class="offer-banner"' not in html
    # Somebody else sees no banner.
    assert 'class="offer-banner"' not in browser_for(user_factory()).get("/").content.decode()

    # The accepted offer gives holds and no waiting-room pass: checkout takes them.
    response = buyer.post(
        page_url(sold_out_event), {"csrfmiddlewaretoken": csrf_of(page), "action": "accept"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/events/{sold_out_event.pk}/checkout/"
    assert pass_expires_at_ms(event_id=sold_out_event.pk, user_id=buyer.user.pk) is None
    assert sorted(holds_get(event_id=sold_out_event.pk, user_id=buyer.user.pk).seat_ids) == offer.seat_ids
    checkout = buyer.get(response["Location"])
    html = checkout.content.decode()
    assert checkout.status_code == 200
    assert seat_labels(html) == ["Section A, row B-4", "Section A, row B-5"]
    assert 'class="offer-banner"' not in html  # the offer is closed
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html).group(1)
    booked = buyer.post(
        checkout.wsgi_request.path,
        {"csrfmiddlewaretoken": csrf_of(checkout), "idempotency_key": key, "seat_ids": offer.seat_ids},
    )

    booking = Booking.objects.get(user=buyer.user)
    assert booked.status_code == 302
    assert booked["Location"] == f"/my/tickets/{booking.code}/"
    assert booking.status == BookingStatus.CONFIRMED
    assert sorted(booking.tickets.values_list("seat_id", flat=True)) == offer.seat_ids
    assert set(Seat.objects.filter(pk__in=offer.seat_ids).values_list("status", flat=True)) == {
        SeatStatus.SOLD
    }
    html = buyer.get(page_url(sold_out_event)).content.decode()
    assert "You accepted the seats offered to you." in html


@pytest.mark.django_db(transaction=True)
def test_decline_offers_the_seats_to_the_next_entry(buyer, user_factory, sold_out_event):
    next_buyer = browser_for(user_factory(name="Next in line"))
    join(buyer, sold_out_event, 2)
    join(next_buyer, sold_out_event, 2)
    cancel(sold_out_event.sell_out_bookings[2])
    assert re.search(r'data-field="position">1<', next_buyer.get(page_url(sold_out_event)).content.decode())
    # The offer mail's "Decline the seats" link lands on this form (…/waiting-list/#decline).
    offer_page = buyer.get(page_url(sold_out_event)).content.decode()
    assert re.search(r'<form method="post" id="decline">.*?name="action" value="decline"', offer_page, re.S)

    response = post_action(buyer, sold_out_event, "decline")

    assert response.status_code == 302
    html = buyer.get(page_url(sold_out_event)).content.decode()
    assert "You declined the seats. They go to the next person on the waiting list." in html
    assert "You declined the seats offered to you, and left the waiting list." in html
    next_html = next_buyer.get(page_url(sold_out_event)).content.decode()
    assert "Seats are offered to you" in next_html
    assert seat_labels(next_html) == ["Section A, row B-4", "Section A, row B-5"]
    assert 'class="offer-banner"' in next_buyer.get("/").content.decode()
    assert 'class="offer-banner"' not in buyer.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_decline_seats_apart_keeping_the_place(buyer, user_factory, event_factory, eager_celery):
    event = event_factory(title="Small hall")
    event.__class__.objects.filter(pk=event.pk).update(waiting_list_gather_seconds=0)
    bookings = sell_out(event, user_factory, per_buyer=1)  # one seat each, in seat order
    join(buyer, event, 2)

    # Row A seats 1 and 3 come back: no two seats side by side.
    cancel(bookings[0])
    cancel(bookings[2])

    html = buyer.get(page_url(event)).content.decode()
    assert seat_labels(html) == ["Section A, row A-1", "Section A, row A-3"]
    assert "Please note: these seats are NOT together." in html
    assert "Decline and keep my place for seats together" in html

    response = post_action(buyer, event, "decline_keep_place")

    assert response.status_code == 302
    entry = WaitingListEntry.objects.get(user=buyer.user)
    assert (entry.state, entry.together_only) == (WaitingListState.WAITING, True)
    assert WaitingListOffer.objects.get(entry=entry).state == WaitingListOfferState.DECLINED
    html = buyer.get(page_url(event)).content.decode()
    assert "You declined the seats and kept your place." in html
    assert "You will only be offered seats together." in html
    assert re.search(r'data-field="position">1<', html)


@pytest.mark.django_db(transaction=True)
def test_an_expired_offer_is_explained(buyer, sold_out_event):
    join(buyer, sold_out_event, 2)
    cancel(sold_out_event.sell_out_bookings[2])
    offer = WaitingListOffer.objects.get(entry__user=buyer.user)

    waiting_list_tick(sold_out_event.pk, now=offer.expires_at + timedelta(seconds=1))

    offer.refresh_from_db()
    assert offer.state == WaitingListOfferState.EXPIRED
    html = buyer.get(page_url(sold_out_event)).content.decode()
    assert "The time to accept the seats offered to you ran out" in html
    assert 'class="offer-banner"' not in buyer.get("/").content.decode()


def test_the_banner_costs_one_query_and_only_signed_in(buyer, sold_out_event, rf, django_assert_num_queries):
    from django.contrib.auth.models import AnonymousUser

    from booking.context_processors import waiting_list_offer

    waiting_list_join(event_id=sold_out_event.pk, user_id=buyer.user.pk, party_size=1, language="en")
    request = rf.get("/")
    request.user = AnonymousUser()
    assert waiting_list_offer(request) == {}

    request.user = buyer.user
    context = waiting_list_offer(request)
    with django_assert_num_queries(1):
        assert not context["waiting_list_offer"]
