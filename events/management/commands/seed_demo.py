"""Demo data for ``make run``: an event on sale now, an upcoming one, a sold-out one (with
its waiting list open to join; cancel one of its bookings in the admin to see an offer
go out), a staff account,
a door-staff account (the ticket scanner only) and a buyer account. Safe to run again (it
creates nothing twice).

Passwords are random per checkout (kept in ``var/demo-credentials.json``, never in the
repository) unless DEMO_STAFF_PASSWORD / DEMO_DOOR_PASSWORD / DEMO_BUYER_PASSWORD are set."""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import User
from booking.checkins import door_staff_group
from booking.models import Booking, Ticket
from booking.services import BOOKING_CODE_LENGTH, TICKET_CODE_LENGTH, code_generate
from events.models import Event, Seat, SeatStatus
from events.services.catalogue import SectionSpec, event_create_with_seats
from events.services.seat_map import seats_changed

DEMO_STAFF_EMAIL = "staff@example.com"
DEMO_BUYER_EMAIL = "buyer@example.com"
DEMO_DOOR_EMAIL = "door@example.com"
DEMO_SOLD_OUT_TITLE = "Jazz Night at Blue Square"
DEMO_ON_SALE_TITLE = "IU Live — The Golden Hour"
# The on-sale event's cancellation policy: the fee steps Korean ticket sites use for
# concerts (free until 10 days before the show, then 10 / 20 / 30 % of the ticket price),
# and online cancellation until 24 hours before the show.
# A booking fee per ticket, as Korean ticket sites charge (예매수수료).
DEMO_BOOKING_FEE = Decimal("2000")
DEMO_CANCELLATION_FEES = [
    {"days_before": 9, "fee_percent": 10},
    {"days_before": 6, "fee_percent": 20},
    {"days_before": 2, "fee_percent": 30},
]
DEMO_CANCELLATION_DEADLINE_HOURS = 24


