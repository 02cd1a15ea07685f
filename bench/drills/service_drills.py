"""The drills that stop a whole server of the drill's own mid-sale and start it again:
the RabbitMQ node the Celery broker runs on, and the MariaDB server the database runs on.
Neither is the machine's shared server: ``bench/rabbitmq.OwnRabbitMQ`` and
``bench/mariadb.OwnMariaDB`` run on their own ports and directories.
"""

from __future__ import annotations

import time
from typing import Any

from bench import invariants
from bench.drills import analysis
from bench.drills.harness import DrillSale
from bench.invariants import Check


def sweep_unsent(older_than_s: float) -> int:
    """``booking.tasks.requeue_unsent_emails`` with a shorter cutoff: beat runs it every
    60 s for mails older than 10 minutes; the drill cannot wait that long, so it queues
    again, once, the ticket mails of bookings confirmed more than ``older_than_s`` ago
    that have no ``emailed_at``. The send task locks the booking and sends only if still
    unsent, so a mail whose task is still queued is not sent twice."""
    from datetime import timedelta

    from django.utils import timezone

    from booking.selectors import bookings_with_unsent_mail
    from booking.tasks import send_ticket_email

    ticket_ids, _cancel_ids = bookings_with_unsent_mail(
        before=timezone.now() - timedelta(seconds=older_than_s), limit=100_000
    )
    for booking_id in ticket_ids:
        send_ticket_email.delay(booking_id)
    return len(ticket_ids)


def rabbitmq_restart(sale: DrillSale) -> tuple[list[tuple[str, Any]], list[Check], dict[str, Any]]:
    """Stop the broker's RabbitMQ node (clean stop), keep selling, start it again."""
    node, options = sale.services.rabbit_node, sale.options
    load = sale.start_load()
    sale.hold_on(options.before)
    stopping_at = time.time()
    stop_s = node.stop()
    down_at = time.time()
    print(
        f"  RabbitMQ node {node.node} stopped in {stop_s:.1f} s; selling on for {options.outage:.0f} s",
        flush=True,
    )
    sale.hold_on(options.outage)
    starting_at = time.time()
    node.start()
    up_at = time.time()
    sale.track("rabbitmq (own)", node.pid)
    print(f"  RabbitMQ node up again after {up_at - starting_at:.1f} s", flush=True)
    sale.hold_on(options.after)
    cpu = sale.stop_load()
    drained = sale.drain_mail(timeout=20)
    swept_at = time.time()
    swept = sweep_unsent(older_than_s=5)
    after_sweep = sale.drain_mail(timeout=45)
    windows = {"before the stop": (0, stopping_at), "while stopping or down": (stopping_at, up_at),
               "after the start": (up_at, time.time())}  # fmt: skip
    delays = analysis.mail_delays(sale.event_id, windows)
    outage = analysis.outage_figures(load.ledger, stopping_at)
    confirms_down = analysis.latency_figures(load.ledger, "confirm", stopping_at, up_at)
    mail = invariants.check_mail(sale.event_id, mail_dir=sale.mail_dir, waited=after_sweep)
    rows = [
        ("RabbitMQ: clean stop took / down for / start took (s)",
         f"{stop_s:.1f} / {starting_at - down_at:.1f} / {up_at - starting_at:.1f}"),
        ("confirms answered while it was down (by status)", confirms_down["by_status"] or "-"),
        ("confirm time while down, p50 / max (s)", f"{confirms_down['p50_s']} / {confirms_down['max_s']}"),
        ("503 answers (count)", outage["answers_503"]),
        ("requests failed (not ok, not expected, not 503)", f"{outage['failed']} {outage['failed_by_kind'] or ''}"),
        ("longest admission stall (s) (ticks go through the broker)", sale.admission_stall(stopping_at, time.time())),
        ("mails sent through the broker (after the restart for some)", f"{drained[0]} of {drained[1]}"),
        ("mails whose task was never published (sent by the sweep)", swept),
        ("the sweep (cutoff 5 s, not 10 min) ran, s after the restart", f"{swept_at - up_at:.0f}"),
        *((f"mail delay, bookings {name}: n, p50, max (s)",
           f"{d['bookings']}, {d['p50_s']}, {d['max_s']}" + (f", {d['unsent']} unsent" if d["unsent"] else ""))
          for name, d in delays.items()),
    ]  # fmt: skip
    details = {"outage": outage, "confirms_while_down": confirms_down, "mail_delays": delays, "cpu": cpu,
               "stop_s": stop_s, "down_s": starting_at - down_at, "swept": swept}  # fmt: skip
    return rows, mail, details


