"""The rehearsal's invariants, checked after a run from the database (Django ORM, same
settings as the app), the mail files, the Redis admission monitor and locust's records.

    python bench/invariants.py --event-id 42 [--mail-dir var/loadtest/RUN/mail] \\
        [--outcomes var/loadtest/RUN/outcomes.json] [--records var/loadtest/RUN/journeys] \\
        [--admission var/loadtest/RUN/admission.json] [--stats-csv var/loadtest/RUN/locust_stats.csv]

Prints one row per invariant and exits 1 if any is broken (``n/a`` rows were not
checkable with the inputs given and do not fail the run).

How admission order is checked (two independent, sound checks; neither can report a
violation that did not happen, both can miss one that healed between observations):

* Redis (``AdmissionOrderMonitor``, run by ``bench/loadtest.py`` during the sale): every
  ~0.25 s one MULTI/EXEC snapshot of the head of the waiting zset (member → arrival seq)
  and of the active zset. A user seen newly active is matched with the arrival seq we saw
  while they waited. FIFO means: at every instant, everyone ever admitted has a smaller
  seq than everyone still waiting, so a snapshot whose smallest waiting seq is below the
  largest admitted seq is a violation.
* Buyers' view (locust journey records, one clock: all locust processes on this host):
  buyer A certainly arrived before B if A's join answer came back before B's join was
  sent. If A was then told "waiting" in a poll *sent* after B had *received* "active",
  someone who came later was let in first.

The waiting list (issue 14; exercised by ``bench/loadtest.py --waiting-list``) adds two
rows read from the database, "no seat offered twice" and "waiting-list order kept"
(``offers_exclusive`` and ``waiting_list_order`` below say exactly what each checks and
how the stamps are read); both are n/a for an event without offers.
"""

from __future__ import annotations

import argparse
import bisect
import email
import email.policy
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
MAIL_SEPARATOR = b"\n" + b"-" * 79 + b"\n"
CODE_PATTERN = re.compile(r"\b[0-9A-Z]{8}\b")


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not checkable with the inputs given
    detail: str


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")
    import django

    django.setup()


# --- Database ----------------------------------------------------------------------------


def check_seats(event_id: int) -> list[Check]:
    from django.db.models import Count

    from booking.models import BookingStatus, Ticket
    from events.models import Event, Seat, SeatStatus

    event = Event.objects.get(pk=event_id)
    confirmed = Ticket.objects.filter(booking__event_id=event_id, booking__status=BookingStatus.CONFIRMED)
    per_seat = dict(confirmed.values("seat_id").annotate(n=Count("id")).values_list("seat_id", "n"))
    doubled = {seat: n for seat, n in per_seat.items() if n > 1}
    seats = Seat.objects.filter(event_id=event_id)
    total = seats.count()
    sold_ids = set(seats.filter(status=SeatStatus.SOLD).values_list("pk", flat=True))
    ticketed = set(per_seat)
    sold_without_ticket = sold_ids - ticketed
    ticket_not_sold = ticketed - sold_ids

    per_user = dict(
        confirmed.values("booking__user_id").annotate(n=Count("id")).values_list("booking__user_id", "n")
    )
    cap = event.max_tickets_per_user
    over_cap = {user: n for user, n in per_user.items() if n > cap}
    return [
        Check(
            "no seat sold twice",
            not doubled,
            f"{len(doubled)} seats with >1 confirmed ticket; {sum(per_seat.values())} confirmed tickets"
            + (f"; e.g. seat {next(iter(doubled))}" if doubled else ""),
        ),
        Check(
            "seat sold ⇔ exactly one confirmed ticket",
            not sold_without_ticket and not ticket_not_sold and not doubled,
            f"{len(sold_ids)} sold seats; {len(sold_without_ticket)} sold without a ticket, "
            f"{len(ticket_not_sold)} ticketed but not sold",
        ),
        Check(
            "sold ≤ seats",
            len(sold_ids) <= total and sum(per_seat.values()) <= total,
            f"{len(sold_ids)} seats sold, {sum(per_seat.values())} confirmed tickets, {total} seats",
        ),
        Check(
            f"confirmed tickets per buyer ≤ cap ({cap})",
            not over_cap,
            f"{len(per_user)} buyers, most tickets {max(per_user.values(), default=0)}; "
            f"{len(over_cap)} over the cap",
        ),
    ]


