"""The fast lane for the hottest endpoint of a rush: waiting-room join and status polls
sent with a bearer token (thousands a second).

It answers exactly what ``QueueApi`` answers, through the same services, but without
DRF's per-request machinery (request wrapping, content negotiation, renderer), which
measured at about a third of the request's CPU time: the token is checked with
simplejwt's own stateless authentication (remembered per process, see accounts.tokens), the body is a plain ``JsonResponse``. Every
other case (session cookie, DELETE, a missing or invalid token) goes to ``QueueApi``,
which then produces the standard answer, including the 401 error body.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.tokens import verified_access_tokens
from events import waiting_room
from events.api.queue import QueueApi
from ticketing.errors import DomainError

_full_view = QueueApi.as_view()
_COMPACT = {"separators": (",", ":")}


def _bearer_user_id(request: HttpRequest) -> int | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer "):
        return None
    return verified_access_tokens.user_id(header[7:].strip().encode())


@csrf_exempt  # bearer-token requests only; cookie-authenticated ones go to QueueApi (CSRF-checked)
def queue_endpoint(request: HttpRequest, event_id: int) -> HttpResponse:
    user_id = _bearer_user_id(request) if request.method in ("GET", "POST") else None
    if user_id is None:
        return _full_view(request, event_id=event_id)
    try:
        if request.method == "POST":
            status, event, newly_joined = waiting_room.queue_join(event_id=event_id, user_id=user_id)
            code = 201 if newly_joined else 200
        else:
            status, event = waiting_room.queue_status_get(event_id=event_id, user_id=user_id)
            code = 200
    except DomainError as error:
        body = {"code": error.code, "detail": error.detail, **error.extra}
        return JsonResponse(body, status=error.status, json_dumps_params=_COMPACT)
    return JsonResponse(
        waiting_room.queue_status_payload(status, event=event), status=code, json_dumps_params=_COMPACT
    )


# drf-spectacular documents the URL through the DRF view it stands for.
queue_endpoint.cls = QueueApi  # type: ignore[attr-defined]
queue_endpoint.initkwargs = {}  # type: ignore[attr-defined]