class Command(BaseCommand):
    help = "Create demo events and accounts (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        credentials = self._credentials()
        staff_password, buyer_password = credentials["staff"], credentials["buyer"]
        door_password = credentials["door"]
        if not User.objects.filter(email=DEMO_STAFF_EMAIL).exists():
            User.objects.create_superuser(DEMO_STAFF_EMAIL, staff_password, name="Demo Staff")
        if not User.objects.filter(email=DEMO_BUYER_EMAIL).exists():
            User.objects.create_user(DEMO_BUYER_EMAIL, buyer_password, name="Demo Buyer")
        if not User.objects.filter(email=DEMO_DOOR_EMAIL).exists():
            door = User.objects.create_user(DEMO_DOOR_EMAIL, door_password, name="Demo Door")
            door.groups.add(door_staff_group())
        for email, password in (
            (DEMO_STAFF_EMAIL, staff_password),
            (DEMO_BUYER_EMAIL, buyer_password),
            (DEMO_DOOR_EMAIL, door_password),
        ):
            account = User.objects.get(email=email)
            if not account.check_password(password):
                account.set_password(password)
                account.save(update_fields=["password"])

        now = timezone.now()
        if not Event.objects.filter(title=DEMO_ON_SALE_TITLE).exists():
            event_create_with_seats(
                title=DEMO_ON_SALE_TITLE,
                venue="Olympic Hall, Seoul",
                description="The demo rush: on sale now. Join the waiting room, pick seats, get tickets.",
                sections=[
                    SectionSpec("VIP", "VIP", Decimal("165000")),
                    SectionSpec("R", "R", Decimal("132000")),
                    SectionSpec("S", "S", Decimal("99000")),
                ],
                rows=8,
                seats_per_row=12,
                capacity=50,
                pass_seconds=600,
                hold_seconds=300,
                max_tickets_per_user=4,
                sales_open_at=now - timedelta(minutes=5),
                sales_close_at=now + timedelta(days=30),
                starts_at=now + timedelta(days=45),
            )
        self._policy(Event.objects.get(title=DEMO_ON_SALE_TITLE))
        if not Event.objects.filter(title="Seoul Philharmonic — New Year Concert").exists():
            event_create_with_seats(
                title="Seoul Philharmonic — New Year Concert",
                venue="Lotte Concert Hall",
                description="Sales open in two days. You may join the waiting room early.",
                sections=[SectionSpec("A", "R", Decimal("88000")), SectionSpec("B", "S", Decimal("66000"))],
                rows=6,
                seats_per_row=10,
                sales_open_at=now + timedelta(days=2),
                sales_close_at=now + timedelta(days=40),
                starts_at=now + timedelta(days=41),
            )
        if not Event.objects.filter(title=DEMO_SOLD_OUT_TITLE).exists():
            self._sold_out_event(now)
        self.stdout.write(
            self.style.SUCCESS(
                "Demo data ready.\n"
                f"  staff (admin, dashboard): {DEMO_STAFF_EMAIL} / {staff_password}\n"
                f"  door staff (scanner):     {DEMO_DOOR_EMAIL} / {door_password}\n"
                f"  buyer:                    {DEMO_BUYER_EMAIL} / {buyer_password}"
            )
        )

    def _policy(self, event: Event) -> None:
        """Gives the event the demo's fees and cancellation policy, once (a policy staff
        have set since is kept)."""
        if event.cancellation_fees:
            return
        event.cancellation_fees = DEMO_CANCELLATION_FEES
        event.cancellation_deadline_hours = DEMO_CANCELLATION_DEADLINE_HOURS
        event.booking_fee = DEMO_BOOKING_FEE
        event.full_clean()
        event.save(
            update_fields=["cancellation_fees", "cancellation_deadline_hours", "booking_fee", "updated_at"]
        )

    def _sold_out_event(self, now: timezone.datetime) -> None:
        """A small event whose every seat went to three early buyers (bookings written as
        the confirm writes them, mails marked sent): its waiting list is open."""
        event = event_create_with_seats(
            title=DEMO_SOLD_OUT_TITLE,
            venue="Blue Square, Seoul",
            description="Sold out. Join the waiting list: seats that come back are offered in line order.",
            sections=[SectionSpec("A", "R", Decimal("77000"))],
            rows=2,
            seats_per_row=6,
            max_tickets_per_user=4,
            sales_open_at=now - timedelta(days=1),
            sales_close_at=now + timedelta(days=20),
            starts_at=now + timedelta(days=21),
        )
        seats = list(Seat.objects.filter(event=event).order_by("row", "number"))
        for number in range(3):
            early, _ = User.objects.get_or_create(
                email=f"early{number + 1}@example.com", defaults={"name": f"Early Buyer {number + 1}"}
            )
            mine = seats[number * 4 : number * 4 + 4]
            booking = Booking.objects.create(
                code=code_generate(BOOKING_CODE_LENGTH),
                user=early,
                event=event,
                total=sum((seat.price for seat in mine), Decimal("0")),
                confirmed_at=now,
                emailed_at=now,
            )
            Ticket.objects.bulk_create(
                Ticket(booking=booking, seat=seat, price=seat.price, code=code_generate(TICKET_CODE_LENGTH))
                for seat in mine
            )
        Seat.objects.filter(event=event).update(status=SeatStatus.SOLD)
        seats_changed(event.pk)

    def _credentials(self) -> dict[str, str]:
        path = settings.VAR_DIR / "demo-credentials.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        credentials = {
            "staff": os.environ.get("DEMO_STAFF_PASSWORD") or stored.get("staff") or secrets.token_urlsafe(9),
            "buyer": os.environ.get("DEMO_BUYER_PASSWORD") or stored.get("buyer") or secrets.token_urlsafe(9),
            "door": os.environ.get("DEMO_DOOR_PASSWORD") or stored.get("door") or secrets.token_urlsafe(9),
        }
        path.write_text(json.dumps(credentials))
        path.chmod(0o600)
        return credentials