def wait_for_mail(event_id: int, *, timeout: float = 30.0, stall: float = 30.0) -> tuple[int, int, float]:
    """Waits until every confirmed booking of the event has ``emailed_at`` (the mail
    worker drains its queue), at most ``timeout`` seconds, or longer while it still makes
    progress (no progress for ``stall`` seconds ends the wait). Returns (mailed,
    confirmed, seconds waited)."""
    from booking.models import Booking, BookingStatus

    started = time.monotonic()
    last_progress, last_pending = started, None
    while True:
        confirmed = Booking.objects.filter(event_id=event_id, status=BookingStatus.CONFIRMED)
        total = confirmed.count()
        pending = confirmed.filter(emailed_at__isnull=True).count()
        now = time.monotonic()
        if pending == 0:
            return total, total, now - started
        if last_pending is None or pending < last_pending:
            last_progress, last_pending = now, pending
        if now - started >= timeout and now - last_progress >= stall:
            return total - pending, total, now - started
        time.sleep(0.5)


def mail_messages(mail_dir: Path) -> list[email.message.EmailMessage]:
    """Every message the file backend wrote (one file per connection, several
    messages per file, separated by a line of 79 dashes)."""
    messages = []
    for path in sorted(mail_dir.glob("*")):
        if not path.is_file():
            continue
        for chunk in path.read_bytes().split(MAIL_SEPARATOR):
            if chunk.strip():
                parser = email.parser.BytesParser(policy=email.policy.default)
                messages.append(parser.parsebytes(chunk.lstrip(b"\n"), headersonly=True))
    return messages


def check_mail(event_id: int, *, mail_dir: Path | None, waited: tuple[int, int, float] | None) -> list[Check]:
    from booking.models import Booking, BookingStatus

    bookings = dict(
        Booking.objects.filter(event_id=event_id, status=BookingStatus.CONFIRMED).values_list(
            "code", "user__email"
        )
    )
    mailed = Booking.objects.filter(
        event_id=event_id, status=BookingStatus.CONFIRMED, emailed_at__isnull=False
    )
    mailed_count = mailed.count()
    wait_note = f" (waited {waited[2]:.1f} s for the mail worker)" if waited else ""
    checks = [
        Check(
            "every confirmed booking e-mailed (emailed_at)",
            mailed_count == len(bookings),
            f"{mailed_count} of {len(bookings)} confirmed bookings have emailed_at{wait_note}",
        )
    ]
    if mail_dir is None:
        checks.append(Check("exactly one ticket mail per booking (mail files)", None, "no --mail-dir given"))
        return checks
    per_code: Counter[str] = Counter()
    wrong_recipient = 0
    foreign = 0
    messages = mail_messages(mail_dir) if mail_dir.exists() else []
    for message in messages:
        subject = str(message.get("Subject", ""))
        codes = [code for code in CODE_PATTERN.findall(subject) if code in bookings]
        if not codes:
            foreign += 1  # e.g. a re-queued mail of another event sharing this database
            continue
        code = codes[0]
        per_code[code] += 1
        if bookings[code].lower() not in str(message.get("To", "")).lower():
            wrong_recipient += 1
    missing = [code for code in bookings if per_code[code] == 0]
    duplicated = {code: n for code, n in per_code.items() if n > 1}
    checks.append(
        Check(
            "exactly one ticket mail per booking (mail files)",
            not missing and not duplicated and not wrong_recipient,
            f"{sum(per_code.values())} ticket mails for {len(bookings)} bookings: {len(missing)} missing, "
            f"{len(duplicated)} sent twice, {wrong_recipient} to a wrong address"
            + (f"; {foreign} other mails ignored" if foreign else ""),
        )
    )
    return checks


# --- Locust ------------------------------------------------------------------------------


