"""The waiting list of a sold-out event: join, leave, offers in line order, accept, decline.

Seats that come back after a sell-out (a cancelled booking, a hold that lapses or is let
go, an offer declined or run out) go to the list first while it has someone waiting and
is not paused. How (docs/ARCHITECTURE.md, "The waiting list"):

- Redis (``queueing.waitlist``): the list is one more holder. While it has waiters its
  gate is up, so the regular sale holds no newly free seat; each tick takes every free
  seat into the list's pool.
- The rule (``booking.waiting_list_rule``) decides which pooled seats go to which entry.
- The database decides who gets them: an offer is one transaction of two conditional
  UPDATEs, the entry ``waiting -> offered`` and its seats ``available -> offered``
  (``booking.guards.seats_offer``). A seat can't be on two offers, nor on one while sold,
  and the regular sale's ``seats_sell`` can't sell it meanwhile. Accept, decline and
  expiry each flip the offer ``out -> ...`` conditionally, so exactly one of them wins.
- Accepting hands the seats over as the buyer's holds; the booking then goes through
  ``booking_confirm`` and its fence like any other.

A tick runs every 2 s for each event with a live list (``booking.tasks``), and at once
after each change that returns seats (cancel, decline, leave, staff removal).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from booking import guards
from booking.models import (
    WaitingListEntry,
    WaitingListOffer,
    WaitingListOfferState,
    WaitingListState,
)
from booking.selectors import hold_cap
from booking.waiting_list_rule import PoolSeat, Waiter, allocate
from events.models import Event, RushControlChange, Seat, SeatStatus
from events.services.seat_map import seat_map_current
from queueing import waitlist as waitlist_store
from queueing.connection import get_redis
from queueing.holds import Hold, HoldError
from queueing.keys import EventKeys
from ticketing.errors import DomainError

logger = logging.getLogger(__name__)

# In line: waiting for an offer, or holding one.
LIVE_STATES = (WaitingListState.WAITING, WaitingListState.OFFERED)


@dataclass(frozen=True)
class OfferView:
    id: int
    seat_ids: list[int]
    together: bool
    expires_at: datetime


@dataclass(frozen=True)
class EntryView:
    id: int
    event_id: int
    user_id: int
    party_size: int
    state: str
    position: int | None  # 1 = next to be offered seats; None unless waiting
    joined_at: datetime
    together_only: bool
    offer: OfferView | None


def _now_ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)


def event_get(event_id: int) -> Event:
    event = Event.objects.filter(pk=event_id, is_published=True).first()
    if event is None:
        raise DomainError("not_found", _("There is no such event."), status=404)
    return event


def not_on_list_error() -> DomainError:
    return DomainError("not_on_waiting_list", _("You are not on this event's waiting list."), status=404)


def _position(entry: WaitingListEntry) -> int:
    ahead = WaitingListEntry.objects.filter(
        Q(joined_at__lt=entry.joined_at) | Q(joined_at=entry.joined_at, pk__lt=entry.pk),
        event_id=entry.event_id,
        state=WaitingListState.WAITING,
    ).count()
    return ahead + 1


def _live_offer(entry: WaitingListEntry) -> WaitingListOffer | None:
    return entry.offers.filter(state=WaitingListOfferState.OUT).order_by("-pk").first()


def entry_view(entry: WaitingListEntry) -> EntryView:
    offer = _live_offer(entry) if entry.state == WaitingListState.OFFERED else None
    return EntryView(
        id=entry.pk,
        event_id=entry.event_id,
        user_id=entry.user_id,
        party_size=entry.party_size,
        state=entry.state,
        position=_position(entry) if entry.state == WaitingListState.WAITING else None,
        joined_at=entry.joined_at,
        together_only=entry.together_only,
        offer=(
            OfferView(
                id=offer.pk,
                seat_ids=list(offer.seat_ids),
                together=offer.together,
                expires_at=offer.expires_at,
            )
            if offer
            else None
        ),
    )


def _tick_after_commit(event_id: int, returned_seat_ids: list[int] | None = None) -> None:
    def run() -> None:
        from booking.tasks import waiting_list_tick_task

        waiting_list_tick_task.delay(event_id, returned_seat_ids or [])

    transaction.on_commit(run, robust=True)


# --- Buyer ------------------------------------------------------------------------------


def waiting_list_open(event_id: int) -> bool:
    """The list takes returned seats now (someone waits and it is not paused)."""
    return waitlist_store.waitlist_gate_is_up(event_id=event_id)


def waiting_list_joinable(event: Event, *, now: datetime | None = None) -> bool:
    """A buyer may join: sales are open and nothing is on sale (every seat sold, held or
    offered), or the list already takes the seats that come back."""
    now = now or timezone.now()
    if not event.sales_open_at <= now < event.sales_close_at:
        return False
    if waiting_list_open(event.pk):
        return True
    published = seat_map_current(event.pk)
    return not any(status == SeatStatus.AVAILABLE for status in published.statuses.values())


def waiting_list_entry_get(*, event_id: int, user_id: int) -> EntryView | None:
    entry = WaitingListEntry.objects.filter(event_id=event_id, user_id=user_id).first()
    return entry_view(entry) if entry else None


def waiting_list_join(
    *, event_id: int, user_id: int, party_size: int, language: str
) -> tuple[EntryView, bool]:
    """Puts the buyer at the back of the list with a party of ``party_size`` seats; returns
    (entry, created). Already waiting: the party size changes and the place is kept
    (created False). Refusals: 409 ``sales_closed``, ``not_sold_out`` (seats are on sale:
    buy them), ``offer_out`` (answer the offer first); 400 ``limit_exceeded`` (more than
    the buyer may still buy); 403 ``removed_from_waiting_list``."""
    event = event_get(event_id)
    now = timezone.now()
    if now >= event.sales_close_at:
        raise DomainError("sales_closed", _("Sales for this event have closed."), status=409)
    cap = hold_cap(event_id=event_id, user_id=user_id, max_tickets_per_user=event.max_tickets_per_user)
    if party_size > cap:
        raise DomainError(
            "limit_exceeded",
            _("You can buy at most %(cap)d more seat(s) for this event.") % {"cap": cap},
            status=400,
            limit=cap,
        )
    entry = WaitingListEntry.objects.filter(event_id=event_id, user_id=user_id).first()
    if entry is not None:
        if entry.state == WaitingListState.REMOVED:
            raise DomainError(
                "removed_from_waiting_list",
                _("The organiser removed you from this waiting list."),
                status=403,
            )
        if entry.state == WaitingListState.OFFERED:
            raise DomainError(
                "offer_out", _("Seats are offered to you: accept or decline them first."), status=409
            )
        if entry.state == WaitingListState.WAITING:
            if entry.party_size != party_size:
                WaitingListEntry.objects.filter(pk=entry.pk, state=WaitingListState.WAITING).update(
                    party_size=party_size, updated_at=now
                )
                entry.refresh_from_db()
            return entry_view(entry), False
    if not waiting_list_joinable(event, now=now):
        raise DomainError(
            "not_sold_out", _("Seats are still on sale: choose them in the waiting room."), status=409
        )
    with transaction.atomic():
        entry, _created = WaitingListEntry.objects.update_or_create(
            event_id=event_id,
            user_id=user_id,
            defaults={
                "party_size": party_size,
                "state": WaitingListState.WAITING,
                "joined_at": now,
                "passed_over": False,
                "together_only": False,
                "language": language,
                "removed_by": None,
            },
        )
        _tick_after_commit(event_id)
    return entry_view(entry), True


def _offer_close(
    offer: WaitingListOffer, *, state: str, entry_state: str | None, now: datetime, keep_place: bool = False
) -> list[int] | None:
    """Ends an offer that is out (one conditional UPDATE, so of accept, decline and expiry
    exactly one wins): its seats are no longer offered. Returns the seats, or None when the
    offer was no longer out. Runs inside the caller's transaction."""
    if (
        WaitingListOffer.objects.filter(pk=offer.pk, state=WaitingListOfferState.OUT).update(
            state=state, closed_at=now
        )
        != 1
    ):
        return None
    seat_ids = list(offer.seat_ids)
    Seat.objects.filter(pk__in=seat_ids, status=SeatStatus.OFFERED).update(status=SeatStatus.AVAILABLE)
    if keep_place:
        WaitingListEntry.objects.filter(pk=offer.entry_id).update(
            state=WaitingListState.WAITING, together_only=True, updated_at=now
        )
    elif entry_state is not None:
        WaitingListEntry.objects.filter(pk=offer.entry_id, state=WaitingListState.OFFERED).update(
            state=entry_state, updated_at=now
        )
    return seat_ids


