"""The door scanner page (``/staff/events/<id>/scan/``), phone first.

Rendered with what ``static/js/scanner.js`` needs in data- attributes (no inline script:
CSP): the API addresses and the public key that checks QR signatures on the phone. Door
staff only (booking.checkins.can_check_in): the page and the check-in API, nothing of
the admin.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from booking import ticket_signing
from booking.checkins import UNDO_SECONDS, can_check_in
from events.models import Event


@login_required
def scanner(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    if not can_check_in(request.user, event.pk):
        raise PermissionDenied
    return render(
        request,
        "booking/scanner.html",
        {
            "event": event,
            "public_key": ticket_signing.public_key(),
            "manifest_url": reverse("api-checkins-manifest", args=[event.pk]),
            "checkin_url": reverse("api-checkins"),
            "undo_url": reverse("api-checkins-undo"),
            "undo_seconds": UNDO_SECONDS,
        },
    )
