"""Staff rush API, control service with its audit log, and the live dashboard page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conftest import make_auth_client
from events.models import Event, RushControlChange, Seat, SeatStatus
from events.services.rush_control import rush_control_update
from events.services.seat_map import seat_map_rebuild
from events.tasks import admit_on_sale_events
from queueing.line import controls_get, line_admit, line_join
from ticketing.errors import DomainError

pytestmark = pytest.mark.django_db


FIGURES = {
    "waiting",
    "active",
    "capacity",
    "pass_seconds",
    "paused",
    "admitted_total",
    "admitted_per_second",
    "held_seats",
    "sold_seats",
    "available_seats",
}


def rush_url(event_id: int) -> str:
    return reverse("api-staff-rush", args=[event_id])


@pytest.fixture
def staff_client(staff_user):
    return make_auth_client(staff_user)


def test_staff_see_live_figures(staff_client, event_factory):
    event = event_factory(capacity=2, pass_seconds=300)
    for user_id in (1, 2, 3):
        line_join(event_id=event.pk, user_id=user_id, sales_open_at_ms=0)
    admit_on_sale_events()
    response = staff_client.get(rush_url(event.pk))
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= FIGURES
    assert body["waiting"] == 1 and body["active"] == 2
    assert body["capacity"] == 2 and body["pass_seconds"] == 300 and body["paused"] is False
    assert body["admitted_total"] == 2 and body["admitted_per_second"] > 0
    assert (body["held_seats"], body["sold_seats"], body["available_seats"]) == (0, 0, 10)
    assert body["shuffle_seed"] is None  # the sale is still going
    assert body["history"][-1]["admitted"] == 2 and body["history"][-1]["waiting"] == 1


def test_non_staff_get_403_and_anonymous_401(auth_client, api_client, on_sale_event):
    for client, status, code in (
        (auth_client, 403, "permission_denied"),
        (api_client, 401, "not_authenticated"),
    ):
        for response in (
            client.get(rush_url(on_sale_event.pk)),
            client.patch(rush_url(on_sale_event.pk), {"paused": True}, format="json"),
        ):
            assert response.status_code == status
            assert response.json()["code"] == code
    assert not RushControlChange.objects.exists()


def test_unknown_event_is_404(staff_client):
    assert staff_client.get(rush_url(999_999)).status_code == 404


def test_pause_is_applied_and_audit_logged(staff_client, staff_user, on_sale_event):
    line_join(event_id=on_sale_event.pk, user_id=7, sales_open_at_ms=0)
    response = staff_client.patch(rush_url(on_sale_event.pk), {"paused": True}, format="json")
    assert response.status_code == 200
    assert response.json()["paused"] is True
    assert admit_on_sale_events()[on_sale_event.pk]["admitted"] == 0

    change = RushControlChange.objects.get()
    assert change.event == on_sale_event and change.changed_by == staff_user
    assert change.changes == {"paused": [False, True]}
    assert timezone.now() - change.changed_at < timedelta(seconds=10)


def test_capacity_and_pass_length_persist_on_the_event(staff_client, event_factory):
    event = event_factory(capacity=100, pass_seconds=600)
    response = staff_client.patch(rush_url(event.pk), {"capacity": 5, "pass_seconds": 120}, format="json")
    assert response.status_code == 200
    assert response.json()["capacity"] == 5 and response.json()["pass_seconds"] == 120
    event.refresh_from_db()
    assert (event.queue_capacity, event.queue_pass_seconds) == (5, 120)
    assert controls_get(event_id=event.pk)["capacity"] == 5
    assert RushControlChange.objects.get().changes == {"capacity": [100, 5], "pass_seconds": [600, 120]}


def test_setting_the_same_value_writes_no_audit_row(staff_client, on_sale_event):
    response = staff_client.patch(rush_url(on_sale_event.pk), {"paused": False}, format="json")
    assert response.status_code == 200
    assert not RushControlChange.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"capacity": 0},
        {"capacity": 100_001},
        {"pass_seconds": 29},
        {"pass_seconds": 7201},
        {"capacity": "x"},
    ],
)
def test_invalid_changes_are_400_invalid(staff_client, on_sale_event, body):
    response = staff_client.patch(rush_url(on_sale_event.pk), body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert not RushControlChange.objects.exists()
    on_sale_event.refresh_from_db()
    assert on_sale_event.queue_capacity == 100


def test_service_refuses_out_of_range_values(on_sale_event, staff_user):
    with pytest.raises(DomainError) as error:
        rush_control_update(event=on_sale_event, user=staff_user, capacity=0)
    assert error.value.code == "invalid"


def test_session_staff_must_send_the_csrf_token(staff_user, on_sale_event):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    url = rush_url(on_sale_event.pk)
    refused = client.patch(url, '{"paused": true}', content_type="application/json")
    assert refused.status_code == 403
    page = client.get(reverse("events:rush_dashboard", args=[on_sale_event.pk]))
    token = page.cookies["csrftoken"].value
    accepted = client.patch(url, '{"paused": true}', content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200 and accepted.json()["paused"] is True


def test_shuffle_seed_is_published_only_after_the_sale(staff_client, event_factory):
    event = event_factory(sections=["A"], rows=1, seats_per_row=2)
    line_admit(event_id=event.pk, capacity=1, pass_seconds=60, shuffle_seed=12345)
    assert staff_client.get(rush_url(event.pk)).json()["shuffle_seed"] is None

    Seat.objects.filter(event=event).update(status=SeatStatus.SOLD)
    seat_map_rebuild(event.pk)
    line_admit(event_id=event.pk, capacity=1, pass_seconds=60)
    body = staff_client.get(rush_url(event.pk)).json()
    assert body["sold_out"] is True and body["shuffle_seed"] == 12345


def test_shuffle_seed_is_published_after_sales_close(staff_client, event_factory):
    event = event_factory()
    line_admit(event_id=event.pk, capacity=1, pass_seconds=60, shuffle_seed=777)
    Event.objects.filter(pk=event.pk).update(sales_close_at=timezone.now() - timedelta(seconds=1))
    assert staff_client.get(rush_url(event.pk)).json()["shuffle_seed"] == 777


# --- the dashboard page ---------------------------------------------------------------------


def dashboard_url(event_id: int) -> str:
    return reverse("events:rush_dashboard", args=[event_id])


def test_dashboard_for_staff_shows_figures_and_controls(client, staff_user, on_sale_event):
    rush_control_update(event=on_sale_event, user=staff_user, capacity=7)
    client.force_login(staff_user)
    response = client.get(dashboard_url(on_sale_event.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-api-url="{rush_url(on_sale_event.pk)}"' in html
    assert 'data-field="capacity">7<' in html
    assert 'data-chart="waiting"' in html and 'data-chart="admitted"' in html
    assert 'data-action="toggle-pause"' in html and "Pause admission" in html
    assert "Capacity: 100 → 7" in html  # recent changes
    assert "css/queue.css" in html and "js/rush_dashboard.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_dashboard_is_staff_only(client, user, on_sale_event):
    anonymous = client.get(dashboard_url(on_sale_event.pk))
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
    client.force_login(user)
    assert client.get(dashboard_url(on_sale_event.pk)).status_code == 403
