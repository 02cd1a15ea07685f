from django.urls import path

from events.api import catalogue, staff
from events.api.queue_fast import queue_endpoint

urlpatterns = [
    path("events/", catalogue.EventListApi.as_view(), name="api-events"),
    path("events/<int:event_id>/", catalogue.EventDetailApi.as_view(), name="api-event"),
    path("events/<int:event_id>/seats/", catalogue.SeatMapApi.as_view(), name="api-event-seats"),
    path("events/<int:event_id>/queue/", queue_endpoint, name="api-event-queue"),
    path("staff/events/<int:event_id>/rush/", staff.RushControlApi.as_view(), name="api-staff-rush"),
]