def _entry_for(event_id: int, user_id: int) -> WaitingListEntry:
    entry = WaitingListEntry.objects.filter(event_id=event_id, user_id=user_id).first()
    if entry is None:
        raise not_on_list_error()
    return entry


def _no_offer() -> DomainError:
    return DomainError("no_offer", _("No seats are offered to you right now."), status=409)


def offer_accept(*, event_id: int, user_id: int) -> Hold:
    """The offered seats become the buyer's holds with a fresh countdown to pay; the
    booking is then ``POST /api/bookings/`` as for any hold. 409 ``no_offer`` (none out,
    or it just ended), 409 ``offer_expired``."""
    event = event_get(event_id)
    entry = _entry_for(event_id, user_id)
    offer = _live_offer(entry)
    if offer is None:
        raise _no_offer()
    now = timezone.now()
    if offer.expires_at <= now:
        raise DomainError("offer_expired", _("The time to accept these seats has run out."), status=409)
    with transaction.atomic():
        if (
            WaitingListOffer.objects.filter(
                pk=offer.pk, state=WaitingListOfferState.OUT, expires_at__gt=now
            ).update(state=WaitingListOfferState.ACCEPTED, closed_at=now)
            != 1
        ):
            raise _no_offer()
        seat_ids = list(offer.seat_ids)
        if Seat.objects.filter(pk__in=seat_ids, status=SeatStatus.OFFERED).update(
            status=SeatStatus.AVAILABLE
        ) != len(seat_ids):
            raise DomainError("seat_unavailable", _("These seats are no longer available."), status=409)
        WaitingListEntry.objects.filter(pk=entry.pk).update(state=WaitingListState.ACCEPTED, updated_at=now)
        try:
            return waitlist_store.waitlist_accept(
                event_id=event_id, user_id=user_id, seat_ids=seat_ids, hold_seconds=event.hold_seconds
            )
        except HoldError as exc:
            raise DomainError(
                "seat_unavailable",
                _("These seats are no longer available."),
                status=409,
                seat_ids=exc.seat_ids,
            ) from exc


