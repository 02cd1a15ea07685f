"""The live rush dashboard (staff): figures, chart and controls of one event's sale.

Rendered with its first state on the server, then ``static/js/rush_dashboard.js``
polls and PATCHes ``/api/staff/events/<id>/rush/`` (no inline script: CSP), and
``static/js/door_figures.js`` polls the check-in figures ``/api/staff/events/<id>/door/``,
and ``static/js/waiting_list_panel.js`` the waiting list ``/api/staff/events/<id>/waiting-list/``
(its pause and remove buttons call that API too).
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _

from booking.checkin_figures import door_figures_get
from booking.models import WaitingListEntry, WaitingListState
from booking.waiting_list import waiting_list_entries, waiting_list_figures
from events.models import POW_DIFFICULTY_MAX, REVIEW_THRESHOLD_MAX, Event, RushControlChange
from events.services.moderation import suspicious_get
from events.services.rush_control import (
    CAPACITY_MAX,
    CAPACITY_MIN,
    PASS_SECONDS_MAX,
    PASS_SECONDS_MIN,
    rush_state_get,
)

DASHBOARD_POLL_MS = 2000
DOOR_POLL_MS = 5000
WAITING_LIST_POLL_MS = 5000
RECENT_CHANGES_SHOWN = 10
WAITING_LIST_SHOWN = 50  # the API's list is as long (booking.waiting_list.waiting_list_entries)


def waiting_list_rows(entries: list[WaitingListEntry]) -> list[dict[str, object]]:
    """The line as the panel shows it: each entry with its place (1 = next to be offered
    seats; None for an entry holding an offer, which is out of the line). The entries come
    waiting first, in order, so counting them gives the place; the panel's script counts
    the same way over the API's list."""
    rows = []
    position = 0
    for entry in entries:
        if entry.state == WaitingListState.WAITING:
            position += 1
            rows.append({"entry": entry, "position": position})
        else:
            rows.append({"entry": entry, "position": None})
    return rows


def waiting_list_entry_url_template(event_id: int) -> str:
    """``/api/staff/events/<id>/waiting-list/entries/{id}/``: the remove URL of any entry,
    for the rows the panel's script draws (the placeholder is filled in the browser)."""
    return reverse("api-staff-waiting-list-entry", args=[event_id, 0]).removesuffix("0/") + "{id}/"


def rush_dashboard(request: HttpRequest, event_id: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not request.user.is_staff:
        raise PermissionDenied
    event = get_object_or_404(Event, pk=event_id)
    state = rush_state_get(event=event)
    audit_url = reverse("admin:events_rushcontrolchange_changelist")
    labels = {
        "paused": _("Paused"),
        "capacity": _("Capacity"),
        "pass_seconds": _("Pass length (s)"),
        "pow_difficulty": _("Proof-of-work"),
        "review_threshold": _("Accounts before review"),
        "waiting_list_paused": _("Waiting list paused"),
    }
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
            "door": door_figures_get(event=event),
            "suspicious": suspicious_get(event=event),
            "door_poll_ms": DOOR_POLL_MS,
            "scanner_url": reverse("booking:scanner", args=[event.pk]),
            "waiting_list": waiting_list_figures(event_id=event.pk),
            "waiting_list_rows": waiting_list_rows(
                waiting_list_entries(event_id=event.pk, limit=WAITING_LIST_SHOWN)
            ),
            "waiting_list_shown": WAITING_LIST_SHOWN,
            "waiting_list_poll_ms": WAITING_LIST_POLL_MS,
            "waiting_list_entry_url": waiting_list_entry_url_template(event.pk),
            "changes": changes,
            "poll_ms": DASHBOARD_POLL_MS,
            "capacity_min": CAPACITY_MIN,
            "capacity_max": CAPACITY_MAX,
            "pass_seconds_min": PASS_SECONDS_MIN,
            "pass_seconds_max": PASS_SECONDS_MAX,
            "pow_max": POW_DIFFICULTY_MAX,
            "review_max": REVIEW_THRESHOLD_MAX,
            "admin_change_url": reverse("admin:events_event_change", args=[event.pk]),
            "audit_url": f"{audit_url}?event__id__exact={event.pk}",
        },
    )
