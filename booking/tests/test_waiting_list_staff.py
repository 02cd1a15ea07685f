"""The waiting list for staff (issue 14, item 4): the rush dashboard's panel, and the staff
API behind it (figures and line, pause, remove an entry), with who may use it.

Real Redis and database, buyers joining through the buyer API and cancelling through the
booking service; Celery runs eagerly (``sold_out_event``), so the list's tick runs when a
cancellation, a pause or a removal commits: these tests are transactional for that.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from booking.models import WaitingListEntry, WaitingListOffer, WaitingListOfferState, WaitingListState
from booking.services import booking_cancel
from booking.tests.conftest import admit_users
from conftest import make_auth_client
from events.models import Event, RushControlChange, Seat, SeatStatus

pytestmark = pytest.mark.django_db(transaction=True)

NO_PLACE = "\N{EN DASH}"  # an entry holding an offer is out of the line

FIGURES = {
    "paused",
    "open",
    "waiting",
    "waiting_seats",
    "parties",
    "removed",
    "offers_out",
    "accepted",
    "declined",
    "expired",
    "pool_seats",
}


def list_url(event_id: int) -> str:
    return reverse("api-staff-waiting-list", args=[event_id])


def entry_url(event_id: int, entry_id: int) -> str:
    return reverse("api-staff-waiting-list-entry", args=[event_id, entry_id])


def dashboard_url(event_id: int) -> str:
    return reverse("events:rush_dashboard", args=[event_id])


def join(event: Event, buyer: Any, party_size: int) -> WaitingListEntry:
    """The buyer joins through the buyer API, as the waiting room's page does."""
    response = make_auth_client(buyer).post(
        f"/api/events/{event.pk}/waiting-list/", {"party_size": party_size}, format="json"
    )
    assert response.status_code == 201, response.content
    return WaitingListEntry.objects.get(event=event, user=buyer)


def cancel(booking: Any) -> list[int]:
    """The owner cancels; returns the seats that came back."""
    seat_ids = sorted(booking.tickets.values_list("seat_id", flat=True))
    booking_cancel(booking=booking, by_user=booking.user)
    return seat_ids


def offers_to(entry: WaitingListEntry) -> list[WaitingListOffer]:
    return list(WaitingListOffer.objects.filter(entry=entry).order_by("pk"))


def panel(html: str) -> str:
    start = html.index('<section class="waiting-list"')
    return html[start : html.index("</section>", start)]


def seat_map_statuses(client: Client, event: Event, seat_ids: list[int]) -> set[str]:
    """What every buyer's seat map says of these seats (the public seat map API)."""
    seats = client.get(f"/api/events/{event.pk}/seats/").json()["seats"]
    return {seat["status"] for seat in seats if seat["id"] in seat_ids}


@pytest.fixture
def staff_api(staff_user: Any) -> Any:
    return make_auth_client(staff_user)


# --- the dashboard panel ----------------------------------------------------------------------


