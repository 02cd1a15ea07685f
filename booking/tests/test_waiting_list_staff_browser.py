"""The rush dashboard's waiting-list panel in a real Chromium: it follows the list by
itself (polling), pauses and resumes it, removes an entry after a confirmation, fits a
phone, and runs without a JavaScript error or a Content-Security-Policy violation.

A screenshot of the panel at phone and desktop widths goes to ``docs/screenshots/tmp/``
(``UPDATE_SCREENSHOTS=1``: ``docs/screenshots/``). Skipped like the other browser tests
when Chromium or Playwright is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from booking.models import WaitingListEntry, WaitingListOffer, WaitingListState
from booking.services import booking_cancel
from conftest import make_auth_client
from events.models import Event
from ticketing.tests.browser import (
    DESKTOP,
    FOLLOW_MS,
    PHONE,
    axe_blocking,
    browser_required,
    log_in,
    screenshot_folder,
    watch_errors,
)

sync_api = browser_required()
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The panel polls every 5 s: a change made by the test shows within one poll and a bit.
PANEL_FOLLOW_MS = max(FOLLOW_MS, 8_000)


@pytest.fixture
def dashboard(chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """Logs staff in through the site's login page and opens the event's rush dashboard.
    The browser's clock is in UTC while the site's is Asia/Seoul (settings.TIME_ZONE): the
    panel shows times in the site's zone whatever the browser's. Fails the test on any
    JavaScript error or CSP violation."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(user: Any, event: Event) -> Any:
        context = chromium.new_context(
            base_url=live_server.url, viewport=DESKTOP, locale="en-GB", timezone_id="UTC"
        )
        context.set_default_timeout(PANEL_FOLLOW_MS)
        contexts.append(context)
        page = context.new_page()
        watch_errors(page, errors)
        page.goto(f"/accounts/login/?next=/staff/events/{event.pk}/rush/")
        log_in(page, user.email)
        expect(page).to_have_url(re.compile(rf"/staff/events/{event.pk}/rush/$"))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors or CSP violations on the dashboard: {errors}"


def serious_violations(page: Any, selector: str) -> list[str]:
    """axe-core on the panel with its line drawn (the accessibility audit sees the
    dashboard with nobody waiting)."""
    return axe_blocking(page, selector)


def join(event: Event, buyer: Any, party_size: int) -> WaitingListEntry:
    response = make_auth_client(buyer).post(
        f"/api/events/{event.pk}/waiting-list/", {"party_size": party_size}, format="json"
    )
    assert response.status_code == 201, response.content
    return WaitingListEntry.objects.get(event=event, user=buyer)


def test_staff_follow_pause_and_trim_the_waiting_list(
    dashboard: Callable[..., Any], staff_user: Any, sold_out_event: Event, user_factory: Any
) -> None:
    event = sold_out_event
    pair = join(event, user_factory(email="pair@example.com"), 2)
    single = join(event, user_factory(email="single@example.com"), 1)
    page = dashboard(staff_user, event)
    panel = page.locator("#waiting-list")
    figure = lambda name: panel.locator(f'[data-wl="{name}"]')  # noqa: E731
    row = lambda entry: panel.locator(f'tr[data-entry-id="{entry.pk}"]')  # noqa: E731

    expect(panel.get_by_role("heading", name="Waiting list")).to_be_visible()
    expect(figure("state")).to_have_text("Open")
    expect(figure("waiting")).to_have_text("2")
    expect(figure("waiting_seats")).to_have_text("3")
    expect(row(pair).locator("td").first).to_have_text("1")

    # Seats come back: the panel follows by itself (the pair's offer).
    booking = event.sell_out_bookings[2]
    booking_cancel(booking=booking, by_user=booking.user)
    assert WaitingListOffer.objects.filter(entry=pair).exists()
    expect(figure("offers_out")).to_have_text("1", timeout=PANEL_FOLLOW_MS)
    expect(figure("waiting")).to_have_text("1")
    expect(row(pair).locator("td").nth(3)).to_have_text("Offer out")
    expect(row(single).locator("td").first).to_have_text("1")
    # Redrawn by the script, in the site's time zone (the browser's is UTC).
    joined = timezone.localtime(single.joined_at).strftime("%Y-%m-%d %H:%M:%S")
    expect(row(single).locator("time")).to_have_text(joined)
    assert serious_violations(page, "#waiting-list") == []

    # Pause: the status line says so, the button turns into Resume, the event records it.
    panel.get_by_role("button", name="Pause the waiting list").click()
    expect(figure("state")).to_have_text("Paused")
    expect(panel.locator(".wl-status")).to_have_attribute("aria-live", "polite")
    expect(panel.get_by_role("button", name="Resume the waiting list")).to_be_visible()
    event.refresh_from_db()
    assert event.waiting_list_paused is True

    # Remove: nothing happens until staff confirm.
    page.once("dialog", lambda dialog: dialog.dismiss())
    panel.get_by_role("button", name="Remove single@example.com").click()
    page.wait_for_timeout(300)
    single.refresh_from_db()
    assert single.state == WaitingListState.WAITING
    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    panel.get_by_role("button", name="Remove single@example.com").click()
    expect(figure("feedback")).to_have_text("Removed single@example.com from the waiting list.")
    expect(row(single)).to_have_count(0)
    expect(figure("removed")).to_have_text("1")
    assert "single@example.com" in messages[0]
    single.refresh_from_db()
    assert (single.state, single.removed_by_id) == (WaitingListState.REMOVED, staff_user.pk)

    # Resume, and on a phone: nothing sticks out of the screen but the line's own scroller.
    panel.get_by_role("button", name="Resume the waiting list").click()
    expect(figure("state")).not_to_have_text("Paused")
    page.set_viewport_size(PHONE)
    panel.scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    remove_box = row(pair).get_by_role("button").bounding_box()
    assert remove_box and remove_box["height"] >= 44, "the remove button is a finger-sized target"
    assert serious_violations(page, "#waiting-list") == []

    folder = screenshot_folder()
    for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        panel.screenshot(path=str(folder / f"waiting-list-panel-{name}.png"), animations="disabled")
    assert settings.TIME_ZONE != "UTC"  # else the time-zone check above proves nothing
