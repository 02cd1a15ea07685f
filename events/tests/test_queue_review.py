"""The automatic review of shared sources (issue 15): once ``Event.review_threshold``
accounts tried to join from one address or device, all of them wait for staff, out of
the line and without a pass, their places kept; staff let them through (back where they
were) or remove them. Real Redis, real database; the control is the same rush with the
threshold at 0."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conftest import make_auth_client
from events.models import Event, QueueModeration, RushControlChange
from events.services.moderation import review_let_through
from queueing.holds import holds_get, seats_hold
from queueing.line import line_admit, pass_release

pytestmark = pytest.mark.django_db

SCRIPT_ADDRESS = "203.0.113.9"


def queue_url(event: Event) -> str:
    return f"/api/events/{event.pk}/queue/"


def join(user: Any, event: Event, address: str) -> dict[str, Any]:
    response = make_auth_client(user).post(queue_url(event), REMOTE_ADDR=address)
    assert response.status_code in (200, 201), response.content
    return response.json()


def state_of(user: Any, event: Event) -> str:
    return make_auth_client(user).get(queue_url(event)).json().get("state", "none")


def admit(event: Event, capacity: int = 100) -> None:
    line_admit(event_id=event.pk, capacity=capacity, pass_seconds=600)


@pytest.mark.parametrize("threshold", [3, 0], ids=["review-on", "control-review-off"])
def test_the_accounts_of_a_shared_address_never_get_a_pass_while_held(
    threshold: int, user_factory: Any, event_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        event = event_factory(review_threshold=threshold)
    scripts = [user_factory() for _ in range(5)]
    honest = user_factory()

    # Two scripts are admitted before the third shows up from the same address; one of
    # them already holds a seat.
    join(scripts[0], event, SCRIPT_ADDRESS)
    join(scripts[1], event, SCRIPT_ADDRESS)
    admit(event)
    seat_id = event.seats.order_by("pk").values_list("pk", flat=True)[0]
    seats_hold(event_id=event.pk, user_id=scripts[0].pk, seat_ids=[seat_id], hold_seconds=300, cap=4)
    answers = [join(user, event, SCRIPT_ADDRESS) for user in scripts[2:]]
    join(honest, event, "198.51.100.2")
    admit(event)
    admit(event)

    if threshold:
        assert [answer["state"] for answer in answers] == ["review"] * 3
        assert all(answer["position"] is None and answer["queue_ticket"] is None for answer in answers)
        assert [state_of(user, event) for user in scripts] == ["review"] * 5
        assert holds_get(event_id=event.pk, user_id=scripts[0].pk).seat_ids == []
    else:  # the control: the same arrivals without the review, and every script gets a pass
        assert [state_of(user, event) for user in scripts] == ["active"] * 5
        assert holds_get(event_id=event.pk, user_id=scripts[0].pk).seat_ids == [seat_id]
    assert state_of(honest, event) == "active"


def test_let_through_they_go_back_where_they_were_and_the_address_is_not_held_again(
    client: Client, staff_user: Any, user_factory: Any, event_factory: Any
) -> None:
    event = event_factory(review_threshold=2)
    first_script, honest, second_script, later = (user_factory() for _ in range(4))
    join(first_script, event, SCRIPT_ADDRESS)  # arrival 1
    join(honest, event, "198.51.100.2")  # arrival 2
    assert join(second_script, event, SCRIPT_ADDRESS)["state"] == "review"  # arrival 3: both held
    join(later, event, "198.51.100.3")  # arrival 4
    client.force_login(staff_user)
    page = client.get(f"/staff/events/{event.pk}/rush/").content.decode()
    assert "2 accounts are waiting for your review" in page

    response = client.post(
        f"/staff/events/{event.pk}/review/release/",
        {"kind": "address", "source": SCRIPT_ADDRESS},
        follow=True,
    )

    assert "2 accounts went back in line where they were." in response.content.decode()
    admitted_order = []
    for _ in range(4):  # one at a time: the order admission follows
        admit(event, capacity=1)
        active = [u for u in (first_script, honest, second_script, later) if state_of(u, event) == "active"]
        assert len(active) == 1
        admitted_order.append(active[0])
        pass_release(event_id=event.pk, user_id=active[0].pk)
    assert admitted_order == [first_script, honest, second_script, later]
    assert set(QueueModeration.objects.filter(action="released").values_list("user_id", flat=True)) == {
        first_script.pk,
        second_script.pk,
    }
    assert join(user_factory(), event, SCRIPT_ADDRESS)["state"] == "waiting"  # cleared for good


def test_removed_while_held_they_never_come_back(
    staff_user: Any, user_factory: Any, event_factory: Any
) -> None:
    event = event_factory(review_threshold=2)
    scripts = [user_factory() for _ in range(3)]
    for user in scripts:
        join(user, event, SCRIPT_ADDRESS)
    staff = make_auth_client(staff_user)
    panel = staff.get(f"/api/staff/events/{event.pk}/suspicious/").json()
    assert panel["review_threshold"] == 2
    assert [(g["source"], g["review"], g["held"]) for g in panel["shared_addresses"]] == [
        (SCRIPT_ADDRESS, "held", 3)
    ]

    staff.post(
        f"/api/staff/events/{event.pk}/queue/remove/", {"user_ids": [u.pk for u in scripts]}, format="json"
    )
    admit(event)

    assert [state_of(user, event) for user in scripts] == ["none"] * 3
    for user in scripts:
        refused = make_auth_client(user).post(queue_url(event), REMOTE_ADDR=SCRIPT_ADDRESS)
        assert refused.json()["code"] == "removed_from_queue"
    assert staff.get(f"/api/staff/events/{event.pk}/suspicious/").json()["shared_addresses"] == []


def test_leaving_while_held_and_coming_back_is_held_again(user_factory: Any, event_factory: Any) -> None:
    event = event_factory(review_threshold=2)
    first, second = user_factory(), user_factory()
    join(first, event, SCRIPT_ADDRESS)
    join(second, event, SCRIPT_ADDRESS)

    assert make_auth_client(first).delete(queue_url(event)).status_code == 204
    assert state_of(first, event) == "none"
    assert join(first, event, SCRIPT_ADDRESS)["state"] == "review"


def test_the_audit_names_exactly_the_accounts_the_release_moved(
    staff_user: Any, user_factory: Any, event_factory: Any
) -> None:
    event = event_factory(review_threshold=2)
    stayed, left = user_factory(), user_factory()
    join(stayed, event, SCRIPT_ADDRESS)
    join(left, event, SCRIPT_ADDRESS)  # both held now
    assert make_auth_client(left).delete(queue_url(event)).status_code == 204  # left while held

    released = review_let_through(event=event, kind="address", source=SCRIPT_ADDRESS, by=staff_user)

    assert released == 1
    assert list(QueueModeration.objects.filter(action="released").values_list("user_id", flat=True)) == [
        stayed.pk
    ]
    assert state_of(stayed, event) == "waiting" and state_of(left, event) == "none"


def test_staff_turn_the_review_on_live_and_it_acts_on_the_next_join(
    staff_user: Any, user_factory: Any, on_sale_event: Event, django_capture_on_commit_callbacks: Any
) -> None:
    early = [user_factory() for _ in range(3)]
    for user in early:
        join(user, on_sale_event, SCRIPT_ADDRESS)  # recorded, not held: the review is off
    staff = make_auth_client(staff_user)

    with django_capture_on_commit_callbacks(execute=True):
        state = staff.patch(
            f"/api/staff/events/{on_sale_event.pk}/rush/", {"review_threshold": 3}, format="json"
        ).json()
    newcomer = join(user_factory(), on_sale_event, SCRIPT_ADDRESS)

    assert state["review_threshold"] == 3
    assert RushControlChange.objects.get().changes == {"review_threshold": [0, 3]}
    assert newcomer["state"] == "review"
    assert [state_of(user, on_sale_event) for user in early] == ["review"] * 3


def test_the_waiting_room_page_says_why_in_both_languages(
    client: Client, user_factory: Any, event_factory: Any
) -> None:
    event = event_factory(review_threshold=1)
    buyer = user_factory()
    join(buyer, event, SCRIPT_ADDRESS)
    client.force_login(buyer)

    english = client.get(f"/events/{event.pk}/queue/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    korean = client.get(f"/events/{event.pk}/queue/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()

    assert "Your place is kept while the organiser checks" in english
    assert 'data-panel="review"' in english and 'data-panel="review" hidden' not in english
    assert "주최 측이 확인하는 동안 대기 순서가 유지됩니다" in korean


def test_bad_release_requests_are_refused_clearly(
    staff_user: Any, auth_client: Any, on_sale_event: Event
) -> None:
    url = f"/api/staff/events/{on_sale_event.pk}/review/release/"
    bad = make_auth_client(staff_user).post(url, {"kind": "planet", "source": "x"}, format="json")
    not_staff = auth_client.post(url, {"kind": "address", "source": SCRIPT_ADDRESS}, format="json")

    assert bad.status_code == 400 and bad.json()["code"] and bad.json()["detail"]
    assert not_staff.status_code == 403
    assert not QueueModeration.objects.exists()
