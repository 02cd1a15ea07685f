"""Waiting list API (API.md "Waiting list"): join, read, leave, accept or decline an offer;
staff: figures, the line, pause, remove an entry."""

from __future__ import annotations

from django.utils.translation import get_language
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication, JWTStatelessUserAuthentication

from accounts.api.views import ErrorSerializer
from booking import waiting_list as service
from booking.api.holds import HoldOutputSerializer, hold_as_dict
from booking.waiting_list import EntryView

PARTY_SIZE_MAX = 20


class OfferSerializer(serializers.Serializer):
    class Meta:
        ref_name = "WaitingListOffer"

    seat_ids = serializers.ListField(child=serializers.IntegerField())
    together = serializers.BooleanField(help_text="False: the seats are not side by side.")
    expires_at = serializers.DateTimeField(help_text="Accept before this, or the seats go to the next entry.")


class EntrySerializer(serializers.Serializer):
    class Meta:
        ref_name = "WaitingListEntry"

    position = serializers.IntegerField(
        allow_null=True, help_text="1 = the next to be offered seats; null unless waiting."
    )
    party_size = serializers.IntegerField()
    state = serializers.ChoiceField(
        choices=["waiting", "offered", "accepted", "declined", "expired", "left", "removed"]
    )
    together_only = serializers.BooleanField(help_text="Only seats side by side will be offered.")
    joined_at = serializers.DateTimeField()
    offer = OfferSerializer(allow_null=True)


def entry_as_dict(entry: EntryView) -> dict[str, object]:
    return {
        "position": entry.position,
        "party_size": entry.party_size,
        "state": entry.state,
        "together_only": entry.together_only,
        "joined_at": entry.joined_at,
        "offer": (
            {
                "seat_ids": entry.offer.seat_ids,
                "together": entry.offer.together,
                "expires_at": entry.offer.expires_at,
            }
            if entry.offer
            else None
        ),
    }


