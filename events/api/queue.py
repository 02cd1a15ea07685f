"""Waiting-room API (API.md "Waiting room"): join, status, leave.

The hottest endpoint of a rush: every waiting buyer polls it. It authenticates from the
JWT alone (``JWTStatelessUserAuthentication``: no user row is read), reads the event
settings from the per-process cache and makes one Redis round trip; no throttling
(a throttle would itself cost a cache round trip) and no serializer per request (the
body is a plain dict; the serializer below only documents it in the OpenAPI schema).
The browser's waiting-room page polls it with its session cookie instead; session
authentication reads the session and user rows, which is fine for that face.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

from events import waiting_room

QueueStatusSerializer = inline_serializer(
    "QueueStatus",
    {
        "state": serializers.ChoiceField(choices=["waiting", "active", "sold_out"]),
        "position": serializers.IntegerField(allow_null=True, help_text="1-based; set while waiting."),
        "ahead": serializers.IntegerField(allow_null=True, help_text="position - 1; set while waiting."),
        "eta_seconds": serializers.IntegerField(
            allow_null=True, help_text="From the measured admission rate; null until it is known."
        ),
        "pass_expires_at": serializers.DateTimeField(allow_null=True, help_text="Set while active."),
        "poll_after_ms": serializers.IntegerField(help_text="Ask again after this many milliseconds."),
        "sales_open_at": serializers.DateTimeField(),
    },
)
ErrorSerializer = inline_serializer(
    "QueueError", {"code": serializers.CharField(), "detail": serializers.CharField()}
)


class QueueApi(APIView):
    authentication_classes = [JWTStatelessUserAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes: list = []

    @extend_schema(
        operation_id="events_queue_join",
        request=None,
        responses={
            201: OpenApiResponse(QueueStatusSerializer, description="Joined now."),
            200: OpenApiResponse(QueueStatusSerializer, description="Already in line: same place."),
            404: OpenApiResponse(ErrorSerializer, description="`not_found`: unknown event."),
            409: OpenApiResponse(ErrorSerializer, description="`sales_closed` or `sold_out`."),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        queue_status, event, newly_joined = waiting_room.queue_join(
            event_id=event_id, user_id=request.user.id
        )
        return Response(
            waiting_room.queue_status_payload(queue_status, event=event),
            status=status.HTTP_201_CREATED if newly_joined else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="events_queue_status",
        responses={
            200: QueueStatusSerializer,
            404: OpenApiResponse(ErrorSerializer, description="`not_in_queue` or `not_found`."),
        },
    )
    def get(self, request: Request, event_id: int) -> Response:
        queue_status, event = waiting_room.queue_status_get(event_id=event_id, user_id=request.user.id)
        return Response(waiting_room.queue_status_payload(queue_status, event=event))

    @extend_schema(operation_id="events_queue_leave", request=None, responses={204: None})
    def delete(self, request: Request, event_id: int) -> Response:
        waiting_room.queue_leave(event_id=event_id, user_id=request.user.id)
        return Response(status=status.HTTP_204_NO_CONTENT)
