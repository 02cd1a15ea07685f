from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from events.policy import fee_table_normalise, fee_table_parse, validate_fee_table

# The most proof-of-work staff may ask of a browser joining (minutes on a phone).
POW_DIFFICULTY_MAX = 5_000_000
REVIEW_THRESHOLD_MAX = 10_000


class EventStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    ON_SALE = "on_sale", _("On sale")
    SOLD_OUT = "sold_out", _("Sold out")
    CLOSED = "closed", _("Closed")


class Event(models.Model):
    title = models.CharField(_("title"), max_length=200)
    venue = models.CharField(_("venue"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    starts_at = models.DateTimeField(_("starts at"))
    sales_open_at = models.DateTimeField(_("sales open at"))
    sales_close_at = models.DateTimeField(_("sales close at"))
    hold_seconds = models.PositiveIntegerField(
        _("hold seconds"), default=300, validators=[MinValueValidator(30), MaxValueValidator(3600)]
    )
    max_tickets_per_user = models.PositiveSmallIntegerField(
        _("max tickets per user"), default=4, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    queue_capacity = models.PositiveIntegerField(
        _("queue capacity"),
        default=100,
        help_text=_("How many admitted buyers may choose seats at the same time."),
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
    )
    queue_pass_seconds = models.PositiveIntegerField(
        _("pass seconds"),
        default=600,
        help_text=_("How long an admitted buyer may stay in seat selection."),
        validators=[MinValueValidator(30), MaxValueValidator(7200)],
    )
    is_published = models.BooleanField(_("published"), default=True)
    pow_difficulty = models.PositiveIntegerField(
        _("proof-of-work difficulty"),
        default=0,
        help_text=_(
            "Work a browser must do to join the waiting room (hashes; 0 = off). "
            "About 50,000 takes a phone a second or two."
        ),
        validators=[MaxValueValidator(POW_DIFFICULTY_MAX)],
    )
    review_threshold = models.PositiveSmallIntegerField(
        _("accounts per address or device before review"),
        default=0,
        help_text=_(
            "Once this many accounts try to join the waiting room from one network address or "
            "device, they all wait for staff to let them through or remove them (0 = off). "
            "Their places in line are kept."
        ),
        validators=[MaxValueValidator(REVIEW_THRESHOLD_MAX)],
    )
    human_check = models.BooleanField(
        _("human check before seat selection"),
        default=False,
        help_text=_(
            'Admitted buyers tick an "I am not a robot" check (ALTCHA) once per pass before choosing seats.'
        ),
    )
    waiting_list_offer_minutes = models.PositiveSmallIntegerField(
        _("waiting-list offer minutes"),
        default=15,
        help_text=_("How long a buyer on the waiting list has to accept seats offered to them."),
        validators=[MinValueValidator(1), MaxValueValidator(1440)],
    )
    waiting_list_gather_seconds = models.PositiveSmallIntegerField(
        _("waiting-list gathering seconds"),
        default=30,
        help_text=_(
            "Returned seats are gathered this long before a party further back may be served "
            "ahead of one that does not fit yet (see docs/ARCHITECTURE.md, waiting list)."
        ),
        validators=[MaxValueValidator(3600)],
    )
    waiting_list_paused = models.BooleanField(
        _("waiting list paused"),
        default=False,
        help_text=_("While paused, returned seats go back on sale instead of to the waiting list."),
    )
    # Fees and cancellation policy (events.policy): shown on the event page and at
    # checkout, applied by booking.services.booking_cancel.
    booking_fee = models.DecimalField(
        _("booking fee per ticket"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        help_text=_("Shown on the event page and at checkout (0 = no booking fee)."),
        validators=[MinValueValidator(Decimal("0"))],
    )
    cancellation_deadline_hours = models.PositiveIntegerField(
        _("online cancellation closes (hours before the show)"),
        default=0,
        help_text=_(
            "Buyers can cancel online until this many hours before the show starts (0 = until it "
            "starts; 24 = until the day before at the same time). Staff can cancel at any time."
        ),
        validators=[MaxValueValidator(24 * 365)],
    )
    cancellation_fees = models.JSONField(
        _("cancellation fee table"),
        default=list,
        blank=True,
        help_text=_(
            "Rows of days before the show and the fee from then on, in percent of the ticket price; "
            'cancelling earlier than the first row is free. Example: [{"days_before": 9, "fee_percent": 10}, '
            '{"days_before": 6, "fee_percent": 20}, {"days_before": 2, "fee_percent": 30}]. Empty: free '
            "until online cancellation closes."
        ),
        validators=[validate_fee_table],
    )
    # Door staff of this event only (the scanner, nothing of the admin); the permission
    # booking.check_in_tickets (group "Door staff") grants it for every event.
    door_staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="door_staff_events",
        verbose_name=_("door staff"),
        help_text=_("Users who may scan tickets at this event's doors (and nothing else)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sales_open_at", "id"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sales_close_at__gt=models.F("sales_open_at")),
                name="event_sales_window_ordered",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        # The validator has reported a bad table on its field; a good one is stored in
        # order, furthest from the show first.
        try:
            fee_table_parse(self.cancellation_fees)
        except ValidationError:
            return
        self.cancellation_fees = fee_table_normalise(self.cancellation_fees)

    def sales_status(self, *, seats_available: int, now: timezone.datetime | None = None) -> str:
        """scheduled / on_sale / sold_out / closed, from the sales window and the stock."""
        now = now or timezone.now()
        if now >= self.sales_close_at:
            return EventStatus.CLOSED
        if now < self.sales_open_at:
            return EventStatus.SCHEDULED
        if seats_available <= 0:
            return EventStatus.SOLD_OUT
        return EventStatus.ON_SALE


class SeatStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    SOLD = "sold", _("Sold")
    # Offered to a buyer on the waiting list (booking.waiting_list): the regular sale's
    # conditional UPDATE (status = 'available') can't sell it.
    OFFERED = "offered", _("Offered to the waiting list")


class Seat(models.Model):
    """One seat of one event. ``status`` is the source of truth for who may buy it:
    a booking flips it with a conditional UPDATE (see booking.services)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="seats")
    section = models.CharField(_("section"), max_length=20)
    row = models.CharField(_("row"), max_length=10)
    number = models.PositiveIntegerField(_("number"))
    grade = models.CharField(_("grade"), max_length=20, default="R")
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2, default=Decimal("0"))
    status = models.CharField(
        _("status"), max_length=10, choices=SeatStatus.choices, default=SeatStatus.AVAILABLE
    )

    class Meta:
        ordering = ["section", "row", "number"]
        verbose_name = _("seat")
        verbose_name_plural = _("seats")
        constraints = [
            models.UniqueConstraint(fields=["event", "section", "row", "number"], name="seat_unique_place")
        ]
        indexes = [models.Index(fields=["event", "status"], name="seat_event_status")]

    def __str__(self) -> str:
        return f"{self.section}-{self.row}-{self.number}"

    @property
    def label(self) -> str:
        return f"{self.section} {self.row}-{self.number}"


class RushControlChange(models.Model):
    """Audit log: who changed a live sale's controls (pause, capacity, pass length), when, how."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="control_changes")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    changed_at = models.DateTimeField(default=timezone.now)
    changes = models.JSONField(help_text=_("Field → [old, new]"))

    class Meta:
        ordering = ["-changed_at"]
        verbose_name = _("rush control change")
        verbose_name_plural = _("rush control changes")

    def __str__(self) -> str:
        return f"{self.event} @ {self.changed_at:%Y-%m-%d %H:%M:%S}"


class QueueModeration(models.Model):
    """Audit log: a buyer taken off an event's waiting line, an account blocked, or the
    accounts of one address or device let through review, by whom."""

    class Action(models.TextChoices):
        REMOVED = "removed", _("Removed from the waiting line")
        BLOCKED = "blocked", _("Account blocked")
        RELEASED = "released", _("Let through review")

    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, null=True, blank=True, related_name="moderations"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("waiting-room moderation")
        verbose_name_plural = _("waiting-room moderations")

    def __str__(self) -> str:
        return f"{self.action} {self.user_id} @ {self.at:%Y-%m-%d %H:%M:%S}"
