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
) -> list[Check]:
    waited = wait_for_mail(event_id, timeout=mail_wait) if mail_wait > 0 else None
    checks = check_seats(event_id)
    checks += check_mail(event_id, mail_dir=mail_dir, waited=waited)
    checks.append(check_order_from_redis(admission))
    if records is not None and records.exists():
        journeys = load_journeys(records)
        checks += buyers_view_checks(journeys)
    else:
        checks.append(Check("admission order = arrival order (buyers' view)", None, "no journey records"))
    checks += check_requests(outcomes_file, stats_csv)
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
