"""Creates an on-sale (or upcoming) event with its seats; prints it as JSON with --json.

    python manage.py create_event --title T --sections A,B --rows 10 --seats-per-row 20 \\
        --price 55000 --capacity 100 --hold-seconds 300 --max-tickets-per-user 4 --open-now --json
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from events.models import POW_DIFFICULTY_MAX, REVIEW_THRESHOLD_MAX
from events.services.catalogue import event_create_with_seats


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _difficulty(value: str) -> int:
    number = int(value)
    if not 0 <= number <= POW_DIFFICULTY_MAX:
        raise ValueError(f"must be 0 to {POW_DIFFICULTY_MAX}")
    return number


def _review_threshold(value: str) -> int:
    number = int(value)
    if not 0 <= number <= REVIEW_THRESHOLD_MAX:
        raise ValueError(f"must be 0 to {REVIEW_THRESHOLD_MAX}")
    return number


class Command(BaseCommand):
    help = "Create a published event with a block of seats (operators and load tests use it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--title", required=True)
        parser.add_argument("--venue", default="Main Hall")
        parser.add_argument("--description", default="")
        parser.add_argument("--sections", default="A", help="Comma-separated section names, e.g. A,B,C")
        parser.add_argument("--rows", type=_positive, default=10)
        parser.add_argument("--seats-per-row", type=_positive, default=20)
        parser.add_argument("--price", default="55000")
        parser.add_argument("--grade", default="R")
        parser.add_argument("--capacity", type=_positive, default=100)
        parser.add_argument("--pass-seconds", type=_positive, default=600)
        parser.add_argument("--hold-seconds", type=_positive, default=300)
        parser.add_argument("--max-tickets-per-user", type=_positive, default=4)
        parser.add_argument(
            "--pow-difficulty",
            type=_difficulty,
            default=0,
            help="Proof-of-work asked of each browser joining (hashes; 0, the default, = off; ~50000 ≈ 1-2 s on a phone).",
        )
        parser.add_argument(
            "--human-check",
            action="store_true",
            help="Ask an 'I am not a robot' check before seat selection.",
        )
        parser.add_argument(
            "--review-threshold",
            type=_review_threshold,
            default=0,
            help="Hold for staff review all accounts joining from one address or device once this many "
            "tried (0, the default, = off).",
        )
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--open-now", action="store_true", help="Sales opened a minute ago.")
        when.add_argument(
            "--opens-in", type=int, metavar="SECONDS", help="Sales open this many seconds from now."
        )
        parser.add_argument("--json", action="store_true", help="Print the event as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            price = Decimal(options["price"])
        except InvalidOperation as exc:
            raise CommandError(f"--price must be a number, not {options['price']!r}") from exc
        sections = [name.strip() for name in options["sections"].split(",") if name.strip()]
        if not sections:
            raise CommandError("--sections needs at least one name")
        sales_open_at = None
        if options["opens_in"] is not None:
            sales_open_at = timezone.now() + timedelta(seconds=options["opens_in"])
        event = event_create_with_seats(
            title=options["title"],
            venue=options["venue"],
            description=options["description"],
            sections=sections,
            rows=options["rows"],
            seats_per_row=options["seats_per_row"],
            price=price,
            grade=options["grade"],
            capacity=options["capacity"],
            pass_seconds=options["pass_seconds"],
            hold_seconds=options["hold_seconds"],
            max_tickets_per_user=options["max_tickets_per_user"],
            open_now=options["open_now"],
            sales_open_at=sales_open_at,
            pow_difficulty=options["pow_difficulty"],
            human_check=options["human_check"],
            review_threshold=options["review_threshold"],
        )
        seat_ids = list(event.seats.order_by("pk").values_list("pk", flat=True))
        summary = {
            "id": event.pk,
            "title": event.title,
            "sales_open_at": event.sales_open_at.isoformat(),
            "sales_close_at": event.sales_close_at.isoformat(),
            "seats_total": len(seat_ids),
            "first_seat_id": seat_ids[0] if seat_ids else None,
            "last_seat_id": seat_ids[-1] if seat_ids else None,
            "capacity": event.queue_capacity,
            "hold_seconds": event.hold_seconds,
            "max_tickets_per_user": event.max_tickets_per_user,
            "pow_difficulty": event.pow_difficulty,
            "human_check": event.human_check,
            "review_threshold": event.review_threshold,
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Created event {event.pk} “{event.title}” with {len(seat_ids)} seats.")
            )
