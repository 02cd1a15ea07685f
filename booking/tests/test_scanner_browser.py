"""The door scanner (``/staff/events/<id>/scan/``) in a real Chromium, on a phone screen.

The camera is Chromium's fake capture device playing a video of a real ticket's QR code
(``fake_camera.py``): the page reads it with jsQR, checks its signature with WebCrypto and
checks the ticket in through the API of the live server. The offline queue is tested by
taking the browser context off the network (``context.set_offline``), as a door whose
Wi-Fi drops.

Screenshots at 390x844 in English and Korean go to ``docs/screenshots/tmp/`` (ignored by
git); ``UPDATE_SCREENSHOTS=1`` writes them to ``docs/screenshots/scanner-<state>-<lang>.png``.
Skipped like the other browser tests when Chromium or Playwright is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission

from booking.models import Ticket
from booking.tests.conftest import book_seats, seat_ids_of
from booking.tests.fake_camera import write_qr_video
from booking.ticket_signing import qr_payload
from conftest import make_auth_client
from events.models import Event
from events.services.catalogue import SectionSpec, event_create_with_seats
from ticketing.tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    browser_required,
    log_in,
    new_context,
    playwright_session,
    screenshot_folder,
)

sync_api = browser_required()
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GATE = "North 1"
# What the page says, per language (the assertions read the words a door steward reads).
WORDS = {
    "en": {
        "welcome": "Welcome",
        "repeat": "Already checked in",
        "forged": "Not a genuine ticket",
        "offline": "Offline — will sync",
        "queued_one": "1 scan waiting to sync",
        "synced": "All scans are synced.",
        "synced_answer": "Synced with the server",
        "seat": "Section A, row A-{number}",
        "gate_line": "at gate " + GATE,
    },
    "ko": {
        "welcome": "입장 확인",
        "repeat": "이미 입장함",
        "forged": "정품 티켓이 아닙니다",
        "offline": "오프라인 — 연결되면 동기화",
        "queued_one": "동기화 대기 중인 스캔 1건",
        "synced": "모든 스캔이 동기화되었습니다.",
        "synced_answer": "서버와 동기화됨",
        "seat": "A구역 A열 {number}번",
        "gate_line": GATE + " 게이트",
    },
}


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    with playwright_session() as instance:
        yield instance


@pytest.fixture
def launch(playwright: Any) -> Iterator[Callable[..., Any]]:
    """Starts a Chromium whose camera plays ``camera`` (a .y4m file); without one it has
    no camera at all (headless). The camera file is fixed at launch: a browser per test."""
    browsers: list[Any] = []

    def start(camera: Path | None = None) -> Any:
        args = list(CHROMIUM_ARGS)
        if camera is not None:
            args += [
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}",
            ]
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        browsers.append(browser)
        return browser

    yield start
    for browser in browsers:
        browser.close()


@pytest.fixture
def open_scanner(live_server: Any) -> Iterator[Callable[..., Any]]:
    """Logs ``user`` in through the site's login page in a fresh phone-sized context and
    opens the event's scanner; fails the test on any JavaScript error."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(browser: Any, user: Any, event: Event, *, lang: str = "en") -> Any:
        context = new_context(browser, live_server.url, lang=lang, permissions=["camera"])
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"/staff/events/{event.pk}/scan/")
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
        log_in(page, user.email)
        expect(page).to_have_url(re.compile(rf"/staff/events/{event.pk}/scan/$"))
        wait_ready(page)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the scanner page: {errors}"


@pytest.fixture
def shot() -> Callable[..., None]:
    """Saves the phone screen as ``scanner-<state>-<lang>.png``."""
    folder = screenshot_folder()

    def take(page: Any, state: str, lang: str, *, scroll: bool = True) -> None:
        if scroll:
            page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(400)  # the answer's flash is over
        page.screenshot(path=str(folder / f"scanner-{state}-{lang}.png"), animations="disabled", caret="hide")

    return take


@pytest.fixture
def door_staff_user(user_factory: Callable[..., Any]) -> Any:
    """A steward with the door permission only (no staff flag, no admin)."""
    user = user_factory(name="Gate Keeper")
    # The permission row itself, not the "Door staff" group of the data migration: a
    # transactional test's flush removes migration data but post_migrate recreates permissions.
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="booking", codename="check_in_tickets")
    )
    return user


@pytest.fixture
def concert(user_factory: Callable[..., Any], eager_celery: None) -> tuple[Event, list[Ticket]]:
    """An event with a confirmed booking of three seats (A-1..A-3) by Minji Kim."""
    event = event_create_with_seats(
        title="Seoul Spring Concert",
        venue="Olympic Hall",
        sections=[SectionSpec("A", "VIP", Decimal("99000"))],
        rows=2,
        seats_per_row=5,
        open_now=True,
    )
    buyer = user_factory(name="Minji Kim")
    booking = book_seats(event, buyer, seat_ids_of(event, 3))
    return event, list(booking.tickets.order_by("seat__number"))


