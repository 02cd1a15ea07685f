"""Where a join comes from: the client's address and the waiting-room page's device cookie
(a random id signed by us, so a script can't pick one per attempt without being seen as
a new device, and can't forge another browser's).

An API client has no device cookie: only its account and address are counted.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core import signing
from django.http import HttpRequest, HttpResponse

from accounts.login_guard import client_ip
from events.services.waiting_room import JoinClient

DEVICE_COOKIE = "tr_device"
DEVICE_COOKIE_MAX_AGE = 365 * 24 * 3600
_signer = signing.Signer(salt="events.device")


def device_id(request: HttpRequest | Any) -> str | None:
    """The device id of a valid device cookie, or None."""
    value = request.COOKIES.get(DEVICE_COOKIE)
    if not value:
        return None
    try:
        return _signer.unsign(value)
    except signing.BadSignature:
        return None


def device_cookie_ensure(request: HttpRequest, response: HttpResponse) -> None:
    """Gives the browser a device cookie if it has no valid one."""
    if device_id(request) is None:
        response.set_cookie(
            DEVICE_COOKIE,
            _signer.sign(secrets.token_urlsafe(12)),
            max_age=DEVICE_COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )


def join_client(request: HttpRequest | Any) -> JoinClient:
    return JoinClient(address=client_ip(request), device=device_id(request))
