"""The waiting room's ticket and cursor path, through the API, on a real Redis: polls from
behind the serving cursor are answered without asking the line, and can never let anyone
in; bad tickets are refused; silent waiters are dropped, live ones are not."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import override_settings
from django.urls import reverse

from conftest import make_auth_client
from events.queue_tickets import QueueTicket, queue_ticket_sign
from events.services import waiting_room
from queueing import scripts
from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import line_admit, pass_release
from queueing.pulse import pulse_cache

pytestmark = pytest.mark.django_db


def queue_url(event_id: int) -> str:
    return reverse("api-event-queue", args=[event_id])


@pytest.fixture
def script_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the Lua scripts run from here on (the real scripts still run)."""
    calls: list[str] = []
    real = scripts.run_script

    def counting(name: str, **kwargs: object) -> object:
        calls.append(name)
        return real(name, **kwargs)  # type: ignore[arg-type]

    for module in ("queueing.line", "queueing.pulse"):
        monkeypatch.setattr(f"{module}.run_script", counting)
    yield calls


def join(client, event_id: int) -> dict:
    response = client.post(queue_url(event_id))
    assert response.status_code in (200, 201), response.content
    return response.json()


def poll(client, event_id: int, ticket: str | None):
    headers = {"HTTP_X_QUEUE_TICKET": ticket} if ticket else {}
    return client.get(queue_url(event_id), **headers)


def test_a_poll_from_behind_the_cursor_is_estimated_without_asking_the_line(
    user_factory, on_sale_event, script_calls
):
    clients = [make_auth_client(user_factory()) for _ in range(6)]
    tickets = [join(client, on_sale_event.pk)["queue_ticket"] for client in clients]
    assert all(tickets)
    line_admit(event_id=on_sale_event.pk, capacity=2, pass_seconds=600)
    script_calls.clear()

    last = poll(clients[5], on_sale_event.pk, tickets[5])
    assert last.status_code == 200
    body = last.json()
    # Nobody left: the estimate is the exact place (6th of 6, two admitted).
    assert (body["state"], body["position"], body["ahead"], body["estimated"]) == ("waiting", 4, 3, True)
    assert body["queue_ticket"] == tickets[5]
    assert last["Cache-Control"] == "private, no-store"
    # One pulse read for the whole process, no per-buyer script.
    for _ in range(20):
        assert poll(clients[4], on_sale_event.pk, tickets[4]).json()["estimated"] is True
    assert "queue_status" not in script_calls
    assert script_calls.count("pulse") <= 1


def test_a_ticket_at_or_below_the_cursor_takes_the_exact_path_and_learns_of_the_pass(
    user_factory, on_sale_event
):
    first, second = (make_auth_client(user_factory()) for _ in range(2))
    ticket = join(first, on_sale_event.pk)["queue_ticket"]
    join(second, on_sale_event.pk)
    line_admit(event_id=on_sale_event.pk, capacity=1, pass_seconds=600)
    body = poll(first, on_sale_event.pk, ticket).json()
    assert (body["state"], body["estimated"], body["queue_ticket"]) == ("active", False, None)
    assert body["pass_expires_at"]


def test_the_page_polls_with_its_ticket_alone_no_session_or_database_read(
    client, user, on_sale_event, django_assert_num_queries
):
    client.force_login(user)
    ticket = join(make_auth_client(user), on_sale_event.pk)["queue_ticket"]
    pulse_cache.clear()
    poll(client, on_sale_event.pk, ticket)  # warms the pulse and the event settings
    with django_assert_num_queries(0):
        response = poll(client, on_sale_event.pk, ticket)
    assert response.status_code == 200 and response.json()["estimated"] is True
    # Without the session at all, the ticket still gives the estimate, never more.
    client.logout()
    assert poll(client, on_sale_event.pk, ticket).json()["state"] == "waiting"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("forged", 401, "queue_ticket_invalid"),
        ("edited", 401, "queue_ticket_invalid"),
        ("garbage", 401, "queue_ticket_invalid"),
        ("expired", 401, "queue_ticket_expired"),
        ("other_event", 403, "queue_ticket_mismatch"),
        ("other_user", 403, "queue_ticket_mismatch"),
    ],
)
def test_a_bad_ticket_is_refused_and_never_a_pass(
    user_factory, event_factory, on_sale_event, settings, kind, status, code
):
    buyer, other = (make_auth_client(user_factory()) for _ in range(2))
    real = join(buyer, on_sale_event.pk)["queue_ticket"]
    join(other, on_sale_event.pk)
    claims = waiting_room.queue_ticket_verify(
        real, event_id=on_sale_event.pk, user_id=buyer.user.pk, now_s=int(time.time())
    )
    # Whatever a bad ticket claims, the admission has let the buyer in: a forged
    # "arrival 1" must still never read as a pass through the ticket.
    line_admit(event_id=on_sale_event.pk, capacity=1, pass_seconds=600)
    if kind == "forged":
        with override_settings(QUEUE_TICKET_KEY="not-our-key-" * 5):
            bad = queue_ticket_sign(
                QueueTicket(on_sale_event.pk, buyer.user.pk, 999, False, int(time.time()))
            )
    elif kind == "edited":
        parts = real.split(".")
        parts[3] = "999"  # a far-back arrival: would be answered from the cursor
        bad = ".".join(parts)
    elif kind == "garbage":
        bad = "v1.x.y.z"
    elif kind == "expired":
        bad = queue_ticket_sign(
            QueueTicket(on_sale_event.pk, buyer.user.pk, 999, False, int(time.time()) - 3601)
        )
    elif kind == "other_event":
        other_event = event_factory()
        bad = queue_ticket_sign(QueueTicket(other_event.pk, buyer.user.pk, 999, False, claims.issued_at))
    else:
        bad = join(other, on_sale_event.pk)["queue_ticket"]
    response = poll(buyer, on_sale_event.pk, bad)
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["detail"]
    assert "state" not in response.json()
    # The page path (ticket alone) refuses a forged or edited ticket the same way.
    if kind in ("forged", "edited", "garbage", "expired"):
        from django.test import Client

        assert poll(Client(), on_sale_event.pk, bad).status_code == status
    # Dropping the ticket gets the exact answer (and a fresh ticket when in line).
    assert poll(buyer, on_sale_event.pk, None).json()["state"] == "active"


