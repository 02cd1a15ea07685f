from django.urls import path

from booking.api.bookings import BookingCancelApi, BookingDetailApi, BookingListCreateApi
from booking.api.holds import HoldApi

urlpatterns = [
    path("events/<int:event_id>/holds/", HoldApi.as_view(), name="api-event-holds"),
    path("bookings/", BookingListCreateApi.as_view(), name="api-bookings"),
    path("bookings/<str:code>/", BookingDetailApi.as_view(), name="api-booking"),
    path("bookings/<str:code>/cancel/", BookingCancelApi.as_view(), name="api-booking-cancel"),
]
