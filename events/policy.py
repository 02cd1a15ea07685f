"""An event's fees and cancellation policy: the booking fee per ticket, how long buyers
may cancel online, and the cancellation-fee table (docs/API.md "Events", ``policy``).

Staff set three fields of the event in the admin; everything else is computed here, from
those fields and the show's start, by pure functions (no query, no cache): the event
page and the checkout show the policy, the cancel page and ``booking_cancel`` use the
same ``refund_quote``, so what the buyer is shown is what is applied.

The fee table is a list of rows ``{"days_before": N, "fee_percent": P}``: from N days
before the show on, the fee is P % of the ticket price, until a row closer to the show
takes over. Before the furthest row, cancelling is free. Days are calendar days in the
site's time zone (the show on the 9th, a cancellation on the 2nd: 7 days before), as
Korean ticket sites count them ("관람일 9~7일 전 10%").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from events.models import Event

MAX_FEE_ROWS = 30
# Not "invalid": JSONField puts its own "Enter a valid JSON." over an error with that code.
INVALID = "invalid_fee_table"
MAX_DAYS_BEFORE = 365
FEE_TABLE_EXAMPLE = '[{"days_before": 9, "fee_percent": 10}, {"days_before": 2, "fee_percent": 30}]'


def moment_before_full_stop(moment: datetime) -> str:
    """``moment`` in the site's time zone and the language's DATETIME_FORMAT, for a
    sentence that puts a full stop right after it: English ends the time with "p.m.",
    whose own period then ends the sentence ("... 10:35 p.m. Please ..."), not two."""
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT").removesuffix(".")


@dataclass(frozen=True)
class FeeRow:
    """One row of the table: from ``days_before`` days before the show on, ``fee_percent``."""

    days_before: int
    fee_percent: int


def _whole_number(value: Any) -> bool:
    # JSON true/false are ints to Python: a fee of `true` percent is a typo, not 1 %.
    return isinstance(value, int) and not isinstance(value, bool)


def fee_table_parse(value: Any) -> list[FeeRow]:
    """The rows of a stored or submitted table, furthest from the show first. Raises
    ``ValidationError`` naming the row and the rule it breaks."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError(
            _("The fee table must be a list of rows, for example %(example)s."),
            code=INVALID,
            params={"example": FEE_TABLE_EXAMPLE},
        )
    if len(value) > MAX_FEE_ROWS:
        raise ValidationError(
            _("The fee table may have at most %(max)d rows."), code=INVALID, params={"max": MAX_FEE_ROWS}
        )
    rows: list[FeeRow] = []
    for number, row in enumerate(value, start=1):
        if not isinstance(row, dict) or set(row) != {"days_before", "fee_percent"}:
            raise ValidationError(
                _('Row %(row)d: each row needs "days_before" and "fee_percent", and nothing else.'),
                code=INVALID,
                params={"row": number},
            )
        days, percent = row["days_before"], row["fee_percent"]
        if not _whole_number(days) or not 0 <= days <= MAX_DAYS_BEFORE:
            raise ValidationError(
                _('Row %(row)d: "days_before" must be a whole number of days from 0 to %(max)d.'),
                code=INVALID,
                params={"row": number, "max": MAX_DAYS_BEFORE},
            )
        if not _whole_number(percent) or not 0 <= percent <= 100:
            raise ValidationError(
                _('Row %(row)d: "fee_percent" must be a whole number from 0 to 100.'),
                code=INVALID,
                params={"row": number},
            )
        if any(seen.days_before == days for seen in rows):
            raise ValidationError(
                _("Row %(row)d: %(days)d days before the show is already in the table."),
                code=INVALID,
                params={"row": number, "days": days},
            )
        rows.append(FeeRow(days_before=days, fee_percent=percent))
    rows.sort(key=lambda row: -row.days_before)
    for further, nearer in itertools.pairwise(rows):
        if nearer.fee_percent < further.fee_percent:
            raise ValidationError(
                _(
                    "The fee may not go down as the show gets closer: %(near)d%% from %(near_days)d "
                    "days before is less than %(far)d%% from %(far_days)d days before."
                ),
                code=INVALID,
                params={
                    "near": nearer.fee_percent,
                    "near_days": nearer.days_before,
                    "far": further.fee_percent,
                    "far_days": further.days_before,
                },
            )
    return rows


def validate_fee_table(value: Any) -> None:
    """The model field's validator (the admin form shows its message on the field)."""
    fee_table_parse(value)


