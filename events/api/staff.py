"""Staff API (API.md "Staff"): live figures of a sale and its controls.

Staff only (``is_staff``): anonymous callers get 401, other users 403
``permission_denied``. JWT or the admin session (the dashboard page; DRF's session
authentication enforces CSRF on the PATCH).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.models import POW_DIFFICULTY_MAX, REVIEW_THRESHOLD_MAX, Event
from events.services.rush_control import (
    CAPACITY_MAX,
    CAPACITY_MIN,
    PASS_SECONDS_MAX,
    PASS_SECONDS_MIN,
    rush_control_update,
    rush_state_get,
)


class RushControlApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RushControlInput"  # a unique OpenAPI component name

        paused = serializers.BooleanField(required=False)
        capacity = serializers.IntegerField(required=False, min_value=CAPACITY_MIN, max_value=CAPACITY_MAX)
        pass_seconds = serializers.IntegerField(
            required=False, min_value=PASS_SECONDS_MIN, max_value=PASS_SECONDS_MAX
        )
        pow_difficulty = serializers.IntegerField(
            required=False,
            min_value=0,
            max_value=POW_DIFFICULTY_MAX,
            help_text="Proof-of-work asked of a browser joining (hashes; 0 = off).",
        )
        review_threshold = serializers.IntegerField(
            required=False,
            min_value=0,
            max_value=REVIEW_THRESHOLD_MAX,
            help_text="Accounts joining from one address or device before all of them wait for staff "
            "review (0 = off).",
        )

        def validate(self, attrs: dict) -> dict:
            if not attrs:
                raise serializers.ValidationError(
                    _(
                        "Give at least one of paused, capacity, pass_seconds, pow_difficulty, "
                        "review_threshold."
                    )
                )
            return attrs

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RushState"

        waiting = serializers.IntegerField()
        active = serializers.IntegerField()
        capacity = serializers.IntegerField()
        pass_seconds = serializers.IntegerField()
        paused = serializers.BooleanField()
        admitted_total = serializers.IntegerField()
        dropped_total = serializers.IntegerField(
            help_text="Waiters who went silent (page closed) and were taken off the line when reached."
        )
        serving = serializers.IntegerField(
            help_text="The serving cursor: the highest arrival number taken off the line."
        )
        admitted_per_second = serializers.FloatField()
        held_seats = serializers.IntegerField()
        sold_seats = serializers.IntegerField()
        available_seats = serializers.IntegerField(allow_null=True)
        sold_out = serializers.BooleanField()
        shuffle_seed = serializers.IntegerField(
            allow_null=True, help_text="The opening draw's seed; published once the sale is over."
        )
        pow_difficulty = serializers.IntegerField(help_text="Proof-of-work on join (hashes; 0 = off).")
        review_threshold = serializers.IntegerField(
            help_text="Accounts from one address or device before they wait for review (0 = off)."
        )
        history = serializers.ListField(
            child=inline_serializer(
                "RushHistoryPoint",
                {
                    "t": serializers.IntegerField(help_text="Epoch second."),
                    "admitted": serializers.IntegerField(),
                    "waiting": serializers.IntegerField(),
                    "active": serializers.IntegerField(),
                },
            ),
            help_text="One point per second with an admission run, last 5 minutes, oldest first.",
        )

    @extend_schema(operation_id="staff_rush_retrieve", responses=OutputSerializer)
    def get(self, request: Request, event_id: int) -> Response:
        event = get_object_or_404(Event, pk=event_id)
        return Response(self.OutputSerializer(rush_state_get(event=event)).data)

    @extend_schema(operation_id="staff_rush_update", request=InputSerializer, responses=OutputSerializer)
    def patch(self, request: Request, event_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = get_object_or_404(Event, pk=event_id)
        state = rush_control_update(event=event, user=request.user, **serializer.validated_data)
        return Response(self.OutputSerializer(state).data)
