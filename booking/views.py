"""Booking pages: seat picker, checkout, my tickets (list, detail with QR, cancel).

Server-rendered and usable without JavaScript (every action is a CSRF-protected form
POST followed by a redirect); ``static/js/seat_picker.js`` adds the live map, multi-seat
selection and the countdown on top. No inline scripts (CSP ``script-src 'self'``):
configuration travels in data- attributes.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from booking import selectors, services
from booking.human_check import human_check_pass, human_check_passed
from booking.models import Booking, BookingStatus
from booking.qr import qr_svg
from booking.ticket_signing import qr_payload
from events.models import Event
from events.selectors import event_detail_get
from events.views.catalogue import seat_sections
from queueing.line import pass_expires_at_ms
from ticketing.errors import DomainError


def _event_or_404(event_id: int) -> Event:
    event = event_detail_get(event_id)
    if event is None:
        raise Http404
    return event


def _seat_ids_from(request: HttpRequest) -> list[int]:
    try:
        return [int(value) for value in request.POST.getlist("seat_ids")]
    except ValueError:
        return []


def _to_waiting_room(request: HttpRequest, event_id: int) -> HttpResponse:
    messages.info(
        request,
        _("Your turn to choose seats has not come yet, or it has ended. Please wait in the waiting room."),
    )
    return redirect("events:waiting_room", event_id=event_id)


# The booking just made at checkout: its page shows the last step of the indicator.
JUST_BOOKED_KEY = "booking_just_made"


def _refusal_message(exc: DomainError, *, event_id: int) -> str:
    """The text shown for a refused hold or booking; a lost seat is named, so the buyer
    knows which one to replace."""
    # The API's texts speak of holds; the pages say it in the buyer's words.
    if exc.code == "hold_missing":
        return _("The time to pay for these seats ran out, so they went back on sale. Please choose again.")
    if exc.code == "limit_exceeded":
        return _("You can choose at most %(cap)d seats.") % {"cap": exc.extra.get("limit", 0)}
    seat_ids = exc.extra.get("seat_ids") or []
    if exc.code != "seat_unavailable" or not seat_ids:
        return str(exc.detail)
    seats = selectors.seats_in_seat_order(event_id=event_id, seat_ids=seat_ids)
    names = ", ".join(
        _("Section %(section)s, row %(row)s-%(number)s")
        % {"section": seat.section, "row": seat.row, "number": seat.number}
        for seat in seats
    )
    return ngettext(
        "Sorry, this seat was just taken by someone else: %(seats)s. Please choose another.",
        "Sorry, these seats were just taken by someone else: %(seats)s. Please choose others.",
        len(seat_ids),
    ) % {"seats": names}


@login_required
@require_http_methods(["GET", "POST"])
def seat_picker(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event_or_404(event_id)
    if request.method == "POST":
        if request.POST.get("action") == "human_check":
            return _human_check_post(request, event_id)
        return _seat_picker_post(request, event_id)
    if event.human_check and not human_check_passed(event_id=event_id, user_id=request.user.pk):
        return _human_check_page(request, event)
    state = selectors.seat_picker_state(
        event_id=event_id, user_id=request.user.pk, max_tickets_per_user=event.max_tickets_per_user
    )
    if state is None:
        return _to_waiting_room(request, event_id)
    return render(
        request,
        "booking/seat_picker.html",
        {
            "event": event,
            "sections": seat_sections(state.seat_map.seats(), mine=set(state.held.seat_ids)),
            "seat_map_etag": state.seat_map.etag,
            "held": state.held,
            "cap": state.cap,
            # The one clock of this page: the time left to choose seats (the pass).
            "pass_expires_at_ms": state.pass_expires_at_ms,
            "pass_expires_at": datetime.fromtimestamp(state.pass_expires_at_ms / 1000, tz=UTC)
            if state.pass_expires_at_ms
            else None,
            "server_now_ms": int(time.time() * 1000),
        },
    )


def _seat_picker_post(request: HttpRequest, event_id: int) -> HttpResponse:
    """The no-JavaScript path: a seat button submits its id and the seat is kept for the
    buyer at once; "next" goes on to checkout; "release" gives back all. (With
    JavaScript, seats are chosen in the browser and kept all at once by "Next", through
    the holds API.) Keeping or giving back seats needs a live pass."""
    action = request.POST.get("action")
    if action == "next":
        if selectors.held_seats_get(event_id=event_id, user_id=request.user.pk).seats:
            return redirect("booking:checkout", event_id=event_id)
        messages.error(request, _("Choose at least one seat."))
        return redirect("booking:seat_picker", event_id=event_id)
    if not selectors.pass_is_live(event_id=event_id, user_id=request.user.pk):
        return _to_waiting_room(request, event_id)
    try:
        if action == "release":
            services.seats_release(event_id=event_id, user_id=request.user.pk)
            messages.info(request, _("Your seats were given back. Choose again."))
        else:
            seat_ids = _seat_ids_from(request)
            if not seat_ids:
                messages.error(request, _("Choose at least one seat."))
            else:
                services.seats_hold(event_id=event_id, user_id=request.user.pk, seat_ids=seat_ids)
                messages.success(request, _("Added to your seats. Choose more, or press Next."))
    except DomainError as exc:
        if exc.code == "not_admitted":
            return _to_waiting_room(request, event_id)
        messages.error(request, _refusal_message(exc, event_id=event_id))
    return redirect("booking:seat_picker", event_id=event_id)


def _human_check_page(request: HttpRequest, event: Event) -> HttpResponse:
    """The check before seat selection (booking.human_check), for a buyer with a pass."""
    expires_ms = pass_expires_at_ms(event_id=event.pk, user_id=request.user.pk)
    if expires_ms is None:
        return _to_waiting_room(request, event.pk)
    return render(
        request,
        "booking/human_check.html",
        {
            "event": event,
            "challenge_url": reverse("api-human-check-challenge", args=[event.pk]),
            "pass_expires_at_ms": expires_ms,
            "server_now_ms": int(time.time() * 1000),
        },
    )


def _human_check_post(request: HttpRequest, event_id: int) -> HttpResponse:
    try:
        human_check_pass(event_id=event_id, user_id=request.user.pk, payload=request.POST.get("altcha", ""))
    except DomainError as exc:
        if exc.code == "not_admitted":
            return _to_waiting_room(request, event_id)
        messages.error(request, _("The check did not go through. Please tick the box again."))
    return redirect("booking:seat_picker", event_id=event_id)


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event_or_404(event_id)
    if request.method == "POST":
        key = request.POST.get("idempotency_key", "")[: services.MAX_IDEMPOTENCY_KEY_LENGTH] or None
        try:
            booking, created = services.booking_confirm(
                user_id=request.user.pk,
                event_id=event_id,
                seat_ids=_seat_ids_from(request),
                idempotency_key=key,
                language=get_language(),
            )
        except DomainError as exc:
            if exc.code == "not_admitted":
                return _to_waiting_room(request, event_id)
            messages.error(request, _refusal_message(exc, event_id=event_id))
            return redirect("booking:seat_picker", event_id=event_id)
        if created:
            messages.success(request, _("Booking confirmed. Your tickets are on their way to your inbox."))
            request.session[JUST_BOOKED_KEY] = booking.code
        return redirect("booking:booking_detail", code=booking.code)

    held = selectors.held_seats_get(event_id=event_id, user_id=request.user.pk)
    if not held.seats:
        messages.info(request, _("You have no seats for this event yet. Choose your seats first."))
        return redirect("booking:seat_picker", event_id=event_id)
    return render(
        request,
        "booking/checkout.html",
        {
            "event": event,
            "held": held,
            # A new key per rendered page: a double submit of this form books once.
            "idempotency_key": uuid.uuid4().hex,
            "server_now_ms": int(time.time() * 1000),
        },
    )


@login_required
def my_tickets(request: HttpRequest) -> HttpResponse:
    paginator = Paginator(selectors.booking_list_for_user(user_id=request.user.pk), 20)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "booking/my_tickets.html", {"page": page, "bookings": page.object_list})


def _booking_or_404(request: HttpRequest, code: str) -> Booking:
    booking = selectors.booking_get_for_user(code=code, user_id=request.user.pk)
    if booking is None:
        raise Http404
    return booking


@login_required
def booking_detail(request: HttpRequest, code: str) -> HttpResponse:
    booking = _booking_or_404(request, code)
    tickets = [
        {
            "ticket": ticket,
            "seat": ticket.seat,
            # booking.qr output: numbers and an escaped title, no script; safe to embed. The QR carries the signed
            # payload the door scanner checks (booking.ticket_signing).
            "qr": mark_safe(qr_svg(qr_payload(event_id=booking.event_id, ticket_code=ticket.code)))  # noqa: S308
            if booking.status == BookingStatus.CONFIRMED
            else None,
        }
        for ticket in booking.tickets.all()
    ]
    # Right after checkout, the page is the last of the three steps (once: not when the
    # ticket is looked at again later).
    just_booked = request.session.get(JUST_BOOKED_KEY) == booking.code
    if just_booked:
        del request.session[JUST_BOOKED_KEY]
    return render(
        request,
        "booking/booking_detail.html",
        {"booking": booking, "tickets": tickets, "just_booked": just_booked},
    )


@login_required
@require_http_methods(["GET", "POST"])
def booking_cancel(request: HttpRequest, code: str) -> HttpResponse:
    booking = _booking_or_404(request, code)
    if request.method == "POST":
        try:
            services.booking_cancel(booking=booking, by_user=request.user)
        except DomainError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, _("Your booking was cancelled."))
        return redirect("booking:booking_detail", code=booking.code)
    if booking.status != BookingStatus.CONFIRMED:
        messages.info(request, _("This booking is already cancelled."))
        return redirect("booking:booking_detail", code=booking.code)
    return render(
        request,
        "booking/booking_cancel.html",
        {"booking": booking, "detail_url": reverse("booking:booking_detail", args=[booking.code])},
    )
