"""Catalogue API and pages as a buyer sees them: list, detail, seat map with ETag."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Seat, SeatStatus
from events.services.catalogue import SectionSpec, row_labels

pytestmark = pytest.mark.django_db


def test_row_labels_continue_past_z():
    assert row_labels(3) == ["A", "B", "C"]
    assert row_labels(28)[-2:] == ["AA", "AB"]


def test_event_list_shows_on_sale_fields(api_client, event_factory):
    event = event_factory(title="Rush night", sections=["A", "B"], rows=2, seats_per_row=3, price="55000")
    response = api_client.get("/api/events/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and body["next"] is None and body["previous"] is None
    item = body["results"][0]
    assert item["id"] == event.pk
    assert item["status"] == "on_sale"
    assert item["seats_total"] == 12 and item["seats_available"] == 12
    assert item["min_price"] == "55000.00" and item["max_price"] == "55000.00"
    for field in ("title", "venue", "starts_at", "sales_open_at", "sales_close_at"):
        assert field in item


def test_new_event_appears_in_cached_list_at_once(api_client, event_factory):
    event_factory(title="First")
    assert [e["title"] for e in api_client.get("/api/events/").json()["results"]] == ["First"]
    event_factory(title="Second")  # the cached first page must not hide it
    assert {e["title"] for e in api_client.get("/api/events/").json()["results"]} == {"First", "Second"}


def test_event_change_and_delete_invalidate_the_cache(
    api_client, event_factory, django_capture_on_commit_callbacks
):
    event = event_factory(title="Old title")
    assert api_client.get(f"/api/events/{event.pk}/").json()["title"] == "Old title"
    event.title = "New title"
    with django_capture_on_commit_callbacks(execute=True):
        event.save()
    assert api_client.get(f"/api/events/{event.pk}/").json()["title"] == "New title"
    assert api_client.get("/api/events/").json()["results"][0]["title"] == "New title"
    with django_capture_on_commit_callbacks(execute=True):
        event.delete()
    assert api_client.get(f"/api/events/{event.pk}/").status_code == 404
    assert api_client.get("/api/events/").json()["count"] == 0


def test_event_detail_has_queue_settings(api_client, event_factory):
    event = event_factory(capacity=42, pass_seconds=300, hold_seconds=120, max_tickets_per_user=2)
    body = api_client.get(f"/api/events/{event.pk}/").json()
    assert body["queue"] == {"capacity": 42, "pass_seconds": 300}
    assert body["hold_seconds"] == 120 and body["max_tickets_per_user"] == 2
    assert "description" in body


def test_status_follows_the_sales_window(api_client, event_factory, django_capture_on_commit_callbacks):
    now = timezone.now()
    upcoming = event_factory(title="Later", sales_open_at=now + timedelta(days=1))
    assert api_client.get(f"/api/events/{upcoming.pk}/").json()["status"] == "scheduled"
    sold = event_factory(title="Gone")
    Seat.objects.filter(event=sold).update(status=SeatStatus.SOLD)
    with django_capture_on_commit_callbacks(execute=True):
        sold.save()  # invalidates the cache as a booking does
    assert api_client.get(f"/api/events/{sold.pk}/").json()["status"] == "sold_out"


def test_unknown_event_is_404_with_code(api_client):
    response = api_client.get("/api/events/999999/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert api_client.get("/api/events/999999/seats/").status_code == 404


def test_unpublished_event_is_hidden(api_client, event_factory, django_capture_on_commit_callbacks):
    event = event_factory()
    event.is_published = False
    with django_capture_on_commit_callbacks(execute=True):
        event.save()
    assert api_client.get(f"/api/events/{event.pk}/").status_code == 404
    assert api_client.get("/api/events/").json()["count"] == 0


def test_seat_map_lists_every_seat_with_status(api_client, event_factory):
    event = event_factory(sections=["A"], rows=1, seats_per_row=3)
    response = api_client.get(f"/api/events/{event.pk}/seats/")
    assert response.status_code == 200
    body = response.json()
    assert body["event"] == event.pk and isinstance(body["version"], int)
    assert [(s["row"], s["number"], s["status"]) for s in body["seats"]] == [
        ("A", 1, "available"),
        ("A", 2, "available"),
        ("A", 3, "available"),
    ]
    assert set(body["seats"][0]) == {"id", "section", "row", "number", "grade", "price", "status"}


def test_seat_map_etag_gives_304_until_a_seat_changes(api_client, event_factory):
    from queueing.seatmap import seatmap_mark

    event = event_factory(sections=["A"], rows=1, seats_per_row=3)
    first = api_client.get(f"/api/events/{event.pk}/seats/")
    etag = first["ETag"]
    assert etag
    again = api_client.get(f"/api/events/{event.pk}/seats/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag
    seat = event.seats.first()
    seatmap_mark(event_id=event.pk, seat_ids=[seat.pk], status="sold")
    changed = api_client.get(f"/api/events/{event.pk}/seats/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert {s["id"]: s["status"] for s in changed.json()["seats"]}[seat.pk] == "sold"


def test_seat_map_is_rebuilt_from_the_database_when_redis_lost_it(api_client, event_factory):
    from queueing.connection import get_redis
    from queueing.keys import EventKeys

    event = event_factory(sections=["A"], rows=1, seats_per_row=2)
    sold = event.seats.first()
    Seat.objects.filter(pk=sold.pk).update(status=SeatStatus.SOLD)
    get_redis().delete(EventKeys(event.pk).seatmap)
    statuses = {
        s["id"]: s["status"] for s in api_client.get(f"/api/events/{event.pk}/seats/").json()["seats"]
    }
    assert statuses[sold.pk] == "sold"
    assert list(statuses.values()).count("available") == 1


def test_pages_render(client, event_factory):
    event = event_factory(
        title="Page show",
        sections=[SectionSpec("VIP", "VIP", 110000)],
        rows=1,
        seats_per_row=2,
    )
    home = client.get("/")
    assert home.status_code == 200
    assert "Page show" in home.content.decode()
    detail = client.get(f"/events/{event.pk}/")
    assert detail.status_code == 200
    assert "Section VIP" in detail.content.decode()
    assert client.get("/events/999999/").status_code == 404


def test_create_event_command_prints_json(capsys, db):
    import json

    from django.core.management import call_command

    call_command(
        "create_event",
        "--title",
        "CLI show",
        "--sections",
        "A,B",
        "--rows",
        "2",
        "--seats-per-row",
        "5",
        "--price",
        "55000",
        "--capacity",
        "100",
        "--hold-seconds",
        "300",
        "--max-tickets-per-user",
        "4",
        "--open-now",
        "--json",
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["seats_total"] == 20 and summary["capacity"] == 100
    assert Seat.objects.filter(event_id=summary["id"]).count() == 20
    # Proof-of-work and the human check stay off unless asked for.
    assert (summary["pow_difficulty"], summary["human_check"]) == (0, False)

    call_command("create_event", "--title", "Guarded", "--pow-difficulty", "50000", "--human-check", "--json")
    guarded = json.loads(capsys.readouterr().out)
    assert (guarded["pow_difficulty"], guarded["human_check"]) == (50000, True)


def test_seed_demo_is_idempotent(db, settings, tmp_path):
    from django.core.management import call_command

    from accounts.models import User
    from events.models import Event

    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    call_command("seed_demo")
    assert Event.objects.count() == 3
    assert User.objects.filter(is_staff=True).count() == 1


def test_seed_demo_has_a_sold_out_event_whose_waiting_list_is_open(db, settings, tmp_path):
    from django.core.management import call_command

    from booking.waiting_list import waiting_list_joinable
    from events.models import Event, SeatStatus

    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    sold_out = Event.objects.get(title__startswith="Jazz Night")
    assert set(sold_out.seats.values_list("status", flat=True)) == {SeatStatus.SOLD}
    assert sold_out.bookings.count() == 3
    assert waiting_list_joinable(sold_out)