def offer_decline(*, event_id: int, user_id: int, keep_place: bool = False) -> EntryView:
    """Turns the offer down: the seats go to the next entry. ``keep_place`` (only for
    seats apart) keeps the buyer's place for seats together; otherwise the buyer leaves."""
    entry = _entry_for(event_id, user_id)
    offer = _live_offer(entry)
    if offer is None:
        raise _no_offer()
    if keep_place and offer.together:
        raise DomainError(
            "invalid", _("Only an offer of seats apart can be declined keeping your place."), status=400
        )
    now = timezone.now()
    with transaction.atomic():
        seat_ids = _offer_close(
            offer,
            state=WaitingListOfferState.DECLINED,
            entry_state=WaitingListState.DECLINED,
            now=now,
            keep_place=keep_place,
        )
        if seat_ids is None:
            raise _no_offer()
        _tick_after_commit(event_id, seat_ids)
    entry.refresh_from_db()
    return entry_view(entry)


def _entry_end(entry: WaitingListEntry, *, state: str, now: datetime, by_id: int | None = None) -> None:
    with transaction.atomic():
        returned: list[int] = []
        offer = _live_offer(entry)
        if offer is not None:
            returned = (
                _offer_close(offer, state=WaitingListOfferState.WITHDRAWN, entry_state=None, now=now) or []
            )
        WaitingListEntry.objects.filter(pk=entry.pk).update(state=state, removed_by_id=by_id, updated_at=now)
        _tick_after_commit(entry.event_id, returned)


