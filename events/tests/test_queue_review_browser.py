"""The automatic review of shared sources (issue 15) in a real Chromium, as the two people
it concerns see it: the buyer held for review (the waiting room says why, and moves on by
itself once staff let the address through) and the staff on the rush dashboard (the held
group, "Let them through", the confirmation). Both pages pass the axe-core audit.

Screenshots at 390x844 (buyer) and 1280x800 (staff) in English and Korean go to
``docs/screenshots/tmp/`` (ignored by git); ``UPDATE_SCREENSHOTS=1`` writes them to
``docs/screenshots/review-<who>-<lang>.png``.
"""

from __future__ import annotations

from typing import Any

import pytest

from events.models import Event
from events.services.catalogue import event_create_with_seats
from events.services.waiting_room import JoinClient, queue_join
from ticketing.local_cache import local_cache
from ticketing.tests.browser import (
    DESKTOP,
    FOLLOW_MS,
    PHONE,
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

SCRIPT_ADDRESS = "203.0.113.9"
WORDS = {
    "en": {
        "held": "Your place is kept while the organiser checks",
        "in_line": "You are in line",
        "waiting_for_review": "2 accounts are waiting for your review",
        "let_through": "Let them through",
        "released": "2 accounts went back in line where they were.",
        "cleared": "Let through review: accounts from here are no longer held.",
    },
    "ko": {
        "held": "주최 측이 확인하는 동안 대기 순서가 유지됩니다",
        "in_line": "대기 중입니다",
        "let_through": "통과시키기",
        "released": "계정 2개가 원래 순서로 대기열에 돌아갔습니다.",
        "cleared": "검토 후 통과됨: 이곳에서 들어오는 계정은 더 이상 보류되지 않습니다.",
    },
}


@pytest.fixture
def held_event(user_factory: Any) -> tuple[Event, list[Any]]:
    """An event on sale with review from two accounts, and two script accounts that joined
    from one address (so both are held)."""
    event = event_create_with_seats(
        title="Seoul Spring Concert",
        venue="Olympic Hall",
        sections=["A"],
        rows=2,
        seats_per_row=5,
        capacity=10,
        open_now=True,
    )
    event.review_threshold = 2
    event.save()  # clears the cached event settings (events/signals.py)
    local_cache.clear()  # and this process's copy (the live server runs in it)
    scripts = [user_factory(), user_factory()]
    for user in scripts:
        queue_join(event_id=event.pk, user_id=user.pk, client=JoinClient(address=SCRIPT_ADDRESS))
    return event, scripts


def open_page(chromium: Any, live_server: Any, user: Any, path: str, *, lang: str, viewport: dict) -> Any:
    context = new_context(chromium, live_server.url, lang=lang, viewport=viewport)
    context.add_cookies([session_cookie(user, live_server.url)])
    page = context.new_page()
    page.goto(path)
    return page


def shot(page: Any, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(150)
    page.screenshot(path=str(screenshot_folder() / f"{name}.png"), animations="disabled", caret="hide")


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_staff_let_the_held_address_through_and_the_buyers_page_moves_on_by_itself(
    lang: str, chromium: Any, live_server: Any, staff_user: Any, held_event: tuple[Event, list[Any]]
) -> None:
    event, scripts = held_event
    words = WORDS[lang]
    errors: list[str] = []

    buyer = open_page(
        chromium, live_server, scripts[0], f"/events/{event.pk}/queue/", lang=lang, viewport=PHONE
    )
    watch_errors(buyer, errors)
    expect(buyer.locator('[data-panel="review"]')).to_be_visible()
    expect(buyer.locator('[data-panel="review"]')).to_contain_text(words["held"])
    assert axe_blocking(buyer) == []
    shot(buyer, f"review-buyer-{lang}")

    staff = open_page(
        chromium, live_server, staff_user, f"/staff/events/{event.pk}/rush/", lang=lang, viewport=DESKTOP
    )
    watch_errors(staff, errors)
    group = staff.locator(
        "form", has=staff.locator(f'input[name="source"][value="{SCRIPT_ADDRESS}"]')
    ).filter(has=staff.get_by_role("button", name=words["let_through"]))
    expect(group).to_have_count(1)
    if lang == "en":
        expect(staff.locator("main")).to_contain_text(words["waiting_for_review"])
    assert axe_blocking(staff) == []
    panel = group.locator("xpath=ancestor::section[1]")
    panel.screenshot(path=str(screenshot_folder() / f"review-staff-{lang}.png"), animations="disabled")

    group.get_by_role("button", name=words["let_through"]).click()

    expect(staff.locator("main")).to_contain_text(words["released"])
    expect(staff.locator("main")).to_contain_text(words["cleared"])
    # The buyer's page polls (every 5 s while held) and shows the line again, unprompted.
    expect(buyer.locator('[data-panel="review"]')).to_be_hidden(timeout=3 * FOLLOW_MS)
    expect(buyer.locator('[data-panel="waiting"]')).to_be_visible()
    expect(buyer.locator('[data-panel="waiting"]')).to_contain_text(words["in_line"])
    assert errors == []
    buyer.context.close()
    staff.context.close()
