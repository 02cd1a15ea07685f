"""``make crowd``: 50,000 buyers waiting at once in one event, and the reference rush.

Why not locust: locust gives every user a greenlet and a connection, and costs about a
millisecond of CPU per request on this machine (``python bench/client_cost.py
--locust-users 5000``: 1.1 ms/request polling every 20-30 s, 0.9 ms per user spawned,
34 KiB per user), so 50,000 users polling every ~25 s (about 2,000 requests/s) would need
more than the machine's two cores for the load generator alone, and spawning them takes
longer than the 30 s burst. This driver is one asyncio process (uvloop): each buyer is a
coroutine (``bench/journeys.py``), all of them share a bounded pool of keep-alive
connections (``bench/httpclient.py``, about 35 µs of CPU per request; why a pool and not
50,000 sockets is written there).

Crowd (default): creates the event (2,000 seats, capacity 200, pass 120 s) and
``--buyers`` accounts (``manage.py create_buyers``), starts the system
(``bench/system.py``: gunicorn, the Celery admission worker with beat and the mail
worker, nginx with ``--proxy``). Admission is paused while the buyers arrive (all within
``--arrival-seconds``), as an operator opens the doors once the room is full
(``--no-pause-during-arrivals`` admits from the first second), so that the whole crowd
waits at once; then the line moves. Each buyer polls when told (``poll_after_ms`` ±10 %,
``X-Queue-Ticket``), and once admitted looks around (``--shop-seconds``) and buys
(``--buy-share``: seat map → hold 1-2 seats → confirm) or leaves (DELETE).

Reference (``--reference``): the replaced system's JMeter run: 3,000 virtual users, each
looping journeys back to back with no think time (event → join → status polls back to
back until admitted or sold out → seat map → hold → confirm; then the next journey with
the next unused account), through nginx, until 300,000 requests.

Reports: requests, errors and p50/p95/p99/max latency per endpoint (every sample; the
latency runs from the moment the buyer wanted to send, so a wait for a pooled connection
counts), requests/s, buyers waiting at peak, the CPU split, the invariants
(``bench/invariants.py``) and one verdict line per target. Exit status 1 when an
invariant is broken.

    python bench/crowd.py                          # 50,000 buyers
    python bench/crowd.py --buyers 2000 --duration 30
    python bench/crowd.py --reference              # 3,000 users, 300,000 requests, via nginx
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.crowd_report import print_report  # noqa: E402
from bench.httpclient import Pool  # noqa: E402
from bench.journeys import Api, Buyer, CrowdPlan, Journey, Stop, crowd_journey, reference_journey  # noqa: E402
from bench.loadtest import add_system_options, raise_interrupt, setup_django, system_config  # noqa: E402
from bench.sale import EventShape, create_buyers, create_event, live_figures, read_buyers  # noqa: E402
from bench.system import RunEnvironment, System, cleanup_redis, new_run_id, run_environment, unpublish  # noqa: E402
from bench.tally import Tally  # noqa: E402


def _range(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    load = parser.add_argument_group("load")
    load.add_argument("--reference", action="store_true", help="the JMeter-style reference rush")
    load.add_argument(
        "--buyers", type=int, help="accounts (crowd: 50,000 buyers; reference: 20,000 accounts)"
    )
    load.add_argument(
        "--arrival-seconds", type=float, default=30.0, help="crowd: all buyers join within this"
    )
    load.add_argument(
        "--arrival-rate", type=float, help="crowd: buyers joining per second (overrides the above)"
    )
    load.add_argument(
        "--duration", type=float, help="seconds from the first request (crowd 120, reference 300)"
    )
    load.add_argument("--users", type=int, default=3000, help="reference: virtual users")
    load.add_argument("--max-requests", type=int, default=300_000, help="reference: request budget")
    load.add_argument("--pool", type=int, help="keep-alive connections (crowd 200, reference 1,000)")
    load.add_argument("--timeout", type=float, default=30.0, help="seconds before a request is an error")
    load.add_argument("--buy-share", type=float, default=0.3, help="crowd: admitted buyers who buy")
    load.add_argument(
        "--shop-seconds", type=_range, default=(2.0, 10.0), help="crowd: admitted, before buying"
    )
    load.add_argument("--jitter", type=float, default=0.1, help="crowd: ± share on poll_after_ms")
    load.add_argument("--pause-during-arrivals", action=argparse.BooleanOptionalAction, default=True)
    load.add_argument("--uvloop", action=argparse.BooleanOptionalAction, default=True)
    load.add_argument("--seed", type=int, default=None)
    sale = parser.add_argument_group("event")
    sale.add_argument("--seats", type=int, default=2000)
    sale.add_argument("--capacity", type=int, default=200)
    sale.add_argument("--pass-seconds", type=int, default=120)
    sale.add_argument("--hold-seconds", type=int, default=60)
    sale.add_argument("--max-tickets", type=int, default=4)
    add_system_options(parser, proxy_default=None)
    args = parser.parse_args(argv)
    args.proxy = args.reference if args.proxy is None else args.proxy
    args.buyers = args.buyers or (20_000 if args.reference else 50_000)
    args.duration = args.duration or (300.0 if args.reference else 120.0)
    # Reference: at most 1,000 connections, not one per user as JMeter had: nginx (bench/proxy.py,
    # worker_connections 4096) needs a second connection upstream for each request in flight,
    # and with 3,000 clients it ran out and closed connections under them (58 % transport errors).
    args.pool = args.pool or (min(args.users, 1000) if args.reference else 200)
    if args.arrival_rate:
        args.arrival_seconds = args.buyers / args.arrival_rate
    return args


def admission_control() -> Any:
    """The staff pause control of the Redis line, wherever it lives (the waiting room is
    being reworked: queueing.line.controls_set, formerly queueing.waiting_room.control_set)."""
    import importlib

    for module, name in (("queueing.line", "controls_set"), ("queueing.line", "control_set"),
                         ("queueing.waiting_room", "control_set")):  # fmt: skip
        with contextlib.suppress(ImportError):
            found = getattr(importlib.import_module(module), name, None)
            if found is not None:
                return found
    raise RuntimeError("no admission pause control found (queueing.line.controls_set)")


# --- The run in the event loop ----------------------------------------------------------------


@dataclass
class Outcome:
    """What the event loop hands back to the report."""

    tally: Tally
    api: Api
    journeys: list[Journey]
    seconds: float
    connects: int
    retries: int = 0
    peak_waiting_redis: int = 0
    resumed_at: float | None = None  # seconds from the start when admission resumed
    waiting_at_resume: int | None = None
    progress: list[str] = field(default_factory=list)


class Watcher:
    """Once a second in a thread (Redis calls block): the CPU meter, the peak of the
    waiting line in Redis, and every 5 s a progress line."""

    def __init__(self, event_id: int, cpu: Any) -> None:
        self.event_id, self.cpu = event_id, cpu
        self.api: Api | None = None
        self.started = self._last_at = time.monotonic()
        self._last_answered = 0
        self.peak_waiting = 0
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crowd-watcher", daemon=True)

    def watch(self, api: Api) -> None:
        """Starts watching (called in the event loop once the run's Api exists)."""
        self.api = api
        self.started = self._last_at = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(1.0):
            tick += 1
            self.cpu.sample()
            with contextlib.suppress(Exception):
                figures = live_figures(self.event_id)
                self.peak_waiting = max(self.peak_waiting, figures["waiting"])
                if tick % 5 == 0:
                    self._print(figures)

    def _print(self, figures: dict[str, int]) -> None:
        assert self.api is not None
        # Answered requests (a request still waiting for a pooled connection is not counted).
        now, answered = time.monotonic(), self.api.tally.requests
        rate = (answered - self._last_answered) / max(now - self._last_at, 1e-6)
        self._last_at, self._last_answered = now, answered
        line = (
            f"  t={now - self.started:5.0f}s  answered {answered:>8} ({rate:6.0f}/s)  errors {self.api.tally.errors:>5}  "
            f"waiting {figures['waiting']:>6} (driver {self.api.waiting_now:>6})  active {figures['active']:>4}  "
            f"admitted {figures['admitted']:>6}  sold {figures['sold']:>5}/{figures['seats']}"
        )
        self.lines.append(line)
        print(line, flush=True)


async def open_doors(
    api: Api, event_id: int, buyers: int, limit: float, outcome: Outcome, started: float
) -> None:
    """Resumes admission once every buyer's join was answered (or at ``limit``)."""
    control_set = admission_control()
    while api.joins_answered < buyers and time.monotonic() - started < limit:
        await asyncio.sleep(0.2)
    figures = await asyncio.to_thread(live_figures, event_id)
    outcome.waiting_at_resume = figures["waiting"]
    await asyncio.to_thread(control_set, event_id=event_id, paused=False)
    outcome.resumed_at = time.monotonic() - started
    print(f"  admission resumed at t={outcome.resumed_at:.0f}s with {figures['waiting']} waiting", flush=True)


async def drive_crowd(
    args: argparse.Namespace, api: Api, accounts: list[tuple[str, str]], outcome: Outcome
) -> None:
    rng = random.Random(args.seed)
    plan = CrowdPlan(buy_share=args.buy_share, shop_seconds=args.shop_seconds, jitter=args.jitter)
    step = args.arrival_seconds / max(len(accounts), 1)
    buyers = [Buyer(email, f"Authorization: Bearer {token}\r\n") for email, token in accounts]
    started = time.monotonic()
    tasks = [asyncio.create_task(crowd_journey(api, b, i * step, plan, rng)) for i, b in enumerate(buyers)]
    doors = None
    if args.pause_during_arrivals:
        # Doors open once every join is answered, at the latest with a third of the run
        # left, so that the line still moves when the server answers joins slowly.
        limit = max(args.arrival_seconds, args.duration * 2 / 3)
        doors = asyncio.create_task(open_doors(api, api.event_id, len(buyers), limit, outcome, started))
    await asyncio.sleep(max(0.0, api.deadline - time.monotonic()))
    for task in [*tasks, *([doors] if doors else [])]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    outcome.journeys.extend(b.journey for b in buyers if b.journey is not None)


async def drive_reference(
    args: argparse.Namespace, api: Api, accounts: list[tuple[str, str]], outcome: Outcome
) -> None:
    rng = random.Random(args.seed)
    unused = list(reversed(accounts))  # pop() takes the next unused account
    used: list[tuple[str, str]] = []
    outcome.journeys.clear()

    async def user() -> None:
        while True:
            if not unused:  # every account had its turn: reuse them in the same order
                unused.extend(reversed(used))
                used.clear()
            email, token = unused.pop()
            buyer = Buyer(email, f"Authorization: Bearer {token}\r\n")
            try:
                result = await reference_journey(api, buyer, rng)
            except Stop:
                result = "running"
            if buyer.journey is not None:
                buyer.journey.outcome = result
                outcome.journeys.append(buyer.journey)
            used.append((email, token))
            if result == "running":
                return

    await asyncio.gather(*(user() for _ in range(args.users)))


async def drive(
    args: argparse.Namespace, url: str, event_id: int, accounts: list[tuple[str, str]], watcher: Watcher
) -> Outcome:
    host, _, port = url.removeprefix("http://").partition(":")
    pool = Pool(host, int(port or 80), size=args.pool, timeout=args.timeout)
    api = Api(
        pool,
        Tally(),
        event_id,
        max_requests=args.max_requests if args.reference else 0,
        crowd_size=0 if args.reference else args.buyers,
    )
    outcome = Outcome(tally=api.tally, api=api, journeys=[], seconds=0.0, connects=0)
    # The driver holds tens of thousands of buyers: a full cyclic-GC pass over them stops
    # the event loop for a good part of a second, which the latencies would then blame on
    # the server. Everything made so far stays out of the collector, and collections of
    # the young generation (the requests' short-lived objects) come less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    started = time.monotonic()
    api.deadline = started + args.duration
    watcher.watch(api)
    try:
        if args.reference:
            await drive_reference(args, api, accounts, outcome)
        else:
            await drive_crowd(args, api, accounts, outcome)
    finally:
        outcome.seconds = time.monotonic() - started
        outcome.connects, outcome.retries = pool.connects, pool.retries
        pool.close()
    return outcome


def run_loop(
    args: argparse.Namespace, url: str, event_id: int, accounts: list[tuple[str, str]], watcher: Watcher
) -> Outcome:
    if args.uvloop:
        try:
            import uvloop
        except ImportError:  # requirements-dev.txt brings it; without it the driver costs more
            print("uvloop not installed: asyncio's own loop (more driver CPU per request)", flush=True)
        else:
            return uvloop.run(drive(args, url, event_id, accounts, watcher))
    return asyncio.run(drive(args, url, event_id, accounts, watcher))


# --- Setting up and tearing down ----------------------------------------------------------------


def prepare(args: argparse.Namespace, run: RunEnvironment) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    shape = EventShape(args.seats, args.capacity, args.hold_seconds, args.pass_seconds, args.max_tickets)
    event = create_event(run, shape, title=f"Crowd {run.run_id}")
    started = time.monotonic()
    accounts = read_buyers(create_buyers(run, args.buyers))
    print(
        f"Event {event['id']}: {event['seats_total']} seats ({event['layout']}), capacity {args.capacity}, "
        f"pass {args.pass_seconds} s, hold {args.hold_seconds} s; {len(accounts)} buyer accounts "
        f"(create_buyers {time.monotonic() - started:.1f} s)",
        flush=True,
    )
    return event, accounts


def sale_run(
    args: argparse.Namespace,
    run: RunEnvironment,
    system: System,
    event: dict[str, Any],
    accounts: list[tuple[str, str]],
) -> int:
    from bench import invariants
    from bench.cpu import CpuMeter

    event_id = int(event["id"])
    control_set = admission_control()
    if args.pause_during_arrivals and not args.reference:
        control_set(event_id=event_id, paused=True)
    monitor = invariants.AdmissionOrderMonitor(event_id=event_id, head=max(1000, 2 * args.capacity))
    monitor.start()
    cpu = CpuMeter({**system.cpu_roots(), "driver": [os.getpid()]})
    started_at = datetime.now(tz=UTC)
    print(_start_line(args, system), flush=True)
    watcher = Watcher(event_id, cpu)
    outcome = _run_watched(args, system, event_id, accounts, watcher)
    cpu_split = cpu.split()
    monitor.stop()
    system.stop_web()
    waited = invariants.wait_for_mail(event_id, timeout=args.mail_wait)
    system.stop_celery()
    context = {"started_at": started_at, "cpu": cpu_split, "waited": waited, "admission": monitor.summary()}
    return print_report(args, run, system, event, outcome, context)


def _run_watched(
    args: argparse.Namespace, system: System, event_id: int, accounts: list[tuple[str, str]], watcher: Watcher
) -> Outcome:
    """The event loop, with the watcher thread looking at the run's Api."""
    try:
        outcome = run_loop(args, system.url, event_id, accounts, watcher)
    finally:
        watcher.stop()
    outcome.peak_waiting_redis = max(watcher.peak_waiting, outcome.waiting_at_resume or 0)
    outcome.progress = watcher.lines
    return outcome


def _start_line(args: argparse.Namespace, system: System) -> str:
    if args.reference:
        return (
            f"Reference rush: {args.users} users back to back, {args.max_requests} requests at most, "
            f"{args.duration:.0f} s at most, pool {args.pool} connections to {system.url}"
        )
    return (
        f"Crowd: {args.buyers} buyers arriving over {args.arrival_seconds:.0f} s, run {args.duration:.0f} s, "
        f"pool {args.pool} connections to {system.url}"
        + (", admission paused until every buyer joined" if args.pause_during_arrivals else "")
    )


def main() -> int:
    args = parse_args()
    run_id = new_run_id()
    run_dir = ROOT / "var" / "crowd" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    run = run_environment(run_id, run_dir, tag="cr")
    setup_django(run)
    print(f"Crowd run {run_id}: results in {run_dir.relative_to(ROOT)}/", flush=True)
    signal.signal(signal.SIGTERM, raise_interrupt)
    system = System(system_config(args), run)
    event: dict[str, Any] | None = None
    try:
        event, accounts = prepare(args, run)
        system.start()
        system.wait_for_admission(int(event["id"]))
        print(f"System up: {system.describe()}", flush=True)
        return sale_run(args, run, system, event, accounts)
    except KeyboardInterrupt:
        print("\nInterrupted: stopping everything this run started…")
        return 130
    finally:
        system.stop()
        if event is not None and not args.keep:
            with contextlib.suppress(Exception):
                unpublish(int(event["id"]))
            with contextlib.suppress(Exception):
                cleanup_redis(run)


if __name__ == "__main__":
    raise SystemExit(main())