def test_dashboard_shows_the_waiting_list_with_its_figures_and_line(
    client: Client, staff_user: Any, sold_out_event: Event, user_factory: Any
) -> None:
    event = sold_out_event
    party_of_3 = join(event, user_factory(email="three@example.com"), 3)
    single = join(event, user_factory(email="single@example.com"), 1)
    # Two seats side by side come back: the party of 3 can't be seated and is passed over
    # (once); the single buyer behind it gets an offer; the other seat is kept for the 3.
    cancel(event.sell_out_bookings[2])
    assert [offer.state for offer in offers_to(single)] == [WaitingListOfferState.OUT]
    pair = join(event, user_factory(email="pair@example.com"), 2)

    client.force_login(staff_user)
    response = client.get(dashboard_url(event.pk))

    assert response.status_code == 200
    html = response.content.decode()
    section = panel(html)
    assert 'aria-labelledby="waiting-list-heading"' in section and ">Waiting list</h2>" in section
    assert f'data-api-url="{list_url(event.pk)}"' in section
    assert f'data-entry-url="/api/staff/events/{event.pk}/waiting-list/entries/{{id}}/"' in section
    figures = dict(re.findall(r'data-wl="([\w-]+)">([^<]*)<', section))
    assert figures == {
        "feedback": "",
        "entries": "",  # rows follow
        "state": "Open",
        "state-detail": "Returned seats are offered to the line first.",
        "waiting": "2",
        "waiting_seats": "5",
        "parties": "2",
        "offers_out": "1",
        "accepted": "0",
        "declined": "0",
        "expired": "0",
        "removed": "0",
        "pool_seats": "1",
    }
    assert 'role="status" aria-live="polite"' in section
    assert 'data-wl-action="toggle-pause" data-paused="false"' in section
    assert "Pause the waiting list" in section

    # The line: the waiting first, in order, with their place; then the offer out.
    rows = re.findall(r'<tr data-entry-id="(\d+)">(.*?)</tr>', section, flags=re.S)
    assert [int(entry_id) for entry_id, _ in rows] == [party_of_3.pk, pair.pk, single.pk]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S) for _, row in rows]
    assert [(c[0], c[1], c[2], c[3]) for c in cells] == [
        ("1", "three@example.com", "3", "Waiting"),
        ("2", "pair@example.com", "2", "Waiting"),
        (NO_PLACE, "single@example.com", "1", "Offer out"),
    ]
    assert ["Passed over once" in c[5] for c in cells] == [True, False, False]
    assert all(f'data-wl-remove="{entry_id}"' in row and ">Remove<" in row for entry_id, row in rows)
    assert '<th scope="col">E-mail</th>' in section

    # CSP: the panel's script is a file; no inline script or style anywhere on the page.
    assert "js/waiting_list_panel.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " style=" not in html and "<style" not in html


def test_dashboard_panel_when_nobody_waits(client: Client, staff_user: Any, on_sale_event: Event) -> None:
    client.force_login(staff_user)
    section = panel(client.get(dashboard_url(on_sale_event.pk)).content.decode())
    assert 'data-wl="state">Idle<' in section
    assert 'data-wl="waiting">0<' in section
    assert "Nobody is on the waiting list." in section


def test_dashboard_is_not_for_buyers(client: Client, sold_out_event: Event, user_factory: Any) -> None:
    buyer = user_factory()
    join(sold_out_event, buyer, 1)
    client.force_login(buyer)
    response = client.get(dashboard_url(sold_out_event.pk))
    assert response.status_code == 403
    assert buyer.email not in response.content.decode()


# --- the staff API: the figures and the line --------------------------------------------------


def test_staff_get_the_figures_and_the_line(staff_api: Any, sold_out_event: Event, user_factory: Any) -> None:
    event = sold_out_event
    first = join(event, user_factory(email="first@example.com"), 2)
    second = join(event, user_factory(email="second@example.com"), 1)

    response = staff_api.get(list_url(event.pk))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIGURES | {"entries"}
    assert (body["paused"], body["open"]) == (False, True)
    assert (body["waiting"], body["waiting_seats"], body["parties"], body["offers_out"]) == (2, 3, 1, 0)
    line = [(e["id"], e["email"], e["party_size"], e["state"], e["passed_over"]) for e in body["entries"]]
    assert line == [
        (first.pk, "first@example.com", 2, "waiting", False),
        (second.pk, "second@example.com", 1, "waiting", False),
    ]
    assert all(entry["joined_at"] for entry in body["entries"])

    # An offer out is counted and shown at the end of the line.
    cancel(event.sell_out_bookings[2])  # two seats side by side: the pair's
    body = staff_api.get(list_url(event.pk)).json()
    assert (body["waiting"], body["offers_out"]) == (1, 1)
    assert [(e["id"], e["state"]) for e in body["entries"]] == [(second.pk, "waiting"), (first.pk, "offered")]


def test_unknown_event_or_entry_is_404(staff_api: Any, sold_out_event: Event, event_factory: Any) -> None:
    assert staff_api.get(list_url(999_999)).status_code == 404
    assert staff_api.patch(list_url(999_999), {"paused": True}, format="json").status_code == 404
    assert staff_api.delete(entry_url(sold_out_event.pk, 999_999)).status_code == 404


def test_an_entry_is_removed_only_through_its_own_event(
    staff_api: Any, sold_out_event: Event, event_factory: Any, user_factory: Any
) -> None:
    entry = join(sold_out_event, user_factory(), 1)
    other_event = event_factory(title="Another concert")
    assert staff_api.delete(entry_url(other_event.pk, entry.pk)).status_code == 404
    entry.refresh_from_db()
    assert entry.state == WaitingListState.WAITING


