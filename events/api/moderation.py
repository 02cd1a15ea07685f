"""Staff API of the waiting room's moderation (API.md "Staff"): the suspicious buyers of
an event, taking a buyer off its line, blocking an account, letting the accounts of one
address or device through the automatic review. Staff only; audited."""

from __future__ import annotations

from dataclasses import asdict

from django.contrib.auth import get_user_model
from django.http import Http404
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
from events.services.moderation import account_block, queue_entries_remove, review_let_through, suspicious_get
from ticketing.errors import DomainError


class ModerationInputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ModerationInput"

    user_id = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class RemovalInputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "QueueRemovalInput"

    user_id = serializers.IntegerField(min_value=1, required=False)
    user_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=1000,
        help_text="Several buyers at once (e.g. every account of one address).",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def validate(self, attrs: dict) -> dict:
        ids = ([attrs["user_id"]] if "user_id" in attrs else []) + attrs.get("user_ids", [])
        if not ids:
            raise serializers.ValidationError(_("Give user_id or user_ids."))
        attrs["ids"] = sorted(set(ids))
        return attrs


def _target(serializer: ModerationInputSerializer) -> object:
    return get_object_or_404(get_user_model(), pk=serializer.validated_data["user_id"])


class SuspiciousApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="staff_suspicious_retrieve",
        responses=OpenApiResponse(
            OpenApiTypes.OBJECT,
            description="`{shared_addresses: [{source, accounts, review, held}], shared_devices: [...], "
            "fast_joins: [{suspect, solve_ms}], new_accounts: [...], review_threshold, ...}`; an account "
            "is `{id, email, name, date_joined, is_active, in_line, removed, held}`; a group's `review` "
            'is `"held"` (its accounts wait for review), `"cleared"` (let through) or null.',
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
    """Takes buyers off this event's line for good (a later join: 403 removed_from_queue)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="staff_queue_remove",
        request=RemovalInputSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="`{user_ids, removed, was_in_line}`"),
            404: None,
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        serializer = RemovalInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = get_object_or_404(Event, pk=event_id)
        ids = serializer.validated_data["ids"]
        known = sorted(get_user_model().objects.filter(pk__in=ids).values_list("pk", flat=True))
        if not known:
            raise Http404
        in_line = queue_entries_remove(
            event=event, user_ids=known, by=request.user, reason=serializer.validated_data.get("reason", "")
        )
        body = {"user_ids": known, "removed": len(known), "was_in_line": in_line}
        if "user_id" in serializer.validated_data and len(ids) == 1:
            body |= {"user_id": known[0], "was_in_line": in_line > 0}
        return Response(body)


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


class ReviewReleaseInputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ReviewReleaseInput"

    kind = serializers.ChoiceField(choices=["address", "device"])
    source = serializers.CharField(
        max_length=200, help_text="The address or device id, as the panel lists it."
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class ReviewReleaseApi(APIView):
    """Lets the accounts of one address or device through the automatic review: back in
    line with the places they had; accounts joining from there later are not held."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="staff_review_release",
        request=ReviewReleaseInputSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="`{kind, source, released}`"),
            404: None,
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        serializer = ReviewReleaseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = get_object_or_404(Event, pk=event_id)
        data = serializer.validated_data
        released = review_let_through(
            event=event,
            kind=data["kind"],
            source=data["source"],
            by=request.user,
            reason=data.get("reason", ""),
        )
        return Response({"kind": data["kind"], "source": data["source"], "released": released})
