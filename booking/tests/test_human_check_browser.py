"""The human check before seat selection (issue 15; booking/human_check.py) in a real
Chromium: ALTCHA's "I'm not a robot" checkbox on the seat picker's URL, under the site's
real CSP (the vendored widget of ``static/vendor/altcha/``, static/js/human_check.js).

An admitted buyer of an event with ``human_check`` opens ``/events/<id>/pick/``, sees the
check, reaches the box with Tab and ticks it with Space (the accessible path), and the
seat picker opens by itself; a seat can then be held. Once passed, the check is not asked
again during the pass. Without ``human_check`` the picker shows directly.

Screenshots at 390x844 in English and Korean go to ``docs/screenshots/tmp/`` (ignored by
git); ``UPDATE_SCREENSHOTS=1`` writes them to ``docs/screenshots/human-check-<lang>.png``.
Skipped like the other browser tests when Chromium or Playwright is missing.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from booking.human_check import human_check_passed
from booking.tests.conftest import admit_users
from events.models import Event, Seat
from events.services.catalogue import event_create_with_seats
from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import pass_release
from ticketing.local_cache import local_cache

# The Chromium, its flags and the phone size of the other browser tests (importing them
# also skips this module when Chromium or Playwright is missing).
from ticketing.tests.browser import (
    browser_required,
    log_in,
    new_context,
    screenshot_folder,
    watch_errors,
)

sync_api = browser_required()
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHALLENGE_URL = re.compile(r"/api/events/\d+/human-check/challenge/")
WORDS = {
    "en": {
        "title": "Before you choose seats",
        "robot": "I'm not a robot",  # the widget's own label (altcha.min.js)
        "continue": "Continue to seat selection",
        "seat_map": "Seat map",
        "tick_first": "Please tick \u201cI\u2019m not a robot\u201d first.",
        "failed": "The check did not work. Please tick the box again.",
        "pass_over": "Your pass has expired. Please join the waiting room again.",
        "back": "Back to the waiting room",
    },
    "ko": {
        "title": "좌석 선택 전 확인",
        "robot": "저는 로봇이 아닙니다",  # the widget's Korean label (static/vendor/altcha/ko.js)
        "continue": "좌석 선택하러 가기",
        "seat_map": "좌석 배치도",
        "tick_first": "먼저 \u2018저는 로봇이 아닙니다\u2019에 체크해 주세요.",
        "failed": "확인에 실패했습니다. 상자에 다시 체크해 주세요.",
        "pass_over": "좌석 선택 시간이 끝났습니다. 대기실에 다시 입장해 주세요.",
        "back": "대기실로 돌아가기",
    },
}


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def open_picker(chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """Logs ``user`` in through the site's login page in a fresh phone-sized context and
    opens the event's seat picker URL (``route``: a handler of the challenge requests;
    ``clock``: the page's clock is Playwright's, to move forward; ``javascript``: off for
    the <noscript> page). Fails the test on any
    JavaScript error or CSP violation."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(
        user: Any,
        event: Event,
        *,
        lang: str = "en",
        route: Callable[[Any], None] | None = None,
        clock: bool = False,
        javascript: bool = True,
    ) -> Any:
        context = new_context(chromium, live_server.url, lang=lang, java_script_enabled=javascript)
        contexts.append(context)
        page = context.new_page()
        watch_errors(page, errors)
        page.goto(f"/accounts/login/?next=/events/{event.pk}/")
        log_in(page, user.email)
        expect(page).to_have_url(re.compile(rf"/events/{event.pk}/$"))
        if route is not None:
            page.route(CHALLENGE_URL, route)
        if clock:
            page.clock.install()
        page.goto(f"/events/{event.pk}/pick/")
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors or CSP violations on the human check: {errors}"


@pytest.fixture
def shot() -> Callable[..., None]:
    """Saves the phone screen as ``human-check-<lang>.png``."""
    folder = screenshot_folder()

    def take(page: Any, lang: str) -> None:
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(150)
        page.screenshot(path=str(folder / f"human-check-{lang}.png"), animations="disabled", caret="hide")

    return take


