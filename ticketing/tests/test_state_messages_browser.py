"""The states the waiting room's script follows, live in Chromium, in English and Korean
(issue 16, item 5): staff pause the sale while a buyer waits (the page says so and that
the place is kept, then clears it when the sale resumes), and the buyer is taken off the
line (the page says so and offers to join again); the clock of the seat picker and of
checkout runs out (item 3: each says what has happened and what to do). The new pages of items 5 and 6 pass
axe-core with no serious or critical violation.

Skipped like the other browser tests when Chromium or Playwright is missing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from booking.services import seats_hold
from booking.tests.conftest import admit_users, book_seats, seat_ids_of
from events.models import Event
from events.services.rush_control import rush_control_update
from events.services.waiting_room import queue_join, queue_leave
from ticketing.tests.browser import (
    axe_blocking,
    browser_required,
    new_context,
    session_cookie,
    watch_errors,
)
from ticketing.tests.test_state_messages import PAGES_TIME_UP, PASS_AND_HOLD, PAUSED, SOLD_OUT, sell_out

sync_api = browser_required()
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_page(chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """A phone-sized page in ``lang``, signed in as ``user``; fails on a JavaScript error
    or a Content-Security-Policy violation."""
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
    assert not errors, errors


def blocking_violations(page: Any) -> list[str]:
    return axe_blocking(page)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_waiting_room_follows_a_pause_and_a_lost_place(
    lang, open_page, user_factory, staff_user, on_sale_event, settings
):
    ahead, buyer = user_factory(), user_factory()
    queue_join(event_id=on_sale_event.pk, user_id=ahead.pk)
    queue_join(event_id=on_sale_event.pk, user_id=buyer.pk)
    headline, kept, _may_join, eta = PAUSED[lang]
    page = open_page(lang, buyer)
    page.goto(f"/events/{on_sale_event.pk}/queue/")
    notice = page.locator('[data-field="paused"]')
    expect(page.locator('[data-field="position"]')).to_have_text("2")
    expect(notice).to_be_hidden()

    # Staff pause the sale from the rush dashboard: the next poll says so.
    rush_control_update(event=on_sale_event, user=staff_user, paused=True)
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(headline)
    expect(notice).to_contain_text(kept)
    expect(page.locator('[data-field="eta"]')).to_have_text(eta)
    expect(page.locator('[data-field="position"]')).to_contain_text("2")  # the place is kept ("about 2")
    assert not blocking_violations(page)

    rush_control_update(event=on_sale_event, user=staff_user, paused=False)
    expect(notice).to_be_hidden()

    # Off the line (left in another window): the page says so and offers to join again.
    # (A poll from behind the serving cursor reads "waiting" from its ticket until the
    # ticket's periodic exact check; here every poll checks exactly.)
    settings.QUEUE_TICKET_RECHECK_SECONDS = 0
    queue_leave(event_id=on_sale_event.pk, user_id=buyer.pk)
    expect(page.locator('[data-field="connection"]')).to_have_text(PASS_AND_HOLD[lang][2])
    expect(page.locator('[data-panel="none"]')).to_be_visible()
    assert not blocking_violations(page)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_waiting_room_says_sold_out_when_the_last_seat_goes(lang, open_page, user_factory, on_sale_event):
    buyer = user_factory()
    queue_join(event_id=on_sale_event.pk, user_id=buyer.pk)
    headline, next_step, link, _api_detail = SOLD_OUT[lang]
    page = open_page(lang, buyer)
    page.goto(f"/events/{on_sale_event.pk}/queue/")
    expect(page.locator('[data-panel="waiting"]')).to_be_visible()

    # The last seats are sold elsewhere and the admission tick marks the event sold out:
    # the next poll turns the page, with what comes next.
    sell_out(on_sale_event)
    panel = page.locator('[data-panel="sold_out"]')
    expect(panel).to_be_visible()
    expect(page.locator('[data-panel="waiting"]')).to_be_hidden()
    expect(panel).to_contain_text(headline)
    expect(panel).to_contain_text(next_step)
    expect(panel.get_by_role("link", name=link)).to_have_attribute(
        "href", f"/events/{on_sale_event.pk}/waiting-list/"
    )
    assert not blocking_violations(page)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_policy_and_error_pages_pass_axe(lang, open_page, user, on_sale_event, eager_celery):
    Event.objects.filter(pk=on_sale_event.pk).update(
        starts_at=timezone.now() + timedelta(days=5),
        cancellation_deadline_hours=24,
        cancellation_fees=[{"days_before": 9, "fee_percent": 10}, {"days_before": 2, "fee_percent": 30}],
    )
    booking = book_seats(on_sale_event, user, seat_ids_of(on_sale_event, 2))
    page = open_page(lang, user)
    failures = {}

    page.goto(f"/events/{on_sale_event.pk}/")
    expect(page.locator("#policy-heading")).to_be_visible()
    failures["event page"] = blocking_violations(page)
    page.goto(f"/my/tickets/{booking.code}/cancel/")
    expect(page.locator(".refund-quote")).to_be_visible()
    failures["cancel page"] = blocking_violations(page)
    # A form sent with a stale token: the CSRF failure page.
    page.goto("/accounts/login/")
    page.context.clear_cookies()
    page.locator("main form").last.evaluate("form => { form.noValidate = true; form.requestSubmit(); }")
    expect(page.locator("main h1")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == lang
    failures["CSRF failure page"] = blocking_violations(page)

    assert not any(failures.values()), failures


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_each_clock_says_what_happens_when_it_runs_out(lang, open_page, user, on_sale_event):
    """The one clock of each step runs out (the page's clock fast-forwarded): the seat
    picker says the turn has ended, checkout says the seats are no longer kept, disables
    Pay and turns "Change seats" into the way on."""
    texts = PAGES_TIME_UP[lang]
    admit_users(on_sale_event, user)
    page = open_page(lang, user)
    page.clock.install()
    page.goto(f"/events/{on_sale_event.pk}/pick/")
    clock = page.locator('.clock [data-role="countdown"]')
    expect(clock).to_have_text(re.compile(r"^(9|10):\d\d$"))
    expect(page.locator(".clock")).to_contain_text(texts["pick_clock"])
    page.clock.fast_forward(on_sale_event.queue_pass_seconds * 1000 + 1000)
    expect(clock).to_have_text("0:00")
    expect(page.locator('.hold-panel [data-role="status"]')).to_have_text(texts["pick_expired"])
    assert not blocking_violations(page)

    seats_hold(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=seat_ids_of(on_sale_event, 1))
    page = open_page(lang, user)
    page.clock.install()
    page.goto(f"/events/{on_sale_event.pk}/checkout/")
    clock = page.locator('#checkout [data-role="countdown"]')
    expect(clock).to_have_text(re.compile(r"^[45]:\d\d$"))
    expect(page.locator('[data-role="pay"]')).to_be_enabled()
    page.clock.fast_forward(on_sale_event.hold_seconds * 1000 + 1000)
    expect(clock).to_have_text("0:00")
    expect(page.locator('#checkout [data-role="status"]')).to_have_text(texts["pay_expired"])
    expect(page.locator('[data-role="pay"]')).to_be_disabled()
    expect(page.locator('[data-role="change-seats"]')).to_have_class(re.compile(r"\bbutton\b"))
    assert not blocking_violations(page)
