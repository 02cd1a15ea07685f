"""Writes of the booking app: seat holds (through the Redis layer), confirm and cancel.

The database is the final judge of who owns a seat (DESIGN.md step 4): a booking flips
its seats with one conditional ``UPDATE ... WHERE status = 'available'`` whose row count
must match, inside the same transaction that writes the Booking and its Tickets. Redis
holds only decide who may *try*; wiping Redis or a hold expiring mid-request can never
produce two live bookings of one seat. Both guards live in ``booking.guards``.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from booking import guards
from booking.human_check import human_check_passed, human_check_required_error
from booking.models import Booking, BookingStatus, Ticket
from booking.selectors import booking_find_by_idempotency_key, hold_cap
from booking.signals import booking_cancelled, booking_confirmed
from events.caching import invalidate_availability
from events.models import Seat, SeatStatus
from events.policy import CancellationPolicy, moment_before_full_stop
from events.selectors import EventSettings, event_settings_get
from events.services.seat_map import seat_map_rebuild
from queueing import holds as hold_store
from queueing.line import pass_expires_at_ms, pass_release
from queueing.seatmap import AVAILABLE, seatmap_mark
from ticketing.errors import DomainError, ServiceUnavailable

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

# No 0/O, 1/I/L: codes are read aloud at the box office and typed from paper.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
BOOKING_CODE_LENGTH = 8
TICKET_CODE_LENGTH = 12
CODE_ATTEMPTS = 5
MAX_SEATS_PER_REQUEST = 20
MAX_IDEMPOTENCY_KEY_LENGTH = 64
# A deadlock or lock-wait timeout is retried this many times in all, then 503.
TRANSACTION_ATTEMPTS = 3
# MySQL/MariaDB error numbers worth a retry: deadlock victim, lock wait timeout.
MYSQL_TRANSIENT_ERRORS = frozenset({1213, 1205})

T = TypeVar("T")


def code_generate(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def _event_settings(event_id: int) -> EventSettings:
    event = event_settings_get(event_id)
    if event is None:
        raise DomainError("not_found", _("There is no such event."), status=404)
    return event


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- Holds -----------------------------------------------------------------------------


def _seat_unavailable(seat_ids: list[int]) -> DomainError:
    return DomainError(
        "seat_unavailable",
        _("Some of these seats were just taken by someone else."),
        status=409,
        seat_ids=seat_ids,
    )


def _hold_domain_error(exc: hold_store.HoldError, *, cap: int) -> DomainError:
    if exc.code == "not_admitted":
        return guards.not_admitted_error()
    if exc.code == "seat_unavailable":
        return _seat_unavailable(exc.seat_ids)
    if exc.code == "limit_exceeded":
        return DomainError(
            "limit_exceeded",
            _("You can hold at most %(cap)d more seat(s) for this event.") % {"cap": cap},
            status=400,
            seat_ids=exc.seat_ids,
            limit=cap,
        )
    if exc.code == "invalid_seats":
        return DomainError(
            "invalid", _("Some seats do not exist in this event."), status=400, seat_ids=exc.seat_ids
        )
    raise ServiceUnavailable("seat map") from exc


def seats_hold(*, event_id: int, user_id: int, seat_ids: list[int]) -> hold_store.Hold:
    """Holds all of ``seat_ids`` for the user or none (one Lua script; see queueing.holds).

    Needs a live pass (and, where the event asks for it, the human check passed during
    it: 403 ``human_check_required``), respects the per-user cap (booked seats count
    against it), and rebuilds a missing seat map from the database once before giving up
    with 503."""
    event = _event_settings(event_id)
    if event.sales_closed(_now_ms()):
        raise DomainError("sales_closed", _("Sales for this event have closed."), status=409)
    if event.human_check and not human_check_passed(event_id=event_id, user_id=user_id):
        if pass_expires_at_ms(event_id=event_id, user_id=user_id) is None:
            raise guards.not_admitted_error()
        raise human_check_required_error()
    cap = hold_cap(event_id=event_id, user_id=user_id, max_tickets_per_user=event.max_tickets_per_user)
    for attempt in (1, 2):
        try:
            return hold_store.seats_hold(
                event_id=event_id,
                user_id=user_id,
                seat_ids=seat_ids,
                hold_seconds=event.hold_seconds,
                cap=cap,
            )
        except hold_store.HoldError as exc:
            if exc.code == "no_seatmap" and attempt == 1:
                seat_map_rebuild(event_id)
                continue
            raise _hold_domain_error(exc, cap=cap) from exc
    raise ServiceUnavailable("seat map")  # pragma: no cover  (the loop returns or raises)


def seats_release(*, event_id: int, user_id: int, seat_ids: list[int] | None = None) -> None:
    """Gives back the user's holds (all of them when ``seat_ids`` is None)."""
    hold_store.holds_release(event_id=event_id, user_id=user_id, seat_ids=seat_ids)


