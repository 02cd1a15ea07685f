"""Check-in at the door (API.md "Check-in at the door"): signed codes, who may scan, first
entry and repeat scans, undo, queued offline scans, the manifest and the door figures."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking import ticket_signing
from booking.checkins import checkin_record
from booking.models import Booking, CheckInLog, CheckInOutcome, Ticket
from booking.services import booking_cancel
from booking.tests.conftest import book_seats, seat_ids_of
from conftest import make_auth_client
from events.models import Event

pytestmark = pytest.mark.django_db

SCAN = "/api/checkins/"
UNDO = "/api/checkins/undo/"


@pytest.fixture
def booking(user: Any, on_sale_event: Event) -> Booking:
    return book_seats(on_sale_event, user, seat_ids_of(on_sale_event, 2))


@pytest.fixture
def ticket(booking: Booking) -> Ticket:
    return booking.tickets.select_related("seat").order_by("pk").first()


@pytest.fixture
def door(door_staff: Any) -> Any:
    return make_auth_client(door_staff)


def payload_of(ticket: Ticket) -> str:
    return ticket_signing.qr_payload(event_id=ticket.booking.event_id, ticket_code=ticket.code)


# --- signed codes ----------------------------------------------------------------------------


def test_a_payload_names_its_event_and_ticket_and_verifies() -> None:
    payload = ticket_signing.qr_payload(event_id=7, ticket_code="ABCDEFGH2345")

    assert payload.startswith("TK1.7.ABCDEFGH2345.")
    assert ticket_signing.payload_parse(payload) == (7, "ABCDEFGH2345")


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: p.replace("TK1.7.", "TK1.8."),  # another event, same signature
        lambda p: p.replace("ABCDEFGH2345", "ABCDEFGH2346"),  # another ticket
        lambda p: p[:-2] + ("AA" if not p.endswith("AA") else "BB"),  # signature edited
        lambda p: p[:-1],  # cut short
        lambda p: p + "A",
        lambda p: "TK1.7.ABCDEFGH2345",  # no signature
        lambda p: "TK1.7.ABCDEFGH2345." + "A" * 86,  # a made-up one
    ],
)
def test_an_edited_or_forged_payload_is_refused(edit: Any) -> None:
    payload = ticket_signing.qr_payload(event_id=7, ticket_code="ABCDEFGH2345")

    with pytest.raises(ticket_signing.ForgedTicket):
        ticket_signing.payload_parse(edit(payload))


def test_a_payload_signed_with_another_key_is_refused(settings: Any) -> None:
    seed, _ = ticket_signing.key_generate()
    settings.TICKET_SIGNING_KEY = seed
    theirs = ticket_signing.qr_payload(event_id=7, ticket_code="ABCDEFGH2345")
    settings.TICKET_SIGNING_KEY = ""

    with pytest.raises(ticket_signing.ForgedTicket):
        ticket_signing.payload_parse(theirs)


def test_the_booking_api_gives_each_seat_its_ticket_code_and_qr_payload(booking: Booking, user: Any) -> None:
    body = make_auth_client(user).get(f"/api/bookings/{booking.code}/").json()

    codes = set(booking.tickets.values_list("code", flat=True))
    assert {seat["ticket_code"] for seat in body["seats"]} == codes
    for seat in body["seats"]:
        assert ticket_signing.payload_parse(seat["qr_payload"]) == (booking.event_id, seat["ticket_code"])


def test_the_ticket_page_qr_carries_the_signed_payload(client: Any, booking: Booking, user: Any) -> None:
    client.force_login(user)
    ticket = booking.tickets.order_by("pk").first()

    page = client.get(f"/my/tickets/{booking.code}/").content.decode()

    assert ticket.code in page
    assert "<svg" in page


# --- scanning --------------------------------------------------------------------------------


def test_first_scan_lets_the_holder_in_and_says_where_to_sit(door: Any, ticket: Ticket) -> None:
    response = door.post(SCAN, {"code": payload_of(ticket), "gate": "North 1"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["ticket_code"] == ticket.code
    assert body["seat"] == {
        "section": ticket.seat.section,
        "row": ticket.seat.row,
        "number": ticket.seat.number,
        "label": ticket.seat.label,
    }
    assert body["holder"] == ticket.booking.user.name
    assert body["gate"] == "North 1"
    ticket.refresh_from_db()
    assert ticket.checked_in_gate == "North 1"
    assert ticket.checked_in_at is not None


def test_a_second_scan_says_when_and_at_which_gate_it_was_first_scanned(door: Any, ticket: Ticket) -> None:
    door.post(SCAN, {"code": payload_of(ticket), "gate": "North 1"}, format="json")

    again = door.post(SCAN, {"code": payload_of(ticket), "gate": "South 2"}, format="json")

    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "already_checked_in"
    assert body["gate"] == "North 1"
    assert "North 1" in body["detail"]
    ticket.refresh_from_db()
    assert body["checked_in_at"] == ticket.checked_in_at.isoformat()
    assert list(CheckInLog.objects.values_list("outcome", flat=True).order_by("pk")) == ["entered", "repeat"]


def test_the_plain_code_typed_by_hand_works_too(door: Any, ticket: Ticket) -> None:
    response = door.post(SCAN, {"code": ticket.code.lower(), "gate": "1"}, format="json")

    assert response.status_code == 201


def test_a_forged_or_edited_qr_is_refused_without_a_place_inside(door: Any, ticket: Ticket) -> None:
    payload = payload_of(ticket)
    other = Ticket.objects.exclude(pk=ticket.pk).first()
    edited = payload.replace(ticket.code, other.code)  # a real ticket's code, the wrong signature

    for code in (edited, payload[:-3] + "xyz", f"TK1.{ticket.booking.event_id}.{ticket.code}." + "A" * 86):
        response = door.post(SCAN, {"code": code, "gate": "1"}, format="json")
        assert response.status_code == 404, code
        assert response.json()["code"] == "unknown_ticket"
    assert not Ticket.objects.filter(checked_in_at__isnull=False).exists()


def test_an_unknown_code_is_404(door: Any, booking: Booking) -> None:
    response = door.post(SCAN, {"code": "NOSUCHTICKET", "gate": "1"}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_ticket"


def test_a_ticket_of_another_event_is_refused_at_this_events_scanner(
    door: Any, ticket: Ticket, event_factory: Any
) -> None:
    other_event = event_factory(title="Another show")

    response = door.post(
        SCAN, {"code": payload_of(ticket), "gate": "1", "event_id": other_event.pk}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "other_event"
    assert "Test concert" in response.json()["detail"]


def test_a_cancelled_tickets_old_qr_is_refused(door: Any, ticket: Ticket, staff_user: Any) -> None:
    booking_cancel(booking=ticket.booking, by_user=staff_user)

    response = door.post(SCAN, {"code": payload_of(ticket), "gate": "1"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "ticket_cancelled"


def test_a_used_ticket_can_not_be_cancelled_by_its_buyer(door: Any, ticket: Ticket, user: Any) -> None:
    door.post(SCAN, {"code": payload_of(ticket), "gate": "1"}, format="json")

    response = make_auth_client(user).post(f"/api/bookings/{ticket.booking.code}/cancel/")

    assert response.status_code == 409
    assert response.json()["code"] == "not_cancellable"


# --- who may scan ----------------------------------------------------------------------------


def test_a_buyer_without_the_role_gets_403_and_learns_nothing(auth_client: Any, ticket: Ticket) -> None:
    for code in (payload_of(ticket), "NOSUCHTICKET"):
        response = auth_client.post(SCAN, {"code": code, "gate": "1"}, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert auth_client.get(f"/api/events/{ticket.booking.event_id}/checkins/manifest/").status_code == 403


def test_anonymous_gets_401(api_client: Any, ticket: Ticket) -> None:
    assert api_client.post(SCAN, {"code": ticket.code, "gate": "1"}, format="json").status_code == 401


def test_door_staff_of_one_event_scan_that_event_only(
    user_factory: Any, ticket: Ticket, event_factory: Any
) -> None:
    other_event = event_factory(title="Another show")
    other_ticket = book_seats(other_event, user_factory(), seat_ids_of(other_event, 1)).tickets.get()
    gatekeeper = user_factory()
    ticket.booking.event.door_staff.add(gatekeeper)
    client = make_auth_client(gatekeeper)

    mine = client.post(SCAN, {"code": payload_of(ticket), "gate": "1"}, format="json")
    theirs = client.post(SCAN, {"code": payload_of(other_ticket), "gate": "1"}, format="json")

    assert mine.status_code == 201
    assert theirs.status_code == 403
    assert theirs.json()["code"] == "permission_denied"


def test_door_staff_get_the_scanner_and_nothing_of_the_admin(
    client: Any, door_staff: Any, ticket: Ticket
) -> None:
    client.force_login(door_staff)
    event_id = ticket.booking.event_id

    scanner = client.get(f"/staff/events/{event_id}/scan/")

    assert scanner.status_code == 200
    assert ticket_signing.public_key() in scanner.content.decode()
    assert client.get("/admin/").status_code == 302  # to the admin's login: not staff
    assert client.get(f"/staff/events/{event_id}/rush/").status_code == 403
    assert client.get(f"/api/staff/events/{event_id}/door/").status_code == 403


def test_the_scanner_page_needs_a_login_and_the_role(client: Any, user: Any, ticket: Ticket) -> None:
    path = f"/staff/events/{ticket.booking.event_id}/scan/"

    assert client.get(path).status_code == 302
    client.force_login(user)
    assert client.get(path).status_code == 403


# --- undo ------------------------------------------------------------------------------------


def test_undo_from_the_same_gate_within_a_minute_takes_the_entry_back(door: Any, ticket: Ticket) -> None:
    door.post(SCAN, {"code": payload_of(ticket), "gate": "North 1"}, format="json")

    other_gate = door.post(UNDO, {"code": ticket.code, "gate": "South 2"}, format="json")
    undone = door.post(UNDO, {"code": payload_of(ticket), "gate": "North 1"}, format="json")
    rescan = door.post(SCAN, {"code": payload_of(ticket), "gate": "North 1"}, format="json")

    assert other_gate.status_code == 409
    assert other_gate.json()["code"] == "undo_not_allowed"
    assert undone.status_code == 200
    assert undone.json() == {"ticket_code": ticket.code, "state": "valid"}
    assert rescan.status_code == 201
    outcomes = list(CheckInLog.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["entered", "undone", "entered"]


def test_undo_after_a_minute_is_refused(door: Any, ticket: Ticket) -> None:
    door.post(SCAN, {"code": payload_of(ticket), "gate": "1"}, format="json")
    Ticket.objects.filter(pk=ticket.pk).update(checked_in_at=timezone.now() - timedelta(seconds=61))

    response = door.post(UNDO, {"code": ticket.code, "gate": "1"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "undo_not_allowed"


# --- scans queued offline --------------------------------------------------------------------


def test_a_queued_scan_earlier_than_the_recorded_entry_becomes_the_first_entry(
    door: Any, ticket: Ticket
) -> None:
    now = timezone.now()
    later = door.post(SCAN, {"code": ticket.code, "gate": "Online"}, format="json")
    earlier = door.post(
        SCAN,
        {
            "code": payload_of(ticket),
            "gate": "Offline",
            "scanned_at": (now - timedelta(minutes=5)).isoformat(),
        },
        format="json",
    )

    assert later.status_code == 201
    assert earlier.status_code == 201
    ticket.refresh_from_db()
    assert ticket.checked_in_gate == "Offline"
    superseded = CheckInLog.objects.get(outcome=CheckInOutcome.SUPERSEDED)
    assert superseded.gate == "Online"


def test_a_scan_time_in_the_future_counts_as_now(door: Any, ticket: Ticket) -> None:
    response = door.post(
        SCAN,
        {"code": ticket.code, "gate": "1", "scanned_at": (timezone.now() + timedelta(days=1)).isoformat()},
        format="json",
    )

    assert response.status_code == 201
    ticket.refresh_from_db()
    assert ticket.checked_in_at <= timezone.now()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(4)))
def test_queued_scans_replayed_in_any_order_leave_the_earliest_as_the_first_entry(
    order: list[int], door_staff: Any, ticket: Ticket
) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(checked_in_at=None, checked_in_gate="")
    base = timezone.now() - timedelta(hours=1)
    scans = [(f"Gate {n}", base + timedelta(seconds=17 * n)) for n in range(4)]  # Gate 0 first

    answers = {}
    for index in order:
        gate, at = scans[index]
        try:
            checkin_record(user=door_staff, code=ticket.code, gate=gate, scanned_at=at)
            answers[gate] = 201
        except Exception as exc:  # DomainError already_checked_in
            answers[gate] = getattr(exc, "code", exc)

    ticket.refresh_from_db()
    assert (ticket.checked_in_gate, ticket.checked_in_at) == scans[0]
    assert answers["Gate 0"] == 201  # the first entry is told so whenever it arrives
    # A scan is refused exactly when an earlier one had been replayed before it.
    for position, index in enumerate(order):
        refused = any(earlier < index for earlier in order[:position])
        assert answers[f"Gate {index}"] == ("already_checked_in" if refused else 201)


# --- manifest and figures --------------------------------------------------------------------


def test_the_manifest_lists_every_ticket_with_its_state_and_the_public_key(
    door: Any, booking: Booking, user_factory: Any, staff_user: Any
) -> None:
    event = booking.event
    first, second = booking.tickets.order_by("pk")
    cancelled = book_seats(event, user_factory(), seat_ids_of(event)[5:6])
    booking_cancel(booking=cancelled, by_user=staff_user)
    door.post(SCAN, {"code": first.code, "gate": "East"}, format="json")

    body = door.get(f"/api/events/{event.pk}/checkins/manifest/").json()

    assert body["public_key"] == ticket_signing.public_key()
    assert body["algorithm"] == "Ed25519"
    states = {t["code"]: (t["state"], t["gate"]) for t in body["tickets"]}
    assert states[first.code] == ("checked_in", "East")
    assert states[second.code] == ("valid", None)
    assert states[cancelled.tickets.get().code] == ("cancelled", None)
    assert (body["checked_in"], body["total"]) == (1, 2)


def test_the_door_figures_count_entries_per_gate_and_minute(
    door: Any, booking: Booking, staff_user: Any, user_factory: Any
) -> None:
    event = booking.event
    more = book_seats(event, user_factory(), seat_ids_of(event)[2:5])
    codes = list(booking.tickets.values_list("code", flat=True)) + list(
        more.tickets.values_list("code", flat=True)
    )
    for code, gate in zip(codes, itertools.cycle(["North", "North", "South"]), strict=False):
        door.post(SCAN, {"code": code, "gate": gate}, format="json")
    door.post(SCAN, {"code": codes[0], "gate": "South"}, format="json")  # a repeat

    body = make_auth_client(staff_user).get(f"/api/staff/events/{event.pk}/door/").json()

    assert body["checked_in"] == 5
    assert body["tickets"] == 5
    assert body["per_gate"] == [{"gate": "North", "count": 4}, {"gate": "South", "count": 1}]
    assert sum(point["count"] for point in body["per_minute"]) == 5
    assert body["repeat_scans"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "X"},
        {"gate": "1"},
        {"code": "", "gate": "1"},
        {"code": "X" * 201, "gate": "1"},
        {"code": "X", "gate": "G" * 65},
        {"code": "X", "gate": "1", "scanned_at": "yesterday"},
        {"code": "X", "gate": "1", "event_id": 0},
        {"code": ["X"], "gate": "1"},
    ],
)
def test_bad_scan_bodies_get_400_with_a_code(door: Any, body: dict[str, Any]) -> None:
    response = door.post(SCAN, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_the_rush_dashboard_shows_the_door(client: Any, staff_user: Any, door: Any, ticket: Ticket) -> None:
    door.post(SCAN, {"code": ticket.code, "gate": "North 1"}, format="json")
    client.force_login(staff_user)

    page = client.get(f"/staff/events/{ticket.booking.event_id}/rush/").content.decode()

    assert "At the door" in page
    assert '<span data-door="checked_in">1</span>' in page
    assert "<td>North 1</td>" in page
    assert f"/staff/events/{ticket.booking.event_id}/scan/" in page
