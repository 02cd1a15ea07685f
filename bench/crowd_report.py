"""The report of a ``bench/crowd.py`` run: the endpoint table, the line, the CPU split,
the invariants and one verdict line per target; report.json and the journey records."""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from bench import invariants, report
from bench.sale import sale_figures, sale_line
from bench.system import ROOT, RunEnvironment, System
from bench.tally import EXPECTED

NAMES = {
    "event": "GET /api/events/[id]/",
    "join": "POST /api/events/[id]/queue/",
    "status": "GET /api/events/[id]/queue/",
    "status_steady": "GET …/queue/ (all joined)",
    "leave": "DELETE /api/events/[id]/queue/",
    "seats": "GET /api/events/[id]/seats/",
    "hold": "POST /api/events/[id]/holds/",
    "confirm": "POST /api/bookings/",
}


def endpoint_table(rows: list[dict[str, Any]]) -> str:
    body: list[list[Any]] = []
    for row in rows:
        if row["endpoint"] == "all endpoints":
            body.append(["-"])
        body.append(
            [NAMES.get(row["endpoint"], row["endpoint"]), row["requests"], row["errors"], f"{row['req_per_s']:.0f}",
             *(f"{row.get(p, 0):.0f}" for p in ("p50", "p95", "p99", "max")),
             f"{row['server_p99']:.0f}" if row.get("server_p99") is not None else ""]
        )  # fmt: skip
    headers = [
        "endpoint",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "on-wire p99",
    ]
    return report.table(headers, body)


def answer_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Answers other than 200 per endpoint (expected refusals and errors alike)."""
    lines = []
    for row in rows:
        for answer, count in sorted(row.get("answers", {}).items()):
            if answer != "200":
                lines.append(f"  {row['endpoint']:<10}{answer:<36}{count:>9}")
    return lines


def request_outcomes(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The tally in the shape of locust's outcome counters, for invariants.check_requests."""
    outcomes: Counter[str] = Counter()
    for row in rows:
        name = row["endpoint"]
        for answer, count in row.get("answers", {}).items():
            status, _, code = answer.partition(" ")
            if answer == "transport error":
                outcomes["transport error"] += count
            elif status.isdigit() and int(status) >= 500:
                outcomes["5xx"] += count
                outcomes[f"{name} {answer}"] += count
            elif status.isdigit() and not (200 <= int(status) < 300 or int(status) == 304):
                allowed = EXPECTED.get(name, {}).get(int(status))
                if allowed is not None and code in allowed:
                    outcomes[f"{name} {answer}"] += count
                else:
                    outcomes[f"unexpected {name} {answer}"] += count
    return dict(outcomes)


def write_records(run_dir: Path, journeys: list[Any]) -> Path:
    path = run_dir / "journeys.jsonl"
    with path.open("w") as handle:
        for journey in journeys:
            handle.write(json.dumps(journey.as_record()) + "\n")
    return path


def cpu_line(split: dict[str, float], seconds: float) -> str:
    parts = ", ".join(f"{name} {value:.0f}" for name, value in split.items())
    return f"CPU during the run, core-seconds of {os.cpu_count()} cores x {seconds:.0f} s: {parts}"


def order_checks(journeys: list[dict[str, Any]], admission: dict[str, Any]) -> list[invariants.Check]:
    return [invariants.check_order_from_redis(admission), *invariants.buyers_view_checks(journeys)]


def run_invariants(
    run: RunEnvironment, event_id: int, rows: list[dict[str, Any]], outcome: Any, context: dict[str, Any]
) -> list[invariants.Check]:
    outcomes_file = run.run_dir / "outcomes.json"
    outcomes_file.write_text(json.dumps({"outcomes": request_outcomes(rows)}, indent=1))
    records = [journey.as_record() for journey in outcome.journeys]
    checks = invariants.check_seats(event_id)
    checks += invariants.check_mail(event_id, mail_dir=run.run_dir / "mail", waited=context["waited"])
    checks += order_checks(records, context["admission"])
    checks += invariants.check_requests(outcomes_file, None)
    return checks


def verdicts(
    args: argparse.Namespace, rows: list[dict[str, Any]], outcome: Any, checks: list[invariants.Check]
) -> list[str]:
    by_name = {row["endpoint"]: row for row in rows}
    # The crowd's target is about buyers waiting at once: the polls sent once everyone
    # joined (the arrival burst's polls are in the "status" row, reported beside it).
    steady = by_name.get("status_steady", {}) if not args.reference else {}
    status_p99 = steady.get("p99", by_name.get("status", {}).get("p99"))
    errors = outcome.tally.errors
    order_ok = all(c.ok is not False for c in checks if c.name.startswith("admission order"))
    lines = [
        report.verdict(f"status p99 < {report.TARGET_STATUS_P99_MS} ms" + (" (all joined)" if steady else ""),
                       None if status_p99 is None else status_p99 < report.TARGET_STATUS_P99_MS,
                       f"{status_p99:.0f} ms" if status_p99 is not None else "no status polls"),
        report.verdict("0 errors", errors == 0, f"{errors} errors in {outcome.tally.requests} requests"),
        report.verdict("admission order ok", order_ok, "Redis snapshots and buyers' view"),
    ]  # fmt: skip
    if args.reference:
        rps = by_name["all endpoints"]["req_per_s"]
        lines.insert(
            0,
            report.verdict(
                f"≥ {report.TARGET_RPS} requests/s at the clients",
                rps >= report.TARGET_RPS,
                f"{rps:.0f} requests/s",
            ),
        )
        lines.append(
            report.verdict(
                "all invariants ok", not invariants.broken(checks), f"{len(invariants.broken(checks))} broken"
            )
        )
    else:
        peak = max(outcome.peak_waiting_redis, 0)
        lines.append(report.verdict(f"≥ {report.TARGET_WAITING:,} waiting at peak", peak >= report.TARGET_WAITING,
                                    f"{peak:,} in Redis, {outcome.api.peak_waiting:,} told 'waiting' at once (driver)"))  # fmt: skip
    return lines


