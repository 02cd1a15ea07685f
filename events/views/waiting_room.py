"""The waiting-room page (buyers).

It renders its first state on the server (it works, read-only, without JavaScript) and
then follows the JSON API: ``static/js/waiting_room.js`` polls ``/api/events/<id>/queue/``
at the interval the server suggests, sending the queue ticket of the last answer so that
most polls are answered from the serving cursor. The content security policy allows no
inline script, so the script takes its configuration and its (translated) texts from
``data-`` attributes.
"""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from booking.waiting_list_views import waiting_list_link, waiting_list_url
from events import selectors
from events.models import Event, EventStatus
from events.services.join_clients import device_cookie_ensure, join_client
from events.services.waiting_room import (
    QueueAnswer,
    queue_answer_payload,
    queue_join,
    queue_leave,
    queue_status_get,
)
from queueing.pulse import pulse_get
from ticketing.errors import DomainError


def seat_picker_url(event_id: int) -> str:
    """Where an admitted buyer goes next (the seat picker page)."""
    return f"/events/{int(event_id)}/pick/"


def _start_position_key(event_id: int) -> str:
    return f"queue_start_position:{event_id}"


# "Get tickets" while signed out: sign up or log in, then straight into the line.
JOIN_ON_ARRIVAL_KEY = "queue_join_on_arrival"
# A mark older than this is dropped unused (the buyer went elsewhere after logging in).
JOIN_ON_ARRIVAL_SECONDS = 600


def waiting_room_event_id(url: str) -> int | None:
    """The event id when ``url`` (a path on this site) is a waiting room, else None."""
    try:
        match = resolve(urlsplit(url).path)
    except Resolver404:
        return None
    if match.view_name != "events:waiting_room":
        return None
    return int(match.kwargs["event_id"])


def waiting_room_event(url: str) -> Event | None:
    """The published event whose waiting room ``url`` is, else None."""
    event_id = waiting_room_event_id(url)
    return selectors.event_detail_get(event_id) if event_id is not None else None


def join_on_arrival_mark(request: HttpRequest, next_url: str) -> None:
    """Called right after a sign-up or log-in that goes on to ``next_url``: when that is
    a waiting room, the room joins its line when the buyer arrives (once), without
    another press. Sign-up and log-in are the buyer's own CSRF-checked POSTs, so they
    stand for the press of "Join"; a GET can never set this mark.

    ``next_url`` must come from ``RedirectURLMixin.get_redirect_url()``, which checks
    it with ``url_has_allowed_host_and_scheme`` and gives "" for anything unsafe (another
    host, a scheme): an unsafe ``next`` is never followed and marks nothing."""
    event_id = waiting_room_event_id(next_url) if next_url else None
    if event_id is not None:
        request.session[JOIN_ON_ARRIVAL_KEY] = {"event_id": event_id, "at": int(time.time())}


def _join_on_arrival_take(request: HttpRequest, event_id: int) -> bool:
    """Whether this visit should join the line: the mark is for this event and fresh.
    Spent either way, so a reload never joins again."""
    mark = request.session.get(JOIN_ON_ARRIVAL_KEY)
    if not isinstance(mark, dict) or mark.get("event_id") != event_id:
        return False
    del request.session[JOIN_ON_ARRIVAL_KEY]
    return time.time() - float(mark.get("at", 0)) <= JOIN_ON_ARRIVAL_SECONDS


