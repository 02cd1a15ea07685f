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

Behind the project's nginx most polls from far behind the cursor never get here: nginx
answers them itself (``deploy/nginx/queue_edge.js``, the same answer from the cached
cursor) and sends on only those it must not answer, including one poll per buyer every
QUEUE_EDGE_SECONDS, whose answer from here re-signs the ticket's ``seen`` time. After a
sell-out nginx refuses joins itself too, once this lane has answered its question for
that buyer (``GET /api/events/<id>/queue/join-refusal/``: ``join_refusal_answer``).

It answers only the common path: a ``GET /api/events/<id>/queue/`` with a valid queue
ticket from behind the serving cursor (the ticket, which we signed for this buyer, is what
the estimate rests on: the waiting-room page sends it alone, and a bearer token sent with
it must name the same buyer), or with a valid bearer token otherwise (exactly: one Lua
step), or a ``POST`` to the same path with a valid bearer token and no body or a JSON body
holding only a proof-of-work answer (cookie-authenticated joins go to Django, which
checks CSRF; any other body goes to Django's parser), on an allowed host, over HTTPS when the site insists on
it. A join the service refuses (sold out: after a sell-out nearly every join; sales
closed; unknown event; over a join limit, with Retry-After; proof-of-work required) is
answered here too, in the buyer's language as Django's
LocaleMiddleware would pick it. Anything else (no ticket, a bad or foreign ticket, a bad
token, a ticket at or below the cursor, a poll's refusal, Redis or the database
unavailable) goes to Django, which gives the usual answer (errors translated,
401/403/404/409, the exact Lua step, 503). Without a bearer token the lane can only ever
say "still waiting"; a pass is only ever revealed to its holder's token, as in Django.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils import translation
from redis.exceptions import RedisError
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from accounts.login_guard import client_ip
from accounts.tokens import verified_access_tokens
from events.selectors import EventSettings
from events.services.waiting_room import (
    JoinClient,
    QueueAnswer,
    queue_answer_payload,
    queue_join,
    queue_join_refusal,
    queue_status_from_ticket,
    queue_status_get,
)
from ticketing.errors import COMPACT_JSON, DomainError, error_body
from ticketing.metrics.web import REQUEST_DURATION

PATH = re.compile(r"^/api/events/(?P<event_id>[0-9]{1,18})/queue/$")
# nginx's question before it refuses a buyer's joins itself (see ``join_refusal_answer``).
REFUSAL_PATH = re.compile(r"^/api/events/(?P<event_id>[0-9]{1,18})/queue/join-refusal/$")
ROUTE = "api-event-queue"
REFUSAL_ROUTE = "api-event-queue-join-refusal"
# What Django's middleware would add to this answer (ticketing.middleware, SecurityMiddleware).
HEADERS = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "private, no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
]

# (status line, JSON body, headers beyond HEADERS)
LaneAnswer = tuple[str, bytes, list[tuple[str, str]]]
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


def _claimed_user(token: str) -> int | None:
    """The user id a bearer token *claims*, read without checking its signature (None if
    it can't be read). Enough to refuse a ticket sent with another buyer's token; never
    enough to read the line for anyone (that takes the verified token)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims[jwt_settings.USER_ID_CLAIM])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _answer_body(answer: QueueAnswer, event: EventSettings) -> bytes:
    return json.dumps(queue_answer_payload(answer, event=event), **COMPACT_JSON).encode()


def _request_language(environ: dict[str, Any]) -> str:
    """The language Django's LocaleMiddleware would pick for this request."""
    return translation.get_language_from_request(_Meta(environ))  # type: ignore[arg-type]


def _refusal(error: DomainError, *, language: str) -> LaneAnswer:
    """A join's refusal (sold out, sales closed, unknown event), as Django's
    LocaleMiddleware and exception handler would give it: in the buyer's language (its
    detail was written in ``language``: see ``lane_answer``)."""
    body = json.dumps(error_body(error.code, error.detail, **error.extra), **COMPACT_JSON).encode()
    status = f"{error.status} {HTTPStatus(error.status).phrase}"
    return status, body, [("Vary", "Accept-Language"), ("Content-Language", language), *error.headers.items()]


# A join's body is at most a proof-of-work answer (4 KiB of base64) in a small JSON object.
_BODY_MAX = 8192
_NOT_HERE = object()


