"""Staff admin for bookings: search by code or e-mail, filter by status and event,
tickets inline (read-only), and a "Cancel selected bookings" action that goes
through booking_cancel (seats back on sale, map updated, cancellation mail)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from booking.models import Booking, BookingStatus, CheckInLog, Ticket, WaitingListEntry, WaitingListOffer
from booking.services import booking_cancel
from ticketing.errors import DomainError, ServiceUnavailable


class TicketInline(admin.TabularInline):
    model = Ticket
    extra = 0
    can_delete = False
    fields = ("code", "seat", "price", "checked_in_at", "checked_in_gate")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = ("code", "user_email", "event", "status", "total", "created_at", "emailed_at")
    list_filter = ("status", "event", "created_at")
    search_fields = ("code", "user__email")
    list_select_related = ("user", "event")
    ordering = ("-created_at",)
    inlines = [TicketInline]
    actions = ["cancel_selected"]
    # Bookings change only through the services (confirm, cancel): never by hand.
    readonly_fields = (
        "code",
        "user",
        "event",
        "status",
        "total",
        "idempotency_key",
        "language",
        "created_at",
        "confirmed_at",
        "cancelled_at",
        "cancelled_by",
        "emailed_at",
        "cancellation_emailed_at",
    )

    @admin.display(description=_("e-mail"), ordering="user__email")
    def user_email(self, booking: Booking) -> str:
        return booking.user.email

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False

    @admin.action(description=_("Cancel selected bookings"), permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        cancelled, failed = 0, []
        for booking in queryset.filter(status=BookingStatus.CONFIRMED):
            try:
                booking_cancel(booking=booking, by_user=request.user)
            except (DomainError, ServiceUnavailable) as exc:
                failed.append(f"{booking.code}: {exc}")
            else:
                cancelled += 1
        if cancelled:
            self.message_user(
                request,
                ngettext("%(count)d booking cancelled.", "%(count)d bookings cancelled.", cancelled)
                % {"count": cancelled},
                messages.SUCCESS,
            )
        if failed:
            self.message_user(request, _("Not cancelled: %s") % "; ".join(failed), messages.ERROR)
        skipped = queryset.exclude(status=BookingStatus.CONFIRMED).count()
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d booking was already cancelled.",
                    "%(count)d bookings were already cancelled.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )


@admin.register(CheckInLog)
class CheckInLogAdmin(admin.ModelAdmin):
    """The door's audit trail: read-only (written by booking.checkins only)."""

    list_display = ("recorded_at", "event", "ticket", "outcome", "gate", "scanned_at", "by")
    list_filter = ("outcome", "event")
    search_fields = ("ticket__code", "gate", "by__email")
    list_select_related = ("event", "ticket", "by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CheckInLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: CheckInLog | None = None) -> bool:
        return False


@admin.register(WaitingListEntry)
class WaitingListEntryAdmin(admin.ModelAdmin):
    """The waiting lists, read-only: entries change through booking.waiting_list only (staff
    remove one and pause a list on the rush dashboard)."""

    list_display = ("event", "user", "party_size", "state", "joined_at", "passed_over", "removed_by")
    list_filter = ("state", "event")
    search_fields = ("user__email", "event__title")
    list_select_related = ("event", "user", "removed_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WaitingListEntry | None = None) -> bool:
        return False


@admin.register(WaitingListOffer)
class WaitingListOfferAdmin(admin.ModelAdmin):
    list_display = (
        "event",
        "entry",
        "seat_ids",
        "together",
        "state",
        "created_at",
        "expires_at",
        "closed_at",
    )
    list_filter = ("state", "event")
    search_fields = ("entry__user__email", "event__title")
    list_select_related = ("event", "entry")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WaitingListOffer | None = None) -> bool:
        return False
