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

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from booking import guards, ticket_signing
from booking.models import BookingStatus, CheckInLog, CheckInOutcome, Ticket
from events.models import Event
from ticketing.errors import DomainError
from ticketing.local_cache import local_cache

if TYPE_CHECKING:
    from rest_framework_simplejwt.models import TokenUser

    from accounts.models import User

PERMISSION = "booking.check_in_tickets"
# Made with the permission by migration booking 0005: door staff of every event.
DOOR_STAFF_GROUP = "Door staff"
UNDO_SECONDS = 60
GATE_MAX_LENGTH = 64


# --- who may scan ----------------------------------------------------------------------------

# How long a process trusts its answer to "is this user door staff here?": a scan needs no
# permission queries, and a revoked role stops working within this many seconds.
DOOR_ROLE_SECONDS = 10.0


def _door_role(user_id: int, event_id: int | None) -> bool:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    if user.has_perm(PERMISSION):
        return True
    links = Event.door_staff.through.objects.filter(user_id=user_id)
    return (links if event_id is None else links.filter(event_id=event_id)).exists()


def can_check_in(user: User | TokenUser, event_id: int | None) -> bool:
    """Door staff of every event (the permission, e.g. the "Door staff" group; superusers)
    or of this event (``Event.door_staff``); with ``event_id`` None: of any event. Takes
    the token's user without a database read (the API's stateless JWT user): the answer,
    read from the database, is kept ``DOOR_ROLE_SECONDS`` per process, and a deactivated
    account is refused once it runs out."""
    if not user.is_authenticated:
        return False
    return local_cache.get_or_set(
        ("door-role", user.pk, event_id), DOOR_ROLE_SECONDS, lambda: _door_role(user.pk, event_id)
    )


def door_staff_group() -> Group:
    """The "Door staff" group with its permission (made by a migration; made again here if
    someone deleted it, or a test's flush emptied the tables)."""
    group, created = Group.objects.get_or_create(name=DOOR_STAFF_GROUP)
    if created:
        app_label, codename = PERMISSION.split(".")
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return group


def _permission_denied() -> DomainError:
    return DomainError("permission_denied", _("You are not door staff of this event."), status=403)


# --- finding the ticket ----------------------------------------------------------------------


@dataclass
class ScannedTicket:
    """What a scan needs of a ticket, read in one query without building models."""

    id: int
    code: str
    event_id: int
    event_title: str
    cancelled: bool
    holder: str
    section: str
    row: str
    number: int
    checked_in_at: datetime | None
    checked_in_gate: str
    checked_in_by_id: int | None

    @property
    def seat(self) -> dict[str, object]:
        label = f"{self.section} {self.row}-{self.number}"  # events.models.Seat.label
        return {"section": self.section, "row": self.row, "number": self.number, "label": label}


_SCANNED_FIELDS = (
    "id",
    "code",
    "booking__event_id",
    "booking__event__title",
    "booking__status",
    "booking__user__name",
    "seat__section",
    "seat__row",
    "seat__number",
    "checked_in_at",
    "checked_in_gate",
    "checked_in_by_id",
)


def _unknown() -> DomainError:
    return DomainError("unknown_ticket", _("This is not a ticket of ours."), status=404)


def ticket_for_code(code: str) -> ScannedTicket:
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
    row = Ticket.objects.filter(code=code.upper()).values_list(*_SCANNED_FIELDS).first()
    if row is None:
        raise _unknown()
    ticket_id, code, ticket_event, title, status, holder, section, seat_row, number, at, gate, by = row
    if event_id is not None and ticket_event != event_id:
        raise _unknown()
    return ScannedTicket(
        ticket_id, code, ticket_event, title, status != BookingStatus.CONFIRMED, holder, section, seat_row,
        number, at, gate, by,
    )  # fmt: skip


# --- the scan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    ticket: ScannedTicket
    gate: str
    checked_in_at: datetime


