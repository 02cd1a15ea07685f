"""The waiting list in a real Chromium, in English and Korean: sold out -> join from the
event page (party of 2) -> another buyer cancels 2 seats -> the offer (page with its
countdown, banner on another page, mail) -> accept -> checkout -> tickets.

Checks that the page's script runs under the site's CSP (no error, no violation), that the
countdown counts, and that the pages pass axe-core with no serious or critical violation.
Screenshots of each step go to ``docs/screenshots/tmp/`` (``UPDATE_SCREENSHOTS=1``:
``docs/screenshots/``) as ``waiting-list-<step>-<lang>.png``. Skipped like the other
browser tests when Chromium or Playwright is missing (``ticketing.tests.browser``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core import mail

from booking.models import Booking, BookingStatus, WaitingListOffer
from booking.services import booking_cancel
from ticketing.tests.browser import (
    axe_blocking,
    browser_required,
    new_context,
    screenshot_folder,
    session_cookie,
    watch_errors,
)

sync_api = browser_required()
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_page(chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """A phone-sized page in ``lang``, signed in as ``user`` (a session made by Django's
    test client); the test fails on any JavaScript error or CSP violation."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(lang: str, user: Any) -> Any:
        context = new_context(chromium, live_server.url, lang=lang)
        contexts.append(context)
        context.add_cookies([session_cookie(user, live_server.url)])
        page = context.new_page()
        watch_errors(page, errors)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors or CSP violations on the pages: {errors}"


def axe_failures(page: Any) -> list[str]:
    return [f"{page.url}: {failure}" for failure in axe_blocking(page)]


def submit(page: Any, action: str) -> None:
    """Presses the submit button of the page's form with ``action`` (no text: both languages)."""
    page.locator(f'form:has(input[name="action"][value="{action}"]) button[type="submit"]').click()


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_join_offer_accept_and_book(lang, open_page, user_factory, sold_out_event):
    folder = screenshot_folder()
    buyer = user_factory(name="Min-ji Kim")
    page = open_page(lang, buyer)
    failures: list[str] = []

    # Sold out: the event page points to the waiting list.
    page.goto(f"/events/{sold_out_event.pk}/")
    page.locator(f'a[href="/events/{sold_out_event.pk}/waiting-list/"]').click()
    expect(page).to_have_url(re.compile(rf"/events/{sold_out_event.pk}/waiting-list/$"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.select_option("#party-size", "2")
    failures += axe_failures(page)
    page.screenshot(path=str(folder / f"waiting-list-join-{lang}.png"), full_page=True)
    submit(page, "join")
    expect(page.locator('[data-field="position"]')).to_have_text("1")
    failures += axe_failures(page)
    page.screenshot(path=str(folder / f"waiting-list-waiting-{lang}.png"), full_page=True)

    # Another buyer cancels 2 seats: they are offered to the first in line.
    returned = sold_out_event.sell_out_bookings[2]
    booking_cancel(booking=returned, by_user=returned.user)
    offer = WaitingListOffer.objects.get(entry__user=buyer)
    assert [m.to for m in mail.outbox].count([buyer.email]) == 1

    page.reload()
    countdown = page.locator('[data-role="countdown"]')
    expect(countdown).to_have_text(re.compile(r"^1[45]:\d\d$"))  # 15 minutes, counting down
    first = countdown.text_content()
    expect(countdown).not_to_have_text(first or "")
    expect(page.locator(".waitlist-seats li")).to_have_count(2)
    failures += axe_failures(page)
    page.screenshot(path=str(folder / f"waiting-list-offer-{lang}.png"), full_page=True)

    # The notice on every other page.
    page.goto("/")
    banner = page.locator(".offer-banner")
    expect(banner).to_be_visible()
    failures += axe_failures(page)
    page.screenshot(path=str(folder / f"waiting-list-banner-{lang}.png"))
    banner.locator("a").click()

    # Accept: on to checkout (no waiting-room pass needed), then book.
    submit(page, "accept")
    expect(page).to_have_url(re.compile(rf"/events/{sold_out_event.pk}/checkout/$"))
    expect(page.locator(".checkout-seats tbody tr")).to_have_count(2)
    page.screenshot(path=str(folder / f"waiting-list-checkout-{lang}.png"), full_page=True)
    page.locator(".checkout-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/my/tickets/\w+/$"))

    booking = Booking.objects.get(user=buyer)
    assert booking.status == BookingStatus.CONFIRMED
    assert sorted(booking.tickets.values_list("seat_id", flat=True)) == offer.seat_ids
    assert failures == []