# --- Confirm ---------------------------------------------------------------------------


class _SeatsTaken(Exception):
    """The conditional UPDATE matched fewer rows than seats: roll back, answer 409."""


class _IdempotencyKeyClash(Exception):
    """Another request with the same key committed first: answer with its booking."""


def _is_transient(exc: OperationalError) -> bool:
    code = exc.args[0] if exc.args else None
    if code in MYSQL_TRANSIENT_ERRORS:
        return True
    message = str(exc).lower()
    # SQLite: a writer that waited out its busy timeout, or a shared-cache table lock.
    return "database is locked" in message or "database table is locked" in message


def _with_transaction_retries(work: Callable[[], T], *, what: str) -> T:
    """Runs ``work`` (which opens its own ``transaction.atomic``) again after a deadlock
    or lock-wait timeout, then gives up with 503. Must be called outside any atomic
    block: a deadlock victim's whole transaction is gone, a savepoint can't be retried."""
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            return work()
        except OperationalError as exc:
            if not _is_transient(exc):
                raise
            logger.warning("%s: transient database error (attempt %d): %s", what, attempt, exc)
            if attempt == TRANSACTION_ATTEMPTS:
                raise ServiceUnavailable("database") from exc
            time.sleep(0.02 * 2**attempt + random.uniform(0, 0.03))
    raise ServiceUnavailable("database")  # pragma: no cover


def _replayed(booking: Booking, *, event_id: int, seat_ids: list[int]) -> Booking:
    """A repeated Idempotency-Key must describe the same purchase."""
    booked = sorted(ticket.seat_id for ticket in booking.tickets.all())
    if booking.event_id != event_id or booked != seat_ids:
        raise DomainError(
            "idempotency_key_reused",
            _("This idempotency key was already used for a different booking."),
            status=409,
        )
    return booking


def _tickets_build(*, booking: Booking, seats: list[Seat]) -> list[Ticket]:
    """One ticket per seat, in seat order, each with its own unique code."""
    return [
        Ticket(booking=booking, seat=seat, price=seat.price, code=code_generate(TICKET_CODE_LENGTH))
        for seat in sorted(seats, key=lambda seat: (seat.section, seat.row, seat.number, seat.pk))
    ]


def _after_confirm(*, event_id: int, user_id: int, seat_ids: list[int]) -> None:
    """Registers the post-commit work. Each step is robust: the booking is committed
    whatever Redis does now, and the reconciler repairs a map/hold left behind."""
    transaction.on_commit(
        lambda: hold_store.holds_consume(event_id=event_id, user_id=user_id, seat_ids=seat_ids), robust=True
    )
    # The buyer leaves the active queue: the slot goes to the next person in line.
    transaction.on_commit(lambda: pass_release(event_id=event_id, user_id=user_id), robust=True)
    transaction.on_commit(lambda: invalidate_availability(event_id), robust=True)