def waiting_list_leave(*, event_id: int, user_id: int) -> None:
    """Leaves the list (an offer out is withdrawn and goes to the next entry)."""
    entry = _entry_for(event_id, user_id)
    if entry.state not in LIVE_STATES:
        raise not_on_list_error()
    _entry_end(entry, state=WaitingListState.LEFT, now=timezone.now())


# --- Staff ------------------------------------------------------------------------------


def waiting_list_entry_remove(*, event_id: int, entry_id: int, by_id: int) -> None:
    """Staff take an entry off the list (its offer, if out, is withdrawn); recorded with
    who did it. The buyer can't join this list again."""
    entry = WaitingListEntry.objects.filter(pk=entry_id, event_id=event_id).first()
    if entry is None or entry.state not in LIVE_STATES:
        raise DomainError("not_found", _("There is no such entry on the waiting list."), status=404)
    _entry_end(entry, state=WaitingListState.REMOVED, now=timezone.now(), by_id=by_id)
    logger.info("waiting list of event %s: entry %s removed by user %s", event_id, entry_id, by_id)


def waiting_list_pause(*, event_id: int, paused: bool, by_id: int) -> None:
    """Paused, returned seats go back on sale and no offer is made (offers out stay)."""
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event_id)
        if event.waiting_list_paused != paused:
            RushControlChange.objects.create(
                event=event,
                changed_by_id=by_id,
                changes={"waiting_list_paused": [event.waiting_list_paused, paused]},
            )
            Event.objects.filter(pk=event_id).update(waiting_list_paused=paused)
        _tick_after_commit(event_id)


def waiting_list_figures(*, event_id: int) -> dict[str, object]:
    """The staff dashboard's figures of the list."""
    entries = WaitingListEntry.objects.filter(event_id=event_id).aggregate(
        waiting=Count("pk", filter=Q(state=WaitingListState.WAITING)),
        waiting_seats=Sum("party_size", filter=Q(state=WaitingListState.WAITING)),
        parties=Count("pk", filter=Q(state=WaitingListState.WAITING, party_size__gt=1)),
        removed=Count("pk", filter=Q(state=WaitingListState.REMOVED)),
    )
    offers = WaitingListOffer.objects.filter(event_id=event_id).aggregate(
        out=Count("pk", filter=Q(state=WaitingListOfferState.OUT)),
        accepted=Count("pk", filter=Q(state=WaitingListOfferState.ACCEPTED)),
        declined=Count("pk", filter=Q(state=WaitingListOfferState.DECLINED)),
        expired=Count("pk", filter=Q(state=WaitingListOfferState.EXPIRED)),
    )
    paused = Event.objects.filter(pk=event_id).values_list("waiting_list_paused", flat=True).first()
    return {
        "paused": bool(paused),
        "open": waiting_list_open(event_id),
        "waiting": entries["waiting"],
        "waiting_seats": entries["waiting_seats"] or 0,
        "parties": entries["parties"],
        "removed": entries["removed"],
        "offers_out": offers["out"],
        "accepted": offers["accepted"],
        "declined": offers["declined"],
        "expired": offers["expired"],
        "pool_seats": get_redis().zcard(EventKeys(event_id).waitlist_pool),
    }


