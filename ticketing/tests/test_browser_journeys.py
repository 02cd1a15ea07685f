"""The buyer's and the staff's journeys, end to end in a real Chromium.

Debian's ``chromium`` driven by Playwright for Python against pytest-django's live server
(the real middleware, templates, JavaScript, Redis queue and database). Admission is
done by the test itself (it plays Celery beat): it calls the admission task or the
admission script while the page polls, and checks that the page follows by itself.

Screenshots of the key screens, at phone (390x844) and desktop (1280x800) widths, go to
``docs/screenshots/tmp/`` (ignored by git); ``UPDATE_SCREENSHOTS=1`` writes them to
``docs/screenshots/`` instead, where ``docs/SCREENSHOTS.md`` shows them.

Skipped, with the reason, when ``/usr/bin/chromium`` or the ``playwright`` package is
missing (``ticketing.tests.browser``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from accounts.models import User
from booking.models import Booking, BookingStatus
from events.models import Event, RushControlChange, Seat, SeatStatus
from events.services.catalogue import SectionSpec, event_create_with_seats
from ticketing.tests.browser import (
    DESKTOP,
    FOLLOW_MS,
    PHONE,
    browser_required,
    screenshot_folder,
)

PASSWORD = "Correct-Horse-Battery-42"
sync_api = browser_required()
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def new_page(chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """Opens a page in a new browser context (its own cookies), English unless told."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(locale: str = "en-GB") -> Any:
        context = chromium.new_context(
            base_url=live_server.url, viewport=DESKTOP, locale=locale, timezone_id=settings.TIME_ZONE
        )
        context.set_default_timeout(FOLLOW_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"


@pytest.fixture
def shot() -> Callable[..., None]:
    """Saves the page at desktop and/or phone width (viewport-sized PNGs)."""
    folder = screenshot_folder()

    def take(
        page: Any, name: str, *, widths: tuple[str, ...] = ("desktop", "phone"), focus: str = ""
    ) -> None:
        for width in widths:
            page.set_viewport_size(PHONE if width == "phone" else DESKTOP)
            if focus:
                page.locator(focus).first.evaluate("(element) => element.scrollIntoView({block: 'start'})")
            else:
                page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(150)  # let the re-layout settle
            page.screenshot(path=str(folder / f"{name}-{width}.png"), animations="disabled", caret="hide")
        page.set_viewport_size(DESKTOP)

    return take


def layout_shift(page: Any) -> float:
    """The page's cumulative layout shift so far (shifts not caused by input)."""
    return page.evaluate(
        """() => new Promise((resolve) => {
            let total = 0;
            const observer = new PerformanceObserver((list) => {
                for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
            });
            observer.observe({ type: "layout-shift", buffered: true });
            setTimeout(() => { observer.disconnect(); resolve(total); }, 100);
        })"""
    )


def seat_button(page: Any, section: str, row: str, number: int) -> Any:
    return page.locator(f'button.seat[data-section="{section}"][data-row="{row}"][data-number="{number}"]')


def seat_of(event: Event, section: str, row: str, number: int) -> Seat:
    return Seat.objects.get(event=event, section=section, row=row, number=number)


# --- the buyer -----------------------------------------------------------------------------


def test_buyer_signs_up_queues_picks_seats_books_and_cancels(
    new_page: Callable[..., Any], shot: Callable[..., None], eager_celery: None, user_factory: Any
) -> None:
    from events.services.waiting_room import queue_join
    from events.tasks import admit_on_sale_events
    from queueing.line import line_admit

    event = event_create_with_seats(
        title="Seoul Spring Concert",
        venue="Olympic Hall",
        sections=[SectionSpec("A", "VIP", Decimal("99000")), SectionSpec("B", "R", Decimal("55000"))],
        rows=3,
        seats_per_row=10,
        capacity=1,
        pass_seconds=600,
        hold_seconds=300,
        open_now=True,
    )
    event_create_with_seats(
        title="Autumn Jazz Night", venue="Sejong Center", sections=["A"], rows=2, seats_per_row=6
    )
    # Two buyers were quicker: our buyer will be third in line.
    first, second = user_factory(), user_factory()
    for early in (first, second):
        queue_join(event_id=event.pk, user_id=early.pk)

    page = new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="On sale now")).to_be_visible()
    expect(page.get_by_text("Coming soon")).to_be_visible()
    card = page.locator(".card", has_text="Seoul Spring Concert")
    expect(card).to_contain_text("55,000\u201399,000 KRW")
    shot(page, "01-home")

    # The event page, then "Get tickets": a first-time buyer signs up (or logs in, on the
    # same page) and arrives in the waiting room already in line.
    card.get_by_role("link", name="View event").click()
    expect(page.get_by_role("heading", name="Seoul Spring Concert")).to_be_visible()
    page.get_by_role("link", name="Get tickets").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/\?next="))
    page.locator("#id_name").fill("Minji Kim")
    page.locator("#id_email").fill("minji@example.com")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#id_password_confirm").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/queue/$"))
    buyer = User.objects.get(email="minji@example.com")

    # The waiting room: in line without pressing anything; the place moves by itself.
    position = page.locator('[data-field="position"]')
    expect(position).to_have_text("3")
    expect(page.locator('[data-field="ahead"]')).to_have_text("2")
    shift_before = layout_shift(page)
    admitted = admit_on_sale_events()  # capacity 1: the first buyer goes in
    assert admitted[event.pk]["admitted"] == 1
    # Polled with the queue ticket from behind the serving cursor: an estimate, said so.
    expect(position).to_have_text("about 2", timeout=FOLLOW_MS)
    expect(page.locator('[data-field="ahead"]')).to_have_text("about 1")
    expect(page.locator('[data-field="eta"]')).not_to_be_empty()
    assert layout_shift(page) - shift_before < 0.01, "the waiting room moved when its figures updated"
    shot(page, "02-waiting-room")

    # Our turn: the page moves on to the seat picker by itself.
    line_admit(event_id=event.pk, capacity=3, pass_seconds=600)
    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/pick/$"), timeout=FOLLOW_MS)
    expect(page.get_by_role("heading", name="Seat map")).to_be_visible()

    # Seats are labelled for screen readers, with their status in words.
    a1, a2, a3 = (seat_button(page, "A", "A", number) for number in (1, 2, 3))
    expect(a1).to_have_attribute("aria-label", "Section A row A seat 1, 99,000 KRW, available")
    # Keyboard: the map is a single Tab stop; arrows move between seats, Space/Enter select.
    expect(page.locator('button.seat[tabindex="0"]')).to_have_count(1)
    a1.focus()
    page.keyboard.press("Space")
    expect(a1).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("ArrowRight")
    expect(a2).to_be_focused()
    page.keyboard.press("Enter")
    expect(a2).to_have_attribute("aria-pressed", "true")
    expect(page.locator('[data-role="selection"]')).to_have_text("Chosen: 2 of 4")
    # One clock on this page: the time left to choose seats (the pass, 10 minutes).
    countdown = page.locator('.clock [data-role="countdown"]')
    expect(countdown).to_have_text(re.compile(r"^(10:00|9:[0-5]\d)$"))
    first_reading = countdown.inner_text()
    expect(countdown).not_to_have_text(first_reading, timeout=3000)  # it counts down

    # Someone else takes A-2 first. (The map's background refresh is paused for this step
    # so the refusal comes from "Next" itself, deterministically.)
    page.route("**/api/events/*/seats/", lambda route: route.fulfill(status=304))
    from booking.services import seats_hold

    seats_hold(event_id=event.pk, user_id=first.pk, seat_ids=[seat_of(event, "A", "A", 2).pk])
    next_button = page.get_by_role("button", name="Next: review and pay")
    next_button.click()
    status = page.locator('.hold-panel [data-role="status"]')
    expect(status).to_have_text(re.compile(r"just taken: Section A, row A-2\."))
    expect(a2).to_have_attribute("aria-label", re.compile(r"seat 2, .*, being booked by someone else$"))
    expect(a1).to_have_attribute("aria-pressed", "true")  # the other seat stays chosen
    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/pick/$"))  # still choosing
    page.unroute("**/api/events/*/seats/")
    shot(page, "03-seat-taken", widths=("desktop",))

    # Choose another seat instead; the panel lists the two with the total.
    a3.click()
    chosen = page.locator('[data-role="held-list"]')
    expect(chosen).to_contain_text("Section A, row A-1 · 99,000 KRW")
    expect(chosen).to_contain_text("Section A, row A-3 · 99,000 KRW")
    expect(page.locator('[data-role="total"]')).to_have_text("Total: 198,000 KRW")
    expect(status).to_be_empty()  # the message about A-2 has been acted on
    shot(page, "04-seats-chosen", focus=".stage")
    next_button.click()

    # Checkout: review and pay, with its one clock (the time left to pay).
    expect(page.get_by_role("heading", name="Review and pay")).to_be_visible()
    expect(page.locator(".checkout-seats tfoot")).to_contain_text("198,000 KRW")
    expect(page.locator('#checkout [data-role="countdown"]')).to_have_text(re.compile(r"^[45]:\d\d$"))
    shot(page, "05-checkout")
    page.get_by_role("button", name="Pay 198,000 KRW").click()

    # The booking, with a QR code per ticket, and the ticket e-mail.
    expect(page.get_by_text("Booking confirmed.")).to_be_visible()
    booking = Booking.objects.get(user=buyer)
    expect(page.get_by_role("heading", name=f"Booking {booking.code}")).to_be_visible()
    expect(page.locator("figure.ticket-qr svg")).to_have_count(2)
    expect(page.get_by_role("img", name=re.compile("QR code of ticket"))).to_have_count(2)
    assert booking.status == BookingStatus.CONFIRMED
    assert [m.subject for m in mail.outbox if booking.code in m.subject], "no ticket e-mail"
    shot(page, "06-ticket-qr")

    # My tickets, then cancel the booking.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My tickets").click()
    ticket_card = page.locator(".booking-card", has_text=booking.code)
    expect(ticket_card).to_contain_text("2 tickets")
    expect(ticket_card).to_contain_text("Confirmed")
    shot(page, "07-my-tickets", widths=("phone",))
    ticket_card.get_by_role("link", name="Seoul Spring Concert").click()
    expect(page.locator("figure.ticket-qr svg")).to_have_count(2)
    page.get_by_role("link", name="Cancel this booking").click()
    expect(page.get_by_role("heading", name=f"Cancel booking {booking.code}?")).to_be_visible()
    page.get_by_role("button", name="Yes, cancel this booking").click()
    expect(page.get_by_text("Your booking was cancelled.")).to_be_visible()
    expect(page.locator(".badge.status-cancelled")).to_have_text("Cancelled")
    expect(page.locator("figure.ticket-qr")).to_have_count(0)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    freed = Seat.objects.filter(pk__in=[ticket.seat_id for ticket in booking.tickets.all()])
    assert set(freed.values_list("status", flat=True)) == {SeatStatus.AVAILABLE}

    # The same pages in Korean, through the language switcher in the header.
    page.get_by_label("Language").select_option("ko")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator(".badge.status-cancelled")).to_have_text("취소됨")
    page.get_by_role("navigation").get_by_role("link", name="내 티켓").click()
    expect(page.get_by_role("heading", name="내 티켓")).to_be_visible()
    expect(page.locator(".booking-card")).to_contain_text("198,000원")
    page.goto("/")
    expect(page.get_by_role("heading", name="지금 예매 중")).to_be_visible()
    expect(page.locator(".card", has_text="Seoul Spring Concert")).to_contain_text("55,000\u201399,000원")
    shot(page, "08-home-korean", widths=("phone",))


