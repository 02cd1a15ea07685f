from django.urls import path

from events.api import catalogue, staff
from events.api.moderation import AccountBlockApi, QueueRemoveApi, ReviewReleaseApi, SuspiciousApi
from events.api.queue import QueueCursorApi, queue_endpoint
from events.api.queue_challenge import QueueChallengeApi
from events.api.queue_join_refusal import QueueJoinRefusalApi
from events.api.seat_map import seat_map_endpoint

# The two reads a rush polls thousands of times a second: ticketing/urls.py mounts them
# first and without an include (each include level is one more pattern match per request).
hot_urlpatterns = [
    path("api/events/<int:event_id>/queue/", queue_endpoint, name="api-event-queue"),
    path("api/events/<int:event_id>/seats/", seat_map_endpoint, name="api-event-seats"),
]

urlpatterns = [
    path("events/", catalogue.EventListApi.as_view(), name="api-events"),
    path("events/<int:event_id>/", catalogue.EventDetailApi.as_view(), name="api-event"),
    path("events/<int:event_id>/queue/cursor/", QueueCursorApi.as_view(), name="api-event-queue-cursor"),
    path(
        "events/<int:event_id>/queue/join-refusal/",
        QueueJoinRefusalApi.as_view(),
        name="api-event-queue-join-refusal",
    ),
    path(
        "events/<int:event_id>/queue/challenge/",
        QueueChallengeApi.as_view(),
        name="api-event-queue-challenge",
    ),
    path("staff/events/<int:event_id>/rush/", staff.RushControlApi.as_view(), name="api-staff-rush"),
    path("staff/events/<int:event_id>/suspicious/", SuspiciousApi.as_view(), name="api-staff-suspicious"),
    path(
        "staff/events/<int:event_id>/review/release/",
        ReviewReleaseApi.as_view(),
        name="api-staff-review-release",
    ),
    path(
        "staff/events/<int:event_id>/queue/remove/", QueueRemoveApi.as_view(), name="api-staff-queue-remove"
    ),
    path("staff/accounts/block/", AccountBlockApi.as_view(), name="api-staff-account-block"),
]