# --- pause -----------------------------------------------------------------------------------


def test_paused_list_lets_returned_seats_go_back_on_sale(
    staff_api: Any, staff_user: Any, client: Client, sold_out_event: Event, user_factory: Any
) -> None:
    event = sold_out_event
    pair = join(event, user_factory(), 2)

    response = staff_api.patch(list_url(event.pk), {"paused": True}, format="json")

    assert response.status_code == 200
    assert response.json()["paused"] is True
    body = staff_api.get(list_url(event.pk)).json()
    assert (body["paused"], body["open"], body["waiting"]) == (True, False, 1)
    change = RushControlChange.objects.get(event=event)
    assert change.changed_by == staff_user and change.changes == {"waiting_list_paused": [False, True]}

    # A cancellation while paused: no offer; the seats are on the map for everyone, and
    # the regular sale sells them.
    returned = cancel(event.sell_out_bookings[2])
    assert not WaitingListOffer.objects.filter(event=event).exists()
    pair.refresh_from_db()
    assert pair.state == WaitingListState.WAITING
    assert seat_map_statuses(client, event, returned) == {"available"}
    assert {seat.status for seat in Seat.objects.filter(pk__in=returned)} == {SeatStatus.AVAILABLE}
    regular_buyer = user_factory()
    admit_users(event, regular_buyer)
    held = make_auth_client(regular_buyer).post(
        f"/api/events/{event.pk}/holds/", {"seat_ids": returned}, format="json"
    )
    assert held.status_code == 201, held.content

    # The dashboard says so.
    client.force_login(staff_user)
    html = client.get(dashboard_url(event.pk)).content.decode()
    section = panel(html)
    assert 'data-wl="state">Paused<' in section
    assert 'data-paused="true"' in section and "Resume the waiting list" in section
    assert "Waiting list paused: False → True" in html  # the dashboard's recent changes

    # Resumed, the next seats that come back go to the line again.
    resumed = staff_api.patch(list_url(event.pk), {"paused": False}, format="json")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    cancel(event.sell_out_bookings[0])  # row 1, seats 1-4
    offer = WaitingListOffer.objects.get(entry=pair)
    assert offer.state == WaitingListOfferState.OUT and offer.together and len(offer.seat_ids) == 2
    assert staff_api.get(list_url(event.pk)).json()["open"] is False  # nobody else waits


