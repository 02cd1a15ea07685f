from django.urls import path

from booking.api.bookings import BookingCancelApi, BookingDetailApi, BookingListCreateApi
from booking.api.checkins import CheckInApi, CheckInManifestApi, CheckInUndoApi, DoorFiguresApi
from booking.api.holds import HoldApi
from booking.api.human_check import HumanCheckApi, HumanCheckChallengeApi
from booking.api.waiting_list import (
    OfferAcceptApi,
    OfferDeclineApi,
    StaffWaitingListApi,
    StaffWaitingListEntryApi,
    WaitingListApi,
)

urlpatterns = [
    path("events/<int:event_id>/holds/", HoldApi.as_view(), name="api-event-holds"),
    path("events/<int:event_id>/human-check/", HumanCheckApi.as_view(), name="api-human-check"),
    path(
        "events/<int:event_id>/human-check/challenge/",
        HumanCheckChallengeApi.as_view(),
        name="api-human-check-challenge",
    ),
    path("events/<int:event_id>/waiting-list/", WaitingListApi.as_view(), name="api-waiting-list"),
    path(
        "events/<int:event_id>/waiting-list/offer/accept/",
        OfferAcceptApi.as_view(),
        name="api-waiting-list-accept",
    ),
    path(
        "events/<int:event_id>/waiting-list/offer/decline/",
        OfferDeclineApi.as_view(),
        name="api-waiting-list-decline",
    ),
    path(
        "staff/events/<int:event_id>/waiting-list/",
        StaffWaitingListApi.as_view(),
        name="api-staff-waiting-list",
    ),
    path(
        "staff/events/<int:event_id>/waiting-list/entries/<int:entry_id>/",
        StaffWaitingListEntryApi.as_view(),
        name="api-staff-waiting-list-entry",
    ),
    path("bookings/", BookingListCreateApi.as_view(), name="api-bookings"),
    path("bookings/<str:code>/", BookingDetailApi.as_view(), name="api-booking"),
    path("bookings/<str:code>/cancel/", BookingCancelApi.as_view(), name="api-booking-cancel"),
    path("checkins/", CheckInApi.as_view(), name="api-checkins"),
    path("checkins/undo/", CheckInUndoApi.as_view(), name="api-checkins-undo"),
    path(
        "events/<int:event_id>/checkins/manifest/", CheckInManifestApi.as_view(), name="api-checkins-manifest"
    ),
    path("staff/events/<int:event_id>/door/", DoorFiguresApi.as_view(), name="api-staff-door"),
]
