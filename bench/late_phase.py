"""The rehearsal's late phase (issue 14, ``make loadtest LOADTEST_ARGS=--waiting-list``):
after the sell-out, seats come back and go to the waiting list in line order.

Once the sale's locust run has ended (every seat sold, every buyer done), a second locust
run of the same ``locustfile.py`` (``--late-plan``) plays three kinds of people, chosen
from the sale's own buyers (``plan``):

* **waiters** (``--wl-waiters``, 60): buyers who got nothing (sold out, gave up) and,
  when they run short, accounts that never came to the sale. Each joins the list in the
  first 4 s (``POST /api/events/ID/waiting-list/`` with a party of 1 or 2, up to
  ``--wl-party-max``), polls
  ``GET …/waiting-list/`` every ``--wl-poll-seconds`` (2 s, the tick's period), and when
  an offer shows up, after 1-5 s of reading: accepts it (``…/offer/accept/`` then ``POST
  /api/bookings/`` with an ``Idempotency-Key``, as for any hold), declines it
  (``…/offer/decline/``), or lets it run out (``--wl-accept-share`` 0.7,
  ``--wl-decline-share`` 0.15, the rest ignore it).
* **cancellers** (``--wl-cancels``, 30): buyers who booked, each cancelling its booking
  (``POST /api/bookings/CODE/cancel/``) at a moment spread over ``--wl-cancel-window``
  (30 s) from 6 s on, when the waiters are in line.
* **snipers** (``--wl-snipers``, 10): more buyers who got nothing and run the regular
  sale's journey again and again (join the waiting room, read the map, hold what is
  free), the people the issue says returned seats used to go to. While the list has
  waiters they must get none of its seats.

The offers come from the waiting-list tick, which the system already runs: Celery beat
(in the admission worker, ``-B``) sends ``booking.tasks.tick_waiting_lists`` every 2 s and
each cancel or decline queues ``booking.tasks.waiting_list_tick`` on commit; both run on
the ``default`` queue's worker. The event gets ``--wl-offer-minutes`` (1, the least the
event allows: offers that are ignored run out within the phase) and
``--wl-gather-seconds`` (10 instead of 30, so a party passed over shows within it).

The phase ends when locust's buyers are all done, at ``--wl-run-time`` (180 s), or once
the list is quiet: every cancellation made, no offer out, and nothing changed for the
gathering window plus 6 s. It takes 2-2.5 minutes here, which is why it is an option and
not part of the default rehearsal (about 50 s).

Files: ``var/loadtest/<run>/late/`` (``plan.jsonl``, ``journeys/``, ``outcomes.json``,
``locust_*.csv``); the figures (``late_figures``) and the two invariants
(``bench/invariants.py``: "no seat offered twice", "waiting-list order kept") come from
the database.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

# Sale outcomes that leave a buyer with nothing booked and nothing held.
EMPTY_HANDED = ("sold_out", "gave_up", "lost_place", "pass_expired", "sales_closed", "abandoned_after_join")
JOIN_SECONDS = 4.0  # waiters join within this from the start of the phase
SNIPER_START_SECONDS = 8.0
CANCEL_FROM_SECONDS = 6.0  # after the waiters are in line
QUIET_EXTRA_SECONDS = 6.0  # three ticks
# Stamps precede their commits by up to a transaction: an offer stamped up to this long
# before a cancellation's stamp still counts as following it (as in bench/invariants.py).
STAMP_TOLERANCE_S = 1.0


def add_options(parser: argparse.ArgumentParser) -> None:
    late = parser.add_argument_group("late phase: the waiting list (issue 14; bench/late_phase.py)")
    late.add_argument(
        "--waiting-list",
        action="store_true",
        help="after the sell-out: cancellations, buyers on the waiting list, snipers (~2.5 min more)",
    )
    late.add_argument("--wl-waiters", type=int, default=60, help="buyers who join the waiting list")
    late.add_argument("--wl-cancels", type=int, default=30, help="buyers who cancel their booking")
    late.add_argument("--wl-snipers", type=int, default=10, help="buyers retrying the regular sale")
    late.add_argument(
        "--wl-party-max", type=int, default=2, help="parties of 1..this (larger ones get passed over more)"
    )
    late.add_argument("--wl-accept-share", type=float, default=0.7, help="waiters accepting an offer")
    late.add_argument("--wl-decline-share", type=float, default=0.15, help="... declining it (rest: ignore)")
    late.add_argument("--wl-offer-minutes", type=int, default=1, help="the event's time to accept")
    late.add_argument("--wl-gather-seconds", type=int, default=10, help="the event's gathering window")
    late.add_argument("--wl-cancel-window", type=float, default=30.0, help="seconds the cancellations span")
    late.add_argument("--wl-poll-seconds", type=float, default=2.0, help="a waiter's poll interval")
    late.add_argument("--wl-run-time", default="180s", help="upper bound of the phase (locust -t)")
    late.add_argument("--wl-seed", type=int, help="who does what (default: random, printed)")


def configure_event(event_id: int, args: argparse.Namespace) -> str:
    """The event's waiting-list settings for the phase (before the system starts, so no
    process has the event cached); a line saying what they are."""
    from events.models import Event

    Event.objects.filter(pk=event_id).update(
        waiting_list_offer_minutes=args.wl_offer_minutes, waiting_list_gather_seconds=args.wl_gather_seconds
    )
    return (
        f"Waiting list (late phase): offers last {args.wl_offer_minutes} min, returned seats gathered "
        f"{args.wl_gather_seconds} s"
    )


# --- Who does what ----------------------------------------------------------------------


def build_plan(
    *,
    journeys: list[dict[str, Any]],
    accounts: list[tuple[str, str]],
    args: argparse.Namespace,
    run_seconds: float,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """One line per late-phase buyer: ``{email, token, role, at, until, ...}``; ``at`` and
    ``until`` count seconds from the start of the phase's locust run. Cancellers are
    buyers who booked; waiters, then snipers, buyers who ended the sale empty-handed, then
    accounts that never came to it."""
    tokens = dict(accounts)
    booked = [j for j in journeys if j.get("outcome") == "booked" and j.get("booking_code")]
    came = {j["buyer"] for j in journeys}
    empty = [j["buyer"] for j in journeys if j.get("outcome") in EMPTY_HANDED and not j.get("booking_code")]
    rng.shuffle(booked)
    rng.shuffle(empty)
    newcomers = [email for email, _token in accounts if email not in came]
    empty_handed = [email for email in empty + newcomers if email in tokens]
    until = max(10.0, run_seconds - 10.0)
    plan: list[dict[str, Any]] = []
    for journey in booked[: args.wl_cancels]:
        if journey["buyer"] in tokens:
            plan.append(
                {"email": journey["buyer"], "token": tokens[journey["buyer"]], "role": "canceller",
                 "at": round(CANCEL_FROM_SECONDS + rng.uniform(0, args.wl_cancel_window), 2),
                 "until": until, "booking_code": journey["booking_code"]}
            )  # fmt: skip
    for email in empty_handed[: args.wl_waiters]:
        draw = rng.random()
        action = (
            "accept"
            if draw < args.wl_accept_share
            else "decline"
            if draw < args.wl_accept_share + args.wl_decline_share
            else "ignore"
        )
        plan.append(
            {"email": email, "token": tokens[email], "role": "waiter", "at": round(rng.uniform(0, JOIN_SECONDS), 2),
             "until": until, "party_size": rng.randint(1, args.wl_party_max), "action": action}
        )  # fmt: skip
    for email in empty_handed[args.wl_waiters : args.wl_waiters + args.wl_snipers]:
        plan.append(
            {"email": email, "token": tokens[email], "role": "sniper",
             "at": round(rng.uniform(0, SNIPER_START_SECONDS), 2), "until": until}
        )  # fmt: skip
    return plan


def describe_plan(plan: list[dict[str, Any]]) -> str:
    roles = Counter(line["role"] for line in plan)
    actions = Counter(line["action"] for line in plan if line["role"] == "waiter")
    parties = Counter(line["party_size"] for line in plan if line["role"] == "waiter")
    party_counts = ", ".join(f"of {size}: {n}" for size, n in sorted(parties.items()))
    cancel_times = [line["at"] for line in plan if line["role"] == "canceller"]
    window = f" at +{min(cancel_times):.0f}..{max(cancel_times):.0f} s" if cancel_times else ""
    return (
        f"Late phase: {roles['waiter']} waiters (parties {party_counts}; will accept "
        f"{actions['accept']}, decline {actions['decline']}, ignore {actions['ignore']}), "
        f"{roles['canceller']} cancellations{window}, {roles['sniper']} snipers on the regular sale"
    )


# --- Running it ---------------------------------------------------------------------------


def list_state(event_id: int) -> dict[str, Any]:
    """The list's figures (the staff dashboard's) and the seats sold."""
    from booking.models import Booking, BookingStatus
    from booking.waiting_list import waiting_list_figures
    from events.models import Seat, SeatStatus

    figures = waiting_list_figures(event_id=event_id)
    figures["sold"] = Seat.objects.filter(event_id=event_id, status=SeatStatus.SOLD).count()
    figures["bookings"] = Booking.objects.filter(event_id=event_id, status=BookingStatus.CONFIRMED).count()
    figures["cancelled"] = Booking.objects.filter(event_id=event_id, status=BookingStatus.CANCELLED).count()
    return figures


def progress_line(state: dict[str, Any], elapsed: float) -> str:
    return (
        f"  t={elapsed:5.0f}s  waiting {state['waiting']:>3}  offers out {state['offers_out']:>3}  "
        f"accepted {state['accepted']:>3}  declined {state['declined']:>3}  expired {state['expired']:>3}  "
        f"pool {state['pool_seats']:>3}  cancelled {state['cancelled']:>3}  sold {state['sold']:>4}"
    )


def watch(
    locust: subprocess.Popen[bytes],
    *,
    event_id: int,
    plan: list[dict[str, Any]],
    gather_seconds: int,
    limit: float,
    stop: Callable[[], None],
) -> tuple[float, str]:
    """Until locust exits, overruns ``limit``, or the list is quiet (then ``stop()``):
    progress every 5 s; (seconds it ran, why it ended)."""
    started = time.monotonic()
    last_cancel = max((line["at"] for line in plan if line["role"] == "canceller"), default=0.0)
    quiet_after = gather_seconds + QUIET_EXTRA_SECONDS
    next_line = started + 5
    signature: tuple[Any, ...] | None = None
    unchanged_since = started
    reason = "every late-phase buyer finished"
    while locust.poll() is None:
        time.sleep(1.0)
        now = time.monotonic()
        state = list_state(event_id)
        if now >= next_line:
            next_line += 5
            print(progress_line(state, now - started), flush=True)
        current = tuple(
            state[key]
            for key in (
                "waiting",
                "offers_out",
                "accepted",
                "declined",
                "expired",
                "pool_seats",
                "bookings",
                "cancelled",
            )
        )
        if current != signature:
            signature, unchanged_since = current, now
        if (
            now - started > last_cancel + 2
            and state["offers_out"] == 0
            and now - unchanged_since >= quiet_after
        ):
            reason = f"the list was quiet for {quiet_after:.0f} s (no offer out, nothing changed)"
            stop()
            break
        if now - started > limit:
            reason = "locust overran the phase's run time"
            stop()
            break
    return time.monotonic() - started, reason


# --- Figures ------------------------------------------------------------------------------


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least ``q`` of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def load_records(directory: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def late_figures(event_id: int, started_at: datetime, records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the late phase did, from the database (and, for what the buyers saw, the
    phase's journey records)."""
    from booking.models import Booking, BookingStatus, Ticket, WaitingListEntry, WaitingListOffer
    from events.models import Seat, SeatStatus

    entries = list(
        WaitingListEntry.objects.filter(event_id=event_id).values(
            "user_id", "party_size", "state", "passed_over"
        )
    )
    offers = list(
        WaitingListOffer.objects.filter(event_id=event_id)
        .order_by("pk")
        .values(
            "pk", "entry__user_id", "seat_ids", "together", "state", "created_at", "closed_at", "emailed_at"
        )
    )
    cancelled = list(
        Booking.objects.filter(
            event_id=event_id, status=BookingStatus.CANCELLED, cancelled_at__gte=started_at
        ).values_list("pk", "cancelled_at")
    )
    cancelled_at = dict(cancelled)
    returned = list(
        Ticket.objects.filter(booking_id__in=list(cancelled_at)).values_list("seat_id", "booking_id")
    )
    # Cancellation -> the first offer of that seat made after it.
    offers_of_seat: dict[int, list[dict[str, Any]]] = {}
    for offer in offers:
        for seat in offer["seat_ids"]:
            offers_of_seat.setdefault(int(seat), []).append(offer)
    to_offer: list[float] = []
    never_offered = 0
    for seat, booking_id in returned:
        when = cancelled_at[booking_id].timestamp()
        later = [
            o for o in offers_of_seat.get(seat, []) if o["created_at"].timestamp() >= when - STAMP_TOLERANCE_S
        ]
        if later:
            first = min(offer["created_at"].timestamp() for offer in later)
            to_offer.append(max(0.0, first - when))
        else:
            never_offered += 1
    # Seats sold through the list: an accepted offer's seats in a booking of its buyer made after it.
    resold = 0
    accepted = [o for o in offers if o["state"] == "accepted"]
    sold_after = Ticket.objects.filter(
        booking__event_id=event_id,
        booking__status=BookingStatus.CONFIRMED,
        booking__confirmed_at__gte=started_at,
    ).values_list("seat_id", "booking__user_id", "booking__confirmed_at")
    sold_by = {(seat, user): confirmed for seat, user, confirmed in sold_after}
    via_list: set[int] = set()
    for offer in accepted:
        for seat in offer["seat_ids"]:
            confirmed = sold_by.get((int(seat), offer["entry__user_id"]))
            if confirmed is not None and confirmed >= offer["closed_at"]:
                resold += 1
                via_list.add(int(seat))
    to_accept = [(o["closed_at"] - o["created_at"]).total_seconds() for o in accepted]
    # What the buyers saw: their first poll showing the offer, against its created_at.
    first_offer_of = {}
    for offer in offers:
        first_offer_of.setdefault((offer["entry__user_id"], tuple(sorted(offer["seat_ids"]))), offer)
    seen: list[float] = []
    for record in records:
        late = record.get("late") or {}
        if late.get("offer_seen") and record.get("user_id") is not None:
            offer = first_offer_of.get((record["user_id"], tuple(sorted(late.get("offer_seat_ids") or []))))
            if offer is not None:
                seen.append(max(0.0, late["offer_seen"] - offer["created_at"].timestamp()))
    sniper_users = {r["user_id"] for r in records if (r.get("late") or {}).get("role") == "sniper"}
    sniper_seats = sum(1 for (_seat, user) in sold_by if user in sniper_users)
    outside_list = sum(1 for (seat, user) in sold_by if seat not in via_list and user not in sniper_users)
    states = Counter(offer["state"] for offer in offers)
    seats = Seat.objects.filter(event_id=event_id)
    return {
        "entries": len(entries),
        "parties": dict(sorted(Counter(e["party_size"] for e in entries).items())),
        "entry_states": dict(Counter(e["state"] for e in entries)),
        "passed_over": sum(1 for e in entries if e["passed_over"]),
        "offers": len(offers),
        "offers_together": sum(1 for o in offers if o["together"]),
        "offer_states": dict(states),
        "offers_emailed": sum(1 for o in offers if o["emailed_at"] is not None),
        "seats_offered": sum(len(o["seat_ids"]) for o in offers),
        "cancellations": len(cancelled),
        "seats_returned": len(returned),
        "seats_resold_via_list": resold,
        "seats_sold_to_snipers": sniper_seats,
        "seats_sold_otherwise": outside_list,
        "returned_never_offered": never_offered,
        "cancel_to_offer_s": {
            "n": len(to_offer),
            "p50": _quantile(to_offer, 0.5),
            "p99": _quantile(to_offer, 0.99),
            "max": max(to_offer, default=None),
        },
        "offer_to_seen_s": {"n": len(seen), "p50": _quantile(seen, 0.5), "p99": _quantile(seen, 0.99)},
        "offer_to_accept_s": {
            "n": len(to_accept),
            "p50": _quantile(to_accept, 0.5),
            "p99": _quantile(to_accept, 0.99),
        },
        "seats": seats.count(),
        "seats_sold_at_end": seats.filter(status=SeatStatus.SOLD).count(),
        "seats_offered_at_end": seats.filter(status=SeatStatus.OFFERED).count(),
    }


