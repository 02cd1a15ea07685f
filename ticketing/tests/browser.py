"""What every browser test shares: Debian's Chromium and its flags, the viewports, and a
Playwright session in which the tests may use the ORM between page steps.

A module of browser tests starts with ``sync_api = browser_required()``: it is skipped,
with the reason, when ``/usr/bin/chromium`` or the ``playwright`` package is missing
(``make test`` installs both). Never run ``playwright install``: the system browser is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# How long a page may take to follow a change made by the test (it polls every 1-2 s).
FOLLOW_MS = 10_000
# The browser languages of the buyers the tests play (the site's two languages).
LOCALES = {"en": "en-GB", "ko": "ko-KR"}


def new_context(
    browser: Any, base_url: str, *, lang: str, viewport: dict[str, int] = PHONE, **options: Any
) -> Any:
    """A browser context as a buyer in ``lang`` sees the site: a phone by default, the
    site's time zone, and ``FOLLOW_MS`` for every wait; ``options`` go to Playwright's
    ``new_context`` (permissions, touch, JavaScript off...)."""
    from django.conf import settings

    context = browser.new_context(
        base_url=base_url, viewport=viewport, locale=LOCALES[lang], timezone_id=settings.TIME_ZONE, **options
    )
    context.set_default_timeout(FOLLOW_MS)
    return context


# The password conftest's ``user_factory`` gives every user it makes.
TEST_PASSWORD = "correct horse battery staple"


def watch_errors(page: Any, errors: list[str]) -> None:
    """Collects the page's JavaScript errors and Content-Security-Policy violations."""
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )


# axe-core, tests only (never served): the accessibility audit and the pages' own tests.
AXE_JS = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
_AXE_BLOCKING = """async (selector) => {
    const results = await window.axe.run(selector || document, { resultTypes: ["violations"] });
    return results.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}"""


def axe_blocking(page: Any, selector: str | None = None) -> list[str]:
    """The serious and critical axe-core violations on the page (or in ``selector``), one
    line each. axe is injected through the DevTools protocol, which the site's CSP
    (script-src 'self') does not block."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    return page.evaluate(_AXE_BLOCKING, selector)


def session_cookie(user: Any, url: str) -> dict[str, str]:
    """A signed-in session for ``user`` (made by Django's test client), as a cookie for a
    browser context on ``url``: the test skips the log-in form."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": url,
    }


def log_in(page: Any, email: str, *, password: str = TEST_PASSWORD) -> None:
    """Fills in and sends the site's log-in form the page is showing."""
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(password)
    page.locator("main form button[type=submit]").click()


def screenshot_folder() -> Path:
    """``docs/screenshots/tmp/`` (ignored by git), or ``docs/screenshots/`` itself with
    ``UPDATE_SCREENSHOTS=1`` (the pictures docs/SCREENSHOTS.md shows)."""
    from django.conf import settings

    base = Path(settings.BASE_DIR) / "docs" / "screenshots"
    folder = base if os.environ.get("UPDATE_SCREENSHOTS") else base / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browser_required() -> Any:
    """``playwright.sync_api``, with ``expect`` waiting ``FOLLOW_MS``; skips the calling
    module when the browser or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium; `make test` installs it)",
            allow_module_level=True,
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="browser tests need `pip install playwright` (requirements-dev.txt)"
    )
    sync_api.expect.set_options(timeout=FOLLOW_MS)
    return sync_api


@contextmanager
def playwright_session() -> Iterator[Any]:
    """Playwright's sync API keeps an asyncio loop running in this thread for as long as
    it is open, so Django's async-safety check would refuse every ORM call the tests (and
    the database flush after each test) make between page steps; those calls are plain
    synchronous code, hence DJANGO_ALLOW_ASYNC_UNSAFE while it is open."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@contextmanager
def chromium_browser(extra_args: Sequence[str] = ()) -> Iterator[Any]:
    """A headless Chromium (one per test module, usually; each test opens contexts)."""
    with playwright_session() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield browser
        finally:
            browser.close()
