"""Waiting-room API (docs/API.md "Waiting room"): join, status, leave, and the public
serving cursor.

The status poll is the hottest endpoint of a rush (every waiting buyer polls it), so it
has a lane that skips DRF's per-request machinery (request wrapping, content
negotiation, renderer: about a third of a request's CPU when measured) and answers
through the same services with a plain ``JsonResponse``:

- a bearer-token GET/POST: the token is checked with simplejwt's stateless
  authentication, remembered per process (``accounts.tokens``);
- a GET carrying only a queue ticket (the waiting-room page, which has a session cookie
  but need not read the session for this): answered from the serving cursor when the
  ticket allows it, without touching the session or the database.

Everything else (session cookie without a usable ticket, DELETE, a missing or invalid
token) goes to ``QueueApi``, which produces the standard answers, including the 401.
Every answer here is about one buyer: ``Cache-Control: private, no-store``.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

from accounts.tokens import verified_access_tokens
from events.selectors import EventSettings
from events.services.join_clients import join_client
from events.services.waiting_room import (
    QueueAnswer,
    queue_answer_payload,
    queue_cursor_get,
    queue_join,
    queue_leave,
    queue_status_from_ticket,
    queue_status_get,
)
from ticketing.errors import COMPACT_JSON, DomainError, domain_error_response

QUEUE_TICKET_HEADER = "X-Queue-Ticket"
_TICKET_META = "HTTP_X_QUEUE_TICKET"
PRIVATE = {"Cache-Control": "private, no-store"}

QueueStatusSerializer = inline_serializer(
    "QueueStatus",
    {
        "state": serializers.ChoiceField(
            choices=["waiting", "active", "sold_out", "review"],
            help_text="review (added): held for staff review, out of the line with the place kept "
            "(many accounts joined from this address or device).",
        ),
        "position": serializers.IntegerField(allow_null=True, help_text="1-based; set while waiting."),
        "ahead": serializers.IntegerField(allow_null=True, help_text="position - 1; set while waiting."),
        "eta_seconds": serializers.IntegerField(
            allow_null=True, help_text="From the measured admission rate; null until it is known."
        ),
        "pass_expires_at": serializers.DateTimeField(allow_null=True, help_text="Set while active."),
        "poll_after_ms": serializers.IntegerField(
            help_text="Ask again after this many milliseconds (1 s near the front, up to 30 s far back)."
        ),
        "sales_open_at": serializers.DateTimeField(),
        "estimated": serializers.BooleanField(
            help_text=(
                "True when position, ahead and eta_seconds are estimates from the serving cursor "
                "(the answer to a poll with a queue ticket from behind the cursor); false when they "
                "were read from the line itself. The state is always exact as far as a pass goes: "
                "only an exact answer ever says active."
            )
        ),
        "as_of": serializers.DateTimeField(
            help_text=(
                "The moment the answer describes (server clock). An exact answer describes the line at "
                "the time of the request; an estimated one the serving cursor as this server last read it, "
                "at most QUEUE_PULSE_SECONDS (0.25 s) earlier: news of a pass can lag by that much, never "
                "more, and is never invented."
            )
        ),
        "paused": serializers.BooleanField(
            help_text=(
                "True while staff have paused admission (waiting only): the line does not move and "
                "every place is kept; it moves again when the sale resumes."
            )
        ),
        "queue_ticket": serializers.CharField(
            allow_null=True,
            help_text=(
                "Send it back in the X-Queue-Ticket header of the next status poll (keep the newest): "
                "polls from far back are then answered without a round trip to the line. Null when "
                "not in line (admitted)."
            ),
        ),
    },
)
ErrorSerializer = inline_serializer(
    "QueueError", {"code": serializers.CharField(), "detail": serializers.CharField()}
)
TICKET_PARAMETER = OpenApiParameter(
    QUEUE_TICKET_HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "The queue_ticket of the last answer. Forged, edited or malformed: 401 queue_ticket_invalid; "
        "older than an hour: 401 queue_ticket_expired; another event's or buyer's: 403 "
        "queue_ticket_mismatch. After any of these, poll once without it to get a new one."
    ),
)


def _private(response: HttpResponse) -> HttpResponse:
    response.headers["Cache-Control"] = PRIVATE["Cache-Control"]
    return response


class JoinInputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "QueueJoin"

    altcha = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=4096,
        help_text=(
            "While the event asks for proof-of-work: the solved challenge of GET "
            "/api/events/ID/queue/challenge/, as the ALTCHA widget gives it (base64 JSON "
            "{challenge, solution}). Not needed by someone already in line, nor when it is off."
        ),
    )


class QueueApi(APIView):
    authentication_classes = [JWTStatelessUserAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes: list = []

    @extend_schema(
        operation_id="events_queue_join",
        request=JoinInputSerializer,
        responses={
            201: OpenApiResponse(QueueStatusSerializer, description="Joined now."),
            200: OpenApiResponse(QueueStatusSerializer, description="Already in line: same place."),
            400: OpenApiResponse(
                ErrorSerializer,
                description="`pow_required`, `pow_invalid`, `pow_expired`, `pow_replayed` (proof-of-work on).",
            ),
            403: OpenApiResponse(
                ErrorSerializer,
                description="`pow_mismatch`; `removed_from_queue` (taken off the line by staff).",
            ),
            404: OpenApiResponse(ErrorSerializer, description="`not_found`: unknown event."),
            409: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "`sales_closed` or `sold_out`; `sold_out` also carries `waiting_list`, the API path "
                    "of the event's waiting list for returned seats."
                ),
            ),
            429: OpenApiResponse(
                ErrorSerializer,
                description="`too_many_attempts` (per account, device or address; `limit` says which), Retry-After.",
            ),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        # A join has no body unless it carries a proof-of-work answer (JSON); a body-less
        # POST of any content type joins as it always did.
        body = request.data if request.content_type.startswith("application/json") else {}
        serializer = JoinInputSerializer(data=body if isinstance(body, dict) else {"altcha": body})
        serializer.is_valid(raise_exception=True)
        answer, event, newly_joined = queue_join(
            event_id=event_id,
            user_id=request.user.id,
            solution=serializer.validated_data.get("altcha") or None,
            client=join_client(request),
        )
        return Response(
            queue_answer_payload(answer, event=event),
            status=status.HTTP_201_CREATED if newly_joined else status.HTTP_200_OK,
            headers=PRIVATE,
        )

    @extend_schema(
        operation_id="events_queue_status",
        parameters=[TICKET_PARAMETER],
        responses={
            200: QueueStatusSerializer,
            401: OpenApiResponse(
                ErrorSerializer, description="`queue_ticket_invalid` or `queue_ticket_expired`."
            ),
            403: OpenApiResponse(ErrorSerializer, description="`queue_ticket_mismatch`."),
            404: OpenApiResponse(ErrorSerializer, description="`not_in_queue` or `not_found`."),
        },
    )
    def get(self, request: Request, event_id: int) -> Response:
        answer, event = queue_status_get(
            event_id=event_id, user_id=request.user.id, ticket=request.META.get(_TICKET_META)
        )
        return Response(queue_answer_payload(answer, event=event), headers=PRIVATE)

    @extend_schema(operation_id="events_queue_leave", request=None, responses={204: None})
    def delete(self, request: Request, event_id: int) -> Response:
        queue_leave(event_id=event_id, user_id=request.user.id)
        return Response(status=status.HTTP_204_NO_CONTENT, headers=PRIVATE)


_full_view = QueueApi.as_view()


def _bearer_user_id(request: HttpRequest) -> int | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer "):
        return None
    return verified_access_tokens.user_id(header[7:].strip().encode())


@csrf_exempt  # bearer-token requests and ticket-only reads; cookie-authenticated writes go to QueueApi
def queue_endpoint(request: HttpRequest, event_id: int) -> HttpResponse:
    method = request.method
    if method not in ("GET", "POST"):
        return _full_view(request, event_id=event_id)
    ticket = request.META.get(_TICKET_META)
    try:
        if "HTTP_AUTHORIZATION" not in request.META:
            if method == "GET" and ticket:
                found = queue_status_from_ticket(event_id=event_id, ticket=ticket)
                if found is not None:
                    answer, event = found
                    return _answer(answer, event, code=200)
            return _full_view(request, event_id=event_id)
        user_id = _bearer_user_id(request)
        if user_id is None:
            return _full_view(request, event_id=event_id)
        if method == "POST":
            if request.body:  # a proof-of-work answer (or anything else to validate)
                return _full_view(request, event_id=event_id)
            answer, event, newly_joined = queue_join(
                event_id=event_id, user_id=user_id, client=join_client(request)
            )
            return _answer(answer, event, code=201 if newly_joined else 200)
        answer, event = queue_status_get(event_id=event_id, user_id=user_id, ticket=ticket)
        return _answer(answer, event, code=200)
    except DomainError as error:
        return _private(domain_error_response(error))


def _answer(answer: QueueAnswer, event: EventSettings, *, code: int) -> HttpResponse:
    # Plain json.dumps: the payload holds only str, int, bool and None.
    body = json.dumps(queue_answer_payload(answer, event=event), **COMPACT_JSON)
    return HttpResponse(body, status=code, content_type="application/json", headers=PRIVATE)


# drf-spectacular documents the URL through the DRF view it stands for.
queue_endpoint.cls = QueueApi  # type: ignore[attr-defined]
queue_endpoint.initkwargs = {}  # type: ignore[attr-defined]


class QueueCursorApi(APIView):
    """The serving cursor: public, the same for everyone, cacheable for a second."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        operation_id="events_queue_cursor",
        responses={
            200: inline_serializer(
                "QueueCursor",
                {
                    "event": serializers.IntegerField(),
                    "serving": serializers.IntegerField(
                        help_text="The highest arrival number taken off the line so far."
                    ),
                    "waiting": serializers.IntegerField(),
                    "admitted_per_second": serializers.FloatField(),
                    "sold_out": serializers.BooleanField(),
                    "paused": serializers.BooleanField(),
                    "updated_at": serializers.DateTimeField(),
                    "last_arrival": serializers.IntegerField(
                        help_text="The last arrival number handed out: with `serving` and `waiting`, "
                        "the estimate of a place far back."
                    ),
                    "shuffled": serializers.BooleanField(
                        help_text="The opening shuffle has re-dealt the pre-opening numbers."
                    ),
                    "sales_open_at": serializers.DateTimeField(),
                    "edge": inline_serializer(
                        "QueueCursorEdge",
                        {
                            "as_of_ms": serializers.IntegerField(help_text="`updated_at` in Unix ms."),
                            "sales_open_at_ms": serializers.IntegerField(
                                help_text="`sales_open_at` in Unix ms."
                            ),
                            "edge_seconds": serializers.IntegerField(),
                            "ticket_recheck_seconds": serializers.IntegerField(),
                            "poll_min_ms": serializers.IntegerField(),
                            "poll_max_ms": serializers.IntegerField(),
                            "poll_ms_per_person_ahead": serializers.IntegerField(),
                            "user_id_claim": serializers.CharField(),
                            "sales_close_at_ms": serializers.IntegerField(
                                help_text="When sales close, in Unix ms."
                            ),
                            "join_stamp": serializers.CharField(
                                help_text="Changes with every admission, block or review hold: the "
                                "key of nginx's copies of a buyer's join refusal."
                            ),
                            "languages": serializers.ListField(child=serializers.CharField()),
                            "language_code": serializers.CharField(help_text="The default language."),
                            "language_cookie": serializers.CharField(
                                help_text="The cookie of the site's language switch."
                            ),
                        },
                        help_text="The rules nginx needs to answer a poll from behind the cursor, and "
                        "to refuse a join after the sell-out, as the app would (deploy/nginx/queue_edge.js).",
                    ),
                },
            ),
            404: OpenApiResponse(ErrorSerializer, description="`not_found`: unknown event."),
        },
    )
    def get(self, request: Request, event_id: int) -> Response:
        return Response(queue_cursor_get(event_id=event_id), headers={"Cache-Control": "public, max-age=1"})
