"""Fixtures of the accounts tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _accounts_settings(settings) -> None:
    # The line ticketing/settings.py must carry (system check accounts.W001 says so
    # when it does not); set here too so these tests run the guard either way.
    settings.AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
    # A fast hasher: the guard tests log in dozens of times, and the recovery test
    # needs its failures to fit in a one-second window.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