def _join_solution(environ: dict[str, Any]) -> str | object | None:
    """The ``altcha`` answer of a join's JSON body (None without a body), or ``_NOT_HERE``
    for anything the lane does not validate itself (another content type, bad JSON, other
    fields, too long): Django's parser then gives the standard 400. The body read here is
    put back for Django."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _NOT_HERE
    if length == 0:
        return None
    if length > _BODY_MAX or environ.get("CONTENT_TYPE", "").split(";")[0].strip() != "application/json":
        return _NOT_HERE
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        data = json.loads(body)
    except ValueError:
        return _NOT_HERE
    if not isinstance(data, dict) or data.keys() - {"altcha"}:
        return _NOT_HERE
    solution = data.get("altcha")
    if solution is None or solution == "":
        return None
    if not isinstance(solution, str) or len(solution) > 4096:
        return _NOT_HERE
    return solution


class _Meta:
    """The environ seen as a request's META (what ``client_ip`` reads) and COOKIES (what
    Django's choice of language reads besides META): building a WSGIRequest for them
    cost more than the choice itself, on every join."""

    __slots__ = ("META", "_cookies")

    def __init__(self, environ: dict[str, Any]) -> None:
        self.META = environ
        self._cookies: dict[str, str] | None = None

    @property
    def COOKIES(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = parse_cookie(self.META.get("HTTP_COOKIE", ""))
        return self._cookies


def lane_answer(environ: dict[str, Any]) -> LaneAnswer | None:
    """(status line, JSON body, extra headers) of the answer when the lane may give it,
    else None."""
    method = environ.get("REQUEST_METHOD")
    ticket = environ.get("HTTP_X_QUEUE_TICKET")
    header = environ.get("HTTP_AUTHORIZATION")
    if not ((method == "GET" and (ticket or header)) or (method == "POST" and header)):
        return None
    match = PATH.match(environ.get("PATH_INFO", ""))
    if match is None or not _host_allowed(environ) or not _secure_enough(environ):
        return None
    if header is not None and not header.startswith("Bearer "):
        return None  # a credential this lane doesn't read
    token = header[7:].strip() if header else None
    event_id = int(match["event_id"])
    try:
        if method == "GET" and ticket:
            # The estimate needs only the ticket, which we signed for this buyer; a token
            # sent along must name the same buyer, but its signature (a hundred
            # microseconds of JWT checks, for a poll from a buyer this process may never
            # have seen) only matters once the line itself is read, below.
            claimed = _claimed_user(token) if token else None
            found = queue_status_from_ticket(event_id=event_id, ticket=ticket, user_id=claimed)
            if found is not None:
                return "200 OK", _answer_body(*found), []
        user_id = verified_access_tokens.user_id(token.encode()) if token else None
        if user_id is None:
            return None
        if method == "POST":
            solution = _join_solution(environ)
            if solution is _NOT_HERE:
                return None
            # The refusal's text is written when it is raised: in the buyer's language, not
            # in whatever language this thread served last (the lane runs before Django's
            # LocaleMiddleware).
            language = _request_language(environ)
            try:
                with translation.override(language):
                    answer, event, newly_joined = queue_join(
                        event_id=event_id,
                        user_id=user_id,
                        solution=solution,
                        client=JoinClient(address=client_ip(_Meta(environ))),
                    )
            except DomainError as refused:
                # After a sell-out nearly every join is this refusal: as cheap as a poll.
                return _refusal(refused, language=language)
            return ("201 Created" if newly_joined else "200 OK"), _answer_body(answer, event), []
        # Exact: no ticket, or one at or below the cursor (checked against this buyer above).
        return "200 OK", _answer_body(*queue_status_get(event_id=event_id, user_id=user_id)), []
    except (DomainError, RedisError, DatabaseError):
        # Django gives these answers (translated errors, 503) on the regular path.
        return None


def join_refusal_answer(environ: dict[str, Any]) -> LaneAnswer | None:
    """nginx's question before it refuses a buyer's join after the sell-out
    (``GET /api/events/<id>/queue/join-refusal/`` with the join's bearer token, see
    ``queue_join_refusal``), answered here when the token is valid; anything else goes to
    Django (``events.api.queue_join_refusal``), which answers the same way or refuses."""
    header = environ.get("HTTP_AUTHORIZATION") or ""
    if environ.get("REQUEST_METHOD") != "GET" or not header.startswith("Bearer "):
        return None
    match = REFUSAL_PATH.match(environ.get("PATH_INFO", ""))
    if match is None or not _host_allowed(environ) or not _secure_enough(environ):
        return None
    verified = verified_access_tokens.user_and_expiry(header[7:].strip().encode())
    if verified is None:
        return None
    try:
        answer, lifetime = queue_join_refusal(
            event_id=int(match["event_id"]), user_id=verified[0], token_expires_at=verified[1]
        )
    except (DomainError, RedisError, DatabaseError):
        return None
    body = json.dumps(answer, **COMPACT_JSON).encode()
    return "200 OK", body, [("X-Accel-Expires", str(lifetime))] if lifetime else []


class QueueLane:
    """WSGI middleware: answers what ``lane_answer`` can answer, passes the rest on."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._timers = {method: REQUEST_DURATION.labels(ROUTE, method, "2xx") for method in ("GET", "POST")}
        self._refusals = REQUEST_DURATION.labels(ROUTE, "POST", "4xx")
        self._refusal_checks = REQUEST_DURATION.labels(REFUSAL_ROUTE, "GET", "2xx")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.endswith(("/queue/", "/join-refusal/")):
            started = time.perf_counter()
            poll_or_join = path.endswith("/queue/")
            answered = lane_answer(environ) if poll_or_join else join_refusal_answer(environ)
            if answered is not None:
                status, body, extra = answered
                start_response(status, [*HEADERS, *extra, ("Content-Length", str(len(body)))])
                if not poll_or_join:
                    timer = self._refusal_checks
                elif status[0] == "2":
                    timer = self._timers[environ["REQUEST_METHOD"]]
                else:
                    timer = self._refusals
                timer.observe(time.perf_counter() - started)
                return [body]
        return self.app(environ, start_response)