def waiting_list_entries(*, event_id: int, limit: int = 50) -> list[WaitingListEntry]:
    """The line as staff see it: waiting entries first (in order), then offers out."""
    entries = list(
        WaitingListEntry.objects.filter(event_id=event_id, state__in=LIVE_STATES)
        .select_related("user")
        .order_by("state", "joined_at", "pk")[:limit]
    )
    # "offered" sorts before "waiting": the line reads better with the waiting first.
    return sorted(
        entries, key=lambda entry: (entry.state != WaitingListState.WAITING, entry.joined_at, entry.pk)
    )


# --- The tick -----------------------------------------------------------------------------


def seats_on_offer(event_id: int) -> list[int]:
    """The seats of the event's offers that are out."""
    return [
        seat_id
        for seat_ids in WaitingListOffer.objects.filter(
            event_id=event_id, state=WaitingListOfferState.OUT
        ).values_list("seat_ids", flat=True)
        for seat_id in seat_ids
    ]


@dataclass(frozen=True)
class TickReport:
    open: bool
    pool: int
    offers: int
    expired: int


def _offers_expire(event_id: int, now: datetime) -> tuple[list[int], list[int]]:
    """Ends the offers whose deadline passed; returns (their seats, the offer ids)."""
    returned: list[int] = []
    expired: list[int] = []
    due = WaitingListOffer.objects.filter(
        event_id=event_id, state=WaitingListOfferState.OUT, expires_at__lte=now
    )
    for offer in due:
        with transaction.atomic():
            seat_ids = _offer_close(
                offer, state=WaitingListOfferState.EXPIRED, entry_state=WaitingListState.EXPIRED, now=now
            )
            if seat_ids is None:
                continue
            offer_id = offer.pk
            transaction.on_commit(lambda offer_id=offer_id: _queue_mail("expired", offer_id), robust=True)
        returned += seat_ids
        expired.append(offer_id)
    return returned, expired


def _queue_mail(kind: str, offer_id: int) -> None:
    from booking.tasks import send_waiting_list_expired_email, send_waiting_list_offer_email

    (send_waiting_list_offer_email if kind == "offer" else send_waiting_list_expired_email).delay(offer_id)


class _SeatsGone(Exception):
    def __init__(self, seat_ids: list[int]) -> None:
        self.seat_ids = seat_ids


def _offer_make(*, event: Event, entry_id: int, seat_ids: list[int], together: bool, now: datetime) -> bool:
    """One offer, one transaction: the entry ``waiting -> offered`` and its seats
    ``available -> offered`` (the guard), or nothing. False when the entry is no longer
    waiting; raises _SeatsGone when a seat is sold or already offered."""
    with transaction.atomic():
        if (
            WaitingListEntry.objects.filter(pk=entry_id, state=WaitingListState.WAITING).update(
                state=WaitingListState.OFFERED, updated_at=now
            )
            != 1
        ):
            return False
        if guards.seats_offer(event_id=event.pk, seat_ids=seat_ids) != len(seat_ids):
            gone = list(
                Seat.objects.filter(pk__in=seat_ids)
                .exclude(status=SeatStatus.AVAILABLE)
                .values_list("pk", flat=True)
            )
            transaction.set_rollback(True)
            raise _SeatsGone(gone or seat_ids)
        # "Available" is also what an accepted offer's seats are (they are the buyer's
        # holds until the booking): a tick that read the pool before that accept must not
        # offer them again. The accept hands the keys over before it commits, and this
        # runs after the guard waited for that commit, so the keys tell.
        held_by_buyers = waitlist_store.waitlist_seats_not_held(event_id=event.pk, seat_ids=seat_ids)
        if held_by_buyers:
            transaction.set_rollback(True)
            raise _SeatsGone(held_by_buyers)
        # Stamped once the guard let it through, not at the tick's start: the offer's life
        # begins after the previous one on these seats ended (the audit relies on it).
        offered_at = max(now, timezone.now())
        offer = WaitingListOffer.objects.create(
            entry_id=entry_id,
            event=event,
            seat_ids=sorted(seat_ids),
            together=together,
            created_at=offered_at,
            expires_at=offered_at + timedelta(minutes=event.waiting_list_offer_minutes),
        )
        event_id, offer_id = event.pk, offer.pk
        transaction.on_commit(
            lambda: waitlist_store.waitlist_pool_take(event_id=event_id, seat_ids=seat_ids), robust=True
        )
        transaction.on_commit(lambda: _queue_mail("offer", offer_id), robust=True)
    return True