def check_requests(outcomes_file: Path | None, stats_csv: Path | None) -> list[Check]:
    if outcomes_file is None or not outcomes_file.exists():
        return [Check("no request answered 5xx", None, "no locust outcomes file")]
    outcomes = json.loads(outcomes_file.read_text()).get("outcomes", {})
    five_xx = int(outcomes.get("5xx", 0))
    by_kind = ", ".join(
        f"{kind}: {n}"
        for kind, n in sorted(outcomes.items())
        if kind != "5xx" and re.search(r" 5\d\d\b", kind)
    )
    checks = [
        Check(
            "no request answered 5xx",
            five_xx == 0,
            f"{five_xx} answers 5xx" + (f" ({by_kind})" if by_kind else ""),
        )
    ]
    other = {
        kind: n for kind, n in outcomes.items() if kind.startswith("unexpected ") or kind == "transport error"
    }
    detail = ", ".join(f"{kind}: {n}" for kind, n in sorted(other.items())) or "none"
    if stats_csv is not None and stats_csv.exists():
        aggregated = _stats_rows(stats_csv).get("Aggregated")
        if aggregated:
            detail += (
                f" (locust: {aggregated['Failure Count']} failures of {aggregated['Request Count']} requests)"
            )
    checks.append(Check("no transport error or unexpected answer", not other, detail))
    return checks


def _stats_rows(stats_csv: Path) -> dict[str, dict[str, str]]:
    import csv

    with stats_csv.open(newline="") as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


def load_journeys(records: Path) -> list[dict[str, Any]]:
    journeys = []
    files = sorted(records.glob("*.jsonl")) if records.is_dir() else [records]
    for path in files:
        for line in path.read_text().splitlines():
            if line.strip():
                journeys.append(json.loads(line))
    return journeys


def check_order_from_journeys(
    journeys: list[dict[str, Any]],
    *,
    waiting_field: str = "last_waiting_send",
    active_field: str = "first_active_recv",
    name: str = "admission order = arrival order (buyers' view)",
) -> Check:
    """``waiting_field`` / ``active_field``: which "told waiting" and "told active" times to
    compare: the client's (request sent / answer received), or the server's (the answers'
    ``as_of``: the moment each answer describes, which for an estimated "waiting" is the
    serving cursor as that server last read it). Arrival order always comes from the
    client's times (A's join answered before B's join was sent)."""
    joined = [j for j in journeys if j.get("join_send") is not None and j.get("join_recv") is not None]
    admitted = [j for j in joined if j.get(active_field) is not None]
    if not admitted:
        return Check(name, None, "no admitted buyer recorded")
    # Earlier arrivals sorted by when their join answer came back, with the running
    # maximum of "last seen waiting" (poll sent) over that prefix.
    earlier = sorted(joined, key=lambda j: j["join_recv"])
    recv_times = [j["join_recv"] for j in earlier]
    running_max: list[tuple[float, dict[str, Any] | None]] = []
    best: tuple[float, dict[str, Any] | None] = (float("-inf"), None)
    for journey in earlier:
        seen = journey.get(waiting_field) or float("-inf")
        if seen > best[0]:
            best = (seen, journey)
        running_max.append(best)
    violations = []
    compared = 0
    for later in admitted:
        count = bisect.bisect_left(recv_times, later["join_send"])
        if count == 0:
            continue
        compared += 1
        seen_waiting, who = running_max[count - 1]
        if seen_waiting > later[active_field]:
            violations.append((who, later, seen_waiting - later[active_field]))
    detail = (
        f"{len(admitted)} admitted buyers, {compared} with a certainly-earlier arrival to compare; "
        f"{len(violations)} admitted while an earlier arrival was still told 'waiting'"
    )
    if violations:
        who, later, gap = violations[0]
        earlier_buyer = who["buyer"] if who else "?"
        detail += f"; e.g. {later['buyer']} active {gap:.2f} s before {earlier_buyer} was still waiting"
    return Check(name, not violations, detail)


# --- Redis admission monitor -------------------------------------------------------------


