"""Check-in at the door: who may scan, and the one write that decides the first entry.

A scan names a ticket by its QR payload (signed, booking.ticket_signing) or by the plain
ticket code typed by hand. The first entry is decided by the database, not by a read
followed by a write: ``guards.ticket_admit`` is a conditional UPDATE, so of 50 gates
scanning one ticket at the same instant exactly one changes the row. A scan queued by a
scanner that was offline carries its own time (``scanned_at``); it replaces an entry
recorded *later* than itself, so queued scans replayed in any order leave the earliest
as the first entry, and the later one is logged as ``superseded`` (a conflict staff see).

Every outcome is written to ``CheckInLog`` in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from booking import guards, ticket_signing
from booking.models import BookingStatus, CheckInLog, CheckInOutcome, Ticket
from events.models import Event
from ticketing.errors import DomainError

if TYPE_CHECKING:
    from accounts.models import User

PERMISSION = "booking.check_in_tickets"
UNDO_SECONDS = 60
GATE_MAX_LENGTH = 64


# --- who may scan ----------------------------------------------------------------------------


def can_check_in(user: User, event_id: int) -> bool:
    """Door staff of every event (the permission, e.g. the "Door staff" group; superusers)
    or of this event (``Event.door_staff``)."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.has_perm(PERMISSION):
        return True
    return Event.door_staff.through.objects.filter(event_id=event_id, user_id=user.pk).exists()


def is_door_staff(user: User) -> bool:
    """Door staff of at least one event."""
    if not (user.is_authenticated and user.is_active):
        return False
    return user.has_perm(PERMISSION) or Event.door_staff.through.objects.filter(user_id=user.pk).exists()


def _permission_denied() -> DomainError:
    return DomainError("permission_denied", _("You are not door staff of this event."), status=403)


# --- finding the ticket ----------------------------------------------------------------------


def _unknown() -> DomainError:
    return DomainError("unknown_ticket", _("This is not a ticket of ours."), status=404)


def ticket_for_code(code: str) -> Ticket:
    """The ticket a scanned or typed code names; 404 ``unknown_ticket`` for an unknown
    code and for a QR payload whose signature does not verify (forged or edited)."""
    code = code.strip()
    event_id = None
    if ticket_signing.looks_like_payload(code):
        try:
            event_id, code = ticket_signing.payload_parse(code)
        except ticket_signing.ForgedTicket:
            raise DomainError(
                "unknown_ticket",
                _("This QR code is not a genuine ticket (its signature does not match)."),
                status=404,
            ) from None
    ticket = (
        Ticket.objects.select_related("booking__event", "booking__user", "seat")
        .filter(code=code.upper())
        .first()
    )
    if ticket is None or (event_id is not None and ticket.booking.event_id != event_id):
        raise _unknown()
    return ticket


# --- the scan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    ticket: Ticket
    gate: str
    checked_in_at: datetime


def _already(ticket: Ticket) -> DomainError:
    at = timezone.localtime(ticket.checked_in_at)
    return DomainError(
        "already_checked_in",
        _("Already checked in at %(time)s at gate %(gate)s.")
        % {"time": at.strftime("%H:%M:%S"), "gate": ticket.checked_in_gate},
        status=409,
        checked_in_at=ticket.checked_in_at.isoformat(),
        gate=ticket.checked_in_gate,
        seat=seat_data(ticket),
        holder=ticket.booking.user.name,
    )


def seat_data(ticket: Ticket) -> dict[str, object]:
    seat = ticket.seat
    return {"section": seat.section, "row": seat.row, "number": seat.number, "label": seat.label}


def checkin_record(
    *, user: User, code: str, gate: str, scanned_at: datetime | None = None, event_id: int | None = None
) -> Entry:
    """Checks the ticket in at ``gate``. Raises 404 unknown_ticket, 403 permission_denied
    or other_event, 409 ticket_cancelled or already_checked_in (with when and where)."""
    if not is_door_staff(user) or (event_id is not None and not can_check_in(user, event_id)):
        raise _permission_denied()
    ticket = ticket_for_code(code)
    booking = ticket.booking
    if event_id is not None and booking.event_id != event_id:
        raise DomainError(
            "other_event",
            _("This ticket is for another event: %(title)s.") % {"title": booking.event.title},
            status=403,
        )
    if not can_check_in(user, booking.event_id):
        raise _permission_denied()
    if booking.status != BookingStatus.CONFIRMED:
        raise DomainError("ticket_cancelled", _("This ticket was cancelled."), status=409)

    now = timezone.now()
    queued = scanned_at is not None
    at = min(scanned_at, now) if scanned_at is not None else now
    before = (ticket.checked_in_at, ticket.checked_in_gate, ticket.checked_in_by_id)
    with transaction.atomic():
        won = guards.ticket_admit(ticket_id=ticket.pk, gate=gate, at=at, by_id=user.pk, earlier_only=queued)
        if won:
            if before[0] is not None and before[0] > at:  # a later entry turned out a second one
                _log(ticket, CheckInOutcome.SUPERSEDED, gate=before[1], at=before[0], by_id=before[2])
            _log(ticket, CheckInOutcome.ENTERED, gate=gate, at=at, by_id=user.pk)
        else:
            _log(ticket, CheckInOutcome.REPEAT, gate=gate, at=at, by_id=user.pk)
    if not won:
        ticket.refresh_from_db(fields=["checked_in_at", "checked_in_gate", "checked_in_by"])
        raise _already(ticket)
    ticket.checked_in_at, ticket.checked_in_gate, ticket.checked_in_by_id = at, gate, user.pk
    return Entry(ticket=ticket, gate=gate, checked_in_at=at)


def checkin_undo(*, user: User, code: str, gate: str) -> Ticket:
    """Takes back a mistaken entry: only from the gate that made it and within
    ``UNDO_SECONDS``; logged. 409 ``undo_not_allowed`` otherwise."""
    if not is_door_staff(user):
        raise _permission_denied()
    ticket = ticket_for_code(code)
    if not can_check_in(user, ticket.booking.event_id):
        raise _permission_denied()
    since = timezone.now() - timedelta(seconds=UNDO_SECONDS)
    with transaction.atomic():
        undone = Ticket.objects.filter(pk=ticket.pk, checked_in_gate=gate, checked_in_at__gte=since).update(
            checked_in_at=None, checked_in_gate="", checked_in_by=None
        )
        if undone:
            _log(ticket, CheckInOutcome.UNDONE, gate=gate, at=timezone.now(), by_id=user.pk)
    if not undone:
        raise DomainError(
            "undo_not_allowed",
            _("Only the gate that let this ticket in can undo it, within %(seconds)d seconds.")
            % {"seconds": UNDO_SECONDS},
            status=409,
        )
    ticket.checked_in_at, ticket.checked_in_gate, ticket.checked_in_by_id = None, "", None
    return ticket


def _log(ticket: Ticket, outcome: str, *, gate: str, at: datetime, by_id: int | None) -> None:
    CheckInLog.objects.create(
        ticket=ticket,
        event_id=ticket.booking.event_id,
        outcome=outcome,
        gate=gate,
        scanned_at=at,
        by_id=by_id,
    )