# --- the staff -----------------------------------------------------------------------------


def test_staff_creates_an_event_with_seats_and_steers_the_rush(
    new_page: Callable[..., Any], shot: Callable[..., None], staff_user: User, user_factory: Any
) -> None:
    from events.services.waiting_room import queue_join
    from events.tasks import admit_on_sale_events

    page = new_page()
    page.goto("/admin/")
    page.get_by_label("E-mail address").fill(staff_user.email)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    # A new event, on sale since an hour ago.
    page.goto("/admin/events/event/add/")
    now = timezone.localtime()
    opens, closes, starts = now - timedelta(hours=1), now + timedelta(days=7), now + timedelta(days=8)
    page.locator("#id_title").fill("Rush Test Live")
    page.locator("#id_venue").fill("KSPO Dome")
    for field, when in (("starts_at", starts), ("sales_open_at", opens), ("sales_close_at", closes)):
        page.locator(f"#id_{field}_0").fill(when.strftime("%Y-%m-%d"))
        page.locator(f"#id_{field}_1").fill(when.strftime("%H:%M:%S"))
    page.locator("#id_queue_capacity").fill("2")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    event = Event.objects.get(title="Rush Test Live")

    # Bulk seat generation: two sections of 4 rows by 10 seats.
    page.locator("tr", has_text="Rush Test Live").get_by_role("link", name="Generate seats").click()
    page.locator("#id_rows").fill("4")
    page.locator("#id_seats_per_row").fill("10")
    page.locator("#id_sections-0-name").fill("A")
    page.locator("#id_sections-0-grade").fill("VIP")
    page.locator("#id_sections-0-price").fill("121000")
    page.locator("#id_sections-1-name").fill("B")
    page.locator("#id_sections-1-grade").fill("R")
    page.locator("#id_sections-1-price").fill("88000")
    shot(page, "09-admin-generate-seats", widths=("desktop",))
    page.get_by_role("button", name="Generate seats").click()
    expect(page.locator(".messagelist")).to_contain_text("80 seats created.")
    assert Seat.objects.filter(event=event).count() == 80

    # Buyers arrive; the dashboard shows them waiting.
    for buyer in [user_factory() for _ in range(6)]:
        queue_join(event_id=event.pk, user_id=buyer.pk)
    page.locator("tr", has_text="Rush Test Live").get_by_role("link", name="Rush dashboard").click()
    expect(page).to_have_url(re.compile(rf"/staff/events/{event.pk}/rush/$"))
    figure = lambda name: page.locator(f'[data-field="{name}"]')  # noqa: E731
    expect(figure("waiting")).to_have_text("6")
    expect(figure("available_seats")).to_have_text("80")

    # Pause: the admission tick admits nobody.
    page.get_by_role("button", name="Pause admission").click()
    expect(figure("state")).to_have_text("Admission paused")
    expect(page.get_by_role("button", name="Resume admission")).to_be_visible()
    assert admit_on_sale_events()[event.pk]["admitted"] == 0
    page.wait_for_timeout(2500)  # a dashboard poll or two
    expect(figure("waiting")).to_have_text("6")
    expect(figure("active")).to_have_text("0")

    # Resume: the next tick admits up to the capacity (2), and the figures follow
    # without moving anything else on the page.
    page.get_by_role("button", name="Resume admission").click()
    shift_before = layout_shift(page)
    expect(figure("state")).to_have_text("Admitting")
    assert admit_on_sale_events()[event.pk]["admitted"] == 2
    expect(figure("waiting")).to_have_text("4", timeout=FOLLOW_MS)
    expect(figure("active")).to_have_text("2")
    expect(figure("admitted_total")).to_have_text("2")
    page.wait_for_timeout(2500)  # the next poll redraws the charts too
    assert layout_shift(page) - shift_before < 0.01, "the dashboard moved when its figures updated"
    shot(page, "10-rush-dashboard")

    changes = list(RushControlChange.objects.filter(event=event).order_by("changed_at"))
    assert [change.changes.get("paused") for change in changes] == [[False, True], [True, False]]
    assert all(change.changed_by_id == staff_user.pk for change in changes)