@dataclass
class AdmissionOrderMonitor:
    """Samples the waiting and active zsets of one event during a sale (see the module
    docstring). ``head`` bounds each waiting read: admission pops from the head, so only
    the head's seqs are ever needed (it must exceed one admission batch, i.e. capacity)."""

    event_id: int
    head: int = 1000
    interval: float = 0.25
    snapshots: int = 0
    admitted: int = 0  # users seen newly active
    admitted_with_seq: int = 0  # ... whose arrival seq we saw while they waited
    max_admitted_seq: float | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    violation_snapshots: int = 0
    errors: int = 0
    _seq: dict[str, float] = field(default_factory=dict)
    _active: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        from queueing.connection import get_redis
        from queueing.keys import EventKeys

        keys = EventKeys(self.event_id)
        pipe = get_redis().pipeline(transaction=True)  # MULTI/EXEC: one consistent instant
        pipe.zrange(keys.waiting, 0, self.head - 1, withscores=True)
        pipe.zrange(keys.active, 0, -1)
        waiting, active = pipe.execute()
        if waiting and not isinstance(waiting[0], tuple):
            # redis-py 6.4 runs no reply callbacks for a MULTI/EXEC on Redis Cluster:
            # WITHSCORES comes back flat, [member, score, member, score, ...].
            waiting = [
                (member, float(score)) for member, score in zip(waiting[::2], waiting[1::2], strict=True)
            ]
        self.snapshots += 1
        for member, seq in waiting:
            self._seq[member] = seq
        active_now = set(active)
        for member in active_now - self._active:
            self.admitted += 1
            seq = self._seq.get(member)
            if seq is not None:
                self.admitted_with_seq += 1
                if self.max_admitted_seq is None or seq > self.max_admitted_seq:
                    self.max_admitted_seq = seq
        self._active = active_now
        if waiting and self.max_admitted_seq is not None and waiting[0][1] < self.max_admitted_seq:
            self.violation_snapshots += 1
            if len(self.violations) < 5:
                self.violations.append(
                    {
                        "waiting_user": waiting[0][0],
                        "waiting_seq": waiting[0][1],
                        "max_admitted_seq": self.max_admitted_seq,
                    }
                )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # a missed sample is not a verdict; it is counted
                self.errors += 1
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="admission-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def summary(self) -> dict[str, Any]:
        return {
            "snapshots": self.snapshots,
            "admitted_seen": self.admitted,
            "admitted_with_seq": self.admitted_with_seq,
            "violation_snapshots": self.violation_snapshots,
            "violations": self.violations,
            "errors": self.errors,
        }


def check_order_from_redis(summary: dict[str, Any] | None) -> Check:
    name = "admission order = arrival order (Redis snapshots)"
    if not summary or not summary.get("snapshots"):
        return Check(name, None, "no admission monitor data")
    detail = (
        f"{summary['snapshots']} atomic snapshots, {summary['admitted_seen']} admissions seen "
        f"({summary['admitted_with_seq']} with their arrival seq); {summary['violation_snapshots']} "
        f"snapshots with an earlier arrival still waiting behind an admitted later one"
    )
    if summary.get("errors"):
        detail += f"; {summary['errors']} samples failed"
    if summary["violations"]:
        detail += f"; e.g. {summary['violations'][0]}"
    return Check(name, summary["violation_snapshots"] == 0, detail)


# --- Waiting list (issue 14) -----------------------------------------------------------------
#
# Both checks read the database after the run: every WaitingListOffer, every waiting-list
# entry, and every ticket of the event (confirmed or cancelled, with its booking's times).
# They work on plain rows (``OfferRow``, ``EntryRow``, ``SaleRow``) so a test can build a
# case by hand. Times are Unix seconds.
#
# Stamps are taken before their commit: an offer's ``created_at`` inside its transaction
# once the seats_offer guard let it through (booking.waiting_list._offer_make), a closing
# stamp (decline, accept, expiry) or a join's ``joined_at`` just before its transaction, a
# booking's times inside its own. So two stamps can disagree with the real order by the
# length of one transaction (or a lock wait). ``tolerance`` (seconds) absorbs that: an
# overlap no longer than it is counted in the detail but is not a violation. An entry
# counts as waiting at an offer only if it joined at least ``tolerance`` before the offer
# was stamped, i.e. the check assumes the offer's tick read the line after that join
# committed (a join's stamp-to-commit plus the tick's read-to-offer time < ``tolerance``).
# Which of two offers committed first is read from their ids (an offer's insert waits
# for the entry row it updates, so a later id committed later).

WAITING_LIST_TOLERANCE_S = 1.0
# A passed-over entry is passed in one round only (rule 4); the offers of one round (one
# tick, or concurrent ticks reading the same line) are stamped a tick's length apart at most.
PASSED_OVER_ROUND_S = 10.0


