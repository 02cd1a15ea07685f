"""nginx's question before it refuses a join after the sell-out itself
(``deploy/nginx/queue_edge.js``): would the app refuse this buyer's join as sold out?

Asked with the join's own bearer token, in a subrequest clients cannot make (nginx answers
this path with 404 from outside). The lane in front of Django
(``events.api.queue_lane.join_refusal_answer``) answers it for a valid token; this view
gives the same answer on Django's path (e.g. without the lane) and the standard 401 to
anything else. ``X-Accel-Expires`` tells nginx how long it may keep a "refusable" answer;
for everyone else the answer is ``private, no-store``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

from events.api.queue import ErrorSerializer
from events.services.waiting_room import queue_join_refusal


class QueueJoinRefusalApi(APIView):
    """For nginx only: whether this buyer's join would be refused as sold out now."""

    authentication_classes = [JWTStatelessUserAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes: list = []

    @extend_schema(
        operation_id="events_queue_join_refusal",
        description="For the project's nginx (deploy/nginx/queue_edge.js), not for clients: nginx "
        "answers this path with 404 from outside.",
        responses={
            200: inline_serializer(
                "QueueJoinRefusal",
                {
                    "refusable": serializers.BooleanField(),
                    "refusals": serializers.DictField(
                        child=serializers.CharField(),
                        required=False,
                        help_text="Per language code, the 409 `sold_out` body a join gets, as JSON text.",
                    ),
                },
            ),
            401: OpenApiResponse(ErrorSerializer, description="No valid bearer token."),
            404: OpenApiResponse(ErrorSerializer, description="`not_found`: unknown event."),
        },
    )
    def get(self, request: Request, event_id: int) -> Response:
        answer, lifetime = queue_join_refusal(
            event_id=event_id, user_id=request.user.pk, token_expires_at=float(request.auth["exp"])
        )
        headers = {"Cache-Control": "private, no-store"}
        if lifetime:
            headers["X-Accel-Expires"] = str(lifetime)
        return Response(answer, headers=headers)
