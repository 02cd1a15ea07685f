from __future__ import annotations

from accounts.checks import login_guard_backend_check


def test_check_warns_when_log_ins_bypass_the_guard(settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert [message.id for message in login_guard_backend_check(None)] == ["accounts.W001"]

    settings.AUTHENTICATION_BACKENDS = [
        "accounts.backends.ThrottledModelBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    assert [message.id for message in login_guard_backend_check(None)] == ["accounts.W001"]


def test_check_passes_with_the_throttled_backend(settings):
    settings.AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
    assert login_guard_backend_check(None) == []
