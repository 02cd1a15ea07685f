"""Every page passes an accessibility audit (issue 16): axe-core in a real Chromium.

axe-core (``ticketing/tests/vendor/axe-core/axe.min.js``, tests only, never served) is
injected into each page of the site and run with ``axe.run(document, {resultTypes:
['violations']})``: signed out, as a buyer (every step of the rush), as staff and as door
staff, in English and Korean, at phone size (390x844) and, for the pages people also use
on a computer, at desktop size (1280x800). Each page is audited in the state a person sees
it in (joined, admitted, seats held, answer shown...), set up with the project's services.

Each page must have no violation of impact "serious" or "critical", the Django admin's
pages staff use included (the admin index, the event list and change page with the fees
and cancellation policy, and our bulk seat generation page): their two violations of
Django's own are fixed in events/admin.py (the split date and time inputs labelled) and
static/css/admin.css (the breadcrumbs' links underlined). ``ours=False`` (reported, not
asserted) remains for a page whose markup we do not control.

The table of counts per page is printed and written to ``var/axe-report.txt`` (with the
rules behind each count), ready to paste into the README:

    .venv/bin/pytest ticketing/tests/test_accessibility.py -s

Skipped like the other browser tests when Chromium or Playwright is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from booking.models import Booking
from booking.services import seats_hold
from booking.tests.conftest import admit_users, book_seats, seat_ids_of
from conftest import make_auth_client
from events.models import Event
from events.services.catalogue import SectionSpec, event_create_with_seats
from events.services.rush_control import rush_control_update
from events.services.waiting_room import queue_join
from queueing.line import line_admit
from ticketing.local_cache import local_cache
from ticketing.tests.browser import AXE_JS, DESKTOP, FOLLOW_MS, PHONE, browser_required, new_context

sync_api = browser_required()
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORT = Path(settings.BASE_DIR) / "var" / "axe-report.txt"
BLOCKING = ("serious", "critical")
GATE = "North 1"

# Colours are measured at rest: finite animations (the scanner answer's flash) end first.
RUN_AXE = """async () => {
    await Promise.all(document.getAnimations()
        .filter((a) => a.effect && a.effect.getComputedTiming().iterations !== Infinity)
        .map((a) => a.finished.catch(() => null)));
    const results = await window.axe.run(document, { resultTypes: ["violations"] });
    return results.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => ({
            target: n.target.map(String).join(" > "),
            summary: n.failureSummary,
        })),
    }));
}"""


# --- the audit and its report --------------------------------------------------------------


@dataclass
class Audit:
    page: str
    lang: str
    viewport: str
    ours: bool
    violations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def blocking(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if v["impact"] in BLOCKING]

    def describe(self, violations: list[dict[str, Any]]) -> str:
        lines = []
        for v in violations:
            lines.append(f"  {v['id']} ({v['impact']}, {len(v['nodes'])} element(s)): {v['help']}")
            for node in v["nodes"][:5]:
                summary = " ".join((node["summary"] or "").split())
                lines.append(f"    {node['target']}: {summary[:300]}")
        return "\n".join(lines)


AUDITS: list[Audit] = []


@cache
def axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


def report_table(audits: list[Audit]) -> str:
    rows = [
        "| Page | Language | Screen | Violations | Serious + critical |",
        "|---|---|---|---:|---:|",
    ]
    for audit in audits:
        page = audit.page if audit.ours else f"{audit.page} (Django admin, not asserted)"
        rows.append(
            f"| {page} | {audit.lang} | {audit.viewport} | {len(audit.violations)} | {len(audit.blocking)} |"
        )
    return "\n".join(rows)


def report_summary(audits: list[Audit]) -> str:
    """One row per page (the README's table): "violations / serious + critical" for each
    language and screen, and the rules behind them."""
    columns = [("phone", "en"), ("phone", "ko"), ("desktop", "en"), ("desktop", "ko")]
    pages: dict[str, dict[tuple[str, str], Audit]] = {}
    for audit in audits:
        cells = pages.setdefault(audit.page, {})
        for lang in audit.lang.split("+"):  # the 500 and 503 pages carry both languages
            cells[(audit.viewport, lang)] = audit
    rows = [
        "| Page | Phone, en | Phone, ko | Desktop, en | Desktop, ko | Rules (impact) |",
        "|---|---|---|---|---|---|",
    ]
    for page, cells in pages.items():
        found = {(v["id"], v["impact"]) for audit in cells.values() for v in audit.violations}
        ours = next(iter(cells.values())).ours
        name = page if ours else f"{page} (Django admin: reported, not asserted)"
        counts = [
            f"{len(cells[c].violations)} / {len(cells[c].blocking)}" if c in cells else "-" for c in columns
        ]
        rules = ", ".join(f"{rule} ({impact})" for rule, impact in sorted(found))
        rows.append(f"| {name} | {' | '.join(counts)} | {rules} |")
    return "\n".join(rows)


def report_details(audits: list[Audit]) -> str:
    lines = []
    for audit in audits:
        if audit.violations:
            lines.append(f"{audit.page} [{audit.lang}, {audit.viewport}]")
            lines.append(audit.describe(audit.violations))
    return "\n".join(lines) if lines else "No violations."


@pytest.fixture(scope="module", autouse=True)
def axe_report() -> Iterator[None]:
    """Prints the table of the module's audits and writes it to var/axe-report.txt."""
    AUDITS.clear()
    yield
    if not AUDITS:
        return
    version = re.search(r"axe v([\d.]+)", axe_source()[:200])
    text = (
        f"axe-core {version.group(1) if version else '?'}: "
        "violations (rules broken) / of which serious or critical, per page; "
        "asserted: 0 serious or critical on our pages.\n\n"
        f"{report_summary(AUDITS)}\n\nEach audit:\n\n{report_table(AUDITS)}\n\n"
        f"Details:\n{report_details(AUDITS)}\n"
    )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    print(f"\n{text}\n(written to {REPORT})")


def audit(page: Any, name: str, lang: str, *, ours: bool = True, desktop: bool = False) -> list[str]:
    """Runs axe on the page as it is now (at phone size, then at desktop size when
    ``desktop``); records the results and returns the failures (serious or critical
    violations of our own pages), for the test to assert on once all its pages are done."""
    failures = []
    for viewport in ("phone", "desktop") if desktop else ("phone",):
        page.set_viewport_size(PHONE if viewport == "phone" else DESKTOP)
        page.wait_for_timeout(100)  # let the re-layout settle
        if not page.evaluate("() => typeof window.axe === 'object'"):
            # Through the DevTools protocol, so the site's CSP (script-src 'self') allows it.
            page.evaluate(axe_source())
        result = Audit(name, lang, viewport, ours, page.evaluate(RUN_AXE))
        AUDITS.append(result)
        if ours and result.blocking:
            failures.append(f"{name} [{lang}, {viewport}] {page.url}\n{result.describe(result.blocking)}")
    page.set_viewport_size(PHONE)
    return failures


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def open_page(chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """A page in a fresh phone-sized context in ``lang``, signed in as ``user`` (a session
    made by Django's test client) or signed out; fails the test on any JavaScript error."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(lang: str, user: Any = None) -> Any:
        context = new_context(chromium, live_server.url, lang=lang)
        contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            session = client.cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
            )
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"


def concert(**kwargs: Any) -> Event:
    kwargs.setdefault("title", "Seoul Spring Concert")
    kwargs.setdefault("venue", "Olympic Hall")
    kwargs.setdefault(
        "sections", [SectionSpec("A", "VIP", Decimal("99000")), SectionSpec("B", "R", Decimal("55000"))]
    )
    kwargs.setdefault("rows", 2)
    kwargs.setdefault("seats_per_row", 8)
    kwargs.setdefault("open_now", True)
    policy = kwargs.pop("policy", True)
    event = event_create_with_seats(**kwargs)
    if policy:
        # The demo's fees and cancellation policy: the fee table on the event page, the
        # booking fee at checkout, the refund on the cancel page.
        Event.objects.filter(pk=event.pk).update(**POLICY)
        event.refresh_from_db()
    local_cache.clear()  # the live server runs in this process
    return event


def serve(html: str, hits: list[str]) -> Callable[[Any], None]:
    """A Playwright route handler answering with ``html``; notes each request in ``hits``
    (by the page's name, the address's last part after ``_error_``)."""

    def handle(route: Any) -> None:
        hits.append(route.request.url.rpartition("_error_")[2])
        route.fulfill(body=html, content_type="text/html")

    return handle


def seat_button(page: Any, number: int) -> Any:
    return page.locator(f'button.seat[data-section="A"][data-row="A"][data-number="{number}"]')


LANGS = pytest.mark.parametrize("lang", ["en", "ko"])
POLICY = {
    "booking_fee": Decimal("2000"),
    "cancellation_deadline_hours": 24,
    "cancellation_fees": [{"days_before": 9, "fee_percent": 10}, {"days_before": 2, "fee_percent": 30}],
}


# --- signed out ----------------------------------------------------------------------------


@LANGS
def test_signed_out_pages(
    lang: str, open_page: Callable[..., Any], user_factory: Any, eager_celery: None, settings: Any
) -> None:
    event = concert()
    upcoming = concert(
        title="Autumn Jazz Night",
        venue="Sejong Center",
        open_now=False,
        sales_open_at=timezone.now() + timedelta(days=3),
    )
    book_seats(event, user_factory(), seat_ids_of(event, 2))  # a few sold seats on the map
    page = open_page(lang)
    failures = []

    page.goto("/")
    failures += audit(page, "Home (catalogue)", lang, desktop=True)
    page.goto(f"/events/{event.pk}/")
    expect(page.locator("#policy-heading")).to_be_visible()
    # The hall's preview is a picture, said to be one: nothing in it to press or focus.
    preview = page.locator(".seat-preview")
    expect(page.locator(".preview-note")).to_be_visible()
    expect(preview).to_have_attribute("aria-hidden", "true")
    expect(preview.locator("a, button, input, [tabindex]")).to_have_count(0)
    assert (
        preview.locator(".preview-seat").first.evaluate("(seat) => getComputedStyle(seat).cursor")
        != "pointer"
    )
    failures += audit(page, "Event page", lang, desktop=True)
    page.goto(f"/events/{upcoming.pk}/")
    failures += audit(page, "Event page, upcoming", lang)
    sold_out = concert(title="Sold Out Night", rows=1, seats_per_row=2)
    book_seats(sold_out, user_factory(), seat_ids_of(sold_out))
    page.goto(f"/events/{sold_out.pk}/")
    failures += audit(page, "Event page, sold out", lang)
    page.goto(f"/events/{event.pk}/queue/")
    expect(page).to_have_url(re.compile(r"/accounts/signup/\?next="))
    failures += audit(page, "Get tickets, signed out: sign up or log in", lang, desktop=True)
    page.goto("/accounts/login/")
    failures += audit(page, "Log-in", lang, desktop=True)
    page.locator("#id_username").fill("nobody@example.com")
    page.locator("#id_password").fill("wrong password")
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".form-errors")).to_be_visible()
    failures += audit(page, "Log-in, wrong password", lang)
    page.goto("/accounts/signup/")
    failures += audit(page, "Sign-up", lang)
    page.locator("#id_name").fill("Minji Kim")
    page.locator("#id_email").fill("not-an-address@example")
    page.locator("#id_password").fill("short")
    page.locator("#id_password_confirm").fill("different")
    page.locator("main form").first.evaluate("form => form.noValidate = true")
    page.locator("main form button[type=submit]").first.click()
    expect(page.locator(".errorlist").first).to_be_visible()
    failures += audit(page, "Sign-up, with errors", lang)
    page.goto("/no/such/page/")
    failures += audit(page, "404", lang)
    # A form sent with a stale security token: the CSRF failure page.
    page.goto("/accounts/login/")
    page.context.clear_cookies()
    page.locator("main form").last.evaluate("form => { form.noValidate = true; form.requestSubmit(); }")
    expect(page.locator("main h1")).to_be_visible()
    failures += audit(page, "Form refused (CSRF failure)", lang)
    # A form too large to accept (413; the limit lowered for the test).
    limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE = settings.DATA_UPLOAD_MAX_MEMORY_SIZE, 1024
    page.goto("/accounts/login/")
    page.locator("#id_username").fill("nobody@example.com")
    page.locator("#id_password").fill("x" * 4096)
    page.locator("main form button[type=submit]").click()
    expect(page.locator("main h1")).to_be_visible()
    failures += audit(page, "Too much to send (413)", lang)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = limit
    # The static 500 and 503 pages (both languages on each), served at the site's address
    # so their stylesheet and script load: a failing server or Redis is not set up here.
    if lang == "en":
        hits: list[str] = []
        for name in ("500", "503"):
            html = render_to_string(f"{name}.html", {"what": "redis"})
            page.route(f"**/_error_{name}", serve(html, hits))
        page.goto("/_error_500")
        failures += audit(page, "500 (English and Korean)", "en+ko")
        page.clock.install()
        page.goto("/_error_503")
        expect(page.locator('[data-action="stop-retry"]')).to_be_visible()
        failures += audit(page, "503 (English and Korean)", "en+ko")
        # It still tries again by itself after 5 s (without a meta refresh), unless stopped.
        page.clock.run_for(5_100)
        for _ in range(FOLLOW_MS // 50):
            if hits.count("503") == 2:
                break
            page.wait_for_timeout(50)
        assert hits.count("503") == 2, hits
        expect(page.locator('[data-action="stop-retry"]')).to_be_visible()
        page.locator('[data-action="stop-retry"]').click()
        expect(page.locator('[data-field="retry-stopped"]')).to_be_visible()
        failures += audit(page, "503, retry stopped", "en+ko")
        page.clock.run_for(10_000)
        page.wait_for_timeout(200)
        assert hits.count("503") == 2, hits

    assert not failures, "\n\n".join(failures)


# --- the buyer -----------------------------------------------------------------------------


@LANGS
def test_buyer_pages(
    lang: str, open_page: Callable[..., Any], user_factory: Any, staff_user: Any, eager_celery: None
) -> None:
    event = concert(capacity=1, pass_seconds=600, hold_seconds=300)
    for early in (user_factory(), user_factory()):
        queue_join(event_id=event.pk, user_id=early.pk)
    buyer = user_factory(name="Minji Kim")
    page = open_page(lang, buyer)
    failures = []

    # The waiting room: not in line yet, in line, admitted.
    page.goto(f"/events/{event.pk}/queue/")
    failures += audit(page, "Waiting room, not in line", lang)
    page.locator('[data-panel="none"] form button[type=submit]').click()
    expect(page.locator('[data-field="position"]')).to_have_text("3")
    failures += audit(page, "Waiting room, in line", lang, desktop=True)
    # The same account on another device: in line already, the place kept, and said so.
    elsewhere = open_page(lang, buyer)
    elsewhere.goto(f"/events/{event.pk}/queue/")
    expect(elsewhere.locator(".queue-elsewhere")).to_be_visible()
    failures += audit(elsewhere, "Waiting room, in line from another device", lang)
    elsewhere.close()
    # Staff pause the sale: the page says so and that the place is kept.
    rush_control_update(event=event, user=staff_user, paused=True)
    expect(page.locator('[data-field="paused"]')).to_be_visible()
    failures += audit(page, "Waiting room, sale paused", lang)
    rush_control_update(event=event, user=staff_user, paused=False)
    expect(page.locator('[data-field="paused"]')).to_be_hidden()
    # Admitted: the page says so, then goes to the seat picker by itself (held back here
    # until the audit is done).
    held: list[Any] = []
    page.route(f"**/events/{event.pk}/pick/", lambda route: held.append(route))
    line_admit(event_id=event.pk, capacity=100, pass_seconds=600)
    expect(page.locator('[data-field="pass-until"]')).not_to_be_empty()
    failures += audit(page, "Waiting room, admitted", lang)
    for _ in range(FOLLOW_MS // 50):
        if held:
            break
        page.wait_for_timeout(50)
    for route in held:
        route.continue_()
    page.unroute(f"**/events/{event.pk}/pick/")

    # The seat picker, then seats chosen, then a seat someone else took first. (The
    # map's background refresh is paused for that step, so "Next" itself is refused.)
    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/pick/$"))
    expect(page.locator('button.seat[tabindex="0"]')).to_have_count(1)
    failures += audit(page, "Seat picker", lang, desktop=True)
    seat_button(page, 1).click()
    seat_button(page, 2).click()
    expect(page.locator('[data-role="held-list"] li')).to_have_count(2)
    failures += audit(page, "Seat picker, seats chosen", lang, desktop=True)
    page.route("**/api/events/*/seats/", lambda route: route.fulfill(status=304))
    seat_button(page, 3).click()
    other = user_factory()
    admit_users(event, other)
    seats_hold(event_id=event.pk, user_id=other.pk, seat_ids=seat_ids_of(event, 3)[2:])
    page.locator('[data-role="next"]').click()
    expect(page.locator('.hold-panel [data-role="status"]')).not_to_be_empty()
    expect(page.locator('[data-role="held-list"] li')).to_have_count(2)
    failures += audit(page, "Seat picker, a seat just taken", lang, desktop=True)
    page.unroute("**/api/events/*/seats/")

    # Checkout, the booking with its QR codes, my tickets, the cancel page.
    page.locator('[data-role="next"]').click()
    expect(page.locator('#checkout [data-role="countdown"]')).not_to_be_empty()
    failures += audit(page, "Review and pay (checkout)", lang, desktop=True)
    page.locator(".checkout-form button[type=submit]").click()
    expect(page.locator("figure.ticket-qr")).to_have_count(2)
    failures += audit(page, "Booking with QR codes", lang, desktop=True)
    booking = Booking.objects.get(user=buyer)
    page.goto("/my/tickets/")
    failures += audit(page, "My tickets", lang, desktop=True)
    page.goto(f"/my/tickets/{booking.code}/cancel/")
    failures += audit(page, "Cancel booking", lang)
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".badge.status-cancelled")).to_be_visible()
    failures += audit(page, "Booking, cancelled", lang)

    # No bookings yet (another buyer), and a page a buyer may not open (403).
    other = open_page(lang, user_factory())
    other.goto("/my/tickets/")
    failures += audit(other, "My tickets, none yet", lang)
    other.goto(f"/staff/events/{event.pk}/rush/")
    failures += audit(other, "403 (buyer on a staff page)", lang)

    # Sold out: the waiting room says so and what comes next (the waiting list).
    sold_out = concert(title="Sold Out Night", rows=1, seats_per_row=2)
    book_seats(sold_out, user_factory(), seat_ids_of(sold_out))
    line_admit(event_id=sold_out.pk, capacity=10, pass_seconds=600)
    page.goto(f"/events/{sold_out.pk}/queue/")
    failures += audit(page, "Waiting room, sold out", lang)
    # Online cancellation has closed (the show in 10 hours, the deadline 24 hours before).
    soon = concert(
        title="Tonight",
        sales_open_at=timezone.now() - timedelta(days=1),
        sales_close_at=timezone.now() + timedelta(hours=5),
        starts_at=timezone.now() + timedelta(hours=10),
    )
    late = book_seats(soon, buyer, seat_ids_of(soon, 1))
    page.goto(f"/my/tickets/{late.code}/cancel/")
    expect(page.locator("main .message.error")).to_be_visible()
    failures += audit(page, "Cancel booking, online cancellation closed", lang)

    assert not failures, "\n\n".join(failures)


@LANGS
def test_buyer_checks_human_check_and_proof_of_work(
    lang: str, open_page: Callable[..., Any], user_factory: Any
) -> None:
    buyer = user_factory(name="Minji Kim")
    page = open_page(lang, buyer)
    failures = []

    # The "I'm not a robot" check before the seat picker (event.human_check).
    checked = concert(title="Checked Concert", human_check=True)
    admit_users(checked, buyer)
    page.goto(f"/events/{checked.pk}/pick/")
    expect(page.locator('#human-check [data-role="continue"]')).to_be_enabled()  # the widget has mounted
    expect(page.locator('[data-role="pass-countdown"]')).not_to_be_empty()
    failures += audit(page, "Human check", lang)

    # The waiting room with proof-of-work (event.pow_difficulty): preparing, then ready.
    guarded = concert(title="Guarded Concert", pow_difficulty=20_000)
    challenges: list[Any] = []
    page.route(re.compile(r"/api/events/\d+/queue/challenge/"), lambda route: challenges.append(route))
    page.goto(f"/events/{guarded.pk}/queue/")
    for _ in range(FOLLOW_MS // 50):
        if challenges:
            break
        page.wait_for_timeout(50)
    expect(page.locator("form[data-pow]")).to_have_attribute("data-pow-state", "preparing")
    failures += audit(page, "Waiting room with proof-of-work, preparing", lang)
    for route in challenges:
        route.continue_()
    page.unroute(re.compile(r"/api/events/\d+/queue/challenge/"))
    expect(page.locator("form[data-pow]")).to_have_attribute("data-pow-state", "ready")
    failures += audit(page, "Waiting room with proof-of-work, check done", lang)

    assert not failures, "\n\n".join(failures)


# --- staff ---------------------------------------------------------------------------------


@LANGS
def test_staff_pages(
    lang: str, open_page: Callable[..., Any], staff_user: Any, user_factory: Any, eager_celery: None
) -> None:
    event = concert(capacity=2)
    # A crowd, some of it from one address: the dashboard's suspicious panel has a table.
    for n in range(4):
        make_auth_client(user_factory(email=f"macro{n}@example.com")).post(
            f"/api/events/{event.pk}/queue/", REMOTE_ADDR="203.0.113.9"
        )
    for _ in range(3):
        queue_join(event_id=event.pk, user_id=user_factory().pk)
    book_seats(event, user_factory(), seat_ids_of(event, 2))
    page = open_page(lang, staff_user)
    failures = []

    page.goto(f"/staff/events/{event.pk}/rush/")
    expect(page.locator('[data-field="waiting"]')).to_have_text(re.compile(r"\d"))
    page.wait_for_timeout(1500)  # the first poll has drawn the charts
    failures += audit(page, "Rush dashboard", lang, desktop=True)
    page.locator('[data-action="toggle-pause"]').click()
    expect(page.locator('[data-field="state"]')).to_have_class(re.compile("paused"))
    failures += audit(page, "Rush dashboard, paused", lang)

    # The Django admin (the event's change page has the fees and cancellation policy).
    page.goto("/admin/")
    failures += audit(page, "Admin index", lang, desktop=True)
    page.goto("/admin/events/event/")
    failures += audit(page, "Admin event list", lang, desktop=True)
    page.goto(f"/admin/events/event/{event.pk}/change/")
    expect(page.locator("#id_cancellation_fees")).to_be_visible()
    failures += audit(page, "Admin event change page", lang, desktop=True)
    page.goto(f"/admin/events/event/generate-seats/?ids={event.pk}")
    failures += audit(page, "Admin seat generation", lang, desktop=True)

    assert not failures, "\n\n".join(failures)


# --- door staff ----------------------------------------------------------------------------


@LANGS
def test_door_staff_scanner(
    lang: str, open_page: Callable[..., Any], user_factory: Any, eager_celery: None
) -> None:
    event = concert()
    tickets = list(book_seats(event, user_factory(name="Minji Kim"), seat_ids_of(event, 3)).tickets.all())
    steward = user_factory(name="Gate Keeper")
    # The permission row itself (a transactional test's flush removes the group's data).
    steward.user_permissions.add(
        Permission.objects.get(content_type__app_label="booking", codename="check_in_tickets")
    )
    page = open_page(lang, steward)
    failures = []

    def answer_is(state: str) -> None:
        expect(page.locator('[data-field="answer"]')).to_have_attribute("data-state", state)
        page.wait_for_timeout(400)  # the answer's flash is over

    page.goto(f"/staff/events/{event.pk}/scan/")
    expect(page.locator("#scanner")).to_have_attribute("data-ready", "true")
    failures += audit(page, "Scanner, first use (gate)", lang)
    page.locator("#gate-name").fill(GATE)
    page.locator("#gate-form button[type=submit]").click()
    expect(page.locator('[data-field="gate"]')).to_have_text(GATE)
    failures += audit(page, "Scanner, ready", lang)
    page.locator("#manual-code").fill(tickets[0].code)
    page.locator("#manual-form button[type=submit]").click()
    answer_is("ok")
    failures += audit(page, "Scanner, green (welcome)", lang)
    page.locator("#manual-code").fill(tickets[0].code)
    page.locator("#manual-form button[type=submit]").click()
    answer_is("repeat")
    failures += audit(page, "Scanner, amber (already in)", lang)
    page.locator("#manual-code").fill("NOT-A-TICKET")
    page.locator("#manual-form button[type=submit]").click()
    answer_is("bad")
    failures += audit(page, "Scanner, red", lang)
    page.context.set_offline(True)
    page.locator("#manual-code").fill(tickets[1].code)
    page.locator("#manual-form button[type=submit]").click()
    expect(page.locator('[data-field="sync-status"]')).to_have_attribute("data-waiting", "1")
    failures += audit(page, "Scanner, offline (scan queued)", lang)
    page.context.set_offline(False)

    assert not failures, "\n\n".join(failures)
