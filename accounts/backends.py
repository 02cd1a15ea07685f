"""The authentication backend every password log-in goes through.

Settings must name it as the only backend:
``AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]``
(system check ``accounts.W001`` warns otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from accounts.login_guard import (
    LoginThrottled,
    client_ip,
    email_normalise,
    login_attempt_check,
    login_failure_record,
    login_failures_reset,
)

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.http import HttpRequest


class LoginRefused(PermissionDenied):
    """Raised inside ``authenticate()`` when the brute-force guard refuses an attempt.

    A ``PermissionDenied`` makes ``django.contrib.auth.authenticate()`` stop at once and
    return ``None``: no later backend gets to check the password either. Callers that
    want to say "too many attempts" call ``login_attempt_check`` themselves first.
    """


class ThrottledModelBackend(ModelBackend):
    """``ModelBackend`` behind the brute-force guard of ``accounts.login_guard``, with the
    e-mail address matched case-insensitively (addresses are stored lower-cased)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not isinstance(username, str) or password is None:
            return None
        email = email_normalise(username)
        ip = client_ip(request)
        try:
            login_attempt_check(email=email, ip=ip)
        except LoginThrottled as exc:
            raise LoginRefused(exc.detail) from exc

        user = super().authenticate(request, username=email, password=password)
        if user is None:
            login_failure_record(email=email, ip=ip)
        else:
            login_failures_reset(email=email)
        return user