@dataclass(frozen=True)
class OfferRow:
    id: int
    entry_id: int
    user_id: int
    seat_ids: tuple[int, ...]
    together: bool
    state: str  # out | accepted | declined | expired | withdrawn
    created_at: float
    closed_at: float | None  # None while out

    @property
    def end(self) -> float:
        """When its seats stopped being offered (infinity while still out)."""
        return self.closed_at if self.closed_at is not None else float("inf")


@dataclass(frozen=True)
class EntryRow:
    id: int
    user_id: int
    party_size: int
    state: str  # waiting | offered | accepted | declined | expired | left | removed
    joined_at: float
    passed_over: bool
    together_only: bool
    updated_at: float


@dataclass(frozen=True)
class SaleRow:
    """One seat of one booking: sold from ``confirmed_at`` until ``cancelled_at``."""

    seat_id: int
    user_id: int
    code: str
    confirmed_at: float
    cancelled_at: float | None

    @property
    def end(self) -> float:
        return self.cancelled_at if self.cancelled_at is not None else float("inf")


def _overlap(start_a: float, end_a: float, start_b: float, end_b: float) -> float:
    """Length of the overlap of [start_a, end_a) and [start_b, end_b) (<= 0: none)."""
    return min(end_a, end_b) - max(start_a, start_b)


@dataclass
class OfferExclusivity:
    offers: int = 0
    seats: int = 0
    both_out: list[tuple[int, int, int]] = field(default_factory=list)  # (seat, offer, offer): both still out
    overlapping: list[tuple[int, int, int, float]] = field(default_factory=list)  # (seat, offer, offer, s)
    sold_during: list[tuple[int, int, str, float]] = field(default_factory=list)  # (seat, offer, booking, s)
    within_tolerance: int = 0
    worst_within_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.both_out or self.overlapping or self.sold_during)


def offers_exclusive(
    offers: list[OfferRow], sales: list[SaleRow], *, tolerance: float = WAITING_LIST_TOLERANCE_S
) -> OfferExclusivity:
    """ "No seat offered twice": per seat, (a) at most one offer is still out, (b) no two
    offers' lifetimes [created_at, closed_at) overlap, (c) no booking holds the seat
    (confirmed_at until cancelled_at) while an offer of it is out: neither sold to anyone
    during the offer nor offered while sold. The offer's own buyer is no exception: an
    accepted offer closes before the booking is written."""
    result = OfferExclusivity(offers=len(offers))
    per_seat: dict[int, list[OfferRow]] = {}
    for offer in offers:
        for seat in offer.seat_ids:
            per_seat.setdefault(seat, []).append(offer)
    result.seats = len(per_seat)
    sales_per_seat: dict[int, list[SaleRow]] = {}
    for sale in sales:
        sales_per_seat.setdefault(sale.seat_id, []).append(sale)

    def judge(amount: float) -> bool:
        """True: a violation; an overlap within the tolerance is only counted."""
        if amount <= 0:
            return False
        if amount <= tolerance:
            result.within_tolerance += 1
            result.worst_within_s = max(result.worst_within_s, amount)
            return False
        return True

    for seat, seat_offers in sorted(per_seat.items()):
        seat_offers.sort(key=lambda offer: (offer.created_at, offer.id))
        out = [offer.id for offer in seat_offers if offer.state == "out"]
        if len(out) > 1:
            result.both_out.append((seat, out[0], out[1]))
        for index, first in enumerate(seat_offers):
            for second in seat_offers[index + 1 :]:
                if second.created_at >= first.end:
                    break  # sorted by start: no later offer overlaps ``first`` either
                amount = _overlap(first.created_at, first.end, second.created_at, second.end)
                if judge(amount):
                    result.overlapping.append((seat, first.id, second.id, amount))
        for sale in sales_per_seat.get(seat, []):
            for offer in seat_offers:
                amount = _overlap(offer.created_at, offer.end, sale.confirmed_at, sale.end)
                if judge(amount):
                    result.sold_during.append((seat, offer.id, sale.code, amount))
    return result


@dataclass
class OrderCheck:
    offers: int = 0
    offers_checked: int = 0
    entries: int = 0
    unreconstructable: int = 0  # entries that joined again after an offer: history lost
    skips: int = 0  # (offer, earlier waiting entry) pairs: the entry was served past
    not_passed_over: list[tuple[int, int]] = field(default_factory=list)  # (offer, entry)
    passed_though_fit: list[tuple[int, int]] = field(default_factory=list)  # (offer, entry)
    passed_twice: list[tuple[int, float]] = field(default_factory=list)  # (entry, seconds between rounds)
    passed_over_entries: int = 0

    @property
    def ok(self) -> bool:
        return not (self.not_passed_over or self.passed_though_fit or self.passed_twice)