def _booking_write(
    *,
    user_id: int,
    event_id: int,
    seat_ids: list[int],
    idempotency_key: str | None,
    language: str,
    booking_fee: Decimal,
) -> Booking:
    with transaction.atomic():
        # The judge: only seats still available flip, so of two concurrent transactions
        # the second one matches fewer rows and rolls back.
        if guards.seats_sell(event_id=event_id, seat_ids=seat_ids) != len(seat_ids):
            raise _SeatsTaken
        # No ORDER BY (Seat's default ordering): _tickets_build sorts them.
        sold_seats = list(
            Seat.objects.filter(pk__in=seat_ids).order_by().only("id", "section", "row", "number", "price")
        )
        now = timezone.now()
        # Codes are drawn at random (a collision is about 1 in 10^12): a unique-index
        # error rolls the whole transaction back and the caller draws again. No
        # savepoints: each would cost two more round trips on every booking.
        booking = Booking.objects.create(
            code=code_generate(BOOKING_CODE_LENGTH),
            idempotency_key=idempotency_key,
            user_id=user_id,
            event_id=event_id,
            status=BookingStatus.CONFIRMED,
            # The tickets plus the event's booking fee per ticket (events.policy).
            total=sum((seat.price + booking_fee for seat in sold_seats), Decimal("0")),
            confirmed_at=now,
            language=language,
        )
        tickets = _tickets_build(booking=booking, seats=sold_seats)
        Ticket.objects.bulk_create(tickets)
        # Kept on the instance so the API can answer without reading them back.
        booking.written_tickets = tickets
        # Receivers queue the ticket e-mail with on_commit: none is sent on rollback.
        booking_confirmed.send(sender=Booking, booking_id=booking.pk)
        _after_confirm(event_id=event_id, user_id=user_id, seat_ids=seat_ids)
    return booking


def booking_confirm(
    *,
    user_id: int,
    event_id: int,
    seat_ids: list[int],
    idempotency_key: str | None = None,
    language: str | None = None,
) -> tuple[Booking, bool]:
    """Turns the caller's held seats into a confirmed booking; returns (booking, created).

    A repeated ``idempotency_key`` returns the first booking (created False). Refusals:
    403 not_admitted (no holds and no pass), 409 hold_missing (holds gone), 409
    seat_unavailable (the database says a seat is sold; nothing is written), 503 when
    the database stays deadlocked, 401 when the account is gone (its stateless access token
    outlives it). Only the user's id is needed: the API's token user has no row loaded.
    Call outside transaction.atomic (retries need it)."""
    seat_ids = sorted({int(seat_id) for seat_id in seat_ids})
    if not seat_ids or len(seat_ids) > MAX_SEATS_PER_REQUEST:
        raise DomainError("invalid", _("Choose between 1 and 20 seats."), status=400)
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise DomainError("invalid", _("The idempotency key must be 1 to 64 characters."), status=400)
    if idempotency_key:
        existing = booking_find_by_idempotency_key(user_id=user_id, idempotency_key=idempotency_key)
        if existing is not None:
            return _replayed(existing, event_id=event_id, seat_ids=seat_ids), False
    try:
        booking = _booking_confirm_new(
            user_id=user_id,
            event_id=event_id,
            seat_ids=seat_ids,
            idempotency_key=idempotency_key or None,
            language=language or settings.LANGUAGE_CODE,
        )
    except (DomainError, _IdempotencyKeyClash):
        # A concurrent twin of this request (same key) may have committed meanwhile and
        # consumed the holds or sold the seats: then its booking is the answer.
        if idempotency_key:
            existing = booking_find_by_idempotency_key(user_id=user_id, idempotency_key=idempotency_key)
            if existing is not None:
                return _replayed(existing, event_id=event_id, seat_ids=seat_ids), False
        raise
    return booking, True


def _booking_confirm_new(
    *, user_id: int, event_id: int, seat_ids: list[int], idempotency_key: str | None, language: str
) -> Booking:
    event = _event_settings(event_id)
    # Once, before the transaction: a retried deadlock victim still holds (the holds are
    # consumed only after a commit), and the refusals need no database round trip.
    guards.holds_require(event_id=event_id, user_id=user_id, seat_ids=seat_ids)

    def attempt() -> Booking:
        for _draw in range(CODE_ATTEMPTS):
            try:
                return _booking_write(
                    user_id=user_id,
                    event_id=event_id,
                    seat_ids=seat_ids,
                    idempotency_key=idempotency_key,
                    language=language,
                    booking_fee=event.booking_fee,
                )
            except IntegrityError:
                # Rolled back whole. Either a twin request with the same key committed
                # first, the account was deleted while its stateless access token is
                # still valid, or a booking/ticket code collided: then draw again.
                if (
                    idempotency_key
                    and Booking.objects.filter(user_id=user_id, idempotency_key=idempotency_key).exists()
                ):
                    raise _IdempotencyKeyClash from None
                if not get_user_model().objects.filter(pk=user_id).exists():
                    raise DomainError(
                        "not_authenticated", _("This account no longer exists."), status=401
                    ) from None
        raise RuntimeError("could not draw unique booking and ticket codes")

    try:
        return _with_transaction_retries(attempt, what="booking_confirm")
    except _SeatsTaken:
        # Only now read why (the common case, a free seat, costs no read before the
        # write): unknown ids are the caller's mistake, sold ones were taken.
        statuses = dict(Seat.objects.filter(event_id=event_id, pk__in=seat_ids).values_list("pk", "status"))
        unknown = [seat_id for seat_id in seat_ids if seat_id not in statuses]
        if unknown:
            raise DomainError(
                "invalid", _("Some seats do not exist in this event."), status=400, seat_ids=unknown
            ) from None
        sold = [seat_id for seat_id, status in statuses.items() if status != SeatStatus.AVAILABLE]
        raise _seat_unavailable(sorted(sold)) from None


