"""The multi-node shape of ``bench/loadtest.py``: its options, the ``--multinode`` preset,
locust in distributed mode (one ``--master``, N ``--worker`` processes), and the
per-node figures read from HAProxy.

    python bench/loadtest.py --multinode                   # 3 nodes behind HAProxy, Redis
                                                           # Cluster, RabbitMQ, MariaDB,
                                                           # locust master + 2 workers
    python bench/loadtest.py --multinode --scaling 1,2,3   # the same at 1, 2, 3 nodes

On one machine "nodes" are processes on their own ports: every node shares the same
cores, so the figures show what the software does with more nodes (balancing, no shared
state in the web tier), not what more machines would add.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from bench.report import table
from bench.services import ServiceOptions
from bench.system import ROOT, System, executable, free_port

MULTINODE_NODES = 3
MULTINODE_LOCUST_WORKERS = 2
SCALING_SEATS = 3000
SCALING_CAPACITY = 50


def add_multinode_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("multi-node rehearsal (backing services of the run's own)")
    group.add_argument(
        "--redis-cluster",
        action="store_true",
        help="a local Redis Cluster (3 masters + 3 replicas) for the queue; the cache on the plain Redis",
    )
    group.add_argument(
        "--broker",
        choices=["redis", "rabbitmq"],
        default="redis",
        help="Celery broker: a private database of the plain Redis, or a vhost of our own on RabbitMQ",
    )
    group.add_argument(
        "--database",
        choices=["default", "mariadb"],
        default="default",
        help="default: DATABASE_URL or SQLite; mariadb: a database of our own on 127.0.0.1:3306, migrated",
    )
    group.add_argument(
        "--locust-workers", type=int, default=0, help="locust distributed: one master + N worker processes"
    )
    group.add_argument(
        "--multinode",
        action="store_true",
        help=f"preset: {MULTINODE_NODES} web nodes behind HAProxy, --redis-cluster, --broker rabbitmq, "
        f"--database mariadb, --locust-workers {MULTINODE_LOCUST_WORKERS}",
    )
    group.add_argument(
        "--scaling",
        help="e.g. 1,2,3: the same saturating load against 1, then 2, then 3 nodes (bench/scaling.py)",
    )
    group.add_argument("--scaling-seconds", type=float, default=40.0, help="load per step (--scaling)")
    group.add_argument("--scaling-users", type=int, default=600, help="back-to-back users (--scaling)")
    group.add_argument("--scaling-pool", type=int, default=200, help="keep-alive connections (--scaling)")
    group.add_argument(
        "--prometheus",
        action="store_true",
        help="a Prometheus of the run's own scraping every node and worker (bench/prometheus_run.py)",
    )


def apply_preset(args: argparse.Namespace) -> None:
    """``--multinode`` turns every multi-node option on (explicit values still win)."""
    if args.scaling:
        args.balancer = "haproxy"  # per-node counts come from HAProxy
        # A line much longer than the passes: most requests are status polls (the rush's
        # hot path, cheap for the client too); enough seats that no step sells out.
        args.seats = SCALING_SEATS if args.seats == 400 else args.seats
        args.capacity = SCALING_CAPACITY if args.capacity == 100 else args.capacity
    if not args.multinode:
        return
    if args.web_nodes == 1:
        args.web_nodes = MULTINODE_NODES
    if args.balancer == "none":
        args.balancer = "haproxy"
    args.redis_cluster = True
    args.broker = "rabbitmq" if args.broker == "redis" else args.broker
    args.database = "mariadb" if args.database == "default" else args.database
    args.locust_workers = args.locust_workers or MULTINODE_LOCUST_WORKERS


def service_options(args: argparse.Namespace) -> ServiceOptions:
    return ServiceOptions(redis_cluster=args.redis_cluster, broker=args.broker, database=args.database)


# --- locust in distributed mode ---------------------------------------------------------------


@dataclass
class LocustCluster:
    """The master's extra options and the worker processes (started by ``start_workers``)."""

    workers: int
    port: int = 0

    def master_args(self) -> list[str]:
        if not self.workers:
            return []
        self.port = free_port()
        return ["--master", "--expect-workers", str(self.workers), "--expect-workers-max-wait", "60",
                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(self.port)]  # fmt: skip

    def start_workers(self, system: System, env: dict[str, str]) -> list[int]:
        """Worker processes (the master hands each a disjoint slice of the buyers)."""
        pids = []
        for index in range(self.workers):
            argv = [executable("locust"), "-f", str(ROOT / "locustfile.py"), "--worker",
                    "--master-host", "127.0.0.1", "--master-port", str(self.port)]  # fmt: skip
            pids.append(system.processes.start(f"locust-worker-{index + 1}", argv, env=env).pid)
        return pids

    def stop_workers(self, system: System) -> None:
        # They quit with the master; this only collects any that did not.
        for index in range(self.workers):
            system.processes.stop(f"locust-worker-{index + 1}", timeout=10)


# --- per-node figures from HAProxy ------------------------------------------------------------


def node_snapshot(system: System) -> dict[str, Any]:
    """HAProxy's cumulative per-server counters now ({} without HAProxy)."""
    if system.config.front != "haproxy" or system.proxy is None:
        return {}
    try:
        return {name: vars(stats) for name, stats in system.proxy.server_stats().items()}
    except OSError:
        return {}


def node_rows(before: dict[str, Any], after: dict[str, Any], seconds: float) -> list[dict[str, Any]]:
    """Requests, requests/s, share and 5xx per node between two snapshots."""
    rows = []
    total = sum(after[n]["requests"] - before.get(n, {}).get("requests", 0) for n in after)
    for name in sorted(after):
        done = after[name]["requests"] - before.get(name, {}).get("requests", 0)
        errors = after[name]["responses_5xx"] - before.get(name, {}).get("responses_5xx", 0)
        rows.append(
            {"node": name, "address": after[name]["address"], "requests": done,
             "req_per_s": done / seconds if seconds else 0.0, "share": done / total if total else 0.0,
             "responses_5xx": errors, "status": after[name]["status"]}
        )  # fmt: skip
    return rows


def node_table(rows: list[dict[str, Any]]) -> str:
    body: list[list[Any]] = [
        [f"{r['node']} ({r['address']})", r["requests"], f"{r['req_per_s']:.0f}", f"{r['share']:.0%}",
         r["responses_5xx"], r["status"]]
        for r in rows
    ]  # fmt: skip
    total = sum(r["requests"] for r in rows)
    body += [["-"], ["all nodes (HAProxy)", total, f"{sum(r['req_per_s'] for r in rows):.0f}", "100%",
                     sum(r["responses_5xx"] for r in rows), ""]]  # fmt: skip
    return table(["web node", "requests", "req/s", "share", "5xx", "status"], body, first_width=30)


def cpu_table(split: dict[str, float], seconds: float, cores: int) -> str:
    """The CPU split as core-seconds and share of the machine's capacity."""
    capacity = seconds * cores
    body = [
        [name, f"{value:.1f}", f"{value / capacity:.0%}" if capacity else "-"]
        for name, value in split.items()
    ]
    return table(["CPU (core-seconds)", "seconds", "of capacity"], body, first_width=30)