def _waiting_spells(entry: EntryRow, offers: list[OfferRow]) -> list[tuple[float, float, int | None]]:
    """When ``entry`` was waiting (in line, no offer out): [(start, end, id of the offer that
    ended it or None)]. A spell ends at the entry's next offer; an offer of seats apart
    declined keeping the place (``together_only``) starts a new one at its close; leaving
    or removal ends one at ``updated_at``."""
    spells: list[tuple[float, float, int | None]] = []
    start: float | None = entry.joined_at
    for offer in sorted(offers, key=lambda offer: (offer.created_at, offer.id)):
        if start is not None:
            spells.append((start, offer.created_at, offer.id))
            start = None
        if offer.state == "declined" and entry.together_only and not offer.together and offer.closed_at:
            start = offer.closed_at
    if start is not None:
        spells.append((start, float("inf") if entry.state == "waiting" else entry.updated_at, None))
    return spells


def waiting_list_order(
    entries: list[EntryRow],
    offers: list[OfferRow],
    *,
    tolerance: float = WAITING_LIST_TOLERANCE_S,
    round_seconds: float = PASSED_OVER_ROUND_S,
) -> OrderCheck:
    """ "Waiting-list order kept" (booking/waiting_list_rule.py): for each offer O to entry E
    at created_at t, every entry W ahead of E in line ((joined_at, id) smaller) that was
    waiting at t (joined at least ``tolerance`` earlier, no offer out) and was still waiting
    when O committed (its own next offer has a larger id, or it has none, or it left more
    than ``tolerance`` after t) was *served past*. The rule allows that only for an entry
    it passes over (rules 2-3: the gathering window is over and the pool can't seat the
    party, or only apart and it asked for seats together), and only once (rule 4). So:
    (1) every entry served past is marked ``passed_over``; (2) none of them could have been
    seated by O's own seats (party_size <= len(O.seat_ids), and O together or the entry
    not ``together_only``): those seats were in the pool when the rule reached the entry
    first; (3) the offers that served past one entry all come from one round (created
    within ``round_seconds``). Entries that joined again after an offer (``joined_at``
    reset) are left out, their earlier spells unknown."""
    result = OrderCheck(offers=len(offers), entries=len(entries))
    per_entry: dict[int, list[OfferRow]] = {}
    for offer in offers:
        per_entry.setdefault(offer.entry_id, []).append(offer)
    lost = {
        entry.id
        for entry in entries
        if any(offer.created_at < entry.joined_at - tolerance for offer in per_entry.get(entry.id, []))
    }
    result.unreconstructable = len(lost)
    known = [entry for entry in entries if entry.id not in lost]
    line_key = {entry.id: (entry.joined_at, entry.id) for entry in entries}
    spells = {entry.id: _waiting_spells(entry, per_entry.get(entry.id, [])) for entry in known}
    skip_times: dict[int, list[float]] = {}
    for offer in offers:
        if offer.entry_id in lost or offer.entry_id not in line_key:
            continue
        result.offers_checked += 1
        at = offer.created_at
        for waiter in known:
            if waiter.id == offer.entry_id or line_key[waiter.id] >= line_key[offer.entry_id]:
                continue
            for start, end, ended_by in spells[waiter.id]:
                if not start <= at - tolerance or end <= at:
                    continue
                if ended_by is not None and ended_by < offer.id:
                    continue  # served first: its offer committed before this one
                if ended_by is None and end != float("inf") and end <= at + tolerance:
                    continue  # left the list while this offer's tick ran
                result.skips += 1
                skip_times.setdefault(waiter.id, []).append(at)
                if not waiter.passed_over:
                    result.not_passed_over.append((offer.id, waiter.id))
                elif waiter.party_size <= len(offer.seat_ids) and (
                    offer.together or not waiter.together_only
                ):
                    result.passed_though_fit.append((offer.id, waiter.id))
                break
    result.passed_over_entries = sum(1 for entry in entries if entry.passed_over)
    for entry_id, times in skip_times.items():
        if max(times) - min(times) > round_seconds:
            result.passed_twice.append((entry_id, max(times) - min(times)))
    return result


