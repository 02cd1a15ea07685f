"""Test fixtures and helpers shared by every app. Real Redis (embedded or ``REDIS_URL``)
and a real database; each test gets its own Redis key prefix so tests never see each
other's queues.

The helpers used by several apps live here once each (import them with
``from conftest import ...``): the bearer-token API client, eager Celery, the
``DATABASE_URL`` under which a subprocess sees the test database, and the command line of
a real Celery worker with the way to stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.cache import cache

# pytest-django loads the settings before this file: per-run isolation is applied by
# the fixture below, through the settings fixture (which resets the cache handlers).
_CACHE_KEY_PREFIX = f"tc-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _isolated_redis(settings):
    settings.QUEUE_KEY_PREFIX = f"tq-test-{uuid.uuid4().hex[:10]}:"
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": _CACHE_KEY_PREFIX}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from events.services.seat_map import seat_map_published_clear
    from queueing.pulse import pulse_cache
    from ticketing.local_cache import local_cache

    def forget_process_caches() -> None:
        local_cache.clear()
        pulse_cache.clear()
        seat_map_published_clear()

    forget_process_caches()
    cache.delete_pattern("*")
    yield
    forget_process_caches()


@pytest.fixture
def user_factory(db):
    from accounts.models import User

    counter = iter(range(1, 1_000_000))

    def make(**kwargs) -> User:
        n = next(counter)
        kwargs.setdefault("email", f"buyer{n}-{uuid.uuid4().hex[:6]}@example.com")
        kwargs.setdefault("name", f"Buyer {n}")
        password = kwargs.pop("password", "correct horse battery staple")
        return User.objects.create_user(password=password, **kwargs)

    return make


@pytest.fixture
def user(user_factory):
    return user_factory()


@pytest.fixture
def staff_user(user_factory):
    return user_factory(is_staff=True, is_superuser=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def make_auth_client(user: Any) -> Any:
    """An API client (``rest_framework.test.APIClient``) sending a real JWT access token
    for ``user``, who is kept on it as ``client.user``."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    client.user = user
    return client


@pytest.fixture
def auth_client(user):
    """An API client sending a real JWT access token for ``user``."""
    return make_auth_client(user)


@pytest.fixture
def event_factory(db, django_capture_on_commit_callbacks):
    """Creates an on-sale event; its on-commit work (cache invalidation, seat map) runs
    as it would after a real commit."""
    from events.services.catalogue import event_create_with_seats

    def make(**kwargs):
        kwargs.setdefault("title", "Test concert")
        kwargs.setdefault("sections", ["A"])
        kwargs.setdefault("rows", 2)
        kwargs.setdefault("seats_per_row", 5)
        kwargs.setdefault("price", "55000")
        if "sales_open_at" not in kwargs:
            kwargs.setdefault("open_now", True)
        with django_capture_on_commit_callbacks(execute=True):
            return event_create_with_seats(**kwargs)

    return make


@pytest.fixture
def on_sale_event(event_factory):
    return event_factory()


@pytest.fixture
def eager_celery(settings: Any) -> Iterator[None]:
    """Celery tasks run in-process as a worker would run them (CELERY_TASK_ALWAYS_EAGER):
    the ticket mail lands in ``mail.outbox`` when its booking commits, also when the
    booking is made by the live server's thread; nothing goes to the machine's broker."""
    from ticketing.celery import app

    # Read first: the first access loads the Celery config from the Django settings, and
    # would otherwise read the True set below as the value to restore.
    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


# --- Subprocesses that share this test's database (real Celery workers) ------------------


def database_url_for_subprocess() -> str:
    """A DATABASE_URL under which another process sees this test's database (the file
    SQLite test database of settings.py, or the MySQL/MariaDB test database). Only
    meaningful in ``django_db(transaction=True)`` tests, whose writes are committed."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.skip("an in-memory SQLite test database cannot be opened by another process")
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    scheme = {"mysql": "mysql", "postgresql": "postgres"}.get(connection.vendor)
    if scheme is None:
        pytest.skip(f"no DATABASE_URL form known for {connection.vendor}")
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"{scheme}://{credentials}@{host}{port}/{db['NAME']}"


def celery_worker_command(*queues: str, name: str | None = None, beat: bool = False) -> list[str]:
    """The command line of a real Celery worker of this project consuming ``queues``: one
    pool process, and none of the start-up chatter with other workers (heartbeat, gossip,
    mingle) that slows its start and would involve any other worker on the same broker.
    ``beat`` embeds the scheduler; ``name`` tells two workers of one test apart."""
    celery = Path(sys.executable).with_name("celery")
    if not celery.exists():
        pytest.skip("the celery command is not installed next to this Python")
    command = [str(celery), "-A", "ticketing", "worker", "-Q", ",".join(queues), "-l", "info"]
    if beat:
        command.append("-B")
    if name is not None:
        command += ["-n", f"{name}@%h"]
    return [*command, "--concurrency", "1", "--without-heartbeat", "--without-gossip", "--without-mingle"]


def celery_worker_start(command: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Starts the worker in its own process group, output to ``log_path``; stop it with
    ``stop_process_group`` (which then ends exactly the worker and its pool children)."""
    from django.conf import settings

    with log_path.open("wb") as log:
        return subprocess.Popen(  # noqa: S603  (our own command line, celery_worker_command)
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process_group(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Signals the process group we started (``start_new_session=True``), then waits;
    SIGKILL if it outlives the timeout."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """The browser tests' Chromium (ticketing/tests/browser.py): one process per test
    module, each test opening fresh contexts (cookies)."""
    from ticketing.tests.browser import chromium_browser

    with chromium_browser() as browser:
        yield browser
