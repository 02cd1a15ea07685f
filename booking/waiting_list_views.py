"""The waiting-list page of a sold-out event (buyers), and the read-only helpers the other
pages use to point to it (the event page, the waiting room, the offer banner).

The page joins the list with a party size, shows the place in line, and answers an offer:
accept (the seats become the buyer's holds, then the regular checkout), decline, or, for
seats apart, decline keeping the place for seats together. Server-rendered and usable
without JavaScript: every action is a CSRF-protected form POST to the services of
``booking.waiting_list`` followed by a redirect; a refusal (``DomainError``) comes back as
a message on the page. ``static/js/waiting_list.js`` adds the offer's countdown and, while
waiting, reloads the page when an offer arrives. No inline scripts (CSP ``script-src
'self'``): configuration travels in data- attributes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from booking import selectors
from booking import waiting_list as service
from booking.models import WaitingListEntry, WaitingListOffer, WaitingListOfferState, WaitingListState
from events.models import Event, EventStatus
from events.selectors import event_detail_get
from ticketing.errors import DomainError

# The API's bound (booking.api.waiting_list.PARTY_SIZE_MAX); the buyer's cap is lower.
PARTY_SIZE_MAX = 20

# An entry that is no longer on the list: the page says what happened and may offer to join again.
ENDED_STATES = (
    WaitingListState.ACCEPTED,
    WaitingListState.DECLINED,
    WaitingListState.EXPIRED,
    WaitingListState.LEFT,
)


def waiting_list_url(event_id: int) -> str:
    return reverse("booking:waiting_list", args=[event_id])


# --- Read-only helpers for other pages ------------------------------------------------------


@dataclass(frozen=True)
class OfferNotice:
    """An offer out to the signed-in buyer, as the banner on every page shows it."""

    event_id: int
    event_title: str
    expires_at: datetime
    url: str


def offer_notice_for_user(user_id: int) -> OfferNotice | None:
    """The buyer's live offer with the nearest deadline (any event), or None. One query:
    the entry's user index finds the buyer's few entries, then their offers by entry."""
    row = (
        WaitingListOffer.objects.filter(
            entry__user_id=user_id, state=WaitingListOfferState.OUT, expires_at__gt=timezone.now()
        )
        .order_by("expires_at")
        .values("event_id", "event__title", "expires_at")
        .first()
    )
    if row is None:
        return None
    return OfferNotice(
        event_id=row["event_id"],
        event_title=row["event__title"],
        expires_at=row["expires_at"],
        url=waiting_list_url(row["event_id"]),
    )


def on_waiting_list(*, event_id: int, user_id: int) -> bool:
    """The buyer waits on the event's list or holds an offer from it."""
    return WaitingListEntry.objects.filter(
        event_id=event_id, user_id=user_id, state__in=service.LIVE_STATES
    ).exists()


def waiting_list_link(*, event: Event, user: Any, status: str) -> dict[str, Any] | None:
    """What the event page and the waiting room show to point to the list: ``{"url",
    "on_list"}`` when the buyer may join it or is on it, else None. ``status`` is the
    event's sales status. Cheap on the rush's path: nothing for a scheduled or closed
    event, and while seats are on sale one Redis lookup and the in-process seat map, no
    database query (nobody needs the list then; a buyer on it gets the mail and the
    banner when seats are offered)."""
    if status not in (EventStatus.ON_SALE, EventStatus.SOLD_OUT):
        return None
    joinable = service.waiting_list_joinable(event)
    if not joinable and status != EventStatus.SOLD_OUT:
        return None
    on_list = user.is_authenticated and on_waiting_list(event_id=event.pk, user_id=user.pk)
    if not (on_list or joinable):
        return None
    return {"url": waiting_list_url(event.pk), "on_list": on_list}


# --- The page ---------------------------------------------------------------------------------


def _event_or_404(event_id: int) -> Event:
    event = event_detail_get(event_id)
    if event is None:
        raise Http404
    return event


