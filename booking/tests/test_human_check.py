"""The human check before seat selection (booking.human_check): asked per event, passed
once per pass, enforced on holds (API and page)."""

from __future__ import annotations

from typing import Any

import altcha
import pytest
from django.test import Client

from booking.tests.conftest import admit_users, seat_ids_of
from conftest import make_auth_client
from events.models import Event
from queueing.line import line_leave

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(event_factory: Any) -> Event:
    event = event_factory()
    Event.objects.filter(pk=event.pk).update(human_check=True)
    event.refresh_from_db()
    return event


def answer(client: Any, event: Event) -> str:
    body = client.get(f"/api/events/{event.pk}/human-check/challenge/").json()
    challenge = altcha.Challenge.from_dict(body)
    return altcha.Payload(challenge, altcha.solve_challenge(challenge)).to_base64()


def hold(client: Any, event: Event, seat_id: int) -> Any:
    return client.post(f"/api/events/{event.pk}/holds/", {"seat_ids": [seat_id]}, format="json")


def test_holds_wait_for_the_check_then_it_lasts_the_pass(auth_client: Any, event: Event) -> None:
    admit_users(event, auth_client.user)
    seat = seat_ids_of(event, 1)[0]

    before = hold(auth_client, event, seat)
    state = auth_client.get(f"/api/events/{event.pk}/human-check/").json()
    passed = auth_client.post(
        f"/api/events/{event.pk}/human-check/", {"altcha": answer(auth_client, event)}, format="json"
    )
    after = hold(auth_client, event, seat)

    assert before.status_code == 403
    assert before.json()["code"] == "human_check_required"
    assert state == {"required": True, "passed": False}
    assert passed.json() == {"required": True, "passed": True}
    assert after.status_code == 201, after.json()


def test_the_check_ends_with_the_pass(auth_client: Any, event: Event) -> None:
    admit_users(event, auth_client.user)
    auth_client.post(
        f"/api/events/{event.pk}/human-check/", {"altcha": answer(auth_client, event)}, format="json"
    )

    line_leave(event_id=event.pk, user_id=auth_client.user.pk)  # gives up the pass
    admit_users(event, auth_client.user)  # a new pass

    assert auth_client.get(f"/api/events/{event.pk}/human-check/").json()["passed"] is False


def test_without_a_pass_the_answer_is_not_admitted(auth_client: Any, event: Event) -> None:
    response = auth_client.post(
        f"/api/events/{event.pk}/human-check/", {"altcha": answer(auth_client, event)}, format="json"
    )
    hold_response = hold(auth_client, event, seat_ids_of(event, 1)[0])

    assert response.status_code == 403
    assert response.json()["code"] == "not_admitted"
    assert hold_response.json()["code"] == "not_admitted"


def test_a_join_answer_does_not_pass_the_human_check(auth_client: Any, event: Event) -> None:
    from events.services.proof_of_work import challenge_create

    admit_users(event, auth_client.user)
    challenge = altcha.Challenge.from_dict(
        challenge_create(event_id=event.pk, user_id=auth_client.user.pk, difficulty=100, purpose="join")
    )
    join_answer = altcha.Payload(challenge, altcha.solve_challenge(challenge)).to_base64()

    response = auth_client.post(
        f"/api/events/{event.pk}/human-check/", {"altcha": join_answer}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "pow_mismatch"


def test_events_without_the_check_hold_as_before(auth_client: Any, on_sale_event: Event) -> None:
    admit_users(on_sale_event, auth_client.user)

    assert auth_client.get(f"/api/events/{on_sale_event.pk}/human-check/").json() == {
        "required": False,
        "passed": True,
    }
    assert hold(auth_client, on_sale_event, seat_ids_of(on_sale_event, 1)[0]).status_code == 201


def test_the_seat_picker_page_asks_first(client: Client, user: Any, event: Event) -> None:
    admit_users(event, user)
    client.force_login(user)

    check = client.get(f"/events/{event.pk}/pick/")
    bad = client.post(
        f"/events/{event.pk}/pick/", {"action": "human_check", "altcha": "nonsense"}, follow=True
    )
    good = client.post(
        f"/events/{event.pk}/pick/",
        {"action": "human_check", "altcha": answer(make_auth_client(user), event)},
    )
    picker = client.get(f"/events/{event.pk}/pick/")

    assert next(t.name for t in check.templates) == "booking/human_check.html"
    assert "booking/human_check.html" in [t.name for t in bad.templates]
    assert good.status_code == 302
    assert next(t.name for t in picker.templates) == "booking/seat_picker.html"