def waiting_list_rows(event_id: int) -> tuple[list[EntryRow], list[OfferRow], list[SaleRow]]:
    """The event's waiting-list entries and offers and every ticket's sale, from the database."""
    from booking.models import Ticket, WaitingListEntry, WaitingListOffer

    def stamp(value: Any) -> float | None:
        return value.timestamp() if value is not None else None

    entries = [
        EntryRow(id=pk, user_id=user, party_size=size, state=state, joined_at=joined.timestamp(),
                 passed_over=passed, together_only=together, updated_at=updated.timestamp())
        for pk, user, size, state, joined, passed, together, updated in WaitingListEntry.objects.filter(
            event_id=event_id
        ).values_list("pk", "user_id", "party_size", "state", "joined_at", "passed_over", "together_only",
                      "updated_at")
    ]  # fmt: skip
    offers = [
        OfferRow(id=pk, entry_id=entry, user_id=user, seat_ids=tuple(int(s) for s in seats), together=together,
                 state=state, created_at=created.timestamp(), closed_at=stamp(closed))
        for pk, entry, user, seats, together, state, created, closed in WaitingListOffer.objects.filter(
            event_id=event_id
        ).values_list("pk", "entry_id", "entry__user_id", "seat_ids", "together", "state", "created_at",
                      "closed_at")
    ]  # fmt: skip
    sales = [
        SaleRow(seat_id=seat, user_id=user, code=code, confirmed_at=confirmed.timestamp(),
                cancelled_at=stamp(cancelled))
        for seat, user, code, confirmed, cancelled in Ticket.objects.filter(
            booking__event_id=event_id, booking__confirmed_at__isnull=False
        ).values_list("seat_id", "booking__user_id", "booking__code", "booking__confirmed_at",
                      "booking__cancelled_at")
    ]  # fmt: skip
    return entries, offers, sales


def check_waiting_list(event_id: int, *, tolerance: float = WAITING_LIST_TOLERANCE_S) -> list[Check]:
    entries, offers, sales = waiting_list_rows(event_id)
    exclusive_name, order_name = "no seat offered twice", "waiting-list order kept"
    if not offers:
        note = f"no waiting-list offers ({len(entries)} entries)"
        return [Check(exclusive_name, None, note), Check(order_name, None, note)]
    exclusive = offers_exclusive(offers, sales, tolerance=tolerance)
    detail = (
        f"{exclusive.offers} offers of {exclusive.seats} seats: {len(exclusive.both_out)} seats on two offers "
        f"out, {len(exclusive.overlapping)} overlapping offer lifetimes, {len(exclusive.sold_during)} "
        f"bookings holding a seat while it was on offer"
    )
    if exclusive.within_tolerance:
        detail += (
            f"; {exclusive.within_tolerance} overlaps within {tolerance:g} s (stamps precede commits, "
            f"longest {exclusive.worst_within_s * 1000:.0f} ms)"
        )
    example = (exclusive.both_out or exclusive.overlapping or exclusive.sold_during or [None])[0]
    if example is not None:
        detail += f"; e.g. seat {example[0]}: {example[1:]}"
    order = waiting_list_order(entries, offers, tolerance=tolerance)
    order_detail = (
        f"{order.offers_checked} offers against {order.entries} entries: served past an earlier waiting "
        f"entry {order.skips} times; {len(order.not_passed_over)} of them not marked passed_over, "
        f"{len(order.passed_though_fit)} passed over although the offer's seats fit it, "
        f"{len(order.passed_twice)} entries passed over in more than one round "
        f"({order.passed_over_entries} entries passed over)"
    )
    if order.unreconstructable:
        order_detail += f"; {order.unreconstructable} entries that joined again left out"
    bad = (order.not_passed_over or order.passed_though_fit or order.passed_twice or [None])[0]
    if bad is not None:
        order_detail += f"; e.g. {bad}"
    return [Check(exclusive_name, exclusive.ok, detail), Check(order_name, order.ok, order_detail)]


# --- Report ------------------------------------------------------------------------------