def tampered(payload: str) -> str:
    """The payload with one character of its signature changed (not the last one, whose
    low bits base64 decoders may ignore)."""
    index = len(payload) - 30
    return payload[:index] + ("B" if payload[index] == "A" else "A") + payload[index + 1 :]


def wait_ready(page: Any) -> None:
    """Until the page's script has started (its forms answer only then)."""
    expect(page.locator("#scanner")).to_have_attribute("data-ready", "true")


def answer(page: Any) -> Any:
    return page.locator('[data-field="answer"]')


def choose_gate(page: Any, name: str = GATE) -> None:
    page.locator("#gate-name").fill(name)
    page.locator("#gate-form button[type=submit]").click()
    expect(page.locator('[data-field="gate"]')).to_have_text(name)


def type_code(page: Any, code: str) -> None:
    page.locator("#manual-code").fill(code)
    page.locator("#manual-form button[type=submit]").click()


# --- the camera ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_camera_scan_lets_the_ticket_in_and_a_second_scan_is_amber(
    lang: str,
    launch: Callable[..., Any],
    open_scanner: Callable[..., Any],
    shot: Callable[..., None],
    door_staff_user: Any,
    concert: tuple[Event, list[Ticket]],
    tmp_path: Path,
) -> None:
    event, tickets = concert
    ticket = tickets[0]
    words = WORDS[lang]
    # The camera shows the ticket's QR for 1.6 s, nothing for 4.4 s, and again (looping).
    camera = write_qr_video(tmp_path / "ticket.y4m", qr_payload(event_id=event.pk, ticket_code=ticket.code))
    page = open_scanner(launch(camera), door_staff_user, event, lang=lang)

    # First use of this phone: it asks for its gate; the camera starts once it has one.
    expect(page.locator("#gate-form")).to_be_visible()
    expect(page.locator("#scanner")).to_have_attribute("data-camera", "off")
    choose_gate(page)
    expect(page.locator('[data-field="total"]')).to_have_text("3")

    # The ticket is read off the camera: green, with the seat and the holder.
    expect(answer(page)).to_have_attribute("data-state", "ok")
    expect(answer(page)).to_contain_text(words["welcome"])
    expect(answer(page)).to_contain_text(words["seat"].format(number=1))
    expect(answer(page)).to_contain_text("Minji Kim")
    expect(answer(page)).to_have_attribute("data-offline", "false")
    expect(page.locator('[data-action="undo"]')).to_be_visible()
    expect(page.locator('[data-field="checked-in"]')).to_have_text("1")
    shot(page, "green", lang)
    ticket.refresh_from_db()
    assert ticket.checked_in_at is not None
    assert ticket.checked_in_gate == GATE

    # The code stays in front of the camera for a while and is not sent again; when it is
    # shown again later (the video's next loop), the answer is amber: when and where.
    expect(answer(page)).to_have_attribute("data-state", "repeat", timeout=15_000)
    expect(answer(page)).to_contain_text(words["repeat"])
    expect(answer(page)).to_contain_text(words["gate_line"])
    expect(answer(page)).to_contain_text(words["seat"].format(number=1))
    page.locator('[data-action="camera"]').click()  # stop: the video would loop on
    expect(page.locator("#scanner")).to_have_attribute("data-camera", "off")
    expect(page.locator('[data-field="device-scans"]')).to_have_text("2")
    assert ticket.checkin_log.count() == 2  # the entry, then the repeat: nothing in between
    shot(page, "amber", lang)

    # The gate is remembered on this device.
    page.reload()
    wait_ready(page)
    expect(page.locator('[data-panel="gate-current"]')).to_be_visible()
    expect(page.locator('[data-field="gate"]')).to_have_text(GATE)


def test_forged_code_is_red_without_asking_the_server_and_undo_takes_an_entry_back(
    launch: Callable[..., Any],
    open_scanner: Callable[..., Any],
    door_staff_user: Any,
    concert: tuple[Event, list[Ticket]],
) -> None:
    event, tickets = concert
    page = open_scanner(launch(), door_staff_user, event)
    choose_gate(page)
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    # A real payload with its ticket code swapped for another ticket's: the signature no
    # longer matches.
    genuine = qr_payload(event_id=event.pk, ticket_code=tickets[1].code)
    forged = genuine.replace(tickets[1].code, tickets[2].code)
    type_code(page, forged)
    expect(answer(page)).to_have_attribute("data-state", "bad")
    expect(answer(page)).to_contain_text(WORDS["en"]["forged"])
    assert posts == [], "a forged code was sent to the server"

    # A real one, typed by hand as the plain ticket code (lower case), then undone.
    type_code(page, tickets[1].code.lower())
    expect(answer(page)).to_have_attribute("data-state", "ok")
    expect(answer(page)).to_contain_text("Section A, row A-2")
    tickets[1].refresh_from_db()
    assert tickets[1].checked_in_at is not None
    page.locator('[data-action="undo"]').click()
    expect(answer(page)).to_contain_text("Entry undone")
    expect(page.locator('[data-action="undo"]')).to_be_hidden()
    tickets[1].refresh_from_db()
    assert tickets[1].checked_in_at is None
    expect(page.locator('[data-field="checked-in"]')).to_have_text("0")


