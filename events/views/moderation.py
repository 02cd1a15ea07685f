"""Staff actions of the rush dashboard's "suspicious" panel: take a buyer off the line,
block an account, let the accounts of one address or device through review. Plain CSRF-protected form posts (they work without JavaScript), each
audited (events.services.moderation), then back to the dashboard with a message."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from events.models import Event
from events.services.moderation import account_block, queue_entries_remove, review_let_through

REASON_MAX = 200


def _back(event_id: int) -> HttpResponse:
    return redirect("events:rush_dashboard", event_id=event_id)


@staff_member_required
@require_POST
def queue_remove(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    wanted = [int(value) for value in request.POST.getlist("user_id") if value.isdigit()]
    users = list(get_user_model().objects.filter(pk__in=wanted).order_by("pk"))
    if not users:
        raise Http404
    queue_entries_remove(
        event=event,
        user_ids=[user.pk for user in users],
        by=request.user,
        reason=request.POST.get("reason", "")[:REASON_MAX],
    )
    if len(users) == 1:
        messages.success(request, _("%(email)s was taken off the waiting line.") % {"email": users[0].email})
    else:
        messages.success(
            request, _("%(count)d accounts were taken off the waiting line.") % {"count": len(users)}
        )
    return _back(event.pk)


@staff_member_required
@require_POST
def user_block(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    user = get_object_or_404(get_user_model(), pk=request.POST.get("user_id") or 0)
    if user.is_staff:
        messages.error(request, _("Staff accounts can't be blocked here."))
        return _back(event.pk)
    account_block(user=user, by=request.user, reason=request.POST.get("reason", "")[:REASON_MAX])
    messages.success(request, _("%(email)s is blocked and off every waiting line.") % {"email": user.email})
    return _back(event.pk)


REVIEW_KINDS = ("address", "device")
SOURCE_MAX = 200


@staff_member_required
@require_POST
def review_release(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    kind, source = request.POST.get("kind", ""), request.POST.get("source", "")
    if kind not in REVIEW_KINDS or not source or len(source) > SOURCE_MAX:
        raise Http404
    released = review_let_through(event=event, kind=kind, source=source, by=request.user)
    messages.success(
        request,
        ngettext(
            "%(count)d account went back in line where it was.",
            "%(count)d accounts went back in line where they were.",
            released,
        )
        % {"count": released},
    )
    return _back(event.pk)