class _BuyerApi(APIView):
    # Stateless JWT (no user query) or the page session (with CSRF).
    authentication_classes = [JWTStatelessUserAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class WaitingListApi(_BuyerApi):
    """POST `{party_size}` joins (or changes the party size keeping the place); GET reads
    the entry and its offer; DELETE leaves."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WaitingListJoin"

        party_size = serializers.IntegerField(min_value=1, max_value=PARTY_SIZE_MAX)

    @extend_schema(
        operation_id="events_waiting_list_join",
        request=InputSerializer,
        responses={
            201: EntrySerializer,
            200: OpenApiResponse(
                EntrySerializer, description="Already waiting: party size changed, place kept."
            ),
            400: OpenApiResponse(description="`invalid`, `limit_exceeded` (with `limit`)"),
            403: OpenApiResponse(description="`removed_from_waiting_list`"),
            404: OpenApiResponse(description="`not_found`"),
            409: OpenApiResponse(description="`not_sold_out`, `sales_closed`, `offer_out`"),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry, created = service.waiting_list_join(
            event_id=event_id,
            user_id=request.user.pk,
            party_size=serializer.validated_data["party_size"],
            language=get_language() or "en",
        )
        return Response(
            EntrySerializer(entry_as_dict(entry)).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="events_waiting_list_retrieve",
        responses={200: EntrySerializer, 404: OpenApiResponse(description="`not_on_waiting_list`")},
    )
    def get(self, request: Request, event_id: int) -> Response:
        entry = service.waiting_list_entry_get(event_id=event_id, user_id=request.user.pk)
        if entry is None:
            raise service.not_on_list_error()
        return Response(
            EntrySerializer(entry_as_dict(entry)).data, headers={"Cache-Control": "private, no-store"}
        )

    @extend_schema(
        operation_id="events_waiting_list_leave",
        responses={204: None, 404: OpenApiResponse(description="`not_on_waiting_list`")},
    )
    def delete(self, request: Request, event_id: int) -> Response:
        service.waiting_list_leave(event_id=event_id, user_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OfferAcceptApi(_BuyerApi):
    @extend_schema(
        operation_id="events_waiting_list_offer_accept",
        request=None,
        responses={
            200: OpenApiResponse(
                HoldOutputSerializer, description="The seats are now your holds: `POST /api/bookings/`."
            ),
            404: OpenApiResponse(description="`not_on_waiting_list`"),
            409: OpenApiResponse(description="`no_offer`, `offer_expired`, `seat_unavailable`"),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        hold = service.offer_accept(event_id=event_id, user_id=request.user.pk)
        return Response(HoldOutputSerializer(hold_as_dict(hold)).data)


class OfferDeclineApi(_BuyerApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WaitingListDecline"

        keep_place = serializers.BooleanField(
            default=False, help_text="Seats apart only: keep the place and wait for seats together."
        )

    @extend_schema(
        operation_id="events_waiting_list_offer_decline",
        request=InputSerializer,
        responses={
            200: EntrySerializer,
            400: OpenApiResponse(description="`invalid`"),
            404: OpenApiResponse(description="`not_on_waiting_list`"),
            409: OpenApiResponse(description="`no_offer`"),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        entry = service.offer_decline(
            event_id=event_id, user_id=request.user.pk, keep_place=serializer.validated_data["keep_place"]
        )
        return Response(EntrySerializer(entry_as_dict(entry)).data)


StaffEntry = inline_serializer(
    "WaitingListStaffEntry",
    {
        "id": serializers.IntegerField(),
        "email": serializers.EmailField(),
        "party_size": serializers.IntegerField(),
        "state": serializers.CharField(),
        "joined_at": serializers.DateTimeField(),
        "passed_over": serializers.BooleanField(),
    },
    many=True,
)


StaffWaitingListState = inline_serializer(
    "WaitingListStaffState",
    {
        "paused": serializers.BooleanField(),
        "open": serializers.BooleanField(help_text="Returned seats go to the list now."),
        "waiting": serializers.IntegerField(),
        "waiting_seats": serializers.IntegerField(),
        "parties": serializers.IntegerField(help_text="Entries waiting with a party of 2 or more."),
        "removed": serializers.IntegerField(),
        "offers_out": serializers.IntegerField(),
        "accepted": serializers.IntegerField(),
        "declined": serializers.IntegerField(),
        "expired": serializers.IntegerField(),
        "pool_seats": serializers.IntegerField(help_text="Returned seats gathered, not offered yet."),
        "entries": StaffEntry,
    },
)


class StaffWaitingListApi(APIView):
    """GET: the list's figures and line; PATCH `{paused}`."""

    authentication_classes = [JWTAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WaitingListControl"

        paused = serializers.BooleanField()

    def _state(self, event_id: int) -> dict[str, object]:
        entries = service.waiting_list_entries(event_id=event_id)
        return {
            **service.waiting_list_figures(event_id=event_id),
            "entries": [
                {
                    "id": entry.pk,
                    "email": entry.user.email,
                    "party_size": entry.party_size,
                    "state": entry.state,
                    "joined_at": entry.joined_at,
                    "passed_over": entry.passed_over,
                }
                for entry in entries
            ],
        }

    @extend_schema(operation_id="staff_waiting_list_retrieve", responses={200: StaffWaitingListState})
    def get(self, request: Request, event_id: int) -> Response:
        service.event_get(event_id)
        return Response(self._state(event_id))

    @extend_schema(
        operation_id="staff_waiting_list_update",
        request=InputSerializer,
        responses={200: StaffWaitingListState},
    )
    def patch(self, request: Request, event_id: int) -> Response:
        service.event_get(event_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        service.waiting_list_pause(
            event_id=event_id, paused=serializer.validated_data["paused"], by_id=request.user.pk
        )
        return Response(self._state(event_id))


class StaffWaitingListEntryApi(APIView):
    """DELETE: take an entry off the list (recorded with who did it)."""

    authentication_classes = [JWTAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="staff_waiting_list_entry_remove",
        responses={
            204: None,
            404: OpenApiResponse(
                ErrorSerializer, description="`not_found`: no such entry on this event's list."
            ),
        },
    )
    def delete(self, request: Request, event_id: int, entry_id: int) -> Response:
        service.waiting_list_entry_remove(event_id=event_id, entry_id=entry_id, by_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