def waiting_list_tick(
    event_id: int, *, returned_seat_ids: list[int] | None = None, now: datetime | None = None
) -> TickReport:
    """Expires offers past their deadline, raises or lowers the gate, takes the seats that
    came back into the pool and makes the offers the rule decides. Safe to run anywhere
    and concurrently: the guards decide, a lost race changes nothing."""
    now = now or timezone.now()
    event = Event.objects.get(pk=event_id)
    returned, expired = _offers_expire(event_id, now)
    returned += list(returned_seat_ids or [])
    waiters = [
        Waiter(entry_id=pk, party_size=size, passed_over=passed, together_only=together)
        for pk, size, passed, together in WaitingListEntry.objects.filter(
            event_id=event_id, state=WaitingListState.WAITING
        )
        .order_by("joined_at", "pk")
        .values_list("pk", "party_size", "passed_over", "together_only")
    ]
    open_ = bool(waiters) and not event.waiting_list_paused and now < event.sales_close_at
    pool = waitlist_store.waitlist_sync(
        event_id=event_id,
        open_=open_,
        now_ms=_now_ms(now),
        offered_seat_ids=seats_on_offer(event_id),
        returned_seat_ids=returned,
    )
    made = 0
    if open_ and pool.returned_ms:
        seats = [
            PoolSeat(id=pk, section=section, row=row, number=number, returned_ms=pool.returned_ms[pk])
            for pk, section, row, number in Seat.objects.filter(
                event_id=event_id, pk__in=list(pool.returned_ms)
            ).values_list("pk", "section", "row", "number")
        ]
        decision = allocate(
            pool=seats,
            waiters=waiters,
            now_ms=_now_ms(now),
            gather_ms=event.waiting_list_gather_seconds * 1000,
        )
        if decision.passed_over:
            WaitingListEntry.objects.filter(pk__in=decision.passed_over).update(passed_over=True)
        for offer in decision.offers:
            try:
                made += _offer_make(
                    event=event,
                    entry_id=offer.entry_id,
                    seat_ids=offer.seat_ids,
                    together=offer.together,
                    now=now,
                )
            except _SeatsGone as gone:
                # Sold (a stale map) or offered by a concurrent tick: out of this pool.
                waitlist_store.waitlist_pool_take(event_id=event_id, seat_ids=gone.seat_ids)
                break
        if (
            made
            and not WaitingListEntry.objects.filter(
                event_id=event_id, state=WaitingListState.WAITING
            ).exists()
        ):
            # The last waiter got seats: the rest of the pool goes back on sale.
            pool = waitlist_store.waitlist_sync(event_id=event_id, open_=False, now_ms=_now_ms(now))
            open_ = False
    return TickReport(open=open_, pool=len(pool.returned_ms), offers=made, expired=len(expired))


def waiting_list_has_waiters(event_id: int) -> bool:
    return WaitingListEntry.objects.filter(event_id=event_id, state=WaitingListState.WAITING).exists()


def waiting_list_event_ids() -> list[int]:
    """Events whose list needs ticking: someone waits or holds an offer."""
    recent = timezone.now() - timedelta(days=1)
    return list(
        WaitingListEntry.objects.filter(
            state__in=LIVE_STATES, event__is_published=True, event__sales_close_at__gt=recent
        )
        .values_list("event_id", flat=True)
        .distinct()
    )
