"""Staff API of the waiting room's moderation (API.md "Staff"): the suspicious buyers of
an event, taking a buyer off its line, blocking an account. Staff only; audited."""

from __future__ import annotations

from dataclasses import asdict

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.models import Event
from events.services.moderation import account_block, queue_entry_remove, suspicious_get
from ticketing.errors import DomainError


class ModerationInputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ModerationInput"

    user_id = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


def _target(serializer: ModerationInputSerializer) -> object:
    return get_object_or_404(get_user_model(), pk=serializer.validated_data["user_id"])


class SuspiciousApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="staff_suspicious_retrieve",
        responses=OpenApiResponse(
            OpenApiTypes.OBJECT,
            description="`{shared_addresses: [{source, accounts}], shared_devices: [...], fast_joins: "
            "[{suspect, solve_ms}], new_accounts: [...], ...}`; an account is `{id, email, name, "
            "date_joined, is_active, in_line, removed}`.",
        ),
    )
    def get(self, request: Request, event_id: int) -> Response:
        found = suspicious_get(event=get_object_or_404(Event, pk=event_id))
        for key in ("shared_addresses", "shared_devices"):
            found[key] = [
                {**group, "accounts": [asdict(a) for a in group["accounts"]]} for group in found[key]
            ]
        found["fast_joins"] = [{**row, "suspect": asdict(row["suspect"])} for row in found["fast_joins"]]
        found["new_accounts"] = [asdict(a) for a in found["new_accounts"]]
        return Response(found)


class QueueRemoveApi(APIView):
    """Takes a buyer off this event's line for good (a later join: 403 removed_from_queue)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="staff_queue_remove",
        request=ModerationInputSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="`{user_id, was_in_line}`"),
            404: None,
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        serializer = ModerationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = get_object_or_404(Event, pk=event_id)
        user = _target(serializer)
        was_in = queue_entry_remove(
            event=event, user_id=user.pk, by=request.user, reason=serializer.validated_data.get("reason", "")
        )
        return Response({"user_id": user.pk, "was_in_line": was_in})


class AccountBlockApi(APIView):
    """Deactivates an account and takes it off every line of an event still on sale."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="staff_account_block",
        request=ModerationInputSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="`{user_id, lines_left}`"),
            409: OpenApiResponse(description="`staff_account`"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = ModerationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = _target(serializer)
        if user.is_staff:
            raise DomainError("staff_account", _("Staff accounts can't be blocked here."), status=409)
        lines = account_block(user=user, by=request.user, reason=serializer.validated_data.get("reason", ""))
        return Response({"user_id": user.pk, "lines_left": lines})
