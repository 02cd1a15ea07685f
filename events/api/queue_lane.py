"""The waiting-room poll answered before Django's middleware: a WSGI lane for the one
request that is the bulk of a rush.

A buyer far back in line polls every few seconds with the queue ticket of the last answer;
the answer ("still waiting, about N ahead") needs neither Redis nor the database, only the
process's pulse (``events.services.waiting_room``). Through Django's middleware stack such
an answer costs about five times its own work (sessions, locale, messages, CSRF, URL
resolution, signals), so this lane answers it first, from the WSGI environ, through the
*same* service function as the Django view, and hands every other request to Django
unchanged.

The lane answers only the happy path: a ``GET /api/events/<id>/queue/`` with a valid queue
ticket from behind the serving cursor, on an allowed host, over HTTPS when the site insists
on it, and with a valid bearer token when one is sent. Anything else (no ticket, a bad or
foreign ticket, a bad token, an unknown event, a ticket at or below the cursor, Redis
unavailable) goes to Django, which gives the usual answer (errors translated, 401/403/404,
the exact Lua step, 503). So this lane can only ever say "still waiting", like the cursor
path it shares; it never grants, reveals or refuses a pass.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http.request import split_domain_port, validate_host
from redis.exceptions import RedisError

from accounts.tokens import verified_access_tokens
from events.services.waiting_room import queue_answer_payload, queue_status_from_ticket
from ticketing.errors import COMPACT_JSON, DomainError
from ticketing.metrics.web import REQUEST_DURATION

PATH = re.compile(r"^/api/events/(?P<event_id>[0-9]{1,18})/queue/$")
ROUTE = "api-event-queue"
# What Django's middleware would add to this answer (ticketing.middleware, SecurityMiddleware).
HEADERS = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "private, no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _host_allowed(environ: dict[str, Any]) -> bool:
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return bool(domain) and validate_host(domain, allowed)


def _secure_enough(environ: dict[str, Any]) -> bool:
    """False when Django would redirect this request to HTTPS (let it)."""
    if not settings.SECURE_SSL_REDIRECT:
        return True
    if settings.SECURE_PROXY_SSL_HEADER:
        header, value = settings.SECURE_PROXY_SSL_HEADER
        return environ.get(header, "").split(",")[0].strip() == value
    return environ.get("wsgi.url_scheme") == "https"


def _caller(environ: dict[str, Any]) -> tuple[bool, int | None]:
    """(whether the lane may answer, the bearer token's user id or None without a
    token). A token Django must refuse, or a credential this lane doesn't read: (False,
    None), so that Django answers it."""
    header = environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return True, None
    if not header.startswith("Bearer "):
        return False, None
    user_id = verified_access_tokens.user_id(header[7:].strip().encode())
    return user_id is not None, user_id


def lane_answer(environ: dict[str, Any]) -> bytes | None:
    """The JSON body of the poll's answer when the lane may give it, else None."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    ticket = environ.get("HTTP_X_QUEUE_TICKET")
    match = PATH.match(environ.get("PATH_INFO", ""))
    if not ticket or match is None or not _host_allowed(environ) or not _secure_enough(environ):
        return None
    allowed, user_id = _caller(environ)
    if not allowed:
        return None
    try:
        found = queue_status_from_ticket(event_id=int(match["event_id"]), ticket=ticket, user_id=user_id)
    except (DomainError, RedisError, DatabaseError):
        # Django gives these answers (translated errors, 503) on the regular path.
        return None
    if found is None:
        return None
    answer, event = found
    return json.dumps(queue_answer_payload(answer, event=event), **COMPACT_JSON).encode()


class QueuePollLane:
    """WSGI middleware: answers the poll ``lane_answer`` can answer, passes the rest on."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._timer = REQUEST_DURATION.labels(ROUTE, "GET", "2xx")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "HTTP_X_QUEUE_TICKET" in environ:
            started = time.perf_counter()
            body = lane_answer(environ)
            if body is not None:
                start_response("200 OK", [*HEADERS, ("Content-Length", str(len(body)))])
                self._timer.observe(time.perf_counter() - started)
                return [body]
        return self.app(environ, start_response)
