"""Fifty gates scan one ticket at the same instant: exactly one first entry, decided by
the database (``guards.ticket_admit``, a conditional UPDATE), over real HTTP on the live
server, each gate with its own connection and JWT.

``ScanGate`` makes every scan wait, once it has read the ticket (and seen it not yet
used) and before its transaction, until all fifty have arrived: timing only, the same in
the test and in its control (a wait inside the transaction would hold SQLite's write lock). The control
switches off exactly the guard (the UPDATE loses its ``checked_in_at IS NULL``) and
shows fifty people let in on one ticket.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from booking import checkins, guards, ticket_signing
from booking.checkins import door_staff_group
from booking.models import CheckInLog, Ticket
from booking.tests.conftest import book_seats, seat_ids_of
from booking.tests.racing import (
    RACE_TEST_MARKS,
    REQUEST_TIMEOUT,
    Buyer,
    assert_no_server_errors,
    close_all,
    in_threads,
    make_buyers,
    refusal_codes,
    statuses,
)
from events.models import Event

pytestmark = RACE_TEST_MARKS

GATES = 50


class ScanGate:
    """Every scan, once it has looked its ticket up (``checkins.ticket_for_code``), waits
    until ``count`` scans have done so, then all go on at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
        self._lookup = checkins.ticket_for_code
        self._barrier = threading.Barrier(count, timeout=REQUEST_TIMEOUT)
        monkeypatch.setattr(checkins, "ticket_for_code", self._look_up_then_wait)

    def _look_up_then_wait(self, code: str) -> Ticket:
        ticket = self._lookup(code)
        assert ticket.checked_in_at is None
        self._barrier.wait()
        return ticket


def admit_unconditionally(
    *, ticket_id: int, gate: str, at: Any, by_id: int | None, earlier_only: bool
) -> int:
    """``guards.ticket_admit`` without its condition on an earlier entry."""
    return Ticket.objects.filter(pk=ticket_id).update(
        checked_in_at=at, checked_in_gate=gate, checked_in_by_id=by_id
    )


def fifty_gates_scan_one_ticket(base_url: str, event: Event) -> tuple[Ticket, list[Any]]:
    ticket = book_seats(event, make_buyers(1, base_url)[0].user, seat_ids_of(event, 1)).tickets.get()
    payload = ticket_signing.qr_payload(event_id=event.pk, ticket_code=ticket.code)
    gates = make_buyers(GATES, base_url)
    door_staff_group().user_set.add(*(gate.user for gate in gates))
    numbers = {gate.user.pk: n for n, gate in enumerate(gates)}

    def scan(gate: Buyer) -> Any:
        return gate.post("/api/checkins/", {"code": payload, "gate": f"Gate {numbers[gate.user.pk]}"})

    try:
        return ticket, in_threads(gates, scan)
    finally:
        close_all(gates)


@pytest.fixture
def event(event_factory: Any) -> Event:
    return event_factory(rows=1, seats_per_row=2)


def test_fifty_gates_scanning_one_ticket_at_once_let_exactly_one_in(
    race_server: Any, event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    ScanGate(monkeypatch, GATES)

    ticket, responses = fifty_gates_scan_one_ticket(race_server.url, event)

    assert_no_server_errors(responses)
    assert statuses(responses) == {201: 1, 409: GATES - 1}
    assert refusal_codes(responses) == {"already_checked_in": GATES - 1}
    winner = next(r.json() for r in responses if r.status_code == 201)
    ticket.refresh_from_db()
    assert ticket.checked_in_gate == winner["gate"]
    # Every refusal names the winner's gate and time.
    assert {r.json()["gate"] for r in responses if r.status_code == 409} == {winner["gate"]}
    assert CheckInLog.objects.filter(outcome="entered").count() == 1


def test_control_without_the_conditional_update_fifty_gates_let_fifty_in(
    race_server: Any, event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guards, "ticket_admit", admit_unconditionally)
    ScanGate(monkeypatch, GATES)

    _, responses = fifty_gates_scan_one_ticket(race_server.url, event)

    assert_no_server_errors(responses)
    assert statuses(responses)[201] > 1
