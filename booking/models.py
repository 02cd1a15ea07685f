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
    # Set by booking_cancel from the event's fee table (events.policy): the fee kept and
    # the amount paid back. Null while confirmed, and for cancellations made before the
    # table existed.
    cancellation_fee = models.DecimalField(
        _("cancellation fee"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    refund = models.DecimalField(_("refund"), max_digits=12, decimal_places=2, null=True, blank=True)
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


class WaitingListState(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    OFFERED = "offered", _("Offer out")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Offer expired")
    LEFT = "left", _("Left")
    REMOVED = "removed", _("Removed by staff")


class WaitingListEntry(models.Model):
    """One buyer's place on a sold-out event's waiting list (booking.waiting_list).

    One row per buyer and event: leaving and joining again reuses it and moves the buyer
    to the back (``joined_at``). The line is ``state = waiting`` ordered by
    (``joined_at``, ``id``)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="waiting_list")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    party_size = models.PositiveSmallIntegerField(_("party size"))
    state = models.CharField(
        _("state"), max_length=10, choices=WaitingListState.choices, default=WaitingListState.WAITING
    )
    joined_at = models.DateTimeField(_("joined at"))
    # Served past once by a smaller party (the gathering rule): never passed again.
    passed_over = models.BooleanField(_("passed over"), default=False)
    # Declined seats that were apart and kept the place: only seats together from now on.
    together_only = models.BooleanField(_("seats together only"), default=False)
    language = models.CharField(_("language"), max_length=10, default="en")
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["joined_at", "id"]
        verbose_name = _("waiting-list entry")
        verbose_name_plural = _("waiting-list entries")
        constraints = [
            models.UniqueConstraint(fields=["event", "user"], name="waitinglist_one_entry_per_buyer")
        ]
        indexes = [models.Index(fields=["event", "state", "joined_at"], name="waitinglist_line")]

    def __str__(self) -> str:
        return f"{self.event_id}/{self.user_id} ({self.party_size}, {self.state})"


class WaitingListOfferState(models.TextChoices):
    OUT = "out", _("Out")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Expired")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class WaitingListOffer(models.Model):
    """Seats offered exclusively to one entry until ``expires_at``. While it is out its
    seats are ``offered`` in the database (``booking.guards.seats_offer``), so neither a
    second offer nor the regular sale can take them."""

    entry = models.ForeignKey(WaitingListEntry, on_delete=models.CASCADE, related_name="offers")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    seat_ids = models.JSONField(_("seats"))
    together = models.BooleanField(_("seats together"), default=True)
    state = models.CharField(
        _("state"), max_length=10, choices=WaitingListOfferState.choices, default=WaitingListOfferState.OUT
    )
    created_at = models.DateTimeField(_("offered at"))
    expires_at = models.DateTimeField(_("expires at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    expiry_emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("waiting-list offer")
        verbose_name_plural = _("waiting-list offers")
        indexes = [models.Index(fields=["event", "state", "expires_at"], name="waitinglist_offers_out")]

    def __str__(self) -> str:
        return f"offer {self.pk} to {self.entry_id} ({self.state})"
