"""The human check before seat selection (API.md "Seat holds"; booking.human_check)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

from booking.human_check import human_check_challenge, human_check_pass, human_check_passed
from events.selectors import event_settings_get
from ticketing.errors import DomainError

HumanCheckState = inline_serializer(
    "HumanCheckState",
    {
        "required": serializers.BooleanField(help_text="The event asks for the check before seats are held."),
        "passed": serializers.BooleanField(help_text="Passed during the current pass."),
    },
)


def _event(event_id: int) -> object:
    event = event_settings_get(event_id)
    if event is None:
        raise DomainError("not_found", _("There is no such event."), status=404)
    return event


class HumanCheckApi(APIView):
    """GET: is the check asked for and passed? POST `{altcha}`: the ticked widget's
    answer (a challenge of GET .../human-check/challenge/); passed until the pass ends."""

    authentication_classes = [JWTStatelessUserAuthentication, SessionAuthentication]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "HumanCheckAnswer"

        altcha = serializers.CharField(max_length=4096)

    @extend_schema(operation_id="events_human_check_retrieve", responses=HumanCheckState)
    def get(self, request: Request, event_id: int) -> Response:
        event = _event(event_id)
        passed = human_check_passed(event_id=event_id, user_id=request.user.id) if event.human_check else True
        return Response({"required": event.human_check, "passed": passed})

    @extend_schema(
        operation_id="events_human_check_pass",
        request=InputSerializer,
        responses={
            200: HumanCheckState,
            400: OpenApiResponse(description="`pow_invalid`, `pow_expired`"),
            403: OpenApiResponse(description="`not_admitted`, `pow_mismatch`"),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = _event(event_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        human_check_pass(
            event_id=event_id, user_id=request.user.id, payload=serializer.validated_data["altcha"]
        )
        return Response({"required": event.human_check, "passed": True})


class HumanCheckChallengeApi(APIView):
    authentication_classes = [JWTStatelessUserAuthentication, SessionAuthentication]

    @extend_schema(
        operation_id="events_human_check_challenge",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="An ALTCHA v2 challenge."),
            404: None,
        },
    )
    def get(self, request: Request, event_id: int) -> Response:
        _event(event_id)
        challenge = human_check_challenge(event_id=event_id, user_id=request.user.id)
        return Response(challenge, headers={"Cache-Control": "private, no-store"})
