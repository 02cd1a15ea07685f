"""Waiting-room page (buyers) and live rush dashboard (staff).

Both pages render their first state on the server (they work, read-only, without
JavaScript) and then follow the JSON API: ``static/js/waiting_room.js`` polls
``/api/events/<id>/queue/`` at the interval the server suggests, and
``static/js/rush_dashboard.js`` polls and PATCHes ``/api/staff/events/<id>/rush/``.
The content security policy allows no inline script, so the scripts take their
configuration and their (translated) texts from ``data-`` attributes.
"""

from __future__ import annotations

import math
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from events import selectors
from events import waiting_room as queue_service
from events.models import Event, RushControlChange
from events.rush_control import (
    CAPACITY_MAX,
    CAPACITY_MIN,
    PASS_SECONDS_MAX,
    PASS_SECONDS_MIN,
    rush_state_get,
)
from ticketing.errors import DomainError

DASHBOARD_POLL_MS = 2000
RECENT_CHANGES_SHOWN = 10


def seat_picker_url(event_id: int) -> str:
    """Where an admitted buyer goes next (the seat picker page)."""
    return f"/events/{int(event_id)}/pick/"


def _start_position_key(event_id: int) -> str:
    return f"queue_start_position:{event_id}"


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


def _join_error_message(error: DomainError) -> str:
    if error.code == "sales_closed":
        return _("Sales for this event are closed.")
    if error.code == "sold_out":
        return _("Sold out: every seat of this event has been sold.")
    return _("You could not join the waiting room. Please try again.")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def waiting_room(request: HttpRequest, event_id: int) -> HttpResponse:
    event = selectors.event_detail_get(event_id)
    if event is None:
        raise Http404
    if request.method == "POST":
        return _waiting_room_post(request, event)

    payload: dict[str, Any] | None = None
    try:
        queue_status, event_settings = queue_service.queue_status_get(
            event_id=event.pk, user_id=request.user.pk
        )
        payload = queue_service.queue_status_payload(queue_status, event=event_settings)
    except DomainError as error:
        if error.code != "not_in_queue":
            raise
    status = selectors.event_status(event)
    start_position = request.session.get(_start_position_key(event.pk))
    position = payload["position"] if payload else None
    if position and (not start_position or start_position < position):
        start_position = position
    progress = progress_percent(start_position=start_position, position=position)
    return render(
        request,
        "events/waiting_room.html",
        {
            "event": event,
            "event_status": status,
            "queue": payload,
            "state": payload["state"] if payload else "none",
            "eta_text": eta_text(payload["eta_seconds"] if payload else None),
            "can_join": status in ("scheduled", "on_sale"),
            "before_opening": timezone.now() < event.sales_open_at,
            "start_position": start_position or "",
            "progress": progress,
            # xgettext:no-python-format  ("% o" is not a placeholder: this is a brace format)
            "progress_text": _("{percent}% of the way to the front").format(percent=progress),
            "pick_url": seat_picker_url(event.pk),
        },
    )


def _waiting_room_post(request: HttpRequest, event: Event) -> HttpResponse:
    """``action=join`` (the "Join the waiting room" button) or ``action=leave``; then back
    to the page (post/redirect/get), which shows the place in line."""
    here = reverse("events:waiting_room", args=[event.pk])
    if request.POST.get("action") == "leave":
        queue_service.queue_leave(event_id=event.pk, user_id=request.user.pk)
        request.session.pop(_start_position_key(event.pk), None)
        messages.info(request, _("You left the waiting room."))
        return redirect(here)
    try:
        queue_status, _settings, newly_joined = queue_service.queue_join(
            event_id=event.pk, user_id=request.user.pk
        )
    except DomainError as error:
        if error.status == 404:
            raise Http404 from error
        messages.error(request, _join_error_message(error))
        return redirect(here)
    key = _start_position_key(event.pk)
    if queue_status.position and (newly_joined or key not in request.session):
        # Where the buyer started: the page's progress bar measures from here.
        request.session[key] = queue_status.position
    return redirect(here)


def rush_dashboard(request: HttpRequest, event_id: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not request.user.is_staff:
        raise PermissionDenied
    event = get_object_or_404(Event, pk=event_id)
    state = rush_state_get(event=event)
    audit_url = reverse("admin:events_rushcontrolchange_changelist")
    labels = {"paused": _("Paused"), "capacity": _("Capacity"), "pass_seconds": _("Pass length (s)")}
    changes = [
        {
            "changed_at": change.changed_at,
            "changed_by": change.changed_by,
            "fields": [
                (labels.get(field, field), old, new) for field, (old, new) in sorted(change.changes.items())
            ],
        }
        for change in RushControlChange.objects.filter(event=event)
        .select_related("changed_by")
        .order_by("-changed_at")[:RECENT_CHANGES_SHOWN]
    ]
    return render(
        request,
        "events/rush_dashboard.html",
        {
            "event": event,
            "rush": state,
            "changes": changes,
            "poll_ms": DASHBOARD_POLL_MS,
            "capacity_min": CAPACITY_MIN,
            "capacity_max": CAPACITY_MAX,
            "pass_seconds_min": PASS_SECONDS_MIN,
            "pass_seconds_max": PASS_SECONDS_MAX,
            "admin_change_url": reverse("admin:events_event_change", args=[event.pk]),
            "audit_url": f"{audit_url}?event__id__exact={event.pk}",
        },
    )
