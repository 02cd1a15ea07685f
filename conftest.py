"""Test fixtures shared by every app. Real Redis (embedded or ``REDIS_URL``) and a real
database; each test gets its own Redis key prefix so tests never see each other's queues."""

from __future__ import annotations

import uuid

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


@pytest.fixture
def auth_client(user):
    """An API client sending a real JWT access token for ``user``."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    client.user = user
    return client


def make_auth_client(user):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    client.user = user
    return client


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
