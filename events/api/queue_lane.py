"""The waiting room's two hottest requests answered before Django's middleware: a WSGI
lane for what a rush is mostly made of.

- **The poll from behind the cursor.** A buyer far back in line polls every few seconds
  with the queue ticket of the last answer; the answer ("still waiting, about N ahead")
  needs neither Redis nor the database, only the process's pulse.
- **The join.** At the opening everyone joins within seconds: one Lua step each, which is
  small next to Django's request machinery around it.

Through Django's middleware stack (sessions, locale, messages, CSRF, URL resolution,
signals) such an answer costs several times its own work, so this lane answers it first,
from the WSGI environ, through the *same* service functions as the Django views
(``events.services.waiting_room``), and hands every other request to Django unchanged.

It answers only the happy path: a ``GET /api/events/<id>/queue/`` with a valid bearer
token (from the cursor when its queue ticket allows, else exactly: one Lua step), or with
a valid queue ticket alone from behind the serving cursor (the waiting-room page, whose
session this lane never reads), or a ``POST`` to the same path with a valid bearer token
(cookie-authenticated joins go to Django, which checks CSRF) that the service accepts, on an allowed host, over HTTPS when
the site insists on it. Anything else (no ticket, a bad or foreign ticket, a bad token, an
unknown event, a ticket at or below the cursor, sold out, sales closed, Redis or the
database unavailable) goes to Django, which gives the usual answer (errors translated,
401/403/404/409, the exact Lua step, 503); a refused join changed nothing, so Django's
second look gives the same refusal. Without a bearer token the lane can only ever say
"still waiting"; a pass is only ever revealed to its holder's token, as in Django.
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
from events.services.waiting_room import (
    queue_answer_payload,
    queue_join,
    queue_status_from_ticket,
    queue_status_get,
)
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


def lane_answer(environ: dict[str, Any]) -> tuple[str, bytes] | None:
    """(status line, JSON body) of the answer when the lane may give it, else None."""
    method = environ.get("REQUEST_METHOD")
    ticket = environ.get("HTTP_X_QUEUE_TICKET")
    bearer = "HTTP_AUTHORIZATION" in environ
    if not ((method == "GET" and (ticket or bearer)) or (method == "POST" and bearer)):
        return None
    match = PATH.match(environ.get("PATH_INFO", ""))
    if match is None or not _host_allowed(environ) or not _secure_enough(environ):
        return None
    allowed, user_id = _caller(environ)
    if not allowed:
        return None
    event_id = int(match["event_id"])
    try:
        if method == "POST":
            if user_id is None:  # unreachable: a POST gets here with a verified token
                return None
            answer, event, newly_joined = queue_join(event_id=event_id, user_id=user_id)
            status = "201 Created" if newly_joined else "200 OK"
        elif user_id is not None:
            # A token holder: from the cursor when the ticket allows it, else exact.
            (answer, event), status = (
                queue_status_get(event_id=event_id, user_id=user_id, ticket=ticket),
                "200 OK",
            )
        else:
            # The ticket alone stands for the buyer only for the estimate.
            found = queue_status_from_ticket(event_id=event_id, ticket=ticket or "")
            if found is None:
                return None
            (answer, event), status = found, "200 OK"
    except (DomainError, RedisError, DatabaseError):
        # Django gives these answers (translated errors, 503) on the regular path.
        return None
    return status, json.dumps(queue_answer_payload(answer, event=event), **COMPACT_JSON).encode()


class QueueLane:
    """WSGI middleware: answers what ``lane_answer`` can answer, passes the rest on."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._timers = {method: REQUEST_DURATION.labels(ROUTE, method, "2xx") for method in ("GET", "POST")}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").endswith("/queue/"):
            started = time.perf_counter()
            answered = lane_answer(environ)
            if answered is not None:
                status, body = answered
                start_response(status, [*HEADERS, ("Content-Length", str(len(body)))])
                self._timers[environ["REQUEST_METHOD"]].observe(time.perf_counter() - started)
                return [body]
        return self.app(environ, start_response)