def _party_size_from(request: HttpRequest) -> int | None:
    try:
        return int(request.POST.get("party_size", ""))
    except ValueError:
        return None


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def waiting_list(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event_or_404(event_id)
    if request.method == "POST":
        return _waiting_list_post(request, event)
    return render(request, "booking/waiting_list.html", _page_context(request, event))


def _page_context(request: HttpRequest, event: Event) -> dict[str, Any]:
    user_id = request.user.pk
    now = timezone.now()
    entry = service.waiting_list_entry_get(event_id=event.pk, user_id=user_id)
    cap = selectors.hold_cap(
        event_id=event.pk, user_id=user_id, max_tickets_per_user=event.max_tickets_per_user
    )
    sales_closed = now >= event.sales_close_at
    state = entry.state if entry else "none"
    if state == WaitingListState.OFFERED and entry and entry.offer is None:
        # The offer just ended (a tick is about to record it): say so rather than show nothing.
        state = WaitingListState.EXPIRED
    context: dict[str, Any] = {
        "event": event,
        "entry": entry,
        "state": state,
        "cap": cap,
        "party_sizes": range(1, min(cap, PARTY_SIZE_MAX) + 1),
        "offer_minutes": event.waiting_list_offer_minutes,
        "sales_closed": sales_closed,
        "before_opening": now < event.sales_open_at,
        "server_now_ms": int(time.time() * 1000),
        "waiting_room_url": reverse("events:waiting_room", args=[event.pk]),
        "checkout_url": reverse("booking:checkout", args=[event.pk]),
        "status_url": reverse("api-waiting-list", args=[event.pk]),
    }
    if entry and entry.offer and state == WaitingListState.OFFERED:
        offer = entry.offer
        context["offer"] = offer
        context["offer_seats"] = selectors.seats_in_seat_order(event_id=event.pk, seat_ids=offer.seat_ids)
        context["offer_expires_at_ms"] = int(offer.expires_at.timestamp() * 1000)
        context["offer_expired"] = offer.expires_at <= now
    if state == WaitingListState.ACCEPTED:
        context["holds_live"] = bool(selectors.held_seats_get(event_id=event.pk, user_id=user_id).seats)
    # The cap is lowered by the seats the buyer already booked for this event.
    context["has_tickets"] = cap < event.max_tickets_per_user
    # Joining (again) is offered when not on the list and the list takes newcomers.
    may_join = state == "none" or state in ENDED_STATES
    context["joinable"] = (
        may_join and not sales_closed and cap > 0 and service.waiting_list_joinable(event, now=now)
    )
    return context


def _waiting_list_post(request: HttpRequest, event: Event) -> HttpResponse:
    """``action``: join (also changes the party size while waiting), leave, accept,
    decline, decline_keep_place. Then back to the page (post/redirect/get), except after a
    successful accept, which goes on to checkout."""
    here = waiting_list_url(event.pk)
    action = request.POST.get("action")
    user_id = request.user.pk
    try:
        if action == "join":
            return _join(request, event, here)
        if action == "leave":
            service.waiting_list_leave(event_id=event.pk, user_id=user_id)
            messages.info(request, _("You left the waiting list."))
        elif action == "accept":
            service.offer_accept(event_id=event.pk, user_id=user_id)
            messages.success(
                request, _("The seats are yours to buy now. Confirm your booking before the countdown ends.")
            )
            return redirect("booking:checkout", event_id=event.pk)
        elif action == "decline":
            service.offer_decline(event_id=event.pk, user_id=user_id)
            messages.info(
                request, _("You declined the seats. They go to the next person on the waiting list.")
            )
        elif action == "decline_keep_place":
            service.offer_decline(event_id=event.pk, user_id=user_id, keep_place=True)
            messages.info(
                request,
                _("You declined the seats and kept your place. You will only be offered seats together."),
            )
        else:
            messages.error(request, _("Please use the buttons on this page."))
    except DomainError as exc:
        messages.error(request, str(exc.detail))
    return redirect(here)


def _join(request: HttpRequest, event: Event, here: str) -> HttpResponse:
    """Joins the list, or changes the party size keeping the place. Must be called inside
    ``_waiting_list_post``'s ``DomainError`` handler."""
    cap = selectors.hold_cap(
        event_id=event.pk, user_id=request.user.pk, max_tickets_per_user=event.max_tickets_per_user
    )
    party_size = _party_size_from(request)
    if party_size is None or not 1 <= party_size <= min(max(cap, 1), PARTY_SIZE_MAX):
        messages.error(
            request,
            _("Choose how many seats you need: from 1 to %(cap)d.") % {"cap": max(cap, 1)},
        )
        return redirect(here)
    entry, created = service.waiting_list_join(
        event_id=event.pk, user_id=request.user.pk, party_size=party_size, language=get_language() or "en"
    )
    if created:
        messages.success(
            request,
            _("You are on the waiting list. Your place: %(position)s.") % {"position": entry.position},
        )
    else:
        messages.success(
            request,
            _("Party size changed to %(size)d. You keep your place in line.") % {"size": entry.party_size},
        )
    return redirect(here)
