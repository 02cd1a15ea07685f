"""Bookings API (API.md "Bookings"): confirm, list, detail, cancel."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import Http404
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

from booking import selectors, services
from booking.api.holds import SeatIdsField
from booking.models import Booking, Ticket
from booking.services import MAX_IDEMPOTENCY_KEY_LENGTH
from booking.ticket_signing import qr_payload
from events.selectors import event_settings_get
from ticketing.errors import DomainError
from ticketing.pagination import StandardPagination


class BookingSeatSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="seat_id")
    section = serializers.CharField(source="seat.section")
    row = serializers.CharField(source="seat.row")
    number = serializers.IntegerField(source="seat.number")
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    ticket_code = serializers.CharField(source="code")
    qr_payload = serializers.SerializerMethodField(
        help_text="What the ticket's QR code encodes: TK1.<event id>.<ticket code>.<Ed25519 signature>."
    )

    def get_qr_payload(self, ticket: Ticket) -> str:
        return qr_payload(event_id=ticket.booking.event_id, ticket_code=ticket.code)


class BookingOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    event_id = serializers.IntegerField()
    event_title = serializers.CharField(source="event.title")
    status = serializers.ChoiceField(choices=["confirmed", "cancelled"])
    seats = serializers.SerializerMethodField()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    created_at = serializers.DateTimeField()
    confirmed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    cancellation_fee = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        allow_null=True,
        help_text="Kept on cancellation, from the event's fee table (policy.cancellation_fees); null while confirmed.",
    )
    refund = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        allow_null=True,
        help_text="Paid back on cancellation: total minus cancellation_fee; null while confirmed.",
    )

    @extend_schema_field(BookingSeatSerializer(many=True))
    def get_seats(self, booking: Booking) -> list[dict]:
        # A booking just confirmed carries the tickets it wrote (no read-back query);
        # one read from the database has them prefetched (booking.selectors).
        tickets = getattr(booking, "written_tickets", None)
        if tickets is None:
            tickets = booking.tickets.all()
        return BookingSeatSerializer(tickets, many=True).data


# Unbound field instances: their to_representation is what the serializers above apply
# to these values (read-only use, shared safely between threads).
_PRICE = serializers.DecimalField(max_digits=10, decimal_places=2)
_MONEY = serializers.DecimalField(max_digits=12, decimal_places=2)
_MOMENT = serializers.DateTimeField()


def _money(value: Decimal | None) -> str | None:
    return None if value is None else _MONEY.to_representation(value)


def _moment(value: datetime | None) -> str | None:
    return None if value is None else _MOMENT.to_representation(value)


def confirmed_booking_data(booking: Booking, *, event_title: str) -> dict[str, Any]:
    """``BookingOutputSerializer(booking).data`` of a booking this request just wrote
    (``written_tickets`` on it, the seats loaded with them), field for field, without a
    serializer per booking and ticket nor a query for the event's title (the caller
    has it from the event's settings). The tests compare the two."""
    event_id = booking.event_id
    seats = [
        {
            "id": ticket.seat_id,
            "section": str(ticket.seat.section),
            "row": str(ticket.seat.row),
            "number": int(ticket.seat.number),
            "price": _PRICE.to_representation(ticket.price),
            "ticket_code": str(ticket.code),
            "qr_payload": qr_payload(event_id=event_id, ticket_code=ticket.code),
        }
        for ticket in booking.written_tickets
    ]
    return {
        "code": str(booking.code),
        "event_id": int(event_id),
        "event_title": str(event_title),
        "status": str(booking.status),
        "seats": seats,
        "total": _money(booking.total),
        "created_at": _moment(booking.created_at),
        "confirmed_at": _moment(booking.confirmed_at),
        "cancelled_at": _moment(booking.cancelled_at),
        "cancellation_fee": _money(booking.cancellation_fee),
        "refund": _money(booking.refund),
    }


def _booking_or_404(*, code: str, user_id: int) -> Booking:
    booking = selectors.booking_get_for_user(code=code, user_id=user_id)
    if booking is None:
        raise Http404
    return booking


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Up to 64 characters; a repeated key returns the first booking (200).",
)


class BookingListCreateApi(APIView):
    """POST confirms the caller's held seats; GET lists the caller's bookings. Both need
    only the caller's id: the stateless JWT user saves a user query per confirm."""

    authentication_classes = [JWTStatelessUserAuthentication, SessionAuthentication]

    @extend_schema_serializer(component_name="BookingCreate")
    class InputSerializer(serializers.Serializer):
        event_id = serializers.IntegerField(min_value=1)
        seat_ids = SeatIdsField()

    OutputSerializer = BookingOutputSerializer

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: OutputSerializer,
            200: OpenApiResponse(OutputSerializer, description="Repeated Idempotency-Key: the same booking."),
            403: OpenApiResponse(description="code: not_admitted"),
            409: OpenApiResponse(description="code: hold_missing or seat_unavailable"),
        },
        operation_id="bookings_create",
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 0 < len(key.strip()) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            raise DomainError(
                "invalid", _("The Idempotency-Key header must be 1 to 64 characters."), status=400
            )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        booking, created = services.booking_confirm(
            user_id=request.user.pk,
            event_id=serializer.validated_data["event_id"],
            seat_ids=serializer.validated_data["seat_ids"],
            idempotency_key=key.strip() if key else None,
            language=get_language(),
        )
        if created:
            # The hot answer of a rush: built from what the confirm wrote, and the title
            # from the event's settings the confirm itself just read (per-process cache).
            event = event_settings_get(booking.event_id)
            if event is not None and hasattr(booking, "written_tickets"):
                return Response(
                    confirmed_booking_data(booking, event_title=event.title), status=status.HTTP_201_CREATED
                )
            return Response(self.OutputSerializer(booking).data, status=status.HTTP_201_CREATED)
        # A replay: answer with the booking as stored.
        booking = _booking_or_404(code=booking.code, user_id=request.user.pk)
        return Response(self.OutputSerializer(booking).data, status=status.HTTP_200_OK)

    @extend_schema(responses=OutputSerializer(many=True), operation_id="bookings_list")
    def get(self, request: Request) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(
            selectors.booking_list_for_user(user_id=request.user.pk), request, view=self
        )
        return Response(paginator.get_paginated_data(self.OutputSerializer(page, many=True).data))


class BookingDetailApi(APIView):
    OutputSerializer = BookingOutputSerializer

    @extend_schema(responses={200: OutputSerializer, 404: None}, operation_id="bookings_retrieve")
    def get(self, request: Request, code: str) -> Response:
        return Response(self.OutputSerializer(_booking_or_404(code=code, user_id=request.user.pk)).data)


class BookingCancelApi(APIView):
    OutputSerializer = BookingOutputSerializer

    @extend_schema(
        request=None,
        responses={
            200: OutputSerializer,
            404: None,
            409: OpenApiResponse(description="code: not_cancellable"),
        },
        operation_id="bookings_cancel",
    )
    def post(self, request: Request, code: str) -> Response:
        booking = services.booking_cancel(
            booking=_booking_or_404(code=code, user_id=request.user.pk), by_user=request.user
        )
        return Response(
            self.OutputSerializer(_booking_or_404(code=booking.code, user_id=request.user.pk)).data
        )
