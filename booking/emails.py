"""Ticket and cancellation e-mails (django-templated-mail), sent at most once each.

The senders run inside the Celery tasks of ``booking.tasks``. Each locks the booking
row, skips a booking already mailed (a broker may deliver a task twice), sends, and
records the time, all in one transaction: a redelivered task never sends a second mail.
"""

from __future__ import annotations

from email.mime.image import MIMEImage
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from templated_mail.mail import BaseEmailMessage

from booking.models import Booking, BookingStatus
from booking.qr import qr_png
from booking.selectors import booking_get
from booking.ticket_signing import qr_payload


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def qr_content_id(ticket_code: str) -> str:
    return f"ticket-{ticket_code}@tickets"


class _BookingEmail(BaseEmailMessage):
    """The subject is a mail header, not HTML: its template block turns autoescaping off
    (a title "Rock & Roll" must not arrive as "Rock &amp; Roll"), and any line break in
    an event title is folded here, since a header with a newline refuses to send."""

    def render(self) -> None:
        super().render()
        self.subject = " ".join(self.subject.split())


class TicketEmail(_BookingEmail):
    """The confirmation with one inline QR code (PNG, Content-ID) per ticket; the HTML
    part refers to them as ``cid:``, the text part lists the ticket codes."""

    template_name = "email/ticket_confirmed.html"

    def __init__(self, *, booking: Booking, **kwargs: Any) -> None:
        self.booking = booking
        tickets = list(booking.tickets.all())
        context = {
            "booking": booking,
            "event": booking.event,
            "tickets": [
                {"ticket": ticket, "seat": ticket.seat, "cid": qr_content_id(ticket.code)}
                for ticket in tickets
            ],
            "buyer_name": booking.user.name,
            "my_tickets_url": _absolute(reverse("booking:my_tickets")),
            "booking_url": _absolute(reverse("booking:booking_detail", args=[booking.code])),
        }
        super().__init__(context=context, **kwargs)

    def render(self) -> None:
        super().render()
        for ticket in self.booking.tickets.all():
            payload = qr_payload(event_id=self.booking.event_id, ticket_code=ticket.code)
            image = MIMEImage(qr_png(payload), "png")
            image.add_header("Content-ID", f"<{qr_content_id(ticket.code)}>")
            image.add_header("Content-Disposition", "inline", filename=f"ticket-{ticket.code}.png")
            self.attach(image)
        # multipart/related: the images belong to the HTML part instead of being
        # listed as separate attachments.
        self.mixed_subtype = "related"


class CancellationEmail(_BookingEmail):
    template_name = "email/booking_cancelled.html"

    def __init__(self, *, booking: Booking, **kwargs: Any) -> None:
        context = {
            "booking": booking,
            "event": booking.event,
            "tickets": [{"ticket": ticket, "seat": ticket.seat} for ticket in booking.tickets.all()],
            "buyer_name": booking.user.name,
            "my_tickets_url": _absolute(reverse("booking:my_tickets")),
        }
        super().__init__(context=context, **kwargs)


def _send(message: BaseEmailMessage, *, booking: Booking) -> None:
    # Rendered in the buyer's language (recorded at booking time), dates in the site's zone.
    with translation.override(booking.language or settings.LANGUAGE_CODE):
        message.send(to=[booking.user.email])


def _send_once(
    *, booking_id: int, sent_field: str, status: str, message_class: type[BaseEmailMessage]
) -> bool:
    """Sends one mail of a booking at most once: the row lock makes a redelivered or
    concurrent task wait, and the ``sent_field`` timestamp tells it the mail went out."""
    with transaction.atomic():
        # Lock the bare row (no joins: MariaDB has no FOR UPDATE OF).
        row = (
            Booking.objects.select_for_update().filter(pk=booking_id).only("pk", sent_field, "status").first()
        )
        if row is None or getattr(row, sent_field) is not None or row.status != status:
            return False
        booking = booking_get(booking_id=booking_id)
        assert booking is not None
        _send(message_class(booking=booking), booking=booking)
        Booking.objects.filter(pk=booking_id).update(**{sent_field: timezone.now()})
    return True


def ticket_email_send(*, booking_id: int) -> bool:
    """Sends the ticket mail of a booking once. Returns whether a mail went out."""
    return _send_once(
        booking_id=booking_id,
        sent_field="emailed_at",
        status=BookingStatus.CONFIRMED,
        message_class=TicketEmail,
    )


def cancellation_email_send(*, booking_id: int) -> bool:
    """Sends the cancellation mail of a booking once. Returns whether a mail went out."""
    return _send_once(
        booking_id=booking_id,
        sent_field="cancellation_emailed_at",
        status=BookingStatus.CANCELLED,
        message_class=CancellationEmail,
    )
