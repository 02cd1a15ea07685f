"""Check-in API (API.md "Check-in at the door"): scan, undo, the scanner's manifest, and
the door figures for the staff dashboard.

Door staff only: the permission ``booking.check_in_tickets`` (group "Door staff") for
every event, or ``Event.door_staff`` for one. JWT or the scanner page's session (DRF's
session authentication enforces CSRF on the POSTs).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

from booking.checkin_figures import door_figures_get, manifest_get
from booking.checkins import GATE_MAX_LENGTH, can_check_in, checkin_record, checkin_undo
from events.models import Event

CODE_MAX_LENGTH = 200

CHECKIN_ERRORS = {
    403: OpenApiResponse(description="code: permission_denied (not door staff of the event) or other_event"),
    404: OpenApiResponse(
        description="code: unknown_ticket (unknown code, or a QR whose signature does not match)"
    ),
    409: OpenApiResponse(
        description="code: already_checked_in (with checked_in_at, gate, seat, holder) or ticket_cancelled"
    ),
}


class CheckInSeatSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CheckInSeat"

    section = serializers.CharField()
    row = serializers.CharField()
    number = serializers.IntegerField()
    label = serializers.CharField()


class CheckInApi(APIView):
    """A scan at a gate. 201: the first entry of this ticket. The stateless JWT user saves
    a user query per scan (the door role is checked by booking.checkins.can_check_in)."""

    authentication_classes = [JWTStatelessUserAuthentication, SessionAuthentication]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckInCreate"

        code = serializers.CharField(
            max_length=CODE_MAX_LENGTH, help_text="The QR payload (TK1....) or the ticket code typed by hand."
        )
        gate = serializers.CharField(max_length=GATE_MAX_LENGTH)
        scanned_at = serializers.DateTimeField(
            required=False, help_text="When a scan queued offline was made; later than now counts as now."
        )
        event_id = serializers.IntegerField(
            required=False,
            min_value=1,
            help_text="The scanner's event: a ticket of another is refused (403).",
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckIn"

        ticket_code = serializers.CharField()
        event_id = serializers.IntegerField()
        seat = CheckInSeatSerializer()
        holder = serializers.CharField()
        gate = serializers.CharField()
        checked_in_at = serializers.DateTimeField()
        state = serializers.CharField()

    @extend_schema(
        operation_id="checkins_create",
        request=InputSerializer,
        responses={201: OutputSerializer, **CHECKIN_ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        entry = checkin_record(
            user=request.user,
            code=data["code"],
            gate=data["gate"].strip(),
            scanned_at=data.get("scanned_at"),
            event_id=data.get("event_id"),
        )
        ticket = entry.ticket
        body = {
            "ticket_code": ticket.code,
            "event_id": ticket.event_id,
            "seat": ticket.seat,
            "holder": ticket.holder,
            "gate": entry.gate,
            "checked_in_at": entry.checked_in_at,
            "state": "checked_in",
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class CheckInUndoApi(APIView):
    """Takes back a mistaken entry: the same gate, within 60 seconds. Audited."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckInUndo"

        code = serializers.CharField(max_length=CODE_MAX_LENGTH)
        gate = serializers.CharField(max_length=GATE_MAX_LENGTH)

    @extend_schema(
        operation_id="checkins_undo",
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "CheckInUndone", {"ticket_code": serializers.CharField(), "state": serializers.CharField()}
            ),
            403: OpenApiResponse(description="code: permission_denied"),
            404: OpenApiResponse(description="code: unknown_ticket"),
            409: OpenApiResponse(description="code: undo_not_allowed (another gate, or after 60 s)"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = checkin_undo(
            user=request.user,
            code=serializer.validated_data["code"],
            gate=serializer.validated_data["gate"].strip(),
        )
        return Response({"ticket_code": ticket.code, "state": "valid"})


class ManifestTicketSerializer(serializers.Serializer):
    code = serializers.CharField()
    seat = serializers.CharField()
    section = serializers.CharField()
    row = serializers.CharField()
    number = serializers.IntegerField()
    holder = serializers.CharField()
    state = serializers.ChoiceField(choices=["valid", "cancelled", "checked_in"])
    checked_in_at = serializers.DateTimeField(allow_null=True)
    gate = serializers.CharField(allow_null=True)


class CheckInManifestApi(APIView):
    """What a scanner keeps to answer through a network drop: the public key that checks
    QR signatures and every ticket of the event with its state."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckInManifest"

        event_id = serializers.IntegerField()
        event_title = serializers.CharField()
        algorithm = serializers.CharField()
        public_key = serializers.CharField(help_text="Ed25519, raw 32 bytes, base64url.")
        generated_at = serializers.DateTimeField()
        tickets = ManifestTicketSerializer(many=True)
        checked_in = serializers.IntegerField()
        total = serializers.IntegerField()

    @extend_schema(operation_id="checkins_manifest", responses={200: OutputSerializer, 403: None, 404: None})
    def get(self, request: Request, event_id: int) -> Response:
        event = get_object_or_404(Event, pk=event_id)
        if not can_check_in(request.user, event.pk):
            raise PermissionDenied
        # Plain data, not the serializer (which documents it): 50,000 tickets take ~10x
        # longer through DRF fields; the JSON renderer writes the datetimes in ISO 8601.
        return Response(manifest_get(event=event))


class DoorFiguresApi(APIView):
    """Check-in figures of an event for the rush dashboard (staff)."""

    permission_classes = [IsAdminUser]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DoorFigures"

        checked_in = serializers.IntegerField()
        tickets = serializers.IntegerField()
        per_gate = serializers.ListField(
            child=inline_serializer(
                "GateCount", {"gate": serializers.CharField(), "count": serializers.IntegerField()}
            )
        )
        per_minute = serializers.ListField(
            child=inline_serializer(
                "MinuteCount", {"minute": serializers.DateTimeField(), "count": serializers.IntegerField()}
            ),
            help_text="Entries per minute, last two hours, oldest first.",
        )
        repeat_scans = serializers.IntegerField()
        conflicts = serializers.IntegerField(
            help_text="Entries a queued offline scan showed to be second entries."
        )
        undone = serializers.IntegerField()

    @extend_schema(operation_id="staff_door_retrieve", responses=OutputSerializer)
    def get(self, request: Request, event_id: int) -> Response:
        event = get_object_or_404(Event, pk=event_id)
        return Response(self.OutputSerializer(door_figures_get(event=event)).data)