def test_a_ticket_is_rechecked_exactly_now_and_then(user_factory, on_sale_event, settings, script_calls):
    client = make_auth_client(user_factory())
    ticket = join(client, on_sale_event.pk)["queue_ticket"]
    settings.QUEUE_TICKET_RECHECK_SECONDS = 0
    script_calls.clear()
    body = poll(client, on_sale_event.pk, ticket).json()
    assert body["estimated"] is False and "queue_status" in script_calls


def test_a_pre_opening_ticket_is_rechecked_once_the_draw_reorders_the_line(user_factory, event_factory):
    from datetime import timedelta

    from django.utils import timezone

    event = event_factory(sales_open_at=timezone.now() + timedelta(hours=1))
    clients = [make_auth_client(user_factory()) for _ in range(30)]
    tickets = [join(client, event.pk)["queue_ticket"] for client in clients]
    assert ".1." in tickets[0]  # pre-opening flag
    line_admit(event_id=event.pk, capacity=0, pass_seconds=600, shuffle_seed=7)
    bodies = [poll(client, event.pk, ticket).json() for client, ticket in zip(clients, tickets, strict=True)]
    assert all(body["estimated"] is False for body in bodies)
    assert sorted(body["position"] for body in bodies) == list(range(1, 31))
    # The new tickets carry the drawn numbers, no longer pre-opening.
    assert all(".0." in body["queue_ticket"] for body in bodies)


# --- Order, live-ness and the negative control -------------------------------------------


def _rush(event_id: int, clients: list, *, seconds: float, capacity: int) -> tuple[set[int], set[int]]:
    """Buyers join at once and poll with their tickets while admission runs and a few
    buyers leave; a buyer who reads "active" gives the pass back, so the line moves.
    Returns (users who read "active", users who stayed in line). Asserts the order:
    passes were granted in arrival order."""
    tickets: dict[int, str] = {}
    arrivals: dict[int, int] = {}
    with ThreadPoolExecutor(16) as pool:
        for client, body in zip(clients, pool.map(lambda c: join(c, event_id), clients), strict=True):
            tickets[client.user.pk] = body["queue_ticket"]
            arrivals[client.user.pk] = int(body["queue_ticket"].split(".")[3])
    leavers = {client.user.pk for client in clients[3::10]}
    for client in clients:
        if client.user.pk in leavers:
            client.delete(queue_url(event_id))
    stayers = set(arrivals) - leavers
    batches: list[set[int]] = []  # who each admission run let in
    seen_active: set[int] = set()
    stop = threading.Event()

    def admit_loop() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and len(seen_active) < len(stayers):
            before = {int(member) for member in get_redis().zrange(EventKeys(event_id).active, 0, -1)}
            line_admit(event_id=event_id, capacity=capacity, pass_seconds=600)
            after = {int(member) for member in get_redis().zrange(EventKeys(event_id).active, 0, -1)}
            if after - before:
                batches.append(after - before)
            time.sleep(0.02)
        stop.set()

    def poller(client) -> None:
        user = client.user.pk
        while not stop.is_set() and user not in seen_active:
            body = poll(client, event_id, tickets[user]).json()
            if body.get("queue_ticket"):
                tickets[user] = body["queue_ticket"]
            if body.get("state") == "active":
                seen_active.add(user)
                pass_release(event_id=event_id, user_id=user)
            time.sleep(0.02)

    admitter = threading.Thread(target=admit_loop)
    admitter.start()
    with ThreadPoolExecutor(len(stayers)) as pool:
        list(pool.map(poller, [client for client in clients if client.user.pk in stayers]))
    admitter.join()
    # The order: every run let in only people who arrived after everyone let in before.
    # (Reading the active set around a run is racy only with pass_release, which
    # removes, never adds: "after - before" is exactly what the run added.)
    for earlier, later in itertools.pairwise(batches):
        assert max(arrivals[user] for user in earlier) < min(arrivals[user] for user in later)
    assert set().union(*batches) <= stayers
    return seen_active, stayers


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_under_concurrent_joins_leaves_and_admits_every_buyer_learns_of_the_pass_in_order(
    user_factory, on_sale_event
):
    clients = [make_auth_client(user_factory()) for _ in range(40)]
    seen_active, stayers = _rush(on_sale_event.pk, clients, seconds=20, capacity=4)
    # Every buyer who stayed was let in, in order, and read "active" through the ticket poll.
    assert seen_active == stayers


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_negative_control_answering_every_ticket_from_the_cursor_hides_the_pass(
    user_factory, on_sale_event, monkeypatch
):
    """The same rush with exactly one guard off: the check that a ticket is *beyond* the
    cursor before answering it from there. Admitted buyers are then told "waiting" and
    never learn of their pass: that check is what keeps the cursor path honest."""

    def serving_is_ignored(claims, *, ticket):
        pulse = waiting_room.pulse_get(claims.event_id)
        ahead = waiting_room.estimated_ahead(arrival=max(claims.arrival, pulse.serving + 1), pulse=pulse)
        return waiting_room.QueueAnswer(
            "waiting", ahead + 1, ahead, None, None, estimated=True, ticket=ticket, as_of_ms=pulse.now_ms
        )

    monkeypatch.setattr(waiting_room, "_answer_from_cursor", serving_is_ignored)
    clients = [make_auth_client(user_factory()) for _ in range(40)]
    seen_active, stayers = _rush(on_sale_event.pk, clients, seconds=3, capacity=4)
    assert len(seen_active) < len(stayers)