def eta_text(eta_seconds: int | None) -> str:
    """The estimated wait in words; ``static/js/waiting_room.js`` formats it the same way
    from the page's ``data-msg-eta-*`` texts."""
    if eta_seconds is None:
        return _("Calculating…")
    if eta_seconds < 60:
        return _("Less than a minute")
    minutes = math.ceil(eta_seconds / 60)
    if minutes < 60:
        return _("About {n} min").format(n=minutes)
    return _("About {h} h {m} min").format(h=minutes // 60, m=minutes % 60)


def progress_percent(*, start_position: int | None, position: int | None) -> int:
    """How far the buyer has come from the place they started at (0-100)."""
    if not position or not start_position or start_position <= 1:
        return 100 if position == 1 else 0
    return round((start_position - position) / (start_position - 1) * 100)


def _waiting_list_link(
    request: HttpRequest, event: Event, *, status: str, state: str
) -> dict[str, Any] | None:
    """The "Join the waiting list" link of the sold-out panels. Looked up (Redis, database)
    only when the page shows sold out; for a buyer still in line it is put in the hidden
    panel the script reveals when the queue reports sold out, which is when the list
    takes newcomers. Nothing is added to the rush's hot path (an event on sale)."""
    if status == EventStatus.SOLD_OUT or state == "sold_out":
        return waiting_list_link(event=event, user=request.user, status=status)
    if state == "waiting":
        return {"url": waiting_list_url(event.pk), "on_list": False}
    return None


def _join_error_message(error: DomainError) -> str:
    if error.code == "sales_closed":
        return _("Sales for this event are closed.")
    if error.code == "sold_out":
        return _("Sold out: every seat of this event has been sold.")
    if error.code == "pow_required":
        return _(
            "This sale asks your browser to do a short check before joining. "
            "Please turn on JavaScript and try again."
        )
    if error.code in ("pow_invalid", "pow_expired", "pow_replayed", "pow_mismatch"):
        return _("The check before joining did not go through. Please try again.")
    if error.code in ("too_many_attempts", "removed_from_queue"):
        return str(error.detail)
    return _("You could not join the waiting room. Please try again.")


# Signed out: the sign-up page (with a log-in form for returning buyers), then back here.
@login_required(login_url="accounts:signup")
@require_http_methods(["GET", "HEAD", "POST"])
def waiting_room(request: HttpRequest, event_id: int) -> HttpResponse:
    event = selectors.event_detail_get(event_id)
    if event is None:
        raise Http404
    if request.method == "POST":
        return _waiting_room_post(request, event)

    # A GET only: a HEAD (a link checker, a prefetch) must not spend the mark or join.
    join_on_arrival = request.method == "GET" and _join_on_arrival_take(request, event.pk)
    payload: dict[str, Any] | None = None
    try:
        answer, event_settings = queue_status_get(event_id=event.pk, user_id=request.user.pk)
        payload = queue_answer_payload(answer, event=event_settings)
    except DomainError as error:
        if error.code != "not_in_queue":
            raise
    status = selectors.event_status(event)
    can_join = status in ("scheduled", "on_sale")
    just_joined = False
    join_when_checked = False
    if join_on_arrival and payload is None and can_join:
        if event.pow_difficulty:
            # The browser must solve the check first: the page joins when it is done.
            join_when_checked = True
        else:
            joined = _join(request, event)
            if joined is not None:
                answer, event_settings = joined
                payload = queue_answer_payload(answer, event=event_settings)
                just_joined = True
    key = _start_position_key(event.pk)
    state = payload["state"] if payload else "none"
    # In line, but not from this browser session: joined on another device or tab (or
    # through the API). One place per account: say that the place is kept.
    joined_elsewhere = state in ("waiting", "active") and key not in request.session and not just_joined
    start_position = request.session.get(key)
    position = payload["position"] if payload else None
    if position and (not start_position or start_position < position):
        start_position = position
        request.session[key] = position
    progress = progress_percent(start_position=start_position, position=position)
    response = render(
        request,
        "events/waiting_room.html",
        {
            "event": event,
            "event_status": status,
            "queue": payload,
            "state": state,
            "eta_text": eta_text(payload["eta_seconds"] if payload else None),
            "can_join": can_join,
            "join_when_checked": join_when_checked,
            "joined_elsewhere": joined_elsewhere,
            "before_opening": timezone.now() < event.sales_open_at,
            # Staff paused admission: said on the page (static/js/waiting_room.js follows it).
            "paused": pulse_get(event.pk).paused,
            "start_position": start_position or "",
            "progress": progress,
            # xgettext:no-python-format  ("% o" is not a placeholder: this is a brace format)
            "progress_text": _("{percent}% of the way to the front").format(percent=progress),
            "pick_url": seat_picker_url(event.pk),
            "silent_minutes": max(1, math.ceil(settings.QUEUE_SILENT_SECONDS / 60)),
            # Also for someone in line: the join form can come back (left in another tab).
            "pow_required": bool(event.pow_difficulty),
            "challenge_url": reverse("api-event-queue-challenge", args=[event.pk]),
            "waiting_list": _waiting_list_link(request, event, status=status, state=state),
        },
    )
    device_cookie_ensure(request, response)
    return response


def _join(request: HttpRequest, event: Event) -> tuple[QueueAnswer, selectors.EventSettings] | None:
    """Joins the line (the join button, or the arrival after sign-up / log-in); on a
    refusal adds the message the page shows and returns None."""
    try:
        answer, event_settings, newly_joined = queue_join(
            event_id=event.pk,
            user_id=request.user.pk,
            solution=request.POST.get("altcha") or None,
            client=join_client(request),
        )
    except DomainError as error:
        if error.status == 404:
            raise Http404 from error
        messages.error(request, _join_error_message(error))
        return None
    key = _start_position_key(event.pk)
    if answer.position and (newly_joined or key not in request.session):
        # Where the buyer started: the page's progress bar measures from here.
        request.session[key] = answer.position
    return answer, event_settings


def _waiting_room_post(request: HttpRequest, event: Event) -> HttpResponse:
    """``action=join`` (the "Join the waiting room" button) or ``action=leave``; then back
    to the page (post/redirect/get), which shows the place in line."""
    here = reverse("events:waiting_room", args=[event.pk])
    if request.POST.get("action") == "leave":
        queue_leave(event_id=event.pk, user_id=request.user.pk)
        request.session.pop(_start_position_key(event.pk), None)
        messages.info(request, _("You left the waiting room."))
        return redirect(here)
    _join(request, event)
    return redirect(here)