def print_report(
    args: argparse.Namespace,
    run: RunEnvironment,
    system: System,
    event: dict[str, Any],
    outcome: Any,
    context: dict[str, Any],
) -> int:
    event_id = int(event["id"])
    rows = outcome.tally.rows(outcome.seconds)
    print(
        f"\nRan {outcome.seconds:.1f} s; {outcome.tally.requests} requests; {outcome.connects} connections "
        f"opened (pool {args.pool}); {outcome.retries} sent again after a keep-alive race"
    )
    print("\n" + endpoint_table(rows))
    print(
        "(latency from the buyer's intent, a wait for a pooled connection included; on-wire: from the write)"
    )
    print("\nanswers other than 200:\n" + "\n".join(answer_lines(rows) or ["  none"]))
    for reason, count in outcome.tally.transport_errors.most_common(5):
        print(f"  transport error  {reason}: {count}")
    outcomes = Counter(journey.outcome for journey in outcome.journeys)
    print("\njourney outcomes:\n" + "\n".join(f"  {k:<44}{v:>9}" for k, v in sorted(outcomes.items())))
    _line_figures(args, outcome, rows)
    print("\n" + sale_line(sale_figures(event_id, context["started_at"])))
    print("\n" + cpu_line(context["cpu"], outcome.seconds))
    access_log = run.run_dir / "nginx" / "logs" / "access.log"  # bench/system.py's nginx
    if access_log.exists():
        # The server's side of the table above: time the driver lost waiting for one of its
        # pooled connections (a backlog at the client) is told apart from the system's.
        names = [NAMES[row["endpoint"]] for row in rows if row["endpoint"] in NAMES]
        print("\n" + report.proxy_table(report.proxy_latencies(access_log), names))
        at_edge, polls = report.edge_answers(access_log)
        refused, joins = report.edge_answers(access_log, method="POST")
        print(
            f"status polls answered by nginx itself (deploy/nginx/queue_edge.js): {at_edge:,} of {polls:,} "
            f"({100 * at_edge / max(polls, 1):.0f} %); joins refused by nginx itself: {refused:,} of "
            f"{joins:,} ({100 * refused / max(joins, 1):.0f} %); the rest by the app"
        )
    write_records(run.run_dir, outcome.journeys)
    checks = run_invariants(run, event_id, rows, outcome, context)
    invariants.print_table(checks)
    lines = verdicts(args, rows, outcome, checks)
    print("\nverdict:\n" + "\n".join(lines))
    report.write_json(run.run_dir / "report.json", {
        "run": run.run_id, "args": vars(args), "system": system.describe(), "event": event, "seconds": outcome.seconds,
        "rows": rows, "journey_outcomes": outcomes, "peak_waiting_redis": outcome.peak_waiting_redis,
        "peak_waiting_driver": outcome.api.peak_waiting, "waiting_at_resume": outcome.waiting_at_resume,
        "cpu": context["cpu"], "invariants": [vars(c) for c in checks], "verdict": lines, "progress": outcome.progress,
    })  # fmt: skip
    print(
        f"\nFiles: {run.run_dir.relative_to(ROOT)}/ (report.json, journeys.jsonl, outcomes.json, *.log, mail/)"
    )
    return 1 if invariants.broken(checks) else 0


def _line_figures(args: argparse.Namespace, outcome: Any, rows: list[dict[str, Any]]) -> None:
    if args.reference:
        total = next(row for row in rows if row["endpoint"] == "all endpoints")
        rps = total["req_per_s"]
        mean = sum(sum(e.latencies_ms) for e in outcome.tally.endpoints.values()) / max(total["requests"], 1)
        print(
            f"\nLittle's law: {args.users} users in flight / {rps:.0f} requests/s = {args.users / max(rps, 1) * 1000:.0f} ms "
            f"expected mean latency; measured mean {mean:.0f} ms"
        )
        return
    resumed = (
        f"; admission resumed at t={outcome.resumed_at:.0f} s with {outcome.waiting_at_resume:,} waiting"
        if outcome.resumed_at is not None
        else ""
    )
    print(
        f"\nline: peak {outcome.peak_waiting_redis:,} waiting in Redis (ZCARD every second and when admission resumed), "
        f"{outcome.api.peak_waiting:,} buyers told 'waiting' at once (driver){resumed}"
    )