# --- Cancel ----------------------------------------------------------------------------


def _self_service_closed(deadline: datetime) -> DomainError:
    return DomainError(
        "not_cancellable",
        _(
            "Online cancellation for this event closed at %(deadline)s. Please contact the organiser: "
            "they can still cancel this booking."
        )
        % {"deadline": moment_before_full_stop(deadline)},
        status=409,
    )


def booking_cancel(*, booking: Booking, by_user: User) -> Booking:
    """Cancels a confirmed booking (its owner, or staff): its seats become available
    again in the database and the seat map; the booking keeps its tickets as history and
    records the cancellation fee and the refund, from the event's fee table at this
    moment (events.policy). Buyers cannot cancel once the event has started, nor after
    the event's online-cancellation deadline; staff can. 409 not_cancellable otherwise.
    Call outside transaction.atomic."""
    if booking.user_id != by_user.pk and not by_user.is_staff:
        raise DomainError("not_found", _("Not found."), status=404)

    def attempt() -> Booking:
        with transaction.atomic():
            # The row lock makes two concurrent cancels of one booking run one at a time.
            locked = Booking.objects.select_for_update().get(pk=booking.pk)
            if locked.status != BookingStatus.CONFIRMED:
                raise DomainError("not_cancellable", _("This booking is already cancelled."), status=409)
            now = timezone.now()
            if not by_user.is_staff and locked.event.starts_at <= now:
                raise DomainError(
                    "not_cancellable",
                    _("The event has started; this booking can't be cancelled."),
                    status=409,
                )
            # The same quote the cancel page showed (events.policy), taken at this moment.
            ticket_price = sum(locked.tickets.values_list("price", flat=True), Decimal("0"))
            quote = CancellationPolicy.of(locked.event).quote(
                total=locked.total, ticket_price=ticket_price, at=now
            )
            if not by_user.is_staff and not quote.self_service_open:
                raise _self_service_closed(quote.deadline)
            if not by_user.is_staff and locked.tickets.filter(checked_in_at__isnull=False).exists():
                raise DomainError(
                    "not_cancellable",
                    _("A ticket of this booking has been used at the door; it can't be cancelled."),
                    status=409,
                )
            seat_ids = sorted(locked.tickets.values_list("seat_id", flat=True))
            Seat.objects.filter(pk__in=seat_ids, status=SeatStatus.SOLD).update(status=SeatStatus.AVAILABLE)
            locked.status = BookingStatus.CANCELLED
            locked.cancelled_at = now
            locked.cancelled_by_id = by_user.pk
            locked.cancellation_fee = quote.cancellation_fee
            locked.refund = quote.refund
            locked.save(
                update_fields=["status", "cancelled_at", "cancelled_by", "cancellation_fee", "refund"]
            )
            event_id = locked.event_id
            transaction.on_commit(
                lambda: seatmap_mark(event_id=event_id, seat_ids=seat_ids, status=AVAILABLE), robust=True
            )
            transaction.on_commit(lambda: invalidate_availability(event_id), robust=True)
            # After the map is marked: a receiver's work (the waiting list taking the seats)
            # runs on commit too, in order, and must see them free.
            booking_cancelled.send(sender=Booking, booking_id=locked.pk)
        return locked

    return _with_transaction_retries(attempt, what="booking_cancel")
