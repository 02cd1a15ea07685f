"""System checks: the brute-force guard only works if settings route log-ins through it."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

THROTTLED_BACKEND = "accounts.backends.ThrottledModelBackend"


@register(Tags.security)
def login_guard_backend_check(app_configs: list[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    backends = list(settings.AUTHENTICATION_BACKENDS)
    if backends == [THROTTLED_BACKEND]:
        return []
    return [
        Warning(
            "Password log-ins are not protected by the brute-force guard.",
            hint=f'Set AUTHENTICATION_BACKENDS = ["{THROTTLED_BACKEND}"] (any other backend '
            "that checks passwords would bypass it).",
            id="accounts.W001",
        )
    ]
