"""Staff against macros: the suspicious panel, taking a buyer off the line, blocking an
account, and setting the proof-of-work difficulty live; every action audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conftest import make_auth_client
from events.models import Event, QueueModeration, RushControlChange
from queueing.line import line_admit

pytestmark = pytest.mark.django_db


def queue_url(event: Event) -> str:
    return f"/api/events/{event.pk}/queue/"


def test_many_accounts_from_one_address_show_in_the_panel(
    client: Client, staff_user: Any, user_factory: Any, on_sale_event: Event
) -> None:
    scripts = [user_factory(email=f"macro{n}@example.com") for n in range(6)]
    for user in scripts:
        make_auth_client(user).post(queue_url(on_sale_event), REMOTE_ADDR="203.0.113.9")
    make_auth_client(user_factory(email="honest@example.com")).post(
        queue_url(on_sale_event), REMOTE_ADDR="198.51.100.2"
    )
    client.force_login(staff_user)

    page = client.get(f"/staff/events/{on_sale_event.pk}/rush/").content.decode()
    api = make_auth_client(staff_user).get(f"/api/staff/events/{on_sale_event.pk}/suspicious/").json()

    assert "203.0.113.9" in page
    assert "macro0@example.com" in page
    assert "Address 203.0.113.9: 6 accounts" in page
    assert [group["source"] for group in api["shared_addresses"]] == ["203.0.113.9"]
    assert {a["email"] for a in api["shared_addresses"][0]["accounts"]} == {u.email for u in scripts}
    assert all(a["in_line"] for a in api["shared_addresses"][0]["accounts"])


def test_a_buyer_taken_off_the_line_never_gets_a_pass(
    client: Client, staff_user: Any, user_factory: Any, on_sale_event: Event
) -> None:
    macro, honest = user_factory(), user_factory()
    for user in (macro, honest):
        make_auth_client(user).post(queue_url(on_sale_event))
    client.force_login(staff_user)

    response = client.post(f"/staff/events/{on_sale_event.pk}/queue/remove/", {"user_id": macro.pk})
    line_admit(event_id=on_sale_event.pk, capacity=100, pass_seconds=600)

    assert response.status_code == 302
    assert make_auth_client(macro).get(queue_url(on_sale_event)).json()["code"] == "not_in_queue"
    assert make_auth_client(macro).post(queue_url(on_sale_event)).json()["code"] == "removed_from_queue"
    assert make_auth_client(honest).get(queue_url(on_sale_event)).json()["state"] == "active"
    record = QueueModeration.objects.get()
    assert (record.action, record.user_id, record.by_id, record.event_id) == (
        "removed",
        macro.pk,
        staff_user.pk,
        on_sale_event.pk,
    )


def test_blocking_an_account_deactivates_it_and_takes_it_off_every_line(
    staff_user: Any, user_factory: Any, event_factory: Any
) -> None:
    first, second = event_factory(title="One"), event_factory(title="Two")
    macro = user_factory()
    for event in (first, second):
        make_auth_client(macro).post(queue_url(event))

    response = make_auth_client(staff_user).post(
        "/api/staff/accounts/block/", {"user_id": macro.pk, "reason": "20 accounts"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"user_id": macro.pk, "lines_left": 2}
    macro.refresh_from_db()
    assert not macro.is_active
    for event in (first, second):
        assert make_auth_client(macro).post(queue_url(event)).json()["code"] == "removed_from_queue"
    assert QueueModeration.objects.get().reason == "20 accounts"


def test_only_staff_moderate(auth_client: Any, user_factory: Any, on_sale_event: Event) -> None:
    target = user_factory()
    assert auth_client.get(f"/api/staff/events/{on_sale_event.pk}/suspicious/").status_code == 403
    assert (
        auth_client.post(
            f"/api/staff/events/{on_sale_event.pk}/queue/remove/", {"user_id": target.pk}, format="json"
        ).status_code
        == 403
    )
    assert (
        auth_client.post("/api/staff/accounts/block/", {"user_id": target.pk}, format="json").status_code
        == 403
    )
    assert not QueueModeration.objects.exists()


def test_staff_set_the_proof_of_work_live_and_joins_need_it_at_once(
    staff_user: Any, auth_client: Any, on_sale_event: Event, django_capture_on_commit_callbacks: Any
) -> None:
    staff = make_auth_client(staff_user)
    auth_client.get(queue_url(on_sale_event))  # this process now holds the event's settings

    with django_capture_on_commit_callbacks(execute=True):
        state = staff.patch(
            f"/api/staff/events/{on_sale_event.pk}/rush/", {"pow_difficulty": 20000}, format="json"
        ).json()

    assert state["pow_difficulty"] == 20000
    assert RushControlChange.objects.get().changes == {"pow_difficulty": [0, 20000]}
    refused = auth_client.post(queue_url(on_sale_event))
    assert refused.status_code == 400
    assert refused.json()["code"] == "pow_required"
    with django_capture_on_commit_callbacks(execute=True):
        staff.patch(f"/api/staff/events/{on_sale_event.pk}/rush/", {"pow_difficulty": 0}, format="json")
    assert auth_client.post(queue_url(on_sale_event)).status_code == 201


def test_a_join_solved_faster_than_honest_devices_is_listed(
    staff_user: Any, auth_client: Any, on_sale_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    import altcha

    from events.services import proof_of_work

    Event.objects.filter(pk=on_sale_event.pk).update(pow_difficulty=1000)
    # Honest devices made out to be very slow: this test's instant answer is "too fast".
    monkeypatch.setattr(proof_of_work, "FAST_MS_PER_1000", 10_000)
    challenge = altcha.Challenge.from_dict(
        auth_client.get(f"/api/events/{on_sale_event.pk}/queue/challenge/").json()
    )
    answer = altcha.Payload(challenge, altcha.solve_challenge(challenge)).to_base64()

    assert auth_client.post(queue_url(on_sale_event), {"altcha": answer}, format="json").status_code == 201
    panel = make_auth_client(staff_user).get(f"/api/staff/events/{on_sale_event.pk}/suspicious/").json()

    assert [row["suspect"]["id"] for row in panel["fast_joins"]] == [auth_client.user.pk]
    assert panel["fast_joins"][0]["solve_ms"] < 10_000


def test_all_accounts_of_an_address_go_in_one_step_and_leave_the_panel(
    client: Client, staff_user: Any, user_factory: Any, on_sale_event: Event
) -> None:
    scripts = [user_factory() for _ in range(6)]
    for user in scripts:
        make_auth_client(user).post(queue_url(on_sale_event), REMOTE_ADDR="203.0.113.9")
    client.force_login(staff_user)
    page = client.get(f"/staff/events/{on_sale_event.pk}/rush/").content.decode()
    assert "Remove all these accounts from the line" in page

    response = client.post(
        f"/staff/events/{on_sale_event.pk}/queue/remove/", {"user_id": [u.pk for u in scripts]}, follow=True
    )
    panel = make_auth_client(staff_user).get(f"/api/staff/events/{on_sale_event.pk}/suspicious/").json()

    assert "6 accounts were taken off the waiting line." in response.content.decode()
    assert QueueModeration.objects.filter(action="removed").count() == 6
    assert panel["shared_addresses"] == []  # dealt with: no longer listed
    for user in scripts:
        assert make_auth_client(user).post(queue_url(on_sale_event)).json()["code"] == "removed_from_queue"


def test_the_api_removes_several_at_once(staff_user: Any, user_factory: Any, on_sale_event: Event) -> None:
    users = [user_factory() for _ in range(3)]
    for user in users:
        make_auth_client(user).post(queue_url(on_sale_event))

    answer = make_auth_client(staff_user).post(
        f"/api/staff/events/{on_sale_event.pk}/queue/remove/",
        {"user_ids": [u.pk for u in users], "reason": "one address"},
        format="json",
    )
    empty = make_auth_client(staff_user).post(
        f"/api/staff/events/{on_sale_event.pk}/queue/remove/", {}, format="json"
    )

    assert answer.json() == {"user_ids": sorted(u.pk for u in users), "removed": 3, "was_in_line": 3}
    assert empty.status_code == 400
