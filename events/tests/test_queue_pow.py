"""Proof-of-work on join, and the join limits per account, device and address (API.md
"Waiting room": challenge, join with `altcha`, the refusals)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import altcha
import pytest
from django.test import Client

from conftest import make_auth_client
from events.models import Event
from events.services.join_clients import device_id
from queueing.line import line_remove

pytestmark = pytest.mark.django_db

DIFFICULTY = 2000


def queue_url(event: Event) -> str:
    return f"/api/events/{event.pk}/queue/"


def challenge_url(event: Event) -> str:
    return f"/api/events/{event.pk}/queue/challenge/"


def solve(challenge: dict[str, Any]) -> str:
    """What the ALTCHA widget sends: the challenge and its solution, base64 JSON."""
    parsed = altcha.Challenge.from_dict(challenge)
    return altcha.Payload(parsed, altcha.solve_challenge(parsed)).to_base64()


@pytest.fixture
def pow_event(event_factory: Any) -> Event:
    event = event_factory()
    Event.objects.filter(pk=event.pk).update(pow_difficulty=DIFFICULTY)
    return event


def test_difficulty_zero_keeps_todays_join(auth_client: Any, on_sale_event: Event) -> None:
    assert auth_client.post(queue_url(on_sale_event)).status_code == 201
    refused = auth_client.get(challenge_url(on_sale_event))
    assert refused.status_code == 409
    assert refused.json()["code"] == "pow_not_required"


def test_a_join_without_a_solution_is_refused_while_difficulty_is_on(
    auth_client: Any, pow_event: Event
) -> None:
    for body in (None, {}, {"altcha": ""}):
        response = auth_client.post(queue_url(pow_event), body, format="json")
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == "pow_required"
    assert auth_client.get(queue_url(pow_event)).json()["code"] == "not_in_queue"


def test_a_solved_challenge_joins_and_is_spent(auth_client: Any, pow_event: Event, user_factory: Any) -> None:
    challenge = auth_client.get(challenge_url(pow_event)).json()
    assert challenge["parameters"]["data"]["event"] == pow_event.pk
    payload = solve(challenge)

    joined = auth_client.post(queue_url(pow_event), {"altcha": payload}, format="json")
    again = auth_client.post(queue_url(pow_event), {"altcha": payload}, format="json")
    auth_client.delete(queue_url(pow_event))
    replayed = auth_client.post(queue_url(pow_event), {"altcha": payload}, format="json")

    assert joined.status_code == 201, joined.json()
    assert joined.json()["position"] == 1
    assert again.status_code == 200  # already in line: same place, nothing spent
    assert replayed.status_code == 400
    assert replayed.json()["code"] == "pow_replayed"


def test_someone_already_in_line_needs_no_new_solution(auth_client: Any, pow_event: Event) -> None:
    payload = solve(auth_client.get(challenge_url(pow_event)).json())
    assert auth_client.post(queue_url(pow_event), {"altcha": payload}, format="json").status_code == 201

    reload = auth_client.post(queue_url(pow_event))

    assert reload.status_code == 200
    assert reload.json()["position"] == 1


def test_another_buyers_or_events_solution_is_refused_with_no_place(
    auth_client: Any, pow_event: Event, user_factory: Any, event_factory: Any
) -> None:
    other_event = event_factory(title="Other")
    Event.objects.filter(pk=other_event.pk).update(pow_difficulty=DIFFICULTY)
    mine = solve(auth_client.get(challenge_url(pow_event)).json())
    thief = make_auth_client(user_factory())

    stolen = thief.post(queue_url(pow_event), {"altcha": mine}, format="json")
    elsewhere = auth_client.post(queue_url(other_event), {"altcha": mine}, format="json")

    assert stolen.status_code == 403
    assert stolen.json()["code"] == "pow_mismatch"
    assert elsewhere.status_code == 403
    assert elsewhere.json()["code"] == "pow_mismatch"
    assert thief.get(queue_url(pow_event)).json()["code"] == "not_in_queue"


def edit(payload: str, change: Any) -> str:
    data = json.loads(base64.b64decode(payload))
    change(data)
    return base64.b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize(
    "forge",
    [
        lambda p: edit(p, lambda d: d["solution"].update(derivedKey="00" * 32)),  # wrong answer
        lambda p: edit(p, lambda d: d["challenge"]["parameters"].update(keyPrefix="00")),  # easier puzzle
        lambda p: edit(p, lambda d: d["challenge"]["parameters"]["data"].update(user=999999)),
        lambda p: edit(p, lambda d: d["challenge"].update(signature="ab" * 32)),
        lambda p: "not base64 at all",
        lambda p: base64.b64encode(b"[1, 2]").decode(),
        lambda p: "A" * 4097,
    ],
)
def test_a_forged_or_edited_solution_is_refused(auth_client: Any, pow_event: Event, forge: Any) -> None:
    payload = solve(auth_client.get(challenge_url(pow_event)).json())

    response = auth_client.post(queue_url(pow_event), {"altcha": forge(payload)}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] in ("pow_invalid", "invalid")
    assert auth_client.get(queue_url(pow_event)).json()["code"] == "not_in_queue"


def test_an_expired_challenge_is_refused(auth_client: Any, pow_event: Event, settings: Any) -> None:
    settings.POW_CHALLENGE_SECONDS = -1
    payload = solve(auth_client.get(challenge_url(pow_event)).json())

    response = auth_client.post(queue_url(pow_event), {"altcha": payload}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "pow_expired"


def test_the_page_joins_with_the_widgets_answer(client: Client, user: Any, pow_event: Event) -> None:
    client.force_login(user)
    page = client.get(f"/events/{pow_event.pk}/queue/")
    assert page.context["pow_required"] is True
    assert "tr_device" in page.cookies

    refused = client.post(f"/events/{pow_event.pk}/queue/", {"action": "join"}, follow=True)
    assert "turn on JavaScript" in refused.content.decode()

    payload = solve(client.get(challenge_url(pow_event)).json())
    client.post(f"/events/{pow_event.pk}/queue/", {"action": "join", "altcha": payload})
    assert client.get(queue_url(pow_event)).json()["position"] == 1


# --- removed from the line -------------------------------------------------------------------


def test_a_buyer_removed_by_staff_can_not_join_again(auth_client: Any, on_sale_event: Event) -> None:
    auth_client.post(queue_url(on_sale_event))

    line_remove(event_id=on_sale_event.pk, user_ids=[auth_client.user.pk])
    again = auth_client.post(queue_url(on_sale_event))

    assert again.status_code == 403
    assert again.json()["code"] == "removed_from_queue"
    assert auth_client.get(queue_url(on_sale_event)).json()["code"] == "not_in_queue"


# --- join limits -----------------------------------------------------------------------------


def test_joins_per_account_are_limited_in_a_sliding_window(
    auth_client: Any, pow_event: Event, settings: Any
) -> None:
    settings.QUEUE_JOIN_LIMIT_ACCOUNT = 3
    # A script without answers, trying again and again: each attempt counts.
    answers = [auth_client.post(queue_url(pow_event)).status_code for _ in range(4)]

    assert answers == [400, 400, 400, 429]
    refused = auth_client.post(queue_url(pow_event))
    assert refused.json()["code"] == "too_many_attempts"
    assert refused.json()["limit"] == "account"
    assert 1 <= int(refused["Retry-After"]) <= settings.QUEUE_JOIN_WINDOW_SECONDS
    # Challenge fetches count too.
    assert auth_client.get(challenge_url(pow_event)).status_code == 429


def test_a_rejoin_in_line_is_not_counted(auth_client: Any, on_sale_event: Event, settings: Any) -> None:
    settings.QUEUE_JOIN_LIMIT_ACCOUNT = 1

    assert [auth_client.post(queue_url(on_sale_event)).status_code for _ in range(5)] == [
        201,
        200,
        200,
        200,
        200,
    ]


def test_the_window_slides(auth_client: Any, pow_event: Event, settings: Any) -> None:
    settings.QUEUE_JOIN_LIMIT_ACCOUNT = 2
    settings.QUEUE_JOIN_WINDOW_SECONDS = 1

    assert [auth_client.post(queue_url(pow_event)).status_code for _ in range(3)] == [400, 400, 429]
    time.sleep(1.1)
    assert auth_client.post(queue_url(pow_event)).status_code == 400


def test_joins_per_address_count_every_account_behind_it(
    user_factory: Any, on_sale_event: Event, settings: Any
) -> None:
    settings.QUEUE_JOIN_LIMIT_ADDRESS = 5
    clients = [make_auth_client(user_factory()) for _ in range(6)]

    answers = [c.post(queue_url(on_sale_event), REMOTE_ADDR="203.0.113.7").status_code for c in clients]
    elsewhere = make_auth_client(user_factory()).post(queue_url(on_sale_event), REMOTE_ADDR="198.51.100.1")

    assert answers == [201] * 5 + [429]
    assert clients[-1].post(queue_url(on_sale_event), REMOTE_ADDR="203.0.113.7").json()["limit"] == "address"
    assert elsewhere.status_code == 201


def test_joins_per_device_cookie(
    client: Client, user_factory: Any, on_sale_event: Event, settings: Any
) -> None:
    settings.QUEUE_JOIN_LIMIT_DEVICE = 2
    first = user_factory()
    client.force_login(first)
    client.get(f"/events/{on_sale_event.pk}/queue/")  # the page hands out the device cookie
    device = client.cookies["tr_device"].value
    answers = []
    for _ in range(3):
        client.force_login(user_factory())  # a new account, the same browser
        client.cookies["tr_device"] = device
        page = client.post(f"/events/{on_sale_event.pk}/queue/", {"action": "join"}, follow=True)
        answers.append("Too many attempts" in page.content.decode())
    assert answers == [False, False, True]


def test_a_forged_device_cookie_counts_as_no_device() -> None:
    request = type("Request", (), {"COOKIES": {"tr_device": "made-up:signature"}})()

    assert device_id(request) is None
