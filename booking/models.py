from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from events.models import Event, Seat


class BookingStatus(models.TextChoices):
    CONFIRMED = "confirmed", _("Confirmed")
    CANCELLED = "cancelled", _("Cancelled")


class Booking(models.Model):
    code = models.CharField(_("booking code"), max_length=16, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="bookings")
    status = models.CharField(
        _("status"), max_length=10, choices=BookingStatus.choices, default=BookingStatus.CONFIRMED
    )
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    emailed_at = models.DateTimeField(_("ticket e-mailed at"), null=True, blank=True)
    cancellation_emailed_at = models.DateTimeField(null=True, blank=True)
    # The buyer's language when they booked: the ticket and cancellation mails use it.
    language = models.CharField(_("language"), max_length=10, default="en")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        constraints = [
            # A retried confirm with the same key finds the first booking.
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="booking_idempotency_key")
        ]
        indexes = [models.Index(fields=["event", "status"], name="booking_event_status")]

    def __str__(self) -> str:
        return self.code


class Ticket(models.Model):
    """One seat of one booking. A cancelled booking keeps its tickets as history."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="tickets")
    seat = models.ForeignKey(Seat, on_delete=models.PROTECT, related_name="tickets")
    code = models.CharField(_("ticket code"), max_length=24, unique=True)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)
    # The entry at the door: set once by a conditional UPDATE (booking.guards.ticket_admit),
    # so of two gates scanning one ticket at the same instant exactly one wins.
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    checked_in_gate = models.CharField(_("gate"), max_length=64, blank=True)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["seat__section", "seat__row", "seat__number"]
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        permissions = [("check_in_tickets", _("Can check in tickets at the door (all events)"))]

    def __str__(self) -> str:
        return self.code


class CheckInOutcome(models.TextChoices):
    ENTERED = "entered", _("Entered")
    REPEAT = "repeat", _("Repeat scan")
    SUPERSEDED = "superseded", _("Superseded by an earlier offline scan")
    UNDONE = "undone", _("Undone")


class CheckInLog(models.Model):
    """Audit trail of the door: every accepted entry, repeat scan, undo, and entry that a
    queued offline scan showed to be a second one. The ticket's own fields say who is in."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="checkin_log")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(_("outcome"), max_length=12, choices=CheckInOutcome.choices)
    gate = models.CharField(_("gate"), max_length=64)
    scanned_at = models.DateTimeField(_("scanned at"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name = _("check-in record")
        verbose_name_plural = _("check-in records")
        indexes = [models.Index(fields=["event", "outcome"], name="checkinlog_event_outcome")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.outcome} {self.gate}"
