"""Staff admin: bulk seat generation, the seat list, the read-only audit log, and an
event's queue settings edited in the admin reaching the live queue."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from events.models import Event, RushControlChange, Seat
from queueing.line import controls_get
from queueing.tests.helpers import seat_statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def generate_url(*event_ids: int) -> str:
    return f"{reverse('admin:events_event_generate_seats')}?ids={','.join(map(str, event_ids))}"


def section_data(sections: list[tuple[str, str, str]], *, rows: int, seats_per_row: int) -> dict[str, str]:
    data = {
        "rows": str(rows),
        "seats_per_row": str(seats_per_row),
        "sections-TOTAL_FORMS": str(len(sections) + 1),
        "sections-INITIAL_FORMS": "0",
        "sections-MIN_NUM_FORMS": "1",
        "sections-MAX_NUM_FORMS": "50",
    }
    for index, (name, grade, price) in enumerate(sections):
        data |= {
            f"sections-{index}-name": name,
            f"sections-{index}-grade": grade,
            f"sections-{index}-price": price,
        }
    return data  # the extra, empty last form is ignored


def test_generate_seats_by_section_with_grade_and_price(
    admin_client, event_factory, django_capture_on_commit_callbacks
):
    event = event_factory(sections=["A"], rows=1, seats_per_row=2)
    page = admin_client.get(generate_url(event.pk))
    assert page.status_code == 200
    assert "Generate seats" in page.content.decode()

    data = section_data([("VIP", "VIP", "150000"), ("B", "S", "88000.50")], rows=3, seats_per_row=4)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(generate_url(event.pk), data | {"ids": str(event.pk)})
    assert response.status_code == 302
    assert Seat.objects.filter(event=event).count() == 2 + 2 * 3 * 4
    vip = Seat.objects.filter(event=event, section="VIP")
    assert vip.count() == 12
    assert set(vip.values_list("grade", "price")) == {("VIP", Decimal("150000.00"))}
    assert sorted(set(vip.values_list("row", flat=True))) == ["A", "B", "C"]
    assert set(Seat.objects.filter(event=event, section="B").values_list("price", flat=True)) == {
        Decimal("88000.50")
    }
    # The live seat map follows at once (on commit).
    assert len(seat_statuses(event_id=event.pk)) == 26

    # Generating the same block again keeps the existing seats.
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(generate_url(event.pk), data | {"ids": str(event.pk)})
    assert Seat.objects.filter(event=event).count() == 26


def test_generate_seats_action_leads_to_the_form_for_the_selection(admin_client, event_factory):
    first, second = event_factory(title="One"), event_factory(title="Two")
    response = admin_client.post(
        reverse("admin:events_event_changelist"),
        {"action": "generate_seats_action", "_selected_action": [first.pk, second.pk]},
    )
    assert response.status_code == 302
    page = admin_client.get(response["Location"]).content.decode()
    assert "One" in page and "Two" in page


def test_generate_seats_rejects_duplicate_sections_and_huge_blocks(admin_client, event_factory):
    event = event_factory()
    duplicate = section_data([("A", "R", "1"), ("A", "S", "2")], rows=1, seats_per_row=1)
    response = admin_client.post(generate_url(event.pk), duplicate | {"ids": str(event.pk)})
    assert response.status_code == 200
    assert "only once" in response.content.decode()
    huge = section_data([(f"S{n}", "R", "1") for n in range(3)], rows=500, seats_per_row=500)
    response = admin_client.post(generate_url(event.pk), huge | {"ids": str(event.pk)})
    assert response.status_code == 200
    assert Seat.objects.filter(event=event).count() == 10


def test_generate_seats_needs_staff(client, user, event_factory):
    event = event_factory()
    client.force_login(user)
    response = client.get(generate_url(event.pk))
    assert response.status_code == 302  # to the admin login
    assert Seat.objects.filter(event=event).count() == 10


def test_seat_list_filters_by_event_and_status_and_searches(admin_client, event_factory):
    event = event_factory(sections=["A", "B"])
    url = reverse("admin:events_seat_changelist")
    assert admin_client.get(url).status_code == 200
    filtered = admin_client.get(url, {"event__id__exact": event.pk, "status__exact": "available"})
    assert filtered.status_code == 200
    assert filtered.context["cl"].result_count == 20
    searched = admin_client.get(url, {"q": "Test concert"})
    assert searched.status_code == 200 and searched.context["cl"].result_count == 20


def test_event_list_links_to_seat_generation_and_dashboard(admin_client, on_sale_event):
    html = admin_client.get(reverse("admin:events_event_changelist")).content.decode()
    assert reverse("events:rush_dashboard", args=[on_sale_event.pk]) in html
    assert reverse("admin:events_event_generate_seats") in html


def test_audit_log_is_read_only(admin_client, staff_user, on_sale_event):
    change = RushControlChange.objects.create(
        event=on_sale_event, changed_by=staff_user, changes={"paused": [False, True]}
    )
    assert admin_client.get(reverse("admin:events_rushcontrolchange_changelist")).status_code == 200
    assert (
        admin_client.get(reverse("admin:events_rushcontrolchange_change", args=[change.pk])).status_code
        == 200
    )
    assert admin_client.get(reverse("admin:events_rushcontrolchange_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:events_rushcontrolchange_delete", args=[change.pk])).status_code
        == 403
    )
    assert (
        admin_client.post(
            reverse("admin:events_rushcontrolchange_change", args=[change.pk]), {"changes": "{}"}
        ).status_code
        == 403
    )
    change.refresh_from_db()
    assert change.changes == {"paused": [False, True]}


def _event_form_data(event: Event, **changes: object) -> dict[str, object]:
    def split(moment):
        local = timezone.localtime(moment)
        return {"0": local.strftime("%Y-%m-%d"), "1": local.strftime("%H:%M:%S")}

    data: dict[str, object] = {
        "title": event.title,
        "venue": event.venue,
        "description": event.description,
        "hold_seconds": event.hold_seconds,
        "max_tickets_per_user": event.max_tickets_per_user,
        "queue_capacity": event.queue_capacity,
        "queue_pass_seconds": event.queue_pass_seconds,
        "pow_difficulty": event.pow_difficulty,
        "review_threshold": event.review_threshold,
        "waiting_list_offer_minutes": event.waiting_list_offer_minutes,
        "waiting_list_gather_seconds": event.waiting_list_gather_seconds,
        "booking_fee": event.booking_fee,
        "cancellation_deadline_hours": event.cancellation_deadline_hours,
        "cancellation_fees": json.dumps(event.cancellation_fees),
        "is_published": "on",
    }
    for name in ("starts_at", "sales_open_at", "sales_close_at"):
        for part, value in split(getattr(event, name)).items():
            data[f"{name}_{part}"] = value
    return data | changes


def test_queue_settings_edited_in_the_admin_reach_the_live_queue(admin_client, staff_user, on_sale_event):
    url = reverse("admin:events_event_change", args=[on_sale_event.pk])
    response = admin_client.post(url, _event_form_data(on_sale_event, queue_capacity=12))
    assert response.status_code == 302, response.context["adminform"].form.errors
    on_sale_event.refresh_from_db()
    assert on_sale_event.queue_capacity == 12
    assert controls_get(event_id=on_sale_event.pk)["capacity"] == 12
    change = RushControlChange.objects.get()
    assert change.changed_by == staff_user and change.changes == {"capacity": [100, 12]}