def _already(ticket: ScannedTicket, *, at: datetime, gate: str) -> DomainError:
    return DomainError(
        "already_checked_in",
        _("Already checked in at %(time)s at gate %(gate)s.")
        % {"time": timezone.localtime(at).strftime("%H:%M:%S"), "gate": gate},
        status=409,
        checked_in_at=at.isoformat(),
        gate=gate,
        seat=ticket.seat,
        holder=ticket.holder,
    )


def checkin_record(
    *,
    user: User | TokenUser,
    code: str,
    gate: str,
    scanned_at: datetime | None = None,
    event_id: int | None = None,
) -> Entry:
    """Checks the ticket in at ``gate``. Raises 404 unknown_ticket, 403 permission_denied
    or other_event, 409 ticket_cancelled or already_checked_in (with when and where)."""
    # Someone who is door staff nowhere learns nothing about codes, not even "unknown".
    if not can_check_in(user, event_id):
        raise _permission_denied()
    ticket = ticket_for_code(code)
    if event_id is not None and ticket.event_id != event_id:
        raise DomainError(
            "other_event",
            _("This ticket is for another event: %(title)s.") % {"title": ticket.event_title},
            status=403,
        )
    if event_id is None and not can_check_in(user, ticket.event_id):
        raise _permission_denied()
    if ticket.cancelled:
        raise DomainError("ticket_cancelled", _("This ticket was cancelled."), status=409)

    now = timezone.now()
    queued = scanned_at is not None
    at = min(scanned_at, now) if scanned_at is not None else now
    with transaction.atomic():
        won = guards.ticket_admit(ticket_id=ticket.id, gate=gate, at=at, by_id=user.pk, earlier_only=queued)
        if won:
            logs = [_log(ticket, CheckInOutcome.ENTERED, gate=gate, at=at, by_id=user.pk)]
            earlier = ticket.checked_in_at
            if earlier is not None and earlier > at:  # as read: that entry turned out a second one
                logs.append(
                    _log(
                        ticket,
                        CheckInOutcome.SUPERSEDED,
                        gate=ticket.checked_in_gate,
                        at=earlier,
                        by_id=ticket.checked_in_by_id,
                    )
                )
            CheckInLog.objects.bulk_create(logs)
        else:
            _log(ticket, CheckInOutcome.REPEAT, gate=gate, at=at, by_id=user.pk).save()
    if not won:
        first_at, first_gate = Ticket.objects.values_list("checked_in_at", "checked_in_gate").get(
            pk=ticket.id
        )
        raise _already(ticket, at=first_at, gate=first_gate)
    return Entry(ticket=ticket, gate=gate, checked_in_at=at)


def checkin_undo(*, user: User | TokenUser, code: str, gate: str) -> ScannedTicket:
    """Takes back a mistaken entry: only from the gate that made it and within
    ``UNDO_SECONDS``; logged. 409 ``undo_not_allowed`` otherwise."""
    if not can_check_in(user, None):
        raise _permission_denied()
    ticket = ticket_for_code(code)
    if not can_check_in(user, ticket.event_id):
        raise _permission_denied()
    since = timezone.now() - timedelta(seconds=UNDO_SECONDS)
    with transaction.atomic():
        undone = Ticket.objects.filter(pk=ticket.id, checked_in_gate=gate, checked_in_at__gte=since).update(
            checked_in_at=None, checked_in_gate="", checked_in_by=None
        )
        if undone:
            _log(ticket, CheckInOutcome.UNDONE, gate=gate, at=timezone.now(), by_id=user.pk).save()
    if not undone:
        raise DomainError(
            "undo_not_allowed",
            _("Only the gate that let this ticket in can undo it, within %(seconds)d seconds.")
            % {"seconds": UNDO_SECONDS},
            status=409,
        )
    return ticket


def _log(
    ticket: ScannedTicket, outcome: str, *, gate: str, at: datetime, by_id: int | None = None
) -> CheckInLog:
    return CheckInLog(
        ticket_id=ticket.id, event_id=ticket.event_id, outcome=outcome, gate=gate, scanned_at=at, by_id=by_id
    )