def test_pause_is_validated(staff_api: Any, sold_out_event: Event) -> None:
    response = staff_api.patch(list_url(sold_out_event.pk), {}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert not RushControlChange.objects.exists()


# --- remove ----------------------------------------------------------------------------------


def test_removed_entry_gets_no_offer_and_cannot_join_again(
    staff_api: Any, staff_user: Any, sold_out_event: Event, user_factory: Any
) -> None:
    event = sold_out_event
    removed_buyer = user_factory()
    removed = join(event, removed_buyer, 1)
    next_in_line = join(event, user_factory(), 1)

    response = staff_api.delete(entry_url(event.pk, removed.pk))

    assert response.status_code == 204
    removed.refresh_from_db()
    assert removed.state == WaitingListState.REMOVED
    assert removed.removed_by == staff_user  # recorded: who took it off
    body = staff_api.get(list_url(event.pk)).json()
    assert (body["waiting"], body["removed"]) == (1, 1)
    assert [entry["id"] for entry in body["entries"]] == [next_in_line.pk]

    # Seats come back: the offer skips the removed entry.
    cancel(event.sell_out_bookings[2])
    assert offers_to(removed) == []
    assert [offer.state for offer in offers_to(next_in_line)] == [WaitingListOfferState.OUT]

    # The buyer can't come back; removing twice is a 404.
    buyer = make_auth_client(removed_buyer)
    again = buyer.post(f"/api/events/{event.pk}/waiting-list/", {"party_size": 1}, format="json")
    assert again.status_code == 403
    assert again.json()["code"] == "removed_from_waiting_list"
    assert buyer.get(f"/api/events/{event.pk}/waiting-list/").json()["state"] == "removed"
    assert staff_api.delete(entry_url(event.pk, removed.pk)).status_code == 404


def test_removing_an_entry_with_an_offer_out_passes_the_seats_on(
    staff_api: Any, staff_user: Any, sold_out_event: Event, user_factory: Any
) -> None:
    event = sold_out_event
    first = join(event, user_factory(), 2)
    second = join(event, user_factory(), 2)
    returned = cancel(event.sell_out_bookings[2])
    (first_offer,) = offers_to(first)
    assert sorted(first_offer.seat_ids) == returned

    assert staff_api.delete(entry_url(event.pk, first.pk)).status_code == 204

    first_offer.refresh_from_db()
    assert first_offer.state == WaitingListOfferState.WITHDRAWN
    first.refresh_from_db()
    assert (first.state, first.removed_by) == (WaitingListState.REMOVED, staff_user)
    (second_offer,) = offers_to(second)
    assert second_offer.state == WaitingListOfferState.OUT and sorted(second_offer.seat_ids) == returned
    assert set(Seat.objects.filter(pk__in=returned).values_list("status", flat=True)) == {SeatStatus.OFFERED}


# --- who may ---------------------------------------------------------------------------------


def test_buyers_and_strangers_cannot_use_the_staff_api(
    api_client: Any, sold_out_event: Event, user_factory: Any
) -> None:
    event = sold_out_event
    other = join(event, user_factory(email="other-buyer@example.com"), 1)
    buyer_user = user_factory()
    join(event, buyer_user, 2)
    buyer = make_auth_client(buyer_user)

    for client, status, code in ((buyer, 403, "permission_denied"), (api_client, 401, "not_authenticated")):
        for response in (
            client.get(list_url(event.pk)),
            client.patch(list_url(event.pk), {"paused": True}, format="json"),
            client.delete(entry_url(event.pk, other.pk)),
        ):
            assert response.status_code == status
            assert response.json()["code"] == code
            assert "other-buyer@example.com" not in response.content.decode()

    event.refresh_from_db()
    assert event.waiting_list_paused is False and not RushControlChange.objects.exists()
    other.refresh_from_db()
    assert other.state == WaitingListState.WAITING

    # A buyer sees their own entry only: their place, not who else waits.
    own = buyer.get(f"/api/events/{event.pk}/waiting-list/")
    assert own.status_code == 200
    assert set(own.json()) == {"position", "party_size", "state", "together_only", "joined_at", "offer"}
    assert own.json()["position"] == 2
    assert "other-buyer@example.com" not in own.content.decode()


def test_session_staff_must_send_the_csrf_token(
    staff_user: Any, sold_out_event: Event, user_factory: Any
) -> None:
    """The dashboard's buttons use the page's session: PATCH and DELETE need the token."""
    event = sold_out_event
    entry = join(event, user_factory(), 1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    pause = '{"paused": true}'
    assert client.patch(list_url(event.pk), pause, content_type="application/json").status_code == 403
    assert client.delete(entry_url(event.pk, entry.pk)).status_code == 403
    event.refresh_from_db()
    entry.refresh_from_db()
    assert event.waiting_list_paused is False and entry.state == WaitingListState.WAITING

    token = client.get(dashboard_url(event.pk)).cookies["csrftoken"].value
    paused = client.patch(list_url(event.pk), pause, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert client.delete(entry_url(event.pk, entry.pk), HTTP_X_CSRFTOKEN=token).status_code == 204
    entry.refresh_from_db()
    assert (entry.state, entry.removed_by) == (WaitingListState.REMOVED, staff_user)


# --- the "passed over once" marker -----------------------------------------------------------


def test_an_entry_is_passed_over_only_when_someone_behind_it_is_served(
    staff_api: Any, sold_out_event: Event, user_factory: Any
) -> None:
    event = sold_out_event
    party_of_3 = join(event, user_factory(), 3)
    cancel(event.sell_out_bookings[2])  # two seats: too few for the 3, and nobody behind it

    (entry,) = staff_api.get(list_url(event.pk)).json()["entries"]
    assert entry["passed_over"] is False  # nobody was served past it

    # A single buyer joins behind it: rule 3, the 3 is passed over (once) and the single
    # gets one of the two seats waiting in the pool.
    single = join(event, user_factory(), 1)
    assert [offer.state for offer in offers_to(single)] == [WaitingListOfferState.OUT]
    party_of_3.refresh_from_db()
    assert party_of_3.passed_over is True
