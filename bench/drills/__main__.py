"""``make drill DRILL=<name>``: a failover drill in a short multi-node sale.

    python -m bench.drills redis-master       # SIGKILL the master of the event's slot
    python -m bench.drills redis-replica      # SIGKILL one of its replicas
    python -m bench.drills rabbitmq-restart   # stop and start the broker's RabbitMQ node
    python -m bench.drills database-restart   # stop and start the MariaDB server
    python -m bench.drills redis-master --rate 12 --before 30 --after 40

Each drill runs the sale of ``bench/drills/harness.py`` (2 gunicorn nodes behind HAProxy,
the Celery workers, a Redis Cluster of 3 masters + 3 replicas, RabbitMQ, MariaDB; the
drills that stop a server get a RabbitMQ node or a MariaDB server of their own), a steady
load of buyers doing the whole journey (``bench/drills/load.py``), injects the fault
after ``--before`` seconds, keeps the load going, and prints a table of figures and the
invariants, all from the database (no seat sold twice, seat sold ⇔ one ticket) plus the
drill's own. Everything is written to ``var/drills/<run>-<drill>/report.json``. Exit 1
if an invariant broke.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import invariants, report  # noqa: E402
from bench.drills.harness import DrillOptions, DrillSale, cpu_line, drill_dir, print_figures  # noqa: E402
from bench.system import new_run_id  # noqa: E402

DRILLS = {
    "redis-master": ("bench.drills.redis_drills", "redis_master", {}),
    "redis-replica": ("bench.drills.redis_drills", "redis_replica", {}),
    "rabbitmq-restart": ("bench.drills.service_drills", "rabbitmq_restart", {"broker": "own-rabbitmq"}),
    "database-restart": ("bench.drills.service_drills", "database_restart", {"database": "own-mariadb"}),
}


def parse_args(argv: list[str] | None = None) -> DrillOptions:
    parser = argparse.ArgumentParser(
        prog="python -m bench.drills",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("drill", choices=sorted(DRILLS))
    defaults = DrillOptions(name="")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="buyers arriving per second")
    parser.add_argument(
        "--before", type=float, default=defaults.before, help="seconds of sale before the fault"
    )
    parser.add_argument(
        "--outage", type=float, default=defaults.outage, help="seconds a stopped server stays down"
    )
    parser.add_argument("--after", type=float, default=defaults.after, help="seconds of sale after recovery")
    parser.add_argument("--web-nodes", type=int, default=defaults.web_nodes)
    parser.add_argument("--seats", type=int, default=defaults.seats)
    parser.add_argument("--hold-seconds", type=int, default=defaults.hold_seconds)
    parser.add_argument("--node-timeout-ms", type=int, default=defaults.node_timeout_ms,
                        help="cluster-node-timeout of the Redis Cluster")  # fmt: skip
    parser.add_argument("--replica-lag", type=float, default=0.0,
                        help="redis-master: cut the replica off this many seconds before the kill (SIGSTOP + "
                        "CLIENT KILL TYPE replica; SIGCONT after), so the failover loses the master's last "
                        "writes")  # fmt: skip
    args = parser.parse_args(argv)
    extra = DRILLS[args.drill][2]
    return DrillOptions(
        name=args.drill, web_nodes=args.web_nodes, rate=args.rate, before=args.before, outage=args.outage,
        after=args.after, seats=args.seats, hold_seconds=args.hold_seconds, node_timeout_ms=args.node_timeout_ms,
        replica_lag=args.replica_lag,
        **extra,
    )  # fmt: skip


def run_drill(
    options: DrillOptions, sale: DrillSale
) -> tuple[list[tuple[str, Any]], list[invariants.Check], dict]:
    import importlib

    module, function, _extra = DRILLS[options.name]
    rows, checks, details = getattr(importlib.import_module(module), function)(sale)
    # From the database, whatever the drill: the seats.
    checks = invariants.check_seats(sale.event_id) + checks
    return rows, checks, details


def raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    run_id = new_run_id()
    run_dir = drill_dir(options.name, run_id)
    signal.signal(signal.SIGTERM, raise_interrupt)
    sale = DrillSale(options, run_id, run_dir)
    started = time.monotonic()
    try:
        sale.open()
        rows, checks, details = run_drill(options, sale)
        loaded = sale.load.seconds if sale.load is not None else 0.0
        print_figures(f"Drill {options.name} ({run_id}): {options.rate:g} buyers/s, "
                      f"{options.before:g} s before the fault, {options.after:g} s after", rows)  # fmt: skip
        print("\n" + cpu_line(details.get("cpu", {}), loaded))
        invariants.print_table(checks)
        failed = invariants.broken(checks)
        report.write_json(
            run_dir / "report.json",
            {"drill": options.name, "run": run_id, "options": vars(options), "figures": dict(rows),
             "invariants": [vars(c) for c in checks], "details": details, "loaded_seconds": loaded,
             "wall_seconds": time.monotonic() - started},
        )  # fmt: skip
        print(f"\n{'BROKEN: ' + ', '.join(c.name for c in failed) if failed else 'All invariants hold.'}")
        print(f"Report: {(run_dir / 'report.json').relative_to(ROOT)}")
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("\nInterrupted: stopping everything this drill started…")
        return 130
    finally:
        sale.close()


if __name__ == "__main__":
    raise SystemExit(main())
