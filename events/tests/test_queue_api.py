"""Waiting-room API and page as a buyer sees them (real Redis, real database)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_auth_client
from events.models import Seat, SeatStatus
from events.services.seat_map import seat_map_rebuild
from events.services.waiting_room import POLL_MIN_MS, QueueAnswer, poll_after_ms
from queueing.line import line_admit

pytestmark = pytest.mark.django_db


STATUS_FIELDS = {
    "state",
    "position",
    "ahead",
    "eta_seconds",
    "pass_expires_at",
    "poll_after_ms",
    "sales_open_at",
    "estimated",
    "queue_ticket",
    "as_of",
    "paused",
}
POLL_MAX_MS = 30_000  # settings.QUEUE_POLL_MAX_MS


def queue_url(event_id: int) -> str:
    return reverse("api-event-queue", args=[event_id])


def sell_out(event) -> None:
    """Every seat sold in the database and the map; one admission run notices it."""
    Seat.objects.filter(event=event).update(status=SeatStatus.SOLD)
    seat_map_rebuild(event.pk)
    result = line_admit(
        event_id=event.pk, capacity=event.queue_capacity, pass_seconds=event.queue_pass_seconds
    )
    assert result.sold_out


def test_join_is_201_then_200_with_the_same_place(auth_client, user_factory, on_sale_event):
    first = make_auth_client(user_factory())
    assert first.post(queue_url(on_sale_event.pk)).status_code == 201

    response = auth_client.post(queue_url(on_sale_event.pk))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == STATUS_FIELDS
    assert body["state"] == "waiting"
    assert body["position"] == 2 and body["ahead"] == 1
    assert body["pass_expires_at"] is None
    assert POLL_MIN_MS <= body["poll_after_ms"] <= POLL_MAX_MS
    sales_open_at = datetime.fromisoformat(body["sales_open_at"])
    assert sales_open_at.utcoffset() is not None
    assert abs(sales_open_at - on_sale_event.sales_open_at) < timedelta(milliseconds=1)

    again = auth_client.post(queue_url(on_sale_event.pk))
    assert again.status_code == 200
    assert again.json()["position"] == 2


def test_status_then_leave_then_not_in_queue(auth_client, on_sale_event):
    url = queue_url(on_sale_event.pk)
    auth_client.post(url)
    response = auth_client.get(url)
    assert response.status_code == 200
    assert response.json()["state"] == "waiting" and response.json()["position"] == 1

    assert auth_client.delete(url).status_code == 204
    gone = auth_client.get(url)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_in_queue"
    # Leaving twice is harmless.
    assert auth_client.delete(url).status_code == 204


def test_positions_follow_arrival_order(user_factory, on_sale_event):
    clients = [make_auth_client(user_factory()) for _ in range(5)]
    positions = [client.post(queue_url(on_sale_event.pk)).json()["position"] for client in clients]
    assert positions == [1, 2, 3, 4, 5]


def test_unknown_or_unpublished_event_is_404(auth_client, event_factory):
    for method in (auth_client.post, auth_client.get):
        response = method(queue_url(999_999))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    hidden = event_factory()
    hidden.is_published = False
    hidden.save()
    assert auth_client.post(queue_url(hidden.pk)).status_code == 404


def test_join_after_sales_close_is_409_sales_closed(auth_client, event_factory):
    now = timezone.now()
    event = event_factory(sales_open_at=now - timedelta(days=2), sales_close_at=now - timedelta(seconds=1))
    response = auth_client.post(queue_url(event.pk))
    assert response.status_code == 409
    assert response.json() == {"code": "sales_closed", "detail": "Sales for this event are closed."}


def test_join_when_sold_out_is_409_sold_out(auth_client, on_sale_event):
    sell_out(on_sale_event)
    response = auth_client.post(queue_url(on_sale_event.pk))
    assert response.status_code == 409
    assert response.json()["code"] == "sold_out"


def test_someone_waiting_is_told_sold_out(auth_client, on_sale_event):
    auth_client.post(queue_url(on_sale_event.pk))
    sell_out(on_sale_event)
    body = auth_client.get(queue_url(on_sale_event.pk)).json()
    assert body["state"] == "sold_out"
    assert body["eta_seconds"] is None


def test_without_a_token_is_401(api_client, on_sale_event):
    for method in (api_client.post, api_client.get, api_client.delete):
        response = method(queue_url(on_sale_event.pk))
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


def test_join_and_status_query_no_database(auth_client, on_sale_event, django_assert_num_queries):
    url = queue_url(on_sale_event.pk)
    auth_client.get(url)  # warms the per-process event settings (404: not in line yet)
    with django_assert_num_queries(0):
        assert auth_client.post(url).status_code == 201
    with django_assert_num_queries(0):
        assert auth_client.get(url).status_code == 200
    with django_assert_num_queries(0):
        assert auth_client.post(url).status_code == 200


def test_eta_is_null_before_any_admission_and_a_number_after(user_factory, on_sale_event):
    clients = [make_auth_client(user_factory()) for _ in range(4)]
    for client in clients:
        client.post(queue_url(on_sale_event.pk))
    last = clients[-1]
    assert last.get(queue_url(on_sale_event.pk)).json()["eta_seconds"] is None

    result = line_admit(event_id=on_sale_event.pk, capacity=2, pass_seconds=600)
    assert result.admitted == 2
    body = last.get(queue_url(on_sale_event.pk)).json()
    assert body["state"] == "waiting" and body["position"] == 2 and body["ahead"] == 1
    assert isinstance(body["eta_seconds"], int) and body["eta_seconds"] >= 1


def test_admitted_buyer_is_active_with_a_pass_expiry_with_offset(auth_client, on_sale_event):
    auth_client.post(queue_url(on_sale_event.pk))
    line_admit(event_id=on_sale_event.pk, capacity=1, pass_seconds=600)
    body = auth_client.get(queue_url(on_sale_event.pk)).json()
    assert body["state"] == "active"
    assert body["position"] is None and body["ahead"] is None and body["eta_seconds"] is None
    expires = datetime.fromisoformat(body["pass_expires_at"])
    assert expires.utcoffset() is not None
    assert timedelta(seconds=590) < expires - timezone.now() <= timedelta(seconds=601)
    assert body["poll_after_ms"] == POLL_MIN_MS
    # Joining again while admitted keeps the pass.
    again = auth_client.post(queue_url(on_sale_event.pk))
    assert again.status_code == 200 and again.json()["state"] == "active"


def test_joining_before_sales_open_is_allowed(auth_client, event_factory):
    opens = timezone.now() + timedelta(hours=1)
    event = event_factory(sales_open_at=opens)
    response = auth_client.post(queue_url(event.pk))
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "waiting" and body["position"] == 1
    # An hour before the opening there is no point in polling fast.
    assert body["poll_after_ms"] == POLL_MAX_MS


def test_poll_interval_is_fast_near_the_front_and_slow_far_back():
    def waiting(ahead: int, eta: int | None) -> QueueAnswer:
        return QueueAnswer("waiting", ahead + 1, ahead, eta, None, estimated=False, ticket=None, as_of_ms=0)

    opened = {"sales_open_at_ms": 0, "now_ms": 10_000}
    assert poll_after_ms(waiting(0, None), **opened) == POLL_MIN_MS
    assert poll_after_ms(waiting(10_000, None), **opened) == POLL_MAX_MS
    assert poll_after_ms(waiting(10_000, 2), **opened) == POLL_MIN_MS  # fast admission: soon
    assert POLL_MIN_MS < poll_after_ms(waiting(200, None), **opened) < POLL_MAX_MS
    active = QueueAnswer("active", None, None, None, 1, estimated=False, ticket=None, as_of_ms=0)
    assert poll_after_ms(active, **opened) == POLL_MIN_MS


def test_session_authenticated_page_can_poll_the_api(client, user, on_sale_event):
    client.force_login(user)
    url = queue_url(on_sale_event.pk)
    assert client.get(url).status_code == 404
    # Unsafe methods with a session need the CSRF token (the page sends X-CSRFToken).
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(url).status_code == 403
    assert client.post(url).status_code == 201
    assert client.get(url).json()["position"] == 1


# --- the waiting-room page ----------------------------------------------------------------


def page_url(event_id: int) -> str:
    return reverse("events:waiting_room", args=[event_id])


def assert_no_inline_script(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "CSP forbids inline scripts"


def test_page_needs_login(client, on_sale_event):
    response = client.get(page_url(on_sale_event.pk))
    assert response.status_code == 302
    assert "next=" in response["Location"]


def test_page_offers_to_join_then_shows_the_place(client, user, user_factory, on_sale_event):
    make_auth_client(user_factory()).post(queue_url(on_sale_event.pk))  # someone is ahead
    client.force_login(user)
    page = client.get(page_url(on_sale_event.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Join the waiting room" in html
    assert 'data-state="none"' in html
    assert "css/queue.css" in html and "js/waiting_room.js" in html
    assert_no_inline_script(html)

    joined = client.post(page_url(on_sale_event.pk), {"action": "join"})
    assert joined.status_code == 302 and joined["Location"] == page_url(on_sale_event.pk)
    html = client.get(page_url(on_sale_event.pk)).content.decode()
    assert 'data-state="waiting"' in html
    assert 'data-field="position">2<' in html
    assert 'data-field="ahead">1<' in html
    assert 'data-start-position="2"' in html
    assert f'data-status-url="{queue_url(on_sale_event.pk)}"' in html
    assert f'data-pick-url="/events/{on_sale_event.pk}/pick/"' in html


def test_page_leave_takes_the_buyer_out(client, user, on_sale_event):
    client.force_login(user)
    client.post(page_url(on_sale_event.pk), {"action": "join"})
    client.post(page_url(on_sale_event.pk), {"action": "leave"})
    assert client.get(queue_url(on_sale_event.pk)).status_code == 404


def test_page_shows_admission_and_the_way_to_the_seat_picker(client, user, on_sale_event):
    client.force_login(user)
    client.post(page_url(on_sale_event.pk), {"action": "join"})
    line_admit(event_id=on_sale_event.pk, capacity=1, pass_seconds=600)
    html = client.get(page_url(on_sale_event.pk)).content.decode()
    assert 'data-state="active"' in html
    assert f'href="/events/{on_sale_event.pk}/pick/"' in html


def test_page_says_sold_out_plainly(client, user, on_sale_event):
    client.force_login(user)
    sell_out(on_sale_event)
    response = client.post(page_url(on_sale_event.pk), {"action": "join"}, follow=True)
    assert "Sold out" in response.content.decode()


def test_page_explains_the_opening_draw_before_sales_open(client, user, event_factory):
    event = event_factory(sales_open_at=timezone.now() + timedelta(hours=2))
    client.force_login(user)
    html = client.get(page_url(event.pk)).content.decode()
    assert "random order, drawn when sales open" in html
    preopen = re.search(r'<div class="queue-notice" data-panel="preopen"[^>]*>', html).group(0)
    assert "hidden" not in preopen


def test_page_for_unknown_event_is_404(client, user):
    client.force_login(user)
    assert client.get(page_url(999_999)).status_code == 404
