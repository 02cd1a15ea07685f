from django.urls import path

from events import queue_views, views

app_name = "events"
urlpatterns = [
    path("", views.home, name="home"),
    path("events/<int:event_id>/", views.event_detail, name="detail"),
    path("events/<int:event_id>/queue/", queue_views.waiting_room, name="waiting_room"),
    path("staff/events/<int:event_id>/rush/", queue_views.rush_dashboard, name="rush_dashboard"),
]
