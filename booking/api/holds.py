"""Seat holds API (API.md "Seat holds"): hold all-or-nothing, read, release."""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

from booking import services
from booking.services import MAX_SEATS_PER_REQUEST
from events.selectors import event_settings_get
from queueing.holds import Hold, holds_get


class SeatIdsField(serializers.ListField):
    """1..20 distinct positive seat ids."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            child=serializers.IntegerField(min_value=1),
            min_length=1,
            max_length=MAX_SEATS_PER_REQUEST,
            **kwargs,
        )

    def to_internal_value(self, data: object) -> list[int]:
        value = super().to_internal_value(data)
        if len(set(value)) != len(value):
            raise serializers.ValidationError(_("Seat ids must be distinct."))
        return value


class HoldOutputSerializer(serializers.Serializer):
    seat_ids = serializers.ListField(child=serializers.IntegerField())
    expires_at = serializers.DateTimeField(allow_null=True)


def hold_as_dict(hold: Hold) -> dict[str, object]:
    expires_at = (
        datetime.fromtimestamp(hold.expires_at_ms / 1000, tz=UTC) if hold.expires_at_ms is not None else None
    )
    return {"seat_ids": hold.seat_ids, "expires_at": expires_at}


# The field HoldOutputSerializer formats ``expires_at`` with (unbound, read-only use).
_EXPIRES_AT = serializers.DateTimeField()


def hold_data(hold: Hold) -> dict[str, object]:
    """``HoldOutputSerializer(hold_as_dict(hold)).data``, without building a serializer
    on every hold (the hold is the rush's most frequent write)."""
    expires_at = hold_as_dict(hold)["expires_at"]
    return {
        "seat_ids": [int(seat_id) for seat_id in hold.seat_ids],
        "expires_at": None if expires_at is None else _EXPIRES_AT.to_representation(expires_at),
    }


class HoldApi(APIView):
    """Stateless JWT (no database query for the user) or the page session (with CSRF)."""

    authentication_classes = [JWTStatelessUserAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="HoldCreate")
    class InputSerializer(serializers.Serializer):
        seat_ids = SeatIdsField()

    @extend_schema_serializer(component_name="HoldRelease")
    class ReleaseInputSerializer(serializers.Serializer):
        seat_ids = SeatIdsField(required=False)

    OutputSerializer = HoldOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(description="code: invalid or limit_exceeded"),
            403: OpenApiResponse(description="code: not_admitted"),
            409: OpenApiResponse(description="code: seat_unavailable, seat_ids: [..]"),
        },
        operation_id="event_holds_create",
    )
    def post(self, request: Request, event_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hold = services.seats_hold(
            event_id=event_id, user_id=request.user.pk, seat_ids=serializer.validated_data["seat_ids"]
        )
        return Response(hold_data(hold), status=status.HTTP_201_CREATED)

    @extend_schema(responses=OutputSerializer, operation_id="event_holds_retrieve")
    def get(self, request: Request, event_id: int) -> Response:
        if event_settings_get(event_id) is None:
            raise Http404
        hold = holds_get(event_id=event_id, user_id=request.user.pk)
        return Response(hold_data(hold))

    @extend_schema(request=ReleaseInputSerializer, responses={204: None}, operation_id="event_holds_destroy")
    def delete(self, request: Request, event_id: int) -> Response:
        serializer = self.ReleaseInputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        services.seats_release(
            event_id=event_id, user_id=request.user.pk, seat_ids=serializer.validated_data.get("seat_ids")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
