"""Proof-of-work on join (issue 15) in a real Chromium: the waiting room's ALTCHA widget.

The page fetches a challenge from the live server, solves it in web workers under the
site's real CSP (the vendored widget of ``static/vendor/altcha/``) and joins with the
solution; the server verifies it and spends it. The challenge request can be held back
(``page.route``) to see the page while it prepares, and to press the button before the
check is done.

Screenshots at 390x844 in English and Korean go to ``docs/screenshots/tmp/`` (ignored by
git); ``UPDATE_SCREENSHOTS=1`` writes them to ``docs/screenshots/waiting-room-pow-<state>-<lang>.png``.
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

from events.models import Event
from events.services.catalogue import event_create_with_seats
from events.services.waiting_room import queue_join, queue_leave, queue_status_get
from ticketing.errors import DomainError
from ticketing.local_cache import local_cache

# The Chromium, its flags and the phone size of the other browser tests (importing them
# also skips this module when Chromium or Playwright is missing).
from ticketing.tests.browser import (
    FOLLOW_MS,
    browser_required,
    log_in,
    new_context,
    screenshot_folder,
    watch_errors,
)

sync_api = browser_required()
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DIFFICULTY = 20_000
CHALLENGE_URL = re.compile(r"/api/events/\d+/queue/challenge/")
WORDS = {
    "en": {
        "join": "Join the waiting room",
        "preparing": "Preparing…",
        "solving": "Your browser is doing a short check",
        "pending": "You will join as soon as the check is done.",
        "ready": "Check done: you can join now.",
        "in_line": "You are in line",
    },
    "ko": {
        "join": "대기실 입장",
        "preparing": "준비 중…",
        "solving": "입장하기 전에 브라우저가 잠깐 확인 작업을 합니다.",
        "pending": "확인이 끝나는 대로 대기실에 입장합니다.",
        "ready": "확인이 끝났습니다. 지금 입장할 수 있습니다.",
        "in_line": "대기 중입니다",
    },
}


# --- fixtures ------------------------------------------------------------------------------


class Held:
    """Holds back the page's challenge requests until ``release()`` (Playwright routes)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.routes: list[Any] = []
        page.route(CHALLENGE_URL, self._hold)

    def _hold(self, route: Any) -> None:
        self.routes.append(route)

    def wait(self) -> None:
        """Until the page has asked for a challenge."""
        for _ in range(FOLLOW_MS // 50):
            if self.routes:
                return
            self.page.wait_for_timeout(50)
        raise AssertionError("the page never asked for a challenge")

    def release(self) -> None:
        for route in self.routes:
            route.continue_()
        self.routes.clear()
        self.page.unroute(CHALLENGE_URL, self._hold)


@pytest.fixture
def open_room(chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """Logs ``user`` in through the site's login page in a fresh phone-sized context and
    opens the event's waiting room (``hold``: the challenge request waits for
    ``Held.release``; ``route``: a handler of the challenge requests; ``clock``: the
    page's clock is Playwright's, to move forward). Fails the test on any JavaScript error or CSP violation."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(
        user: Any,
        event: Event,
        *,
        lang: str = "en",
        hold: bool = False,
        route: Callable[[Any], None] | None = None,
        clock: bool = False,
    ) -> tuple[Any, Held | None]:
        context = new_context(chromium, live_server.url, lang=lang)
        contexts.append(context)
        page = context.new_page()
        watch_errors(page, errors)
        page.goto(f"/accounts/login/?next=/events/{event.pk}/")
        log_in(page, user.email)
        expect(page).to_have_url(re.compile(rf"/events/{event.pk}/$"))
        held = Held(page) if hold else None
        if route is not None:
            page.route(CHALLENGE_URL, route)
        if clock:
            page.clock.install()
        page.goto(f"/events/{event.pk}/queue/")
        return page, held

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors or CSP violations on the waiting room: {errors}"


@pytest.fixture
def shot() -> Callable[..., None]:
    """Saves the phone screen as ``waiting-room-pow-<state>-<lang>.png``."""
    folder = screenshot_folder()

    def take(page: Any, state: str, lang: str) -> None:
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(150)
        page.screenshot(
            path=str(folder / f"waiting-room-pow-{state}-{lang}.png"), animations="disabled", caret="hide"
        )

    return take


def rush(*, difficulty: int) -> Event:
    event = event_create_with_seats(
        title="Seoul Spring Concert",
        venue="Olympic Hall",
        sections=["A"],
        rows=2,
        seats_per_row=5,
        capacity=1,
        open_now=True,
    )
    event.pow_difficulty = difficulty
    event.save()  # clears the cached event settings (events/signals.py)
    local_cache.clear()  # and this process's copy (the live server runs in it)
    return event


def join_button(page: Any) -> Any:
    return page.locator('[data-panel="none"] form button[type=submit]')


def pow_status(page: Any) -> Any:
    return page.locator("[data-pow-status]")


def decoded(payload: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(payload))


def posted_join(request: Any) -> dict[str, list[str]]:
    return parse_qs(request.post_data or "")


# --- with proof-of-work --------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_page_solves_by_itself_and_the_buyer_joins_with_the_solution(
    lang: str, open_room: Callable[..., Any], shot: Callable[..., None], user_factory: Callable[..., Any]
) -> None:
    words = WORDS[lang]
    event = rush(difficulty=DIFFICULTY)
    early = user_factory()
    with pytest.raises(DomainError) as refused:
        queue_join(event_id=event.pk, user_id=early.pk)  # no solution: refused
    assert refused.value.code == "pow_required"
    buyer = user_factory(name="Minji Kim")
    page, held = open_room(buyer, event, lang=lang, hold=True)

    # While the challenge is on its way: the widget is there (invisible), the button says so.
    # (Under the site's real CSP, which this test's fixture watches for violations.)
    csp = page.request.get(f"/events/{event.pk}/queue/").headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    held.wait()
    expect(page.locator("altcha-widget")).to_have_count(1)
    expect(join_button(page)).to_have_text(words["preparing"])
    expect(pow_status(page)).to_contain_text(words["solving"])
    shot(page, "solving", lang)

    # Solved by itself, with nobody touching the page.
    held.release()
    expect(join_button(page)).to_have_text(words["join"])
    expect(pow_status(page)).to_have_text(words["ready"])
    payload = page.locator('altcha-widget input[type=hidden][name="altcha"]').input_value()
    assert payload
    challenge = decoded(payload)["challenge"]["parameters"]
    assert challenge["algorithm"] == "SHA-256"
    assert challenge["data"]["event"] == event.pk
    assert challenge["data"]["user"] == buyer.pk
    shot(page, "solved", lang)

    with page.expect_request(lambda request: request.method == "POST" and "/queue/" in request.url) as sent:
        join_button(page).click()
    assert posted_join(sent.value)["altcha"] == [payload]
    expect(page.get_by_role("heading", name=words["in_line"])).to_be_visible()
    expect(page.locator('[data-field="position"]')).to_have_text("1")
    expect(join_button(page)).to_be_hidden()  # in line: the join form (and its check) is hidden

    # The server recorded the join, and spent the solution: after leaving, it is refused.
    answer, _settings = queue_status_get(event_id=event.pk, user_id=buyer.pk)
    assert answer.position == 1
    queue_leave(event_id=event.pk, user_id=buyer.pk)
    with pytest.raises(DomainError) as replayed:
        queue_join(event_id=event.pk, user_id=buyer.pk, solution=payload)
    assert replayed.value.code == "pow_replayed"


def test_pressing_join_before_the_check_is_done_joins_when_it_is(
    open_room: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    words = WORDS["en"]
    event = rush(difficulty=DIFFICULTY)
    buyer = user_factory()
    page, held = open_room(buyer, event, hold=True)
    held.wait()

    # Pressed while the page prepares: nothing is sent yet, the page says it will join.
    posts: list[Any] = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    join_button(page).click()
    expect(pow_status(page)).to_have_text(words["pending"])
    expect(join_button(page)).to_have_text(words["preparing"])
    page.wait_for_timeout(300)
    assert posts == []

    # The check finishes: the form goes by itself, once, with the solution.
    held.release()
    expect(page.get_by_role("heading", name=words["in_line"])).to_be_visible()
    expect(page.locator('[data-field="position"]')).to_have_text("1")
    assert len(posts) == 1
    assert posted_join(posts[0])["altcha"][0]
    answer, _settings = queue_status_get(event_id=event.pk, user_id=buyer.pk)
    assert answer.position == 1


def test_an_expired_challenge_is_solved_again_and_a_fast_clock_does_not_loop(
    open_room: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    """The page stays open past the challenge's five minutes: it fetches and solves a new
    one. Its clock is then six minutes ahead of the server's, so the widget finds the new
    challenge expired at once: the page keeps that solution (the server decides) rather
    than fetching challenge after challenge, and the join goes through."""
    event = rush(difficulty=DIFFICULTY)
    buyer = user_factory()
    asked: list[str] = []
    page, _held = open_room(buyer, event, clock=True)
    page.on("request", lambda request: asked.append(request.url) if "challenge" in request.url else None)
    expect(join_button(page)).to_have_text("Join the waiting room")
    first = page.locator('altcha-widget input[name="altcha"]').input_value()
    page.clock.fast_forward("06:00")
    expect(page.locator('altcha-widget input[name="altcha"]')).not_to_have_value(first)
    expect(join_button(page)).to_have_text("Join the waiting room")
    page.wait_for_timeout(1000)
    assert len(asked) == 1, asked
    second = page.locator('altcha-widget input[name="altcha"]').input_value()
    assert second
    with page.expect_request(lambda request: request.method == "POST" and "/queue/" in request.url) as sent:
        join_button(page).click()
    assert posted_join(sent.value)["altcha"] == [second]
    expect(page.locator('[data-field="position"]')).to_have_text("1")


def test_a_failing_challenge_is_retried_then_the_button_tries_again(
    open_room: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    """A busy server at the opening: the page asks again by itself (three times, backing
    off), then says the check failed; pressing the button tries again and joins."""
    event = rush(difficulty=DIFFICULTY)
    buyer = user_factory()
    asked: list[str] = []

    def busy(route: Any) -> None:
        asked.append(route.request.url)
        if len(asked) <= 4:
            route.fulfill(status=503, json={"code": "unavailable", "detail": "Busy."})
        else:
            route.continue_()

    page, _held = open_room(buyer, event, route=busy)
    expect(pow_status(page)).to_have_text(
        "The check did not work. Press the button to try again.", timeout=3 * FOLLOW_MS
    )
    assert len(asked) == 4
    expect(join_button(page)).to_have_text("Preparing…")
    join_button(page).click()
    expect(page.locator('[data-field="position"]')).to_have_text("1")
    assert len(asked) == 5


def test_proof_of_work_turned_off_after_the_page_loaded_joins_without_one(
    open_room: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    """The staff set the difficulty to 0 while the page prepared: the challenge request is
    answered 409 ``pow_not_required`` and the page lets the buyer join without a proof."""
    words = WORDS["en"]
    event = rush(difficulty=DIFFICULTY)
    buyer = user_factory()
    page, held = open_room(buyer, event, hold=True)
    held.wait()
    event.pow_difficulty = 0
    event.save()
    local_cache.clear()
    held.release()
    expect(join_button(page)).to_have_text(words["join"])
    join_button(page).click()
    expect(page.locator('[data-field="position"]')).to_have_text("1")


# --- without proof-of-work -----------------------------------------------------------------


def test_without_proof_of_work_there_is_no_widget_and_joining_works_as_before(
    open_room: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    event = rush(difficulty=0)
    buyer = user_factory()
    challenge_requests: list[Any] = []
    page, _held = open_room(buyer, event)
    page.on(
        "request", lambda request: challenge_requests.append(request) if "challenge" in request.url else None
    )
    expect(join_button(page)).to_have_text("Join the waiting room")
    expect(page.locator("altcha-widget")).to_have_count(0)
    expect(page.locator('script[src*="altcha"]')).to_have_count(0)
    expect(page.locator("[data-pow-status]")).to_have_count(0)
    with page.expect_request(lambda request: request.method == "POST" and "/queue/" in request.url) as sent:
        join_button(page).click()
    assert "altcha" not in posted_join(sent.value)
    expect(page.locator('[data-field="position"]')).to_have_text("1")
    assert challenge_requests == []
    answer, _settings = queue_status_get(event_id=event.pk, user_id=buyer.pk)
    assert answer.position == 1
