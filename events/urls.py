from django.urls import path

from events.views import catalogue, dashboard, moderation, waiting_room

app_name = "events"
urlpatterns = [
    path("", catalogue.home, name="home"),
    path("events/<int:event_id>/", catalogue.event_detail, name="detail"),
    path("events/<int:event_id>/queue/", waiting_room.waiting_room, name="waiting_room"),
    path("staff/events/<int:event_id>/rush/", dashboard.rush_dashboard, name="rush_dashboard"),
    path("staff/events/<int:event_id>/queue/remove/", moderation.queue_remove, name="queue_remove"),
    path("staff/events/<int:event_id>/block/", moderation.user_block, name="user_block"),
    path("staff/events/<int:event_id>/review/release/", moderation.review_release, name="review_release"),
]
