"""Ticket, cancellation and waiting-list e-mails (django-templated-mail), sent at most
once each.

The senders run inside the Celery tasks of ``booking.tasks``. Each locks the booking (or
waiting-list offer) row, skips one already mailed (a broker may deliver a task twice),
sends, and records the time, all in one transaction: a redelivered task never sends a
second mail.
"""

from __future__ import annotations

import secrets
from email.mime.image import MIMEImage
from typing import Any

from django.conf import settings
from django.core.mail.message import SafeMIMEMultipart, SafeMIMEText
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from templated_mail.mail import BaseEmailMessage

from booking.models import Booking, BookingStatus, WaitingListOffer, WaitingListOfferState
from booking.qr import qr_png
from booking.selectors import booking_get_for_mail, seats_in_seat_order
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

    def message(self) -> SafeMIMEMultipart | SafeMIMEText:
        """The MIME message, its multipart boundaries chosen here: left unset, the email
        package picks each at random and compiles a new regular expression to check
        that the parts do not contain it (a fifth of the cost of writing the mail out).
        "=_" cannot occur in a base64 or quoted-printable body, and 128 random bits in
        no text."""
        message = super().message()
        for part in message.walk():
            if part.is_multipart():
                part.set_boundary(f"=_{secrets.token_hex(16)}")
        return message


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
        # Lock the bare row (no joins: MariaDB has no FOR UPDATE OF). One row at most: no
        # ORDER BY or LIMIT to build, as first() would.
        rows = list(
            Booking.objects.select_for_update()
            .filter(pk=booking_id)
            .only("pk", sent_field, "status")
            .order_by()
        )
        if not rows or getattr(rows[0], sent_field) is not None or rows[0].status != status:
            return False
        booking = booking_get_for_mail(booking_id=booking_id)
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


# --- Waiting list -----------------------------------------------------------------------


class WaitingListOfferEmail(_BookingEmail):
    """Seats offered to a buyer on the waiting list: which seats (and whether they are
    side by side), the deadline, and the page with the Accept and Decline buttons."""

    template_name = "email/waiting_list_offer.html"

    def __init__(self, *, offer: WaitingListOffer, **kwargs: Any) -> None:
        event = offer.event
        context = {
            "offer": offer,
            "event": event,
            "seats": seats_in_seat_order(event_id=event.pk, seat_ids=list(offer.seat_ids)),
            "party_size": len(offer.seat_ids),
            "together": offer.together,
            "expires_at": offer.expires_at,
            "buyer_name": offer.entry.user.name,
            "waiting_list_url": _absolute(reverse("booking:waiting_list", args=[event.pk])),
            # The page's decline buttons (a link never declines by itself: the buyer presses one).
            "decline_url": _absolute(reverse("booking:waiting_list", args=[event.pk])) + "#decline",
        }
        super().__init__(context=context, **kwargs)


class WaitingListExpiredEmail(_BookingEmail):
    """The offer ran out: its seats went to the next person on the list."""

    template_name = "email/waiting_list_expired.html"

    def __init__(self, *, offer: WaitingListOffer, **kwargs: Any) -> None:
        event = offer.event
        context = {
            "offer": offer,
            "event": event,
            "expires_at": offer.expires_at,
            "buyer_name": offer.entry.user.name,
            "event_url": _absolute(reverse("events:detail", args=[event.pk])),
        }
        super().__init__(context=context, **kwargs)


def _offer_send_once(
    *, offer_id: int, sent_field: str, state: str, message_class: type[BaseEmailMessage]
) -> bool:
    """Sends one mail of a waiting-list offer at most once, as ``_send_once`` does for a
    booking: the row lock makes a redelivered or concurrent task wait, and the
    ``sent_field`` timestamp tells it the mail went out. An offer no longer in ``state``
    (accepted or declined before the mail task ran) gets no mail."""
    with transaction.atomic():
        # Lock the bare row (no joins: MariaDB has no FOR UPDATE OF).
        row = (
            WaitingListOffer.objects.select_for_update()
            .filter(pk=offer_id)
            .only("pk", sent_field, "state")
            .first()
        )
        if row is None or getattr(row, sent_field) is not None or row.state != state:
            return False
        offer = WaitingListOffer.objects.select_related("event", "entry__user").get(pk=offer_id)
        # In the language the buyer used when joining the list; dates in the site's zone.
        with translation.override(offer.entry.language or settings.LANGUAGE_CODE):
            message_class(offer=offer).send(to=[offer.entry.user.email])
        WaitingListOffer.objects.filter(pk=offer_id).update(**{sent_field: timezone.now()})
    return True


def waiting_list_offer_email_send(*, offer_id: int) -> bool:
    """Sends the mail of a waiting-list offer once, while the offer is out. Returns
    whether a mail went out."""
    return _offer_send_once(
        offer_id=offer_id,
        sent_field="emailed_at",
        state=WaitingListOfferState.OUT,
        message_class=WaitingListOfferEmail,
    )


def waiting_list_expired_email_send(*, offer_id: int) -> bool:
    """Sends the "your offer ran out" mail of an expired offer once. Returns whether a
    mail went out."""
    return _offer_send_once(
        offer_id=offer_id,
        sent_field="expiry_emailed_at",
        state=WaitingListOfferState.EXPIRED,
        message_class=WaitingListExpiredEmail,
    )
