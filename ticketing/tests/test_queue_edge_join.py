"""After the sell-out nginx refuses joins itself (``deploy/nginx/queue_edge.js``), on a
real nginx with its njs module in front of the live app, real Redis and database:

- the refusal nginx gives is the app's (status, body in the buyer's language, headers),
  for a buyer in line and a newcomer alike, and says where it came from;
- every join it must not refuse reaches the app, which gives its usual answer: a pass
  holder, a blocked buyer, one held for review, a bad or expired token, a join with a
  body, before the sell-out, after sales close, a language header it does not read as
  Django does;
- a pass given after nginx kept a buyer's "refusable" reaches the buyer within the
  cursor's age (the negative control keeps the stamp still and the pass holder is
  refused);
- a buyer in line whose joins nginx refuses is still seen by the app within
  QUEUE_EDGE_SECONDS (the negative control widens that window and the buyer is dropped
  as silent).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tests.helpers import altered_tokens
from bench.proxy import Nginx
from conftest import make_auth_client
from events.models import Seat, SeatStatus
from events.services import waiting_room
from events.services.seat_map import seat_map_rebuild
from events.tests.test_queue_api import sell_out
from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import line_admit, line_remove
from ticketing.tests.test_proxy import Reply, fetch
from ticketing.tests.test_queue_edge import EDGE_HEADER, edge_proxy, join, queue_path

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

__all__ = ["edge_proxy"]  # the fixture, used by name

# How long nginx's copy of the cursor (and so of join_stamp and sold_out) may lag.
CURSOR_LAG_SECONDS = 2.5


def edge_join(proxy: Nginx | str, event_id: int, token: str, headers: dict[str, str] | None = None) -> Reply:
    return fetch(
        proxy,
        queue_path(event_id),
        method="POST",
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )


def token_of(user: Any) -> str:
    return str(AccessToken.for_user(user))


def until_the_app_answers(join_once: Callable[[], Reply]) -> Reply:
    """Joins until the app answers; nginx may answer for CURSOR_LAG_SECONDS at most."""
    started = time.monotonic()
    while (reply := join_once()).header(EDGE_HEADER) == "1":
        assert time.monotonic() - started < CURSOR_LAG_SECONDS, reply.text
        time.sleep(0.2)
    return reply


@pytest.mark.parametrize(
    "language_headers",
    [
        {},
        {"Accept-Language": "ko"},
        {"Accept-Language": "en-US,en;q=0.9"},
        {"Accept-Language": "ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"},
        {"Accept-Language": "en;q=0.1, ko;q=0.9"},
        {"Accept-Language": "fr-FR, de;q=0.8"},
        {"Accept-Language": "fr, *;q=0.5, ko;q=0.1"},
        {"Accept-Language": "en", "Cookie": "django_language=ko"},
    ],
)
def test_after_the_sell_out_nginx_refuses_a_join_as_the_app_would(
    edge_proxy, live_server, user_factory, on_sale_event, language_headers
):
    event_id = on_sale_event.pk
    in_line = make_auth_client(user_factory())
    join(in_line, event_id)
    sell_out(on_sale_event)
    for user in (in_line.user, user_factory()):
        token = token_of(user)
        at_edge = edge_join(edge_proxy, event_id, token, language_headers)
        at_app = edge_join(live_server.url, event_id, token, language_headers)
        assert at_edge.status == at_app.status == 409, at_edge.text
        assert at_edge.header(EDGE_HEADER) == "1" and at_app.header(EDGE_HEADER) is None
        assert at_edge.json() == at_app.json() and at_edge.json()["code"] == "sold_out"
        for name in ("Content-Type", "Cache-Control", "Content-Language", "Vary", "X-Content-Type-Options"):
            assert at_edge.header(name) == at_app.header(name), name
    # Nothing of the check leaks to the client, and clients cannot ask it themselves.
    assert at_edge.header("X-Accel-Expires") is None
    outside = fetch(
        edge_proxy,
        f"/api/events/{event_id}/queue/join-refusal/",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert outside.status == 404 and outside.json()["code"] == "not_found"


def _pass_holder(event: Any, user_factory: Any) -> str:
    buyer = make_auth_client(user_factory())
    join(buyer, event.pk)
    line_admit(event_id=event.pk, capacity=1, pass_seconds=600)
    return token_of(buyer.user)


def _blocked(event: Any, user_factory: Any) -> str:
    user = user_factory()
    line_remove(event_id=event.pk, user_ids=[user.pk])
    return token_of(user)


def _held_for_review(event: Any, user_factory: Any) -> str:
    user = user_factory()
    get_redis().zadd(EventKeys(event.pk).review, {str(user.pk): 1})
    return token_of(user)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("pass_holder", 200, None),
        ("blocked", 403, "removed_from_queue"),
        ("held_for_review", 200, None),
        ("forged_token", 401, "token_not_valid"),
        ("expired_token", 401, "token_not_valid"),
        ("with_a_body", 409, "sold_out"),
        ("unknown_language_cookie", 409, "sold_out"),
        ("odd_language_header", 409, "sold_out"),
        ("not_sold_out", 201, None),
        ("sales_closed", 409, "sales_closed"),
    ],
)
def test_every_join_nginx_must_not_refuse_reaches_the_app(
    edge_proxy, user_factory, event_factory, on_sale_event, case, status, code
):
    event = on_sale_event
    headers: dict[str, str] = {}
    body = None
    token = token_of(user_factory())
    if case == "pass_holder":
        token = _pass_holder(event, user_factory)
    elif case == "blocked":
        token = _blocked(event, user_factory)
    elif case == "held_for_review":
        token = _held_for_review(event, user_factory)
    elif case == "forged_token":
        token = altered_tokens(token)["another key"]
    elif case == "expired_token":
        token = altered_tokens(token)["expired"]
    elif case == "with_a_body":
        body = b'{"altcha": ""}'
        headers["Content-Type"] = "application/json"
    elif case == "unknown_language_cookie":
        headers["Cookie"] = "django_language=fr"
    elif case == "odd_language_header":
        headers["Accept-Language"] = "en_US"
    elif case == "sales_closed":
        event = event_factory(sales_close_at=timezone.now() + timedelta(seconds=1))
    if case != "not_sold_out":
        sell_out(event)
    if case == "sales_closed":
        time.sleep(1.2)
    reply = fetch(
        edge_proxy,
        queue_path(event.pk),
        method="POST",
        headers={"Authorization": f"Bearer {token}", **headers},
        body=body,
    )
    assert reply.status == status, reply.text
    assert reply.header(EDGE_HEADER) is None
    answer = reply.json()
    if code is not None:
        assert answer["code"] == code and answer["detail"]
    else:
        assert answer["state"] == {"pass_holder": "active", "held_for_review": "review"}.get(case, "waiting")


def _unsell(event: Any) -> None:
    Seat.objects.filter(event=event).update(status=SeatStatus.AVAILABLE)
    seat_map_rebuild(event.pk)


def _pass_after_a_kept_refusal(proxy: Nginx, event: Any, user_factory: Any) -> Reply:
    """A buyer in line is refused by nginx after a sell-out; seats come back, the buyer is
    admitted, and the event sells out again: the buyer's next joins."""
    buyer = make_auth_client(user_factory())
    join(buyer, event.pk)
    sell_out(event)
    token = token_of(buyer.user)
    assert edge_join(proxy, event.pk, token).header(EDGE_HEADER) == "1"
    _unsell(event)
    assert line_admit(event_id=event.pk, capacity=1, pass_seconds=600).admitted == 1
    sell_out(event)
    time.sleep(CURSOR_LAG_SECONDS)  # nginx's cursor has caught up with the second sell-out
    return edge_join(proxy, event.pk, token)


