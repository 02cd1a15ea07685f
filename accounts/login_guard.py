"""Brute-force guard for password log-ins.

Every password check (API token endpoint, site login page, admin login) goes through
``accounts.backends.ThrottledModelBackend``, which asks ``login_attempt_check`` before it
looks at the password and reports the outcome afterwards. The login form and the token
view also call ``login_attempt_check`` themselves first, only to tell the user *why*
they are refused (429 and ``Retry-After``) instead of "wrong password".

Failures are counted in the Django cache (Redis) under two keys: the normalised e-mail
address and the client address. A counter lives ``LOGIN_FAILURE_WINDOW`` seconds from
its first failure (a fixed window); refused attempts are not counted, so a locked-out
victim gets back in when the window ends however long an attacker keeps trying.
A successful log-in clears the account counter only: clearing the address counter
would let an attacker reset it by logging into an account of their own between
guesses at someone else's.

The cache fails open (``IGNORE_EXCEPTIONS`` in settings): with Redis down, log-ins keep
working, without this guard, rather than nobody being able to log in.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _
from rest_framework.settings import api_settings

from ticketing.errors import DomainError

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request


class LoginThrottled(DomainError):
    """Too many recent failures for this e-mail address or client address."""

    status = 429
    default_detail = _("Too many failed log-in attempts; please try again later.")

    def __init__(self, *, retry_after: int) -> None:
        super().__init__("throttled", str(self.default_detail))
        self.retry_after = retry_after


def email_normalise(email: str) -> str:
    """The form in which e-mail addresses are stored (``UserManager.create_user``
    lower-cases the whole address) and counted."""
    return email.strip().lower()


def client_ip(request: HttpRequest | Request | None) -> str | None:
    """The address a request came from.

    ``X-Forwarded-For`` is believed only for as many hops as our own proxies append,
    ``REST_FRAMEWORK["NUM_PROXIES"]`` (the setting DRF's throttles use too). Unset or 0
    means no proxy: ``REMOTE_ADDR``. (DRF itself trusts the whole client-sent header
    when the setting is unset, which would let a client pick a fresh address per try.)
    """
    if request is None:
        return None
    num_proxies = api_settings.NUM_PROXIES
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if num_proxies and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            return hops[-min(num_proxies, len(hops))]
    return request.META.get("REMOTE_ADDR") or None


# --- Keys: the only place that formats them -------------------------------------------
# Hashed so that no e-mail address sits in Redis in clear and any client-sent
# characters are safe in a key.


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _account_key(email: str) -> str:
    return f"login-failures:account:{_digest(email_normalise(email))}"


def _address_key(ip: str) -> str:
    return f"login-failures:ip:{_digest(ip)}"


@dataclass(frozen=True)
class _Counter:
    key: str
    limit: int


def _counters(*, email: str | None, ip: str | None) -> list[_Counter]:
    counters = []
    if email:
        counters.append(_Counter(_account_key(email), settings.LOGIN_FAILURE_LIMIT_ACCOUNT))
    if ip:
        counters.append(_Counter(_address_key(ip), settings.LOGIN_FAILURE_LIMIT_IP))
    return counters


def _seconds_left(key: str) -> int:
    milliseconds = cache.pttl(key)  # type: ignore[attr-defined]  # django-redis
    if milliseconds is None:  # no expiry (never set that way) or Redis unavailable
        return int(settings.LOGIN_FAILURE_WINDOW)
    return max(1, math.ceil(milliseconds / 1000))


def _increment(key: str) -> None:
    window = settings.LOGIN_FAILURE_WINDOW
    # ``add`` is SET NX with the expiry: the first failure opens the window. Later
    # failures INCRBY, which keeps the key's TTL, so the window never slides.
    if cache.add(key, 1, timeout=window):
        return
    try:
        cache.incr(key)
    except ValueError:
        # The window ended between ``add`` and ``incr``: this failure opens a new one.
        cache.add(key, 1, timeout=window)


# --- The guard ---------------------------------------------------------------------------


def login_attempt_check(*, email: str | None, ip: str | None) -> None:
    """Raise ``LoginThrottled`` if this e-mail address or client address has used up its
    failures for the current window. Must be called before the password is checked."""
    counters = _counters(email=email, ip=ip)
    if not counters:
        return
    failures = cache.get_many([counter.key for counter in counters])
    exhausted = [counter for counter in counters if int(failures.get(counter.key) or 0) >= counter.limit]
    if exhausted:
        raise LoginThrottled(retry_after=max(_seconds_left(counter.key) for counter in exhausted))


def login_failure_record(*, email: str | None, ip: str | None) -> None:
    for counter in _counters(email=email, ip=ip):
        _increment(counter.key)


def login_failures_reset(*, email: str) -> None:
    """After a successful log-in: the account's owner is back, forget its failures."""
    cache.delete(_account_key(email))
