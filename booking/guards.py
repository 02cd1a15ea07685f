"""The guards of the booking app, each one plain function its service calls.

Between a buyer and a seat there are two, both called by ``booking_confirm``:

1. ``holds_require``, in Redis: the buyer holds every seat right now. It decides who may
   *try* to book, and answers the common refusals before the database is asked.
2. ``seats_sell``, in the database: the conditional ``UPDATE ... WHERE status =
   'available'``. It decides who *gets* the seats: of two transactions racing for a seat
   the second matches no row and rolls back.

While the holds are intact either guard alone keeps a seat to one live booking; when
Redis lost or duplicated holds (a wipe, a failover, a hold lapsing mid-confirm) only
``seats_sell`` stands (DESIGN.md step 4).

On the waiting list there is one: ``seats_offer``, the conditional ``UPDATE ... SET
status = 'offered' WHERE status = 'available'`` that makes a seat go to at most one offer,
never while it is sold, and keeps the regular sale's ``seats_sell`` off it while the
offer is out (booking.waiting_list).

At the door there is one: ``ticket_admit``, the conditional ``UPDATE ... WHERE
checked_in_at IS NULL`` that makes exactly one of many gates scanning a ticket at once the
first entry (booking.checkins).

This module is also the one seam the race tests use. The services look the guards
up here on every call (``guards.seats_sell(...)``), so a negative control
replaces exactly one of them with pytest's ``monkeypatch`` and keeps the other; a test
that needs two requests to meet between the check and the write wraps
``holds_require``. Production code never changes them and nothing here reads a setting.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils.translation import gettext as _

from booking.models import Ticket
from events.models import Seat, SeatStatus
from queueing.holds import holds_verify
from queueing.line import pass_expires_at_ms
from ticketing.errors import DomainError


def not_admitted_error() -> DomainError:
    """The refusal of a buyer without a live pass (holds and confirm alike)."""
    return DomainError(
        "not_admitted",
        _("You have no valid pass for this event. Please join the waiting room."),
        status=403,
    )


def holds_require(*, event_id: int, user_id: int, seat_ids: list[int]) -> None:
    """Returns when the user holds every one of ``seat_ids`` now; otherwise raises 403
    not_admitted (no pass either: back to the waiting room) or 409 hold_missing."""
    if holds_verify(event_id=event_id, user_id=user_id, seat_ids=seat_ids):
        return
    if pass_expires_at_ms(event_id=event_id, user_id=user_id) is None:
        raise not_admitted_error()
    raise DomainError(
        "hold_missing",
        _("You no longer hold these seats (the hold expired or was released). Please choose again."),
        status=409,
    )


def seats_sell(*, event_id: int, seat_ids: list[int]) -> int:
    """Marks the seats sold if they are still available; returns how many rows changed.
    Fewer than ``len(seat_ids)`` means a seat was sold (or is unknown): the caller must
    roll back. Must run inside the booking's ``transaction.atomic``: the row locks this
    takes are what make a concurrent transaction wait and then match nothing."""
    return Seat.objects.filter(event_id=event_id, pk__in=seat_ids, status=SeatStatus.AVAILABLE).update(
        status=SeatStatus.SOLD
    )


def seats_offer(*, event_id: int, seat_ids: list[int]) -> int:
    """Marks the seats offered if they are still available; returns how many rows changed.
    Fewer than ``len(seat_ids)`` means a seat is sold or out on another offer: the caller
    must roll back. Runs inside the offer's ``transaction.atomic``."""
    return Seat.objects.filter(event_id=event_id, pk__in=seat_ids, status=SeatStatus.AVAILABLE).update(
        status=SeatStatus.OFFERED
    )


def ticket_admit(*, ticket_id: int, gate: str, at: datetime, by_id: int | None, earlier_only: bool) -> int:
    """Records the ticket's entry if it has none yet; returns the number of rows changed (1:
    this scan is the first entry, 0: someone was first). With ``earlier_only`` (a scan
    queued offline and replayed) an entry recorded *later* than ``at`` is replaced too, so
    replays in any order end with the earliest scan as the first entry. A live scan never
    replaces one: two gates at the same instant can't both win by their clocks."""
    first = Q(checked_in_at__isnull=True)
    if earlier_only:
        first |= Q(checked_in_at__gt=at)
    return Ticket.objects.filter(first, pk=ticket_id).update(
        checked_in_at=at, checked_in_gate=gate, checked_in_by_id=by_id
    )