def rush(*, human_check: bool = True) -> Event:
    event = event_create_with_seats(
        title="Seoul Spring Concert",
        venue="Olympic Hall",
        sections=["A"],
        rows=2,
        seats_per_row=5,
        capacity=1,
        open_now=True,
    )
    event.human_check = human_check
    event.save()  # clears the cached event settings (events/signals.py)
    local_cache.clear()  # and this process's copy (the live server runs in it)
    return event


def robot_box(page: Any, lang: str = "en") -> Any:
    """The widget's checkbox, found by its accessible name (its <label for>)."""
    return page.get_by_role("checkbox", name=WORDS[lang]["robot"], exact=True)


def continue_button(page: Any, lang: str = "en") -> Any:
    return page.get_by_role("button", name=WORDS[lang]["continue"])


def status(page: Any) -> Any:
    return page.locator('#human-check [data-role="status"]')


def is_check_post(request: Any) -> bool:
    return (
        request.method == "POST"
        and "/pick/" in request.url
        and "action=human_check" in (request.post_data or "")
    )


def tab_to(page: Any, target: Any, *, limit: int = 40) -> list[str]:
    """Presses Tab from the top of the page until ``target`` has the focus; returns what
    the focus passed through on the way (tag and accessible text), for assertions."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate("window.scrollTo(0, 0)")
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return passed
        passed.append(
            page.evaluate(
                "() => { const e = document.activeElement;"
                " return e.tagName + ':' + (e.getAttribute('aria-label') || e.textContent || '').trim(); }"
            )
        )
    raise AssertionError(f"Tab never reached the box; focus went through {passed}")


# --- with the human check ------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_tab_and_space_tick_the_box_and_the_seat_picker_opens(
    lang: str, open_picker: Callable[..., Any], shot: Callable[..., None], user_factory: Callable[..., Any]
) -> None:
    words = WORDS[lang]
    event = rush()
    buyer = user_factory(name="Minji Kim")
    admit_users(event, buyer)
    page = open_picker(buyer, event, lang=lang)

    # The check page, on the seat picker's URL, under the site's real CSP.
    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/pick/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(words["title"])
    csp = page.request.get(f"/events/{event.pk}/pick/").headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    expect(page.get_by_role("heading", name=words["seat_map"])).to_have_count(0)

    # The box has an accessible name in the page's language (its <label for>), and it is
    # the widget's only control a keyboard reaches.
    box = robot_box(page, lang)
    expect(box).to_have_count(1)
    expect(box).to_have_accessible_name(words["robot"])
    expect(box).not_to_be_checked()
    expect(page.locator("altcha-widget")).to_have_attribute("language", lang)
    expect(continue_button(page, lang)).to_be_enabled()  # the widget has mounted

    # The pass's time left counts down (server clock), as on the seat picker.
    timer = page.locator('[data-role="pass-countdown"]')
    expect(timer).to_have_text(re.compile(r"^(10:00|9:[0-5]\d)$"))
    expect(timer).to_have_attribute("role", "timer")
    shot(page, lang)

    # Keyboard only: Tab from the top reaches the box before the continue button; Space
    # ticks it; the check runs and the form goes by itself, with the widget's answer.
    passed = tab_to(page, box)
    assert not any(words["continue"] in stop for stop in passed), passed
    with page.expect_request(is_check_post) as sent:
        page.keyboard.press("Space")
    posted = parse_qs(sent.value.post_data or "")
    assert posted["action"] == ["human_check"]
    assert posted["csrfmiddlewaretoken"][0]
    answer = json.loads(base64.b64decode(posted["altcha"][0]))
    data = answer["challenge"]["parameters"]["data"]
    assert data["purpose"] == "human"
    assert (data["event"], data["user"]) == (event.pk, buyer.pk)

    # The seat picker, and the server remembers the check for the rest of the pass.
    expect(page.get_by_role("heading", name=words["seat_map"])).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/pick/$"))
    assert human_check_passed(event_id=event.pk, user_id=buyer.pk)

    # A seat can be chosen and kept: "Next" goes on to checkout.
    seat = Seat.objects.filter(event=event).order_by("row", "number").first()
    page.locator(f'button.seat[data-seat-id="{seat.pk}"]').click()
    page.locator('[data-role="next"]').click()
    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/checkout/$"))
    assert get_redis().exists(EventKeys(event.pk).seat(seat.pk))

    # Once per pass: the picker's URL shows the seats straight away from now on.
    page.goto(f"/events/{event.pk}/pick/")
    expect(page.get_by_role("heading", name=words["seat_map"])).to_be_visible()
    expect(page.locator("altcha-widget")).to_have_count(0)


def test_continue_before_ticking_points_to_the_box_and_a_tap_on_it_works(
    open_picker: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    words = WORDS["en"]
    event = rush()
    buyer = user_factory()
    admit_users(event, buyer)
    page = open_picker(buyer, event)
    posts: list[Any] = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)

    # Pressed too early: nothing is sent; the page says what to do and focuses the box.
    continue_button(page).click()
    expect(status(page)).to_have_text(words["tick_first"])
    expect(robot_box(page)).to_be_focused()
    page.wait_for_timeout(300)
    assert posts == []

    # A tap in the middle of the box (where the widget's tick mark lies) ticks it.
    robot_box(page).click()
    expect(page.get_by_role("heading", name=words["seat_map"])).to_be_visible()
    assert len(posts) == 1
    assert human_check_passed(event_id=event.pk, user_id=buyer.pk)


def test_a_failed_challenge_can_be_ticked_again(
    open_picker: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    """The server is busy when the box is ticked: the page says the check did not work;
    ticking the box again passes."""
    words = WORDS["en"]
    event = rush()
    buyer = user_factory()
    admit_users(event, buyer)
    asked: list[str] = []

    def busy_once(route: Any) -> None:
        asked.append(route.request.url)
        if len(asked) == 1:
            route.fulfill(status=503, json={"code": "unavailable", "detail": "Busy."})
        else:
            route.continue_()

    page = open_picker(buyer, event, route=busy_once)
    robot_box(page).click()
    expect(status(page)).to_have_text(words["failed"])
    expect(robot_box(page)).not_to_be_checked()
    robot_box(page).click()
    expect(page.get_by_role("heading", name=words["seat_map"])).to_be_visible()
    assert len(asked) == 2


def test_when_the_pass_ends_the_page_says_so(
    open_picker: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    words = WORDS["en"]
    event = rush()
    buyer = user_factory()
    admit_users(event, buyer)
    page = open_picker(buyer, event, clock=True)
    expect(robot_box(page)).to_be_visible()
    pass_release(event_id=event.pk, user_id=buyer.pk)  # the server ends it: ten minutes on
    page.clock.fast_forward("10:05")
    expect(status(page)).to_have_text(words["pass_over"])
    expect(robot_box(page)).to_be_hidden()
    page.get_by_role("link", name=words["back"]).click()
    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/queue/$"))


def test_without_javascript_the_page_says_what_is_needed(
    open_picker: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    event = rush()
    buyer = user_factory()
    admit_users(event, buyer)
    page = open_picker(buyer, event, javascript=False)
    expect(page.get_by_role("heading", level=1)).to_have_text(WORDS["en"]["title"])
    expect(continue_button(page)).to_be_disabled()  # a pass needs the widget's answer
    # (Playwright turns script execution off, not the parser's scripting flag, so the
    # <noscript> stays unrendered here: its words are checked, not shown.)
    assert "This check needs JavaScript" in (page.locator(".human-check-form noscript").text_content() or "")


# --- without it ----------------------------------------------------------------------------


def test_without_the_human_check_the_seat_picker_shows_directly(
    open_picker: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    event = rush(human_check=False)
    buyer = user_factory()
    admit_users(event, buyer)
    page = open_picker(buyer, event)
    expect(page.get_by_role("heading", name="Seat map")).to_be_visible()
    expect(page.locator("altcha-widget")).to_have_count(0)
    expect(page.locator('script[src*="altcha"]')).to_have_count(0)
    seat = Seat.objects.filter(event=event).order_by("row", "number").first()
    page.locator(f'button.seat[data-seat-id="{seat.pk}"]').click()
    page.get_by_role("button", name="Next: review and pay").click()
    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/checkout/$"))
