"""Public catalogue API: event list and event detail (docs/API.md "Events"). Both are the
same for every visitor: ``Cache-Control: public, max-age=1`` lets a proxy answer the crowd."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events import selectors
from events.caching import event_list_key
from events.policy import CancellationPolicy
from ticketing.local_cache import local_cache
from ticketing.pagination import StandardPagination

PUBLIC = {"Cache-Control": "public, max-age=1"}


class EventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    venue = serializers.CharField()
    starts_at = serializers.DateTimeField()
    sales_open_at = serializers.DateTimeField()
    sales_close_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=["scheduled", "on_sale", "sold_out", "closed"])
    seats_total = serializers.IntegerField()
    seats_available = serializers.IntegerField()
    min_price = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    max_price = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)


@extend_schema_serializer(component_name="Seat")
class SeatOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    section = serializers.CharField()
    row = serializers.CharField()
    number = serializers.IntegerField()
    grade = serializers.CharField()
    price = serializers.CharField()
    status = serializers.ChoiceField(choices=["available", "held", "sold"])


class EventListApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(responses=EventOutputSerializer(many=True), operation_id="events_list")
    def get(self, request: Request) -> Response:
        paginator = StandardPagination()
        page_number = paginator.page_number_of(request)
        key = event_list_key(page_number)
        data = cache.get(key)
        if data is None:
            page = paginator.paginate_queryset(selectors.events_for_catalogue(), request, view=self)
            rows = [selectors.event_summary(event) for event in page]
            data = paginator.get_paginated_data(EventOutputSerializer(rows, many=True).data)
            # Short timeout as well as invalidation: "status" moves with the clock.
            cache.set(key, data, timeout=30)
        return Response(data, headers=PUBLIC)


class EventDetailApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema_serializer(component_name="EventDetail")
    class OutputSerializer(EventOutputSerializer):
        description = serializers.CharField()
        hold_seconds = serializers.IntegerField()
        max_tickets_per_user = serializers.IntegerField()
        queue = inline_serializer(
            "EventQueueSettings",
            {"capacity": serializers.IntegerField(), "pass_seconds": serializers.IntegerField()},
        )
        policy = inline_serializer(
            "EventPolicy",
            {
                "booking_fee": serializers.DecimalField(
                    max_digits=10, decimal_places=2, help_text="Per ticket."
                ),
                "cancel_until": serializers.DateTimeField(
                    help_text="Buyers can cancel online until then (staff at any time)."
                ),
                "cancellation_fees": inline_serializer(
                    "EventCancellationFee",
                    {
                        "days_before": serializers.IntegerField(),
                        "fee_percent": serializers.IntegerField(
                            help_text="Of the ticket price, from days_before days before the show on."
                        ),
                    },
                    many=True,
                ),
            },
            help_text="Fees and cancellation policy; cancelling before the first row is free.",
        )

    @extend_schema(responses=OutputSerializer, operation_id="events_retrieve")
    def get(self, request: Request, event_id: int) -> Response:
        # The body, like the answer, may be a second old: built once per process per
        # second, however many buyers open the event page at the opening.
        data = local_cache.get_or_set(
            ("event_detail_body", event_id), selectors.EVENT_DETAIL_LOCAL_TTL, lambda: self._body(event_id)
        )
        if data is None:
            raise Http404
        return Response(data, headers=PUBLIC)

    def _body(self, event_id: int) -> dict[str, Any] | None:
        event = selectors.event_detail_get(event_id)
        if event is None:
            return None
        row = {
            **selectors.event_summary(event),
            "description": event.description,
            "hold_seconds": event.hold_seconds,
            "max_tickets_per_user": event.max_tickets_per_user,
            "queue": {"capacity": event.queue_capacity, "pass_seconds": event.queue_pass_seconds},
            "policy": CancellationPolicy.of(event).api_body(),
        }
        return self.OutputSerializer(row).data