def fee_table_normalise(value: Any) -> list[dict[str, int]]:
    """The table as stored: valid rows, furthest from the show first."""
    return [
        {"days_before": row.days_before, "fee_percent": row.fee_percent} for row in fee_table_parse(value)
    ]


@dataclass(frozen=True)
class FeeBand:
    """A row as the pages show it: cancelling between ``days_from`` and ``days_to`` days
    before the show (inclusive; ``days_from`` None: any earlier) costs ``fee_percent``."""

    days_from: int | None
    days_to: int
    fee_percent: int

    @property
    def free(self) -> bool:
        return self.fee_percent == 0


@dataclass(frozen=True)
class RefundQuote:
    """What cancelling a booking at ``at`` means: the fee and the refund of its total."""

    at: datetime
    days_before: int
    fee_percent: int
    cancellation_fee: Decimal
    refund: Decimal
    self_service_open: bool  # the buyer may still cancel online (staff always may)
    deadline: datetime


@dataclass(frozen=True)
class CancellationPolicy:
    starts_at: datetime
    booking_fee: Decimal
    deadline_hours: int
    rows: tuple[FeeRow, ...]

    @classmethod
    def of(cls, event: Event) -> CancellationPolicy:
        try:
            rows = tuple(fee_table_parse(event.cancellation_fees))
        except ValidationError:
            # Only a table written around the admin's validation gets here; charging the
            # fee of a table nobody checked would be worse than charging none.
            rows = ()
        return cls(
            starts_at=event.starts_at,
            booking_fee=event.booking_fee or Decimal("0"),
            deadline_hours=event.cancellation_deadline_hours,
            rows=rows,
        )

    @property
    def deadline(self) -> datetime:
        """After this moment buyers can no longer cancel online (the show's start at the latest)."""
        return self.starts_at - timedelta(hours=self.deadline_hours)

    @property
    def has_fees(self) -> bool:
        return any(row.fee_percent for row in self.rows)

    def self_service_open(self, at: datetime) -> bool:
        return at < self.deadline

    def days_before(self, at: datetime) -> int:
        """Calendar days from ``at`` to the show, in the site's time zone (0: the show's day)."""
        return (timezone.localdate(self.starts_at) - timezone.localdate(at)).days

    def fee_percent(self, at: datetime) -> int:
        days = self.days_before(at)
        percent = 0
        for row in self.rows:  # furthest first: the last row that has begun applies
            if days <= row.days_before:
                percent = row.fee_percent
        return percent

    def quote(
        self, *, total: Decimal, ticket_price: Decimal | None = None, at: datetime | None = None
    ) -> RefundQuote:
        """Cancelling at ``at`` a booking that cost ``total`` (its tickets' ``ticket_price``
        plus booking fees): the fee is the table's share of the ticket price, the rest of
        the total (booking fees included) is refunded."""
        at = at or timezone.now()
        percent = self.fee_percent(at)
        price = total if ticket_price is None else ticket_price
        # Won have no smaller unit; rounding the fee down is in the buyer's favour.
        fee = (price * percent / 100).quantize(Decimal("1"), rounding=ROUND_DOWN)
        return RefundQuote(
            at=at,
            days_before=self.days_before(at),
            fee_percent=percent,
            cancellation_fee=fee,
            refund=total - fee,
            self_service_open=self.self_service_open(at),
            deadline=self.deadline,
        )

    def bands(self) -> list[FeeBand]:
        """The table as ranges of days, furthest first, starting with the free period."""
        bands = []
        for index, row in enumerate(self.rows):
            if index == 0 and row.fee_percent:
                bands.append(FeeBand(days_from=None, days_to=row.days_before + 1, fee_percent=0))
            nearer = self.rows[index + 1].days_before + 1 if index + 1 < len(self.rows) else 0
            # A free first row covers every earlier day too.
            days_from = None if index == 0 and not row.fee_percent else row.days_before
            bands.append(FeeBand(days_from=days_from, days_to=nearer, fee_percent=row.fee_percent))
        return bands

    def api_body(self) -> dict[str, Any]:
        """The ``policy`` of the event detail API (the same in every language)."""
        return {
            "booking_fee": self.booking_fee,
            "cancel_until": self.deadline,
            "cancellation_fees": [
                {"days_before": row.days_before, "fee_percent": row.fee_percent} for row in self.rows
            ],
        }
