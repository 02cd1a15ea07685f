"""POST/GET/DELETE /api/events/ID/holds/ (API.md "Seat holds")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from booking.services import booking_confirm
from booking.tests.conftest import admit_users, seat_ids_of
from conftest import make_auth_client
from events.services.seat_map import seat_map_current
from queueing.connection import get_redis
from queueing.keys import EventKeys

pytestmark = pytest.mark.django_db


def holds_url(event_id: int) -> str:
    return f"/api/events/{event_id}/holds/"


def refusal(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def test_hold_returns_seats_and_expiry(auth_client, on_sale_event):
    admit_users(on_sale_event, auth_client.user)
    seats = seat_ids_of(on_sale_event, 2)

    response = auth_client.post(holds_url(on_sale_event.pk), {"seat_ids": seats}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["seat_ids"] == seats
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at.utcoffset() is not None
    assert {seat: seat_map_current(on_sale_event.pk).statuses[seat] for seat in seats} == {
        seat: "held" for seat in seats
    }
    assert auth_client.get(holds_url(on_sale_event.pk)).json() == body


def test_hold_is_all_or_nothing(user_factory, on_sale_event):
    first, second = make_auth_client(user_factory()), make_auth_client(user_factory())
    admit_users(on_sale_event, first.user, second.user)
    a, b, c = seat_ids_of(on_sale_event, 3)
    assert first.post(holds_url(on_sale_event.pk), {"seat_ids": [b]}, format="json").status_code == 201

    response = second.post(holds_url(on_sale_event.pk), {"seat_ids": [a, b, c]}, format="json")

    assert refusal(response) == (409, "seat_unavailable")
    assert response.json()["seat_ids"] == [b]
    # Neither a nor c was taken by the refused request.
    assert second.get(holds_url(on_sale_event.pk)).json() == {"seat_ids": [], "expires_at": None}
    statuses = seat_map_current(on_sale_event.pk).statuses
    assert (statuses[a], statuses[b], statuses[c]) == ("available", "held", "available")


def test_hold_cap(auth_client, event_factory):
    event = event_factory(max_tickets_per_user=2)
    admit_users(event, auth_client.user)
    a, b, c = seat_ids_of(event, 3)
    assert auth_client.post(holds_url(event.pk), {"seat_ids": [a, b]}, format="json").status_code == 201

    response = auth_client.post(holds_url(event.pk), {"seat_ids": [c]}, format="json")

    assert refusal(response) == (400, "limit_exceeded")
    assert auth_client.get(holds_url(event.pk)).json()["seat_ids"] == [a, b]


def test_hold_cap_counts_seats_already_booked(auth_client, event_factory, django_capture_on_commit_callbacks):
    event = event_factory(max_tickets_per_user=3)
    admit_users(event, auth_client.user)
    a, b, c, d = seat_ids_of(event, 4)
    assert auth_client.post(holds_url(event.pk), {"seat_ids": [a, b]}, format="json").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        booking_confirm(user_id=auth_client.user.pk, event_id=event.pk, seat_ids=[a, b])
    admit_users(event, auth_client.user)  # the booking ended the pass; come back through the queue

    too_many = auth_client.post(holds_url(event.pk), {"seat_ids": [c, d]}, format="json")
    one_more = auth_client.post(holds_url(event.pk), {"seat_ids": [c]}, format="json")

    assert too_many.status_code == 400
    assert too_many.json()["code"] == "limit_exceeded"
    assert one_more.status_code == 201


def test_hold_without_pass_is_not_admitted(auth_client, on_sale_event):
    response = auth_client.post(
        holds_url(on_sale_event.pk), {"seat_ids": seat_ids_of(on_sale_event, 1)}, format="json"
    )

    assert refusal(response) == (403, "not_admitted")


def test_hold_with_expired_pass_is_not_admitted(auth_client, on_sale_event):
    admit_users(on_sale_event, auth_client.user)
    get_redis().zadd(EventKeys(on_sale_event.pk).active, {str(auth_client.user.pk): 1}, xx=True)

    response = auth_client.post(
        holds_url(on_sale_event.pk), {"seat_ids": seat_ids_of(on_sale_event, 1)}, format="json"
    )

    assert refusal(response) == (403, "not_admitted")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"seat_ids": []},
        {"seat_ids": [1, 1]},
        {"seat_ids": [0]},
        {"seat_ids": [-3]},
        {"seat_ids": ["x"]},
        {"seat_ids": [1.5]},
        {"seat_ids": list(range(1, 22))},
        {"seat_ids": 5},
    ],
)
def test_hold_rejects_malformed_seat_ids(auth_client, on_sale_event, body):
    admit_users(on_sale_event, auth_client.user)

    response = auth_client.post(holds_url(on_sale_event.pk), body, format="json")

    assert refusal(response) == (400, "invalid")


def test_hold_rejects_seats_of_another_event(auth_client, on_sale_event, event_factory):
    other = event_factory(title="Other")
    admit_users(on_sale_event, auth_client.user)

    response = auth_client.post(
        holds_url(on_sale_event.pk), {"seat_ids": seat_ids_of(other, 1)}, format="json"
    )

    assert refusal(response) == (400, "invalid")


def test_hold_rebuilds_a_missing_seat_map(auth_client, on_sale_event):
    admit_users(on_sale_event, auth_client.user)
    get_redis().delete(EventKeys(on_sale_event.pk).seatmap)

    response = auth_client.post(
        holds_url(on_sale_event.pk), {"seat_ids": seat_ids_of(on_sale_event, 1)}, format="json"
    )

    assert response.status_code == 201


def test_hold_unknown_event_is_404(auth_client):
    response = auth_client.post(holds_url(999_999), {"seat_ids": [1]}, format="json")

    assert response.status_code == 404


def test_hold_requires_authentication(api_client, on_sale_event):
    response = api_client.post(holds_url(on_sale_event.pk), {"seat_ids": [1]}, format="json")

    assert response.status_code == 401


def test_release_some_then_all(auth_client, on_sale_event):
    admit_users(on_sale_event, auth_client.user)
    a, b, c = seat_ids_of(on_sale_event, 3)
    auth_client.post(holds_url(on_sale_event.pk), {"seat_ids": [a, b, c]}, format="json")

    assert (
        auth_client.delete(holds_url(on_sale_event.pk), {"seat_ids": [b]}, format="json").status_code == 204
    )
    assert auth_client.get(holds_url(on_sale_event.pk)).json()["seat_ids"] == [a, c]
    assert auth_client.delete(holds_url(on_sale_event.pk)).status_code == 204
    assert auth_client.get(holds_url(on_sale_event.pk)).json()["seat_ids"] == []
    assert seat_map_current(on_sale_event.pk).statuses[a] == "available"


def test_session_authenticated_hold_needs_csrf(client, user, on_sale_event):
    from django.test import Client

    admit_users(on_sale_event, user)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)

    response = strict.post(
        holds_url(on_sale_event.pk),
        {"seat_ids": seat_ids_of(on_sale_event, 1)},
        content_type="application/json",
    )

    assert response.status_code == 403