def database_restart(sale: DrillSale) -> tuple[list[tuple[str, Any]], list[Check], dict[str, Any]]:
    """Stop the MariaDB server (SIGTERM: a clean shutdown), keep selling, start it again."""
    from django.db import connections

    server, options = sale.services.mariadb, sale.options
    load = sale.start_load()
    sale.hold_on(options.before)
    stopping_at = time.time()
    stop_s = server.stop()
    down_at = time.time()
    print(f"  MariaDB stopped in {stop_s:.1f} s; selling on for {options.outage:.0f} s", flush=True)
    sale.hold_on(options.outage)
    held = _holds_kept(sale, load, stopping_at)
    starting_at = time.time()
    server.start()
    up_at = time.time()
    sale.track("mariadb (own)", server.pid)
    connections.close_all()  # this process's connection died with the server
    print(f"  MariaDB up again after {up_at - starting_at:.1f} s", flush=True)
    sale.hold_on(options.after)
    cpu = sale.stop_load()
    waited = sale.drain_mail()
    return _database_report(sale, load, (stopping_at, down_at, starting_at, up_at), stop_s, held, cpu, waited)


def _holds_kept(sale: DrillSale, load: Any, stopping_at: float) -> dict[str, Any]:
    """At the end of the outage (nothing can be booked then): every hold granted before
    the stop and still within its time is still the buyer's in Redis."""
    holds = analysis.live_holds(load.ledger.holds, stopping_at, time.time())
    snapshot = analysis.redis_snapshot(
        sale.event_redis(), sale.event_id, [s for h in holds for s in h.seat_ids]
    )
    kept = [h for h in holds if all(snapshot["seat_keys"].get(s) == str(h.user_id) for s in h.seat_ids)]
    return {"checked": len(holds), "kept": len(kept), "holds": holds}


def _database_report(
    sale: DrillSale, load: Any, times: tuple[float, float, float, float], stop_s: float,
    held: dict[str, Any], cpu: dict[str, float], waited: tuple[int, int, float],
) -> tuple[list[tuple[str, Any]], list[Check], dict[str, Any]]:  # fmt: skip
    from booking.models import Booking, BookingStatus

    stopping_at, down_at, starting_at, up_at = times
    outage = analysis.outage_figures(load.ledger, stopping_at)
    refused = sorted(
        when for when, step, status, _c, _t in load.ledger.answers if step == "confirm" and status == 503
    )
    booked = list(load.ledger.bookings)
    codes = set(
        Booking.objects.filter(event_id=sale.event_id, status=BookingStatus.CONFIRMED).values_list(
            "code", flat=True
        )
    )
    lost = [b for b in booked if b["code"] not in codes]
    during = [b for b in booked if b["sent"] > down_at and b["recv"] < starting_at]
    held_buyers = {h.buyer for h in held["holds"]}
    booked_after = sum(1 for b in booked if b["buyer"] in held_buyers and b["recv"] >= starting_at)
    span = f"{refused[0] - stopping_at:.1f} .. {refused[-1] - stopping_at:.1f}" if refused else "-"
    rows = [
        ("MariaDB: clean stop took / down for / start took (s)",
         f"{stop_s:.1f} / {starting_at - down_at:.1f} / {up_at - starting_at:.1f}"),
        ("bookings refused with 503 (count)", len(refused)),
        ("... first .. last, seconds after the stop began", span),
        ("503 answers, all steps (count, by step)", f"{outage['answers_503']} {outage['503_by_step'] or ''}"),
        ("requests failed (not ok, not expected, not 503)", f"{outage['failed']} {outage['failed_by_kind'] or ''}"),
        ("bookings answered 201 (whole drill)", len(booked)),
        ("... 201s sent and answered while the server was down", len(during)),
        ("... 201s missing from the database (lost)", len(lost)),
        ("holds live at the stop, still the buyer's at the end of the outage", f"{held['kept']} of {held['checked']}"),
        ("... of those buyers, booked after the restart", booked_after),
        ("longest admission stall (s)", sale.admission_stall(stopping_at, time.time())),
        ("web nodes taken out by HAProxy", ", ".join(sale.nodes_taken_out()) or "none"),
    ]  # fmt: skip
    checks = [
        Check("no booking lost (every 201 is in the database)", not lost, f"{len(lost)} of {len(booked)} missing"),
        Check("no booking answered 201 while the database was down", not during, f"{len(during)}"),
        Check("holds kept through the outage", held["kept"] == held["checked"], f"{held['kept']} of {held['checked']}"),
        *invariants.check_mail(sale.event_id, mail_dir=sale.mail_dir, waited=waited),
    ]  # fmt: skip
    details = {"outage": outage, "refused": len(refused), "holds": {k: v for k, v in held.items() if k != "holds"},
               "cpu": cpu, "stop_s": stop_s, "down_s": starting_at - down_at, "lost": lost, "during": during}  # fmt: skip
    return rows, checks, details