def test_a_pass_given_after_nginx_kept_a_refusal_reaches_the_buyer(edge_proxy, user_factory, on_sale_event):
    reply = _pass_after_a_kept_refusal(edge_proxy, on_sale_event, user_factory)
    assert reply.header(EDGE_HEADER) is None
    assert reply.status == 200 and reply.json()["state"] == "active"


def test_negative_control_with_the_stamp_held_still_nginx_refuses_the_pass_holder(
    edge_proxy, user_factory, on_sale_event, monkeypatch
):
    """The same with exactly one thing changed: the cursor's join_stamp no longer moves
    with admissions. nginx's kept answer outlives the pass, and the pass holder is told
    "sold out"."""
    monkeypatch.setattr(waiting_room, "line_join_stamp", lambda *, event_id: "0-0-0")
    reply = _pass_after_a_kept_refusal(edge_proxy, on_sale_event, user_factory)
    assert reply.header(EDGE_HEADER) == "1"
    assert reply.status == 409 and reply.json()["code"] == "sold_out"


def _keep_joining_through_nginx(
    proxy: Nginx, event: Any, user_factory: Any, seconds: float
) -> tuple[int, int]:
    """A buyer in line when the event sells out joins every 0.3 s for ``seconds`` (last
    seen by the app ten minutes ago when it starts); seats then come back and the line
    moves. Returns (joins refused by nginx, admission's dropped count)."""
    buyer = make_auth_client(user_factory())
    join(buyer, event.pk)
    sell_out(event)
    token = token_of(buyer.user)
    assert edge_join(proxy, event.pk, token).header(EDGE_HEADER) == "1"  # nginx keeps "refusable"
    get_redis().zadd(
        EventKeys(event.pk).seen, {str(buyer.user.pk): int(time.time() * 1000) - 600_000}, xx=True
    )
    at_edge = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reply = edge_join(proxy, event.pk, token)
        assert reply.status == 409 and reply.json()["code"] == "sold_out"
        at_edge += reply.header(EDGE_HEADER) == "1"
        time.sleep(0.3)
    _unsell(event)
    return at_edge, line_admit(event_id=event.pk, capacity=1, pass_seconds=600, silent_seconds=180).dropped


def test_a_buyer_refused_by_nginx_still_shows_up_at_the_app_and_is_not_dropped(
    edge_proxy, user_factory, on_sale_event, settings
):
    settings.QUEUE_EDGE_SECONDS = 2
    at_edge, dropped = _keep_joining_through_nginx(edge_proxy, on_sale_event, user_factory, seconds=4.5)
    assert at_edge >= 10 and dropped == 0


def test_negative_control_without_the_edge_window_a_joining_buyer_is_dropped_as_silent(
    edge_proxy, user_factory, on_sale_event, settings
):
    """The same with exactly one thing changed: nginx may keep a buyer's "refusable" for
    an hour. The app never sees the buyer again, and the admission drops a buyer who never
    stopped joining."""
    settings.QUEUE_EDGE_SECONDS = 3600
    at_edge, dropped = _keep_joining_through_nginx(edge_proxy, on_sale_event, user_factory, seconds=4.5)
    assert at_edge >= 10 and dropped == 1
