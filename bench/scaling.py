"""``bench/loadtest.py --scaling 1,2,3``: the same saturating load against 1, then 2, then
3 web nodes behind HAProxy, on the same backing services (``--multinode``: Redis Cluster,
RabbitMQ, MariaDB), and a table of what adding a node did.

The load is the reference rush of ``bench/crowd.py`` (``bench/journeys.reference_journey``:
users looping whole journeys back to back, no think time, status polled back to back until
admitted), from one asyncio process on a bounded keep-alive pool. Why not locust here:
locust costs about 1 ms of CPU per request on this machine (``bench/client_cost.py``),
this driver about 35 µs, so with locust the load generator itself would take most of one
of the two cores and the comparison would measure locust; with this driver nearly all the
CPU goes to the system under test, so a step that adds no throughput shows that the cores
are full, not that the client is.

Each step: a fresh event (same shape) and buyers, a fresh set of nodes and workers, the
load for ``--scaling-seconds``, then the mail drained and the database invariants checked.
Reported per step: requests/s per node (HAProxy's per-server counts) and in total, p50 /
p99 (every request, from the driver), errors, and the CPU split: each web node,
Celery, Redis Cluster, RabbitMQ, MariaDB, HAProxy, the load generator, other processes
(other users of this shared machine) and idle.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import invariants, report
from bench.cpu import CpuMeter
from bench.multinode import cpu_table, node_rows, node_snapshot, node_table
from bench.sale import EventShape, create_buyers, create_event, read_buyers, sale_figures
from bench.services import RunServices
from bench.system import ROOT, RunEnvironment, System

CORES = os.cpu_count() or 1


def load_args(args: argparse.Namespace) -> argparse.Namespace:
    """The options ``bench/crowd.run_loop`` reads, for the reference rush."""
    return argparse.Namespace(
        reference=True, users=args.scaling_users, pool=args.scaling_pool, timeout=30.0,
        max_requests=0, duration=args.scaling_seconds, seed=None, uvloop=True,
    )  # fmt: skip


def prepare_step(
    args: argparse.Namespace, run: RunEnvironment, nodes: int
) -> tuple[dict[str, Any], list[Any]]:
    shape = EventShape(args.seats, args.capacity, args.hold_seconds, args.pass_seconds, args.max_tickets)
    event = create_event(run, shape, title=f"Scaling {run.run_id} x{nodes}")
    # Users loop journeys: enough accounts that few come round again within a step.
    count = max(args.buyers, 5 * args.scaling_users)
    accounts = read_buyers(create_buyers(run, count, prefix=f"sc{nodes}-{run.run_id}"))
    return event, accounts


def run_step(
    args: argparse.Namespace, run: RunEnvironment, services: RunServices, nodes: int
) -> dict[str, Any]:
    """One step: ``nodes`` web nodes, the load, the figures and the invariants."""
    from bench.crowd import Watcher, run_loop
    from bench.loadtest import system_config

    config = system_config(args)
    config.web_nodes, config.balancer = nodes, "haproxy"
    event, accounts = prepare_step(args, run, nodes)
    event_id = int(event["id"])
    with System(config, run) as system:
        system.wait_for_admission(event_id)
        print(f"\n== {nodes} node(s): {system.describe()}", flush=True)
        cpu = CpuMeter({**system.cpu_roots(), **services.cpu_roots(run.env), "load generator": [os.getpid()]})
        before, started_at = node_snapshot(system), datetime.now(tz=UTC)
        watcher = Watcher(event_id, cpu)
        try:
            outcome = run_loop(load_args(args), system.url, event_id, accounts, watcher)
        finally:
            watcher.stop()
        split = cpu.split()
        per_node = node_rows(before, node_snapshot(system), outcome.seconds)
        system.stop_web()
        waited = invariants.wait_for_mail(event_id, timeout=args.mail_wait)
    checks = invariants.check_seats(event_id) + invariants.check_mail(
        event_id, mail_dir=run.run_dir / "mail", waited=waited
    )
    rows = outcome.tally.rows(outcome.seconds)
    return {"nodes": nodes, "seconds": outcome.seconds, "rows": rows, "per_node": per_node, "cpu": split,
            "sale": sale_figures(event_id, started_at), "invariants": [vars(c) for c in checks],
            "event": event_id}  # fmt: skip


def _row(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next((row for row in rows if row["endpoint"] == name), {})


def step_summary(step: dict[str, Any]) -> dict[str, Any]:
    """The figures of one step that the scaling table shows."""
    total = _row(step["rows"], "all endpoints")
    status = _row(step["rows"], "status")
    cpu = step["cpu"]
    web = {name: value for name, value in cpu.items() if name.startswith("web")}
    return {
        "nodes": step["nodes"],
        "req_per_s": total.get("req_per_s", 0.0),
        "per_node": [round(row["req_per_s"]) for row in step["per_node"]],
        "p50": total.get("p50"),
        "p99": total.get("p99"),
        "status_p99": status.get("p99"),
        "errors": total.get("errors", 0),
        "bookings": step["sale"]["bookings"],
        "web": sum(web.values()),
        "web_per_node": [round(v, 1) for v in web.values()],
        "celery": sum(v for k, v in cpu.items() if k.startswith("celery")),
        "redis": sum(v for k, v in cpu.items() if k.startswith("redis")),
        "rabbitmq": sum(v for k, v in cpu.items() if k.startswith("rabbitmq")),
        "mariadb": sum(v for k, v in cpu.items() if k.startswith("mariadb")),
        "haproxy": cpu.get("haproxy", 0.0),
        "load": cpu.get("load generator", 0.0),
        "other": cpu.get("other processes", 0.0),
        "idle": cpu.get("idle", 0.0),
        "seconds": step["seconds"],
    }


def scaling_table(summaries: list[dict[str, Any]]) -> str:
    body = []
    for s in summaries:
        capacity = s["seconds"] * CORES

        def share(value: float, capacity: float = capacity) -> str:
            return f"{value:.0f} ({value / capacity:.0%})"

        per_core = s["req_per_s"] * s["seconds"] / s["web"] if s["web"] else 0.0
        body.append(
            [s["nodes"], f"{s['req_per_s']:.0f}", "/".join(str(v) for v in s["per_node"]),
             f"{s['p50']:.0f}/{s['p99']:.0f}", s["errors"], f"{per_core:.0f}", share(s["web"]),
             share(s["celery"]), share(s["redis"]), share(s["rabbitmq"]), share(s["mariadb"]),
             share(s["haproxy"]), share(s["load"]), share(s["other"]), share(s["idle"])]
        )  # fmt: skip
    headers = ["nodes", "req/s", "per node", "p50/p99 ms", "errors", "req/web-cpu-s", "web", "celery",
               "redis", "rabbitmq", "mariadb", "haproxy", "load gen", "other", "idle"]  # fmt: skip
    return report.table(headers, body, first_width=6)


def _clean_up(args: argparse.Namespace, run: RunEnvironment, event_ids: list[int]) -> None:
    """The steps' events out of the catalogue and the run's keys gone (as a rehearsal
    does; a database of the run's own is dropped anyway)."""
    import contextlib

    from bench.system import cleanup_redis, unpublish

    if args.keep:
        return
    for event_id in event_ids:
        with contextlib.suppress(Exception):
            unpublish(event_id)
    with contextlib.suppress(Exception):
        cleanup_redis(run)


def run_scaling(args: argparse.Namespace, run: RunEnvironment, services: RunServices) -> int:
    steps = [int(part) for part in str(args.scaling).split(",") if part.strip()]
    print(
        f"Scaling: {', '.join(map(str, steps))} node(s); each step {args.scaling_users} users back to back "
        f"on {args.scaling_pool} connections for {args.scaling_seconds:.0f} s through HAProxy "
        f"({args.balance}); {CORES} cores",
        flush=True,
    )
    results = []
    try:
        for nodes in steps:
            step = run_step(args, run, services, nodes)
            results.append(step)
            print("\n" + node_table(step["per_node"]))
            print(cpu_table(step["cpu"], step["seconds"], CORES))
            time.sleep(2)  # let the stopped nodes' sockets drain before the next step binds
    finally:
        _clean_up(args, run, [step["event"] for step in results])
    summaries = [step_summary(step) for step in results]
    print("\nScaling (CPU core-seconds and share of the machine's capacity during each step):")
    print(scaling_table(summaries))
    failed = [c for step in results for c in step["invariants"] if c["ok"] is False]
    for check in failed:
        print(f"BROKEN: {check['name']}: {check['detail']}")
    path: Path = run.run_dir / "scaling.json"
    report.write_json(path, {"run": run.run_id, "args": vars(args), "steps": results, "summary": summaries})
    print(
        f"\n{'All invariants hold' if not failed else 'BROKEN'} in every step. Files: {path.relative_to(ROOT)}"
    )
    return 1 if failed else 0
