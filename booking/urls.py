from django.urls import path

from booking import door_views, views, waiting_list_views

app_name = "booking"
urlpatterns = [
    path("events/<int:event_id>/pick/", views.seat_picker, name="seat_picker"),
    path("events/<int:event_id>/checkout/", views.checkout, name="checkout"),
    path("events/<int:event_id>/waiting-list/", waiting_list_views.waiting_list, name="waiting_list"),
    path("my/tickets/", views.my_tickets, name="my_tickets"),
    path("my/tickets/<str:code>/", views.booking_detail, name="booking_detail"),
    path("my/tickets/<str:code>/cancel/", views.booking_cancel, name="booking_cancel"),
    path("staff/events/<int:event_id>/scan/", door_views.scanner, name="scanner"),
]
