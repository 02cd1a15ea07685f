"""nginx answers the waiting room's polls from far behind the cursor itself
(``deploy/nginx/queue_edge.js``), on a real nginx with its njs module in front of the live
app, real Redis and database:

- the answer nginx gives is the app's answer (same estimate, same poll interval, same
  headers), and says where it came from (``X-Queue-Edge: 1``);
- every poll it must not answer reaches the app, which gives its usual answer: no ticket,
  a forged, edited, expired or other event's ticket, a token naming another buyer, a
  ticket at the cursor (the pass), a ticket the app has not seen for QUEUE_EDGE_SECONDS;
- a buyer who keeps polling still reaches the app within QUEUE_EDGE_SECONDS and is never
  dropped as silent; the negative control switches that window off and the same buyer,
  answered by nginx alone, is dropped.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse

from bench.proxy import Nginx
from conftest import make_auth_client
from events.queue_tickets import QueueTicket, queue_ticket_sign, queue_ticket_verify
from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import line_admit
from queueing.pulse import pulse_cache
from ticketing.tests.test_proxy import Reply, bearer, fetch

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EDGE_HEADER = "X-Queue-Edge"
# Fields the two answers must agree on (queue_ticket and as_of name moments: compared apart).
SAME_FIELDS = (
    "state",
    "position",
    "ahead",
    "eta_seconds",
    "pass_expires_at",
    "poll_after_ms",
    "sales_open_at",
    "estimated",
    "paused",
)


@pytest.fixture
def edge_proxy(live_server: Any, tmp_path: Path) -> Iterator[Nginx]:
    """nginx with deploy/nginx/ in front of the live server, checking tickets with the
    app's own key (the settings' QUEUE_TICKET_KEY, derived from SECRET_KEY here)."""
    upstream = live_server.url.removeprefix("http://").replace("localhost", "127.0.0.1")
    with Nginx(upstreams=[upstream], run_dir=tmp_path / "nginx") as proxy:
        yield proxy


def queue_path(event_id: int) -> str:
    return reverse("api-event-queue", args=[event_id])


def join(client: Any, event_id: int) -> str:
    response = client.post(queue_path(event_id))
    assert response.status_code in (200, 201), response.content
    return response.json()["queue_ticket"]


def edge_poll(proxy: Nginx, event_id: int, ticket: str | None, user: Any | None = None) -> Reply:
    headers = bearer(user) if user is not None else {}
    if ticket:
        headers["X-Queue-Ticket"] = ticket
    return fetch(proxy, queue_path(event_id), headers=headers)


def claims_of(ticket: str, event_id: int) -> QueueTicket:
    return queue_ticket_verify(ticket, event_id=event_id, user_id=None, now_s=int(time.time()))


def test_nginx_answers_a_far_back_poll_exactly_as_the_app_would(edge_proxy, user_factory, on_sale_event):
    event_id = on_sale_event.pk
    clients = [make_auth_client(user_factory()) for _ in range(12)]
    tickets = [join(client, event_id) for client in clients]
    for leaving in (3, 4, 7):  # some leave: the estimate scales by the share still in line
        assert clients[leaving].delete(queue_path(event_id)).status_code == 204
    line_admit(event_id=event_id, capacity=2, pass_seconds=600)
    pulse_cache.invalidate(event_id)

    # (Near the front, within two seconds of admissions, the app answers: see below.)
    for index in (8, 10, 11):
        at_edge = edge_poll(edge_proxy, event_id, tickets[index], clients[index].user)
        at_app = clients[index].get(queue_path(event_id), HTTP_X_QUEUE_TICKET=tickets[index])
        assert at_edge.status == 200 and at_app.status_code == 200
        assert at_edge.header(EDGE_HEADER) == "1"
        assert at_app.get(EDGE_HEADER) is None
        edge_body, app_body = at_edge.json(), at_app.json()
        assert {name: edge_body[name] for name in SAME_FIELDS} == {
            name: app_body[name] for name in SAME_FIELDS
        }
        assert edge_body["estimated"] is True and edge_body["state"] == "waiting"
        assert edge_body["queue_ticket"] == tickets[index]  # nginx never signs anything
        for name in ("Cache-Control", "Content-Type", "X-Content-Type-Options", "X-Frame-Options"):
            assert at_edge.header(name) == at_app[name], name
        assert at_edge.header("Cache-Control") == "private, no-store"
    # Buyer 11 (arrival 12): 9 numbers between the cursor and them, 7 of 10 still in line.
    # The waiting-room page polls with its ticket alone: answered the same.
    alone = edge_poll(edge_proxy, event_id, tickets[11])
    assert alone.header(EDGE_HEADER) == "1" and alone.json()["ahead"] == 6
    # Header names are case-insensitive (browsers on HTTP/2 send them in lower case).
    lower = fetch(edge_proxy, queue_path(event_id), headers={"x-queue-ticket": tickets[11]})
    assert lower.header(EDGE_HEADER) == "1" and lower.json()["ahead"] == 6


def test_before_the_opening_nginx_asks_for_the_same_slow_polls_as_the_app(
    edge_proxy, user_factory, event_factory
):
    """Two days before the opening the app asks for a poll every 30 s (a quarter of the
    time left, capped): nginx must not answer "every second" instead."""
    from datetime import timedelta

    from django.utils import timezone

    event = event_factory(sales_open_at=timezone.now() + timedelta(days=2))
    buyer = make_auth_client(user_factory())
    ticket = join(buyer, event.pk)
    at_edge = edge_poll(edge_proxy, event.pk, ticket, buyer.user)
    at_app = buyer.get(queue_path(event.pk), HTTP_X_QUEUE_TICKET=ticket)
    assert at_edge.header(EDGE_HEADER) == "1"
    assert {name: at_edge.json()[name] for name in SAME_FIELDS} == {
        name: at_app.json()[name] for name in SAME_FIELDS
    }
    assert at_edge.json()["poll_after_ms"] == 30_000


def _forged(ticket: QueueTicket) -> str:
    with override_settings(QUEUE_TICKET_KEY="not-our-key-" * 5):
        return queue_ticket_sign(ticket)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no_ticket", 200, None),
        ("forged", 401, "queue_ticket_invalid"),
        ("edited", 401, "queue_ticket_invalid"),
        ("expired", 401, "queue_ticket_expired"),
        ("other_event", 403, "queue_ticket_mismatch"),
        ("other_buyers_token", 403, "queue_ticket_mismatch"),
        ("not_seen_lately", 200, None),
    ],
)
def test_every_poll_nginx_must_not_answer_reaches_the_app(
    edge_proxy, user_factory, event_factory, on_sale_event, settings, case, status, code
):
    event_id = on_sale_event.pk
    buyer, other = make_auth_client(user_factory()), make_auth_client(user_factory())
    ticket = join(buyer, event_id)
    claims = claims_of(ticket, event_id)
    now = int(time.time())
    user = buyer.user
    if case == "no_ticket":
        ticket = None
    elif case == "forged":
        ticket = _forged(dataclasses.replace(claims, arrival=99))
    elif case == "edited":
        parts = ticket.split(".")
        parts[3] = "99"
        ticket = ".".join(parts)
    elif case == "expired":
        ticket = queue_ticket_sign(dataclasses.replace(claims, issued_at=now - 3601, seen_at=now))
    elif case == "other_event":
        ticket = queue_ticket_sign(dataclasses.replace(claims, event_id=event_factory().pk))
    elif case == "other_buyers_token":
        user = other.user
    else:  # the app last answered this buyer more than QUEUE_EDGE_SECONDS ago
        ticket = queue_ticket_sign(dataclasses.replace(claims, seen_at=now - settings.QUEUE_EDGE_SECONDS))
    reply = edge_poll(edge_proxy, event_id, ticket, user)
    assert reply.status == status, reply.text
    assert reply.header(EDGE_HEADER) is None
    body = reply.json()
    if code is not None:
        assert body["code"] == code and body["detail"] and "state" not in body
        return
    assert body["state"] == "waiting"
    if case == "not_seen_lately":
        # The app answered from the cursor and saw the buyer now: nginx may answer again.
        assert body["estimated"] is True
        assert claims_of(body["queue_ticket"], event_id).seen_at >= now
        assert edge_poll(edge_proxy, event_id, body["queue_ticket"], user).header(EDGE_HEADER) == "1"
    else:
        assert body["estimated"] is False


def test_at_the_cursor_the_app_answers_and_gives_the_pass(edge_proxy, user_factory, on_sale_event):
    event_id = on_sale_event.pk
    first, far = make_auth_client(user_factory()), make_auth_client(user_factory())
    first_ticket = join(first, event_id)
    far_ticket = join(far, event_id)
    assert edge_poll(edge_proxy, event_id, first_ticket, first.user).header(EDGE_HEADER) == "1"
    line_admit(event_id=event_id, capacity=1, pass_seconds=600)
    pulse_cache.invalidate(event_id)
    admitted_at = time.monotonic()
    # nginx's copy of the cursor may still say "waiting" for a moment (never "active": a
    # pass only ever comes from the app), and never for more than 2 s.
    while (reply := edge_poll(edge_proxy, event_id, first_ticket, first.user)).header(EDGE_HEADER) == "1":
        assert reply.json()["state"] == "waiting"
        assert time.monotonic() - admitted_at < 2.5
        time.sleep(0.2)
    assert reply.json()["state"] == "active" and reply.json()["pass_expires_at"]
    # Right behind the cursor is near the front too: the app's exact step answers.
    assert edge_poll(edge_proxy, event_id, far_ticket, far.user).header(EDGE_HEADER) is None
    # The edge never answers a join, and a join through nginx works as before.
    late = make_auth_client(user_factory())
    reply = fetch(edge_proxy, queue_path(event_id), method="POST", headers=bearer(late.user))
    assert reply.status == 201 and reply.header(EDGE_HEADER) is None


def _keep_polling_through_nginx(proxy: Nginx, event_id: int, client: Any, seconds: float) -> tuple[int, int]:
    """Polls every 0.3 s for ``seconds`` with the newest ticket, as the page does; returns
    (answered by nginx, answered by the app)."""
    ticket = join(client, event_id)
    keys = EventKeys(event_id)
    # Last seen ten minutes ago: a deterministic stand-in for a long wait at the edge.
    get_redis().zadd(keys.seen, {str(client.user.pk): int(time.time() * 1000) - 600_000}, xx=True)
    at_edge = at_app = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reply = edge_poll(proxy, event_id, ticket, client.user)
        assert reply.status == 200 and reply.json()["state"] == "waiting"
        ticket = reply.json()["queue_ticket"]
        if reply.header(EDGE_HEADER) == "1":
            at_edge += 1
        else:
            at_app += 1
        time.sleep(0.3)
    pulse_cache.invalidate(event_id)  # the next pulse read carries the app's heartbeats
    pulse_cache.get(event_id)
    return at_edge, at_app


def test_a_buyer_answered_by_nginx_still_shows_up_at_the_app_and_is_not_dropped(
    edge_proxy, user_factory, on_sale_event, settings
):
    settings.QUEUE_EDGE_SECONDS = 2
    buyer = make_auth_client(user_factory())
    at_edge, at_app = _keep_polling_through_nginx(edge_proxy, on_sale_event.pk, buyer, seconds=4.5)
    assert at_edge >= 5 and at_app >= 1
    result = line_admit(event_id=on_sale_event.pk, capacity=1, pass_seconds=600, silent_seconds=180)
    assert (result.admitted, result.dropped) == (1, 0)


def test_negative_control_without_the_edge_window_a_polling_buyer_is_dropped_as_silent(
    edge_proxy, user_factory, on_sale_event, settings
):
    """The same with exactly one thing changed: nginx may answer for an hour after the
    app last saw the buyer. Every poll stops at nginx, the app never sees the buyer, and
    the admission drops a buyer who never stopped polling."""
    settings.QUEUE_EDGE_SECONDS = 3600
    buyer = make_auth_client(user_factory())
    at_edge, at_app = _keep_polling_through_nginx(edge_proxy, on_sale_event.pk, buyer, seconds=4.5)
    assert at_app == 0 and at_edge >= 5
    result = line_admit(event_id=on_sale_event.pk, capacity=1, pass_seconds=600, silent_seconds=180)
    assert (result.admitted, result.dropped) == (0, 1)


def test_docker_compose_gives_its_nginx_the_edge_and_every_template_name():
    """docker-compose.yml is checked by reading (no Docker engine here): the nginx service
    defines every name the site template uses, mounts the njs handler where the template
    imports it from, and loads the module with the key let through."""
    import re

    import yaml

    root = Path(__file__).resolve().parents[2]
    nginx = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]["nginx"]
    template = (root / "deploy/nginx/ticketing.conf.template").read_text()
    code = "\n".join(line for line in template.splitlines() if not line.lstrip().startswith("#"))
    assert set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", code)) <= set(nginx["environment"])
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in nginx["volumes"])
    assert mounts["./deploy/nginx/queue_edge.js"] == nginx["environment"]["QUEUE_EDGE_JS"]
    assert (root / "deploy/nginx/queue_edge.js").is_file()
    main = (root / "deploy/nginx/docker-nginx.conf").read_text()
    assert mounts["./deploy/nginx/docker-nginx.conf"] == "/etc/nginx/nginx.conf"
    assert "load_module modules/ngx_http_js_module.so;" in main and "env QUEUE_TICKET_KEY;" in main
    assert nginx["environment"]["QUEUE_TICKET_KEY"] == "${QUEUE_TICKET_KEY:-}"


@pytest.mark.parametrize(
    ("edge", "silent", "ids"),
    [(60, 180, []), (0, 180, []), (60, 0, []), (150, 180, ["events.E002"]), (-1, 180, ["events.E001"])],
)
def test_the_check_refuses_an_edge_window_that_would_drop_polling_buyers(settings, edge, silent, ids):
    from events.checks import queue_edge_check

    settings.QUEUE_EDGE_SECONDS, settings.QUEUE_SILENT_SECONDS = edge, silent
    assert [message.id for message in queue_edge_check(None)] == ids