def figure_lines(figures: dict[str, Any]) -> list[str]:
    states = figures["offer_states"]
    entry_states = figures["entry_states"]
    parties = ", ".join(f"of {size}: {n}" for size, n in figures["parties"].items())
    cancel = figures["cancel_to_offer_s"]
    seen = figures["offer_to_seen_s"]
    accept = figures["offer_to_accept_s"]
    return [
        f"waiting list: {figures['entries']} entries (parties {parties}); at the end "
        + ", ".join(f"{state} {n}" for state, n in sorted(entry_states.items()))
        + f"; {figures['passed_over']} passed over once",
        f"offers: {figures['offers']} made ({figures['offers_together']} together, "
        f"{figures['offers'] - figures['offers_together']} apart; {figures['seats_offered']} seats): "
        f"{states.get('accepted', 0)} accepted, {states.get('declined', 0)} declined, "
        f"{states.get('expired', 0)} expired, {states.get('withdrawn', 0)} withdrawn, {states.get('out', 0)} still out; "
        f"{figures['offers_emailed']} offer mails sent (emailed_at)",
        f"seats: {figures['cancellations']} cancellations returned {figures['seats_returned']} seats; "
        f"{figures['seats_resold_via_list']} seats re-sold via the list, {figures['seats_sold_to_snipers']} to "
        f"snipers, {figures['seats_sold_otherwise']} otherwise; {figures['returned_never_offered']} returned "
        f"seats never offered; at the end {figures['seats_sold_at_end']} of {figures['seats']} sold, "
        f"{figures['seats_offered_at_end']} on offer",
        f"cancellation → offer: p50 {_seconds(cancel['p50'])}, p99 {_seconds(cancel['p99'])}, "
        f"max {_seconds(cancel['max'])} over {cancel['n']} seats (to the offer's created_at; "
        f"includes the gathering window when a party waits for seats together)",
        f"offer → the buyer's poll saw it: p50 {_seconds(seen['p50'])}, p99 {_seconds(seen['p99'])} "
        f"({seen['n']} offers); offer → accepted: p50 {_seconds(accept['p50'])}, p99 {_seconds(accept['p99'])}",
    ]
