"""The short multi-node sale every drill runs, and its tear-down.

``DrillSale`` starts the backing services (``bench/services.py``: a Redis Cluster, the
broker, the database, as the drill asks), migrates, creates the event and its buyers,
starts two web nodes behind HAProxy and the Celery workers (``bench/system.py``), and
runs the steady load (``load.DrillLoad``) with a sampler thread: every 0.5 s the sale's
figures from Redis (waiting, active, admitted, held, sold) and HAProxy's view of the
nodes. ``close()`` stops everything it started and removes what it created (cluster,
vhost or own RabbitMQ node, database or own MariaDB server, keys).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cpu import CpuMeter
from bench.drills.load import DrillLoad, Plan
from bench.sale import EventShape, create_buyers, create_event, live_figures, read_buyers
from bench.services import RunServices, ServiceOptions
from bench.system import ROOT, RunEnvironment, System, SystemConfig, cleanup_redis, run_environment


@dataclass
class DrillOptions:
    name: str
    web_nodes: int = 2
    rate: float = 10.0  # buyers arriving per second
    before: float = 20.0  # seconds of load before the fault
    outage: float = 10.0  # seconds a stopped server stays down
    after: float = 30.0  # seconds of load after the recovery
    seats: int = 3000
    capacity: int = 100
    hold_seconds: int = 60
    pass_seconds: int = 120
    broker: str = "rabbitmq"  # rabbitmq (a vhost of the shared node) | own-rabbitmq
    database: str = "mariadb"  # mariadb (a database on the shared server) | own-mariadb
    node_timeout_ms: int = 2000  # cluster-node-timeout: how soon a dead master is failed over
    replica_lag: float = 0.0  # redis-master: freeze the replica this long before the kill


@dataclass
class Sample:
    at: float
    figures: dict[str, int] | None  # None: Redis did not answer
    nodes_down: list[str] = field(default_factory=list)


class DrillSale:
    def __init__(self, options: DrillOptions, run_id: str, run_dir: Path) -> None:
        self.options, self.run_id, self.run_dir = options, run_id, run_dir
        self.services = RunServices(
            ServiceOptions(redis_cluster=True, broker=options.broker, database=options.database,
                           cluster_node_timeout_ms=options.node_timeout_ms),
            run_id, run_dir,
        )  # fmt: skip
        self.run: RunEnvironment | None = None
        self.system: System | None = None
        self.event_id = 0
        self.load: DrillLoad | None = None
        self.cpu: CpuMeter | None = None
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_loop, name="drill-sampler", daemon=True)

    # --- starting ---------------------------------------------------------------------------

    def open(self) -> DrillSale:
        from bench.loadtest import setup_django

        self.run = run_environment(self.run_id, self.run_dir, tag="dr", overrides=self.services.start())
        setup_django(self.run)  # migrates the run's database
        options = self.options
        shape = EventShape(options.seats, options.capacity, options.hold_seconds, options.pass_seconds, 4)
        self.event_id = int(create_event(self.run, shape, title=f"Drill {options.name} {self.run_id}")["id"])
        buyers = int(options.rate * (options.before + options.outage + options.after + 30) * 1.2) + 50
        self.accounts = read_buyers(create_buyers(self.run, buyers))
        config = SystemConfig(web_nodes=options.web_nodes, balancer="haproxy", web_workers=2)
        self.system = System(config, self.run).start()
        self.system.wait_for_admission(self.event_id)
        print(f"Drill {options.name} {self.run_id}: {self.system.describe()}", flush=True)
        print(f"Event {self.event_id}: {shape.seats} seats, capacity {shape.capacity}, hold "
              f"{shape.hold_seconds} s; {len(self.accounts)} buyers at {options.rate:g}/s", flush=True)  # fmt: skip
        return self

    def start_load(self) -> DrillLoad:
        assert self.system is not None and self.run is not None
        roots = {**self.system.cpu_roots(), **self.services.cpu_roots(self.run.env)}
        self.cpu = CpuMeter({**roots, "load generator": [os.getpid()]})
        self.load = DrillLoad(
            self.system.url, self.event_id, self.accounts, Plan(rate=self.options.rate)
        ).start()
        self._sampler.start()
        return self.load

    # --- while it runs ----------------------------------------------------------------------

    def _sample_loop(self) -> None:
        last_print = time.monotonic()
        while not self._stop.wait(0.5):
            try:
                figures: dict[str, int] | None = live_figures(self.event_id)
            except Exception:  # Redis down or failing over: that is the figure
                figures = None
            self.samples.append(Sample(time.time(), figures, self._nodes_down()))
            if self.cpu is not None:
                self.cpu.sample()
            if time.monotonic() - last_print >= 5:
                last_print = time.monotonic()
                print(self.progress_line(), flush=True)

    def _nodes_down(self) -> list[str]:
        proxy = self.system.proxy if self.system is not None else None
        with contextlib.suppress(Exception):
            return [name for name, stats in proxy.server_stats().items() if stats.status != "UP"]
        return []

    def progress_line(self) -> str:
        assert self.load is not None
        sample = self.samples[-1] if self.samples else None
        answers = list(self.load.ledger.answers)
        unavailable = sum(1 for answer in answers if answer[2] == 503)
        figures = sample.figures if sample else None
        state = (
            f"waiting {figures['waiting']:>4}  active {figures['active']:>4}  admitted {figures['admitted']:>5}  "
            f"held {figures['held']:>4}  sold {figures['sold']:>5}"
            if figures
            else "Redis not answering"
        )
        return f"  t={time.monotonic() - self.load.started:5.0f}s  answers {len(answers):>6}  503 {unavailable:>5}  {state}"

    def hold_on(self, seconds: float) -> None:
        """Lets the load run for ``seconds`` (the sampler keeps the record meanwhile)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def admission_stall(self, start: float, end: float) -> float:
        """Longest stretch (s) between ``start`` and ``end`` in which the admitted count did
        not move while someone waited: how long admission stood still."""
        longest, since, last = 0.0, None, None
        for sample in self.samples:
            if not start <= sample.at <= end or sample.figures is None:
                continue
            moved = last is None or sample.figures["admitted"] != last
            last = sample.figures["admitted"]
            if moved or sample.figures["waiting"] == 0:
                since = sample.at
            elif since is not None:
                longest = max(longest, sample.at - since)
        return round(longest, 1)

    def track(self, group: str, pid: int | None) -> None:
        """A restarted server's new process joins its CPU group."""
        if self.cpu is not None and pid:
            self.cpu.add(group, pid)

    def event_redis(self) -> Any:
        """A plain client of the master now serving the event's slot (every key of the
        event is there; a cluster pipeline refuses MGET, a node's MULTI/EXEC does not)."""
        import redis

        from queueing.keys import EventKeys

        node = self.services.cluster.master_for_key(EventKeys(self.event_id).waiting)
        return redis.Redis(host=node.host, port=node.port, decode_responses=True, socket_timeout=2)

    def nodes_taken_out(self) -> list[str]:
        return sorted({name for sample in self.samples for name in sample.nodes_down})

    # --- stopping ---------------------------------------------------------------------------

    def stop_load(self) -> dict[str, float]:
        """Ends the load; the CPU split of the loaded period (core-seconds)."""
        assert self.load is not None and self.cpu is not None
        self.load.stop()
        self._stop.set()
        self._sampler.join(timeout=5)
        return self.cpu.split()

    def drain_mail(self, timeout: float = 60.0) -> tuple[int, int, float]:
        """Until every booking is mailed, or ``timeout`` passed with no progress for 10 s."""
        from bench import invariants

        return invariants.wait_for_mail(self.event_id, timeout=timeout, stall=10)

    def close(self) -> None:
        self._stop.set()
        if self.load is not None:
            with contextlib.suppress(Exception):
                self.load.stop()
        if self.system is not None:
            self.system.stop()
        if self.run is not None:
            with contextlib.suppress(Exception):
                cleanup_redis(self.run)
        self.services.stop()

    @property
    def mail_dir(self) -> Path:
        return self.run_dir / "mail"


def drill_dir(name: str, run_id: str) -> Path:
    path = ROOT / "var" / "drills" / f"{run_id}-{name}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def print_figures(title: str, rows: list[tuple[str, Any]]) -> None:
    """A two-column table of the drill's figures (values left-aligned: some are long)."""
    width = max(len(name) for name, _ in rows) + 2
    print(f"\n{title}\n{'figure':<{width}}value\n{'-' * (width + 40)}")
    for name, value in rows:
        print(f"{name:<{width}}{value}")


def cpu_line(split: dict[str, float], seconds: float) -> str:
    parts = ", ".join(f"{name} {value:.0f}" for name, value in split.items())
    return f"CPU while loaded, core-seconds of {os.cpu_count()} cores x {seconds:.0f} s: {parts}"