def test_a_silent_waiter_is_dropped_when_reached_and_a_polling_one_is_not(
    user_factory, on_sale_event, settings
):
    silent, polling, later = (make_auth_client(user_factory()) for _ in range(3))
    join(silent, on_sale_event.pk)
    ticket = join(polling, on_sale_event.pk)["queue_ticket"]
    join(later, on_sale_event.pk)
    keys = EventKeys(on_sale_event.pk)
    # Both were last seen ten minutes ago (a deterministic stand-in for waiting it out) ...
    long_ago = int(time.time() * 1000) - 600_000
    get_redis().zadd(keys.seen, {str(silent.user.pk): long_ago, str(polling.user.pk): long_ago}, xx=True)
    # ... but one of them polls, from behind the cursor: answered without the line, and
    # still counted as a sign of life by the next pulse read.
    assert poll(polling, on_sale_event.pk, ticket).json()["estimated"] is True
    pulse_cache.invalidate(on_sale_event.pk)
    waiting_room.pulse_get(on_sale_event.pk)

    result = line_admit(event_id=on_sale_event.pk, capacity=2, pass_seconds=600, silent_seconds=180)
    assert (result.admitted, result.dropped) == (2, 1)
    assert poll(silent, on_sale_event.pk, None).status_code == 404  # the place is gone
    assert poll(polling, on_sale_event.pk, None).json()["state"] == "active"
    assert poll(later, on_sale_event.pk, None).json()["state"] == "active"


def test_negative_control_without_the_signs_of_life_a_polling_waiter_is_dropped(
    user_factory, on_sale_event, monkeypatch
):
    """The same as above with the heartbeat switched off: the waiter who polls from
    behind the cursor looks silent and loses the place."""
    monkeypatch.setattr(waiting_room, "heartbeat_note", lambda **kwargs: None)
    polling = make_auth_client(user_factory())
    ticket = join(polling, on_sale_event.pk)["queue_ticket"]
    keys = EventKeys(on_sale_event.pk)
    get_redis().zadd(keys.seen, {str(polling.user.pk): int(time.time() * 1000) - 600_000}, xx=True)
    assert poll(polling, on_sale_event.pk, ticket).json()["estimated"] is True
    pulse_cache.invalidate(on_sale_event.pk)
    waiting_room.pulse_get(on_sale_event.pk)
    result = line_admit(event_id=on_sale_event.pk, capacity=2, pass_seconds=600, silent_seconds=180)
    assert (result.admitted, result.dropped) == (0, 1)


def test_the_public_cursor_is_cacheable_and_says_how_far_the_line_moved(
    api_client, user_factory, on_sale_event
):
    for _ in range(3):
        join(make_auth_client(user_factory()), on_sale_event.pk)
    line_admit(event_id=on_sale_event.pk, capacity=2, pass_seconds=600)
    response = api_client.get(reverse("api-event-queue-cursor", args=[on_sale_event.pk]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=1"
    body = response.json()
    assert (body["serving"], body["waiting"], body["sold_out"], body["paused"]) == (2, 1, False, False)
    assert api_client.get(reverse("api-event-queue-cursor", args=[999_999])).status_code == 404