def run_checks(
    *,
    event_id: int,
    mail_dir: Path | None = None,
    mail_wait: float = 30.0,
    outcomes_file: Path | None = None,
    stats_csv: Path | None = None,
    records: Path | None = None,
    admission: dict[str, Any] | None = None,
    late_outcomes_file: Path | None = None,
    late_stats_csv: Path | None = None,
) -> list[Check]:
    """Every row. ``late_*``: the late phase's locust files (``bench/late_phase.py``): its
    request rows. The waiting-list rows are always there (n/a without offers)."""
    waited = wait_for_mail(event_id, timeout=mail_wait) if mail_wait > 0 else None
    checks = check_seats(event_id)
    checks += check_waiting_list(event_id)
    checks += check_mail(event_id, mail_dir=mail_dir, waited=waited)
    checks.append(check_order_from_redis(admission))
    if records is not None and records.exists():
        journeys = load_journeys(records)
        checks += buyers_view_checks(journeys)
    else:
        checks.append(Check("admission order = arrival order (buyers' view)", None, "no journey records"))
    checks += check_requests(outcomes_file, stats_csv)
    if late_outcomes_file is not None:
        late = check_requests(late_outcomes_file, late_stats_csv)
        checks += [Check(f"late phase: {check.name}", check.ok, check.detail) for check in late]
    return checks


def buyers_view_checks(journeys: list[dict[str, Any]]) -> list[Check]:
    """The buyers'-view order checks for these journeys: on the server's clock when the
    answers carried ``as_of`` (an estimate describes the cursor as last read, which may
    lag an admission by up to QUEUE_PULSE_SECONDS: judged at that moment, not at the
    poll's), and with exact answers only on the client's clock."""
    checks = []
    if any(j.get("first_active_as_of") for j in journeys):
        checks.append(
            check_order_from_journeys(
                journeys,
                waiting_field="last_waiting_as_of",
                active_field="first_active_as_of",
                name="admission order = arrival order (buyers' view, server clock)",
            )
        )
    else:
        checks.append(check_order_from_journeys(journeys))
    if any(j.get("last_waiting_exact_send") for j in journeys):
        checks.append(
            check_order_from_journeys(
                journeys,
                waiting_field="last_waiting_exact_send",
                name="admission order (buyers' view, exact places only)",
            )
        )
    return checks


def with_mail_wait(checks: list[Check], waited: tuple[int, int, float]) -> list[Check]:
    """Notes on the e-mail row how long the driver waited for the mail worker (it waits
    while the workers still run, then calls ``run_checks`` with ``mail_wait=0``)."""
    return [
        Check(c.name, c.ok, c.detail + f" (waited {waited[2]:.1f} s)")
        if c.name.startswith("every confirmed booking e-mailed")
        else c
        for c in checks
    ]


def print_table(checks: list[Check]) -> None:
    width = max(len(check.name) for check in checks) + 2
    print(f"\n{'invariant':<{width}}{'result':<8}detail")
    print("-" * (width + 60))
    for check in checks:
        result = "n/a" if check.ok is None else ("ok" if check.ok else "BROKEN")
        print(f"{check.name:<{width}}{result:<8}{check.detail}")


def broken(checks: list[Check]) -> list[Check]:
    return [check for check in checks if check.ok is False]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--event-id", type=int, required=True)
    parser.add_argument("--mail-dir", type=Path, help="EMAIL_FILE_PATH of the file e-mail backend")
    parser.add_argument(
        "--mail-wait", type=float, default=30.0, help="seconds to wait for emailed_at (0: no wait)"
    )
    parser.add_argument("--outcomes", type=Path, help="locust outcomes JSON (LOCUST_OUTCOMES_FILE)")
    parser.add_argument("--stats-csv", type=Path, help="locust --csv PREFIX_stats.csv")
    parser.add_argument("--records", type=Path, help="journey records: LOCUST_RECORD_DIR or one .jsonl file")
    parser.add_argument(
        "--admission", type=Path, help="AdmissionOrderMonitor summary JSON (bench/loadtest.py)"
    )
    args = parser.parse_args()
    _django()
    checks = run_checks(
        event_id=args.event_id,
        mail_dir=args.mail_dir,
        mail_wait=args.mail_wait,
        outcomes_file=args.outcomes,
        stats_csv=args.stats_csv,
        records=args.records,
        admission=json.loads(args.admission.read_text()) if args.admission else None,
    )
    print_table(checks)
    return 1 if broken(checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