# --- offline -------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_offline_scans_are_decided_on_the_phone_queued_and_synced(
    lang: str,
    launch: Callable[..., Any],
    open_scanner: Callable[..., Any],
    shot: Callable[..., None],
    door_staff_user: Any,
    concert: tuple[Event, list[Ticket]],
) -> None:
    event, tickets = concert
    words = WORDS[lang]
    page = open_scanner(launch(), door_staff_user, event, lang=lang)
    choose_gate(page)
    # No camera on this device: the page says so, and codes are typed.
    expect(page.locator('[data-field="camera-status"]')).to_contain_text("NotFoundError")
    type_code(page, tickets[0].code)
    expect(answer(page)).to_have_attribute("data-state", "ok")  # online, from the server
    expect(answer(page)).to_have_attribute("data-offline", "false")
    expect(page.locator('[data-field="total"]')).to_have_text("3")  # the manifest is in

    # Another gate lets ticket 3 in on the server; this phone's manifest still says valid.
    other_gate = make_auth_client(door_staff_user)
    response = other_gate.post(
        "/api/checkins/", {"code": tickets[2].code, "gate": "South 2", "event_id": event.pk}, format="json"
    )
    assert response.status_code == 201, response.content

    # The check-in request fails (the Wi-Fi drops mid-request): decided on the phone from
    # the manifest, green "offline", queued.
    page.route("**/api/checkins/", lambda route: route.abort("internetdisconnected"))
    type_code(page, tickets[2].code)
    expect(answer(page)).to_have_attribute("data-state", "ok")
    expect(answer(page)).to_have_attribute("data-offline", "true")
    expect(answer(page)).to_contain_text(words["offline"])
    expect(answer(page)).to_contain_text(words["seat"].format(number=3))
    expect(page.locator('[data-field="sync-status"]')).to_have_text(words["queued_one"])

    # The queue is kept in the phone's storage: a reload still has it (its first retry
    # fails the same way).
    page.reload()
    wait_ready(page)
    expect(page.locator('[data-field="sync-status"]')).to_have_text(words["queued_one"])
    expect(page.locator('[data-field="network"]')).to_have_attribute("data-online", "false")

    # Now the network is gone altogether.
    page.context.set_offline(True)
    page.unroute("**/api/checkins/")
    # Ticket 1 was let in by this device: amber, decided on the phone.
    type_code(page, tickets[0].code)
    expect(answer(page)).to_have_attribute("data-state", "repeat")
    expect(answer(page)).to_contain_text(words["gate_line"])
    # A forged code is still red offline.
    genuine = qr_payload(event_id=event.pk, ticket_code=tickets[1].code)
    type_code(page, tampered(genuine))
    expect(answer(page)).to_have_attribute("data-state", "bad")
    expect(answer(page)).to_contain_text(words["forged"])
    # Ticket 2's QR: genuine, valid per the manifest: green offline, queued behind ticket 3.
    type_code(page, genuine)
    expect(answer(page)).to_have_attribute("data-offline", "true")
    expect(answer(page)).to_contain_text(words["seat"].format(number=2))
    expect(answer(page)).to_contain_text("Minji Kim")
    expect(page.locator('[data-field="sync-status"]')).to_have_attribute("data-waiting", "2")
    shot(page, "offline", lang)
    queued = page.evaluate(f"JSON.parse(localStorage.getItem('checkin:{event.pk}:queue'))")
    assert [scan["ticket_code"] for scan in queued] == [tickets[2].code, tickets[1].code]
    assert all(scan["gate"] == GATE and scan["scanned_at"] for scan in queued)
    tickets[1].refresh_from_db()
    assert tickets[1].checked_in_at is None  # nothing reached the server

    # Back online: the queue is sent in order. Ticket 2 gets in; ticket 3 had been let in
    # by the other gate before this phone saw it: a conflict, listed with when and where.
    page.context.set_offline(False)
    expect(page.locator('[data-field="sync-status"]')).to_have_attribute("data-waiting", "0")
    expect(page.locator('[data-field="sync-status"]')).to_have_text(words["synced"])
    expect(page.locator('[data-field="network"]')).to_have_attribute("data-online", "true")
    expect(answer(page)).to_contain_text(words["synced_answer"])  # ticket 2's answer follows
    expect(answer(page)).to_have_attribute("data-offline", "false")
    conflicts = page.locator('[data-field="conflicts"] li')
    expect(conflicts).to_have_count(1)
    expect(conflicts.first).to_contain_text(tickets[2].code)
    expect(conflicts.first).to_contain_text("South 2")
    expect(conflicts.first).to_contain_text(words["seat"].format(number=3))
    tickets[1].refresh_from_db()
    tickets[2].refresh_from_db()
    assert tickets[1].checked_in_at is not None and tickets[1].checked_in_gate == GATE
    assert tickets[2].checked_in_gate == "South 2"
    page.locator('[data-panel="conflicts"]').scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    shot(page, "conflicts", lang, scroll=False)
