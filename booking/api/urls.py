from django.urls import path

from booking.api.bookings import BookingCancelApi, BookingDetailApi, BookingListCreateApi
from booking.api.checkins import CheckInApi, CheckInManifestApi, CheckInUndoApi, DoorFiguresApi
from booking.api.holds import HoldApi
from booking.api.human_check import HumanCheckApi, HumanCheckChallengeApi

urlpatterns = [
    path("events/<int:event_id>/holds/", HoldApi.as_view(), name="api-event-holds"),
    path("events/<int:event_id>/human-check/", HumanCheckApi.as_view(), name="api-human-check"),
    path(
        "events/<int:event_id>/human-check/challenge/",
        HumanCheckChallengeApi.as_view(),
        name="api-human-check-challenge",
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
