"""``make loadtest``: rehearse a ticket open end to end with locust and check the invariants.

Starts the system the way production runs it (``bench/system.py``: gunicorn with several
gthread workers and DEBUG off, optionally several gunicorn nodes and nginx in front with
``--proxy``; a Celery worker for the ``admission`` queue with beat, and one for ``mail``
and ``default``), all with the same environment: a fresh QUEUE_KEY_PREFIX /
CACHE_KEY_PREFIX, a Celery broker database of its own, the file e-mail backend, and
REDIS_URL / DATABASE_URL as given (else the embedded defaults). Creates an event and its
buyers (``bench/sale.py``), runs locust headless (``locustfile.py``), then prints
requests, failures, requests/s and p50/p95/p99 per endpoint, the bookings and the
sell-out time, the CPU split (``bench/cpu.py``) and the invariant table
(``bench/invariants.py``). Stops everything it started, also on Ctrl-C and on errors.
Exit status 1 when an invariant is broken.

    python bench/loadtest.py                      # 300 buyers, 60 s
    python bench/loadtest.py --users 1000 --run-time 60s
    python bench/loadtest.py --reference          # 3,000 buyers, up to 300,000 requests
    python bench/loadtest.py --proxy              # locust -> nginx -> gunicorn
    make loadtest LOADTEST_ARGS="--users 1000 --run-time 90s"

The multi-node shape (``bench/multinode.py``): ``--web-nodes N`` gunicorn instances,
``--balancer haproxy`` in front (``bench/balancer.py``, per-node request counts),
``--redis-cluster`` (a local cluster of the run's own; the cache on the plain Redis),
``--broker rabbitmq`` (a vhost of the run's own), ``--database mariadb`` (a database of
the run's own, migrated), ``--locust-workers N`` (locust master + N workers), or all of
them at once with ``--multinode``; ``--scaling 1,2,3`` runs the same saturating load at
1, 2 and 3 nodes (``bench/scaling.py``); ``--prometheus`` adds a Prometheus of the run's
own scraping every node and worker (``bench/prometheus_run.py``)::

    python bench/loadtest.py --multinode --users 1000 --run-time 90s
    python bench/loadtest.py --multinode --scaling 1,2,3

The macro scenario (``bench/macro.py``, issue 15): ``--macro off|on|review|both|all``
makes 5 % of the people script operators with 20 accounts each from one address and no
think time, next to ``--users`` honest buyers on addresses of their own, with the
defences (proof-of-work, join limits, a staff member acting on the suspicious panel)
off, on, or on with admissions paused at the opening while the staff review (each a
phase with an event, a system and accounts of its own); it reports the share of seats
the scripts got and seats per operator against seats per honest buyer::

    python bench/loadtest.py --macro both         # 600 honest buyers, 32 operators x 20
    python bench/loadtest.py --macro all          # ... and the review phase

The late phase (``bench/late_phase.py``, issue 14): ``--waiting-list`` adds, after the
sell-out, cancellations, buyers on the waiting list accepting, declining or ignoring the
seats offered to them, and snipers retrying the regular sale; it prints the list's figures
and adds the late phase's request rows to the invariants (the rows "no seat offered
twice" and "waiting-list order kept" are always there, n/a without offers)::

    python bench/loadtest.py --waiting-list       # ~2.5 minutes more

Everything a run leaves is under var/loadtest/<run>/ (locust CSV and log, journey
records, mail files, server logs, report.json; scaling.json for --scaling; with
--macro one subdirectory per phase, off/, on/, review/, and macro.json; with
--waiting-list the late phase's plan, records and CSV in late/). A Redis
Cluster, RabbitMQ vhost or MariaDB database made for the run is removed at its end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import late_phase, macro, report  # noqa: E402  (needs ROOT on sys.path when run as a script)
from bench.cpu import CpuMeter, child_pids, profile_summary, py_spy_argv  # noqa: E402
from bench.multinode import (  # noqa: E402
    LocustCluster,
    add_multinode_options,
    apply_preset,
    node_rows,
    node_snapshot,
    node_table,
    service_options,
)
from bench.probe import PollProbe, ProbeFigures  # noqa: E402
from bench.sale import (  # noqa: E402
    EventShape,
    create_buyers,
    create_event,
    progress_line,
    read_buyers,
    sale_figures,
    sale_line,
)
from bench.services import RunServices  # noqa: E402
from bench.system import (  # noqa: E402
    RunEnvironment,
    System,
    SystemConfig,
    cleanup_redis,
    executable,
    new_run_id,
    run_environment,
    unpublish,
)


def parse_duration(text: str) -> float:
    """locust's -t syntax: 90, 90s, 2m, 1h30m."""
    text = text.strip().lower()
    if text.replace(".", "", 1).isdigit():
        return float(text)
    total, number = 0.0, ""
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in "hms" and number:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
        else:
            raise ValueError(f"bad duration {text!r}")
    return total


# --- Options --------------------------------------------------------------------------------


def _shape_options(parser: argparse.ArgumentParser) -> None:
    shape = parser.add_argument_group("load shape")
    shape.add_argument("--users", type=int, default=300, help="locust -u (default 300)")
    shape.add_argument("--spawn-rate", type=float, help="locust -r (default users/5 per second, at most 100)")
    shape.add_argument("--run-time", default="60s", help="locust -t upper bound (default 60s)")
    shape.add_argument("--max-requests", type=int, default=0, help="stop after this many requests (0: off)")
    shape.add_argument(
        "--reference", action="store_true", help="3,000 buyers, 300,000 requests at most, 2,000 seats"
    )
    shape.add_argument("--locust-processes", type=int, default=1, help="locust --processes (1: one process)")


def _buyer_options(parser: argparse.ArgumentParser) -> None:
    behaviour = parser.add_argument_group("buyers")
    behaviour.add_argument("--crowd-share", type=float, default=0.5)
    behaviour.add_argument("--abandon-share", type=float, default=0.1)
    behaviour.add_argument(
        "--login-share", type=float, default=0.01, help="share logging in during the rush (password hashing!)"
    )
    behaviour.add_argument(
        "--poll-factor", type=float, default=1.0, help="x poll_after_ms (0.2: impatient refreshers)"
    )
    behaviour.add_argument(
        "--max-seats", type=int, default=0, help="seats per buyer at most (0: the event cap)"
    )
    behaviour.add_argument(
        "--buyers", type=int, help="accounts to create (default 2x users: ramp-up respawns)"
    )


def _event_options(parser: argparse.ArgumentParser) -> None:
    sale = parser.add_argument_group("event")
    sale.add_argument("--seats", type=int, default=400, help="seats on sale (rounded up to whole rows)")
    sale.add_argument("--capacity", type=int, default=100, help="buyers admitted at once (active queue)")
    # Short enough that abandoned holds and passes lapse, and come back, within a run.
    sale.add_argument("--hold-seconds", type=int, default=30)
    sale.add_argument("--pass-seconds", type=int, default=60)
    sale.add_argument("--max-tickets", type=int, default=4, help="max tickets per user")


def add_system_options(parser: argparse.ArgumentParser, *, proxy_default: bool = False) -> None:
    """The options of ``bench/system.py``'s System (shared with ``bench/crowd.py``)."""
    system = parser.add_argument_group("system")
    system.add_argument(
        "--server",
        choices=["gunicorn", "granian"],
        default=SystemConfig.server,
        help="the WSGI server of each web node (granian: Rust HTTP handling; see README, Benchmarks)",
    )
    system.add_argument("--web-nodes", type=int, default=1, help="web server instances, each on its own port")
    system.add_argument("--web-workers", type=int, default=SystemConfig.web_workers, help="workers per node")
    system.add_argument("--web-threads", type=int, default=4, help="threads per gthread / granian worker")
    system.add_argument("--worker-class", choices=["gthread", "sync"], default="gthread")
    system.add_argument(
        "--celery",
        choices=["split", "single"],
        default="split",
        help="split (default, as docker-compose): admission worker with beat + mail/default worker; "
        "single: one `worker -B -Q admission,mail,default` as `make run`",
    )
    system.add_argument("--mail-concurrency", type=int, default=2)
    system.add_argument(
        "--queue-nodes",
        type=int,
        default=0,
        help="web processes of their own for the waiting room's join and polls, behind nginx "
        "(needs --proxy; the bulkhead of deploy/nginx/ticketing.conf.template)",
    )
    system.add_argument("--queue-workers", type=int, default=1, help="workers per --queue-nodes node")
    system.add_argument(
        "--mail-nice",
        type=int,
        default=0,
        choices=range(20),
        metavar="0-19",
        help="run the mail worker at this niceness (split Celery only): on a box shared with the web "
        "server, ticket mails wait for idle CPU instead of taking it from buyers",
    )
    system.add_argument("--mail-wait", type=float, default=30.0, help="seconds to wait for the mail worker")
    system.add_argument(
        "--proxy",
        action=argparse.BooleanOptionalAction,
        default=proxy_default,
        help="nginx (bench/proxy.py) in front of the web nodes; clients talk to it",
    )
    system.add_argument("--proxy-workers", type=int, default=1, help="nginx worker_processes")
    system.add_argument(
        "--balancer",
        choices=["none", "nginx", "haproxy"],
        default="none",
        help="load balancer in front of the web nodes (nginx = --proxy; haproxy: bench/balancer.py)",
    )
    system.add_argument(
        "--balance", choices=["leastconn", "roundrobin"], default="leastconn", help="HAProxy's algorithm"
    )
    system.add_argument(
        "--py-spy", action="store_true", help="profile one web worker during the sale (py-spy record)"
    )
    system.add_argument(
        "--keep",
        action="store_true",
        help="keep the event published and the Redis keys (a cluster, vhost or database made for the run "
        "is removed regardless)",
    )


def system_config(args: argparse.Namespace) -> SystemConfig:
    return SystemConfig(
        server=args.server,
        web_nodes=args.web_nodes,
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        worker_class=args.worker_class,
        celery=args.celery,
        mail_concurrency=args.mail_concurrency,
        mail_nice=args.mail_nice,
        queue_nodes=args.queue_nodes,
        queue_workers=args.queue_workers,
        proxy=args.proxy,
        proxy_workers=args.proxy_workers,
        balancer=getattr(args, "balancer", "none"),
        balance=getattr(args, "balance", "leastconn"),
        metrics=getattr(args, "prometheus", False),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _shape_options(parser)
    _buyer_options(parser)
    _event_options(parser)
    add_system_options(parser)
    add_multinode_options(parser)
    macro.add_options(parser)
    late_phase.add_options(parser)
    args = parser.parse_args(argv)
    apply_preset(args)
    if args.waiting_list and (args.macro or args.scaling):
        parser.error("--waiting-list follows one sale: not with --macro or --scaling")
    if args.queue_nodes and not args.proxy:
        parser.error("--queue-nodes needs --proxy: nginx sends the waiting room's requests to them")
    if args.macro:
        if args.scaling or args.reference:
            parser.error("--macro runs its own shape: not with --scaling or --reference")
        args.users = 600 if args.users == 300 else args.users
        args.run_time = "180s" if args.run_time == "60s" else args.run_time
        accounts = args.users + macro.operator_count(args.users, args.operator_share) * args.operator_accounts
        args.spawn_rate = args.spawn_rate or min(100.0, max(1.0, accounts / 5))
    if args.reference:
        args.users = 3000 if args.users == 300 else args.users
        args.max_requests = args.max_requests or 300_000
        args.run_time = "180s" if args.run_time == "60s" else args.run_time
        args.seats = 2000 if args.seats == 400 else args.seats
        args.capacity = 300 if args.capacity == 100 else args.capacity
    args.spawn_rate = args.spawn_rate or min(100.0, max(1.0, args.users / 5))
    args.buyers = args.buyers or args.users * 2
    return args


def event_shape(args: argparse.Namespace) -> EventShape:
    return EventShape(
        seats=args.seats,
        capacity=args.capacity,
        hold_seconds=args.hold_seconds,
        pass_seconds=args.pass_seconds,
        max_tickets=args.max_tickets,
    )


# --- locust -----------------------------------------------------------------------------------


def locust_argv(
    args: argparse.Namespace,
    host: str,
    csv_prefix: Path,
    cluster: LocustCluster | None = None,
    users: int | None = None,
) -> list[str]:
    """``users``: locust users when not ``--users`` (the macro scenario: every account)."""
    argv = [executable("locust"), "-f", str(ROOT / "locustfile.py"), "--headless", "--host", host,
            "-u", str(users or args.users), "-r", str(args.spawn_rate), "-t", args.run_time, "--csv", str(csv_prefix),
            "--only-summary", "--stop-timeout", "0", "--exit-code-on-error", "0"]  # fmt: skip
    if cluster is not None and cluster.workers:
        argv += cluster.master_args()  # distributed: this process is the master
    elif args.locust_processes != 1:
        argv += ["--processes", str(args.locust_processes)]
    return argv


def locust_env(
    args: argparse.Namespace, run: RunEnvironment, event_id: int, buyers_file: Path
) -> dict[str, str]:
    run_dir = run.run_dir
    return {
        **run.env,
        "LOCUST_EVENT_ID": str(event_id),
        "LOCUST_BUYERS_FILE": str(buyers_file),
        "LOCUST_BUYER_PASSWORD": (run_dir / "password").read_text().strip(),
        "LOCUST_LOGIN_SHARE": str(args.login_share),
        "LOCUST_CROWD_SHARE": str(args.crowd_share),
        "LOCUST_ABANDON_SHARE": str(args.abandon_share),
        "LOCUST_MAX_SEATS": str(args.max_seats),
        "LOCUST_POLL_FACTOR": str(args.poll_factor),
        "LOCUST_MAX_REQUESTS": str(args.max_requests),
        "LOCUST_RECORD_DIR": str(run_dir / "journeys"),
        "LOCUST_OUTCOMES_FILE": str(run_dir / "outcomes.json"),
        # Every endpoint's 10-second windows in locust_stats_history.csv (see
        # report.windowed_status_p99).
        "LOCUST_CSV_FULL_HISTORY": "true",
    }


def start_py_spy(system: System, args: argparse.Namespace) -> None:
    """py-spy on the first worker of the first web node, for the length of the run."""
    workers = child_pids(system.web_pids()[0])
    if workers:
        output = system.run.run_dir / "py-spy.txt"
        system.processes.start("py-spy", py_spy_argv(workers[0], output, parse_duration(args.run_time) + 5))


def watch_locust(
    locust: subprocess.Popen[bytes], system: System, cpu: CpuMeter, event_id: int, limit: float
) -> float:
    """Until locust exits (or overruns ``limit``): progress every 5 s; the seconds it ran."""
    started = time.monotonic()
    next_line = started + 5
    while locust.poll() is None:
        time.sleep(0.5)
        cpu.sample()  # often: locust's last reading must be close to its end
        if time.monotonic() >= next_line:
            next_line += 5
            with contextlib.suppress(Exception):
                print(progress_line(event_id, time.monotonic() - started), flush=True)
        if time.monotonic() - started > limit:
            print("locust overran its run time; stopping it")
            system.processes.stop("locust")
    system.processes.running.pop("locust", None)
    return time.monotonic() - started


# --- One run ------------------------------------------------------------------------------------


def run_sale(
    args: argparse.Namespace,
    run: RunEnvironment,
    system: System,
    event: dict[str, Any],
    service_roots: dict[str, list[int]] | None = None,
    on_locust_done: Callable[[], object] | None = None,
    phase: macro.Phase | None = None,
) -> int:
    """Locust against the running system, then the report; the exit status.
    ``service_roots``: CPU groups of the backing services (``RunServices.cpu_roots``);
    ``on_locust_done``: called while the nodes still run (Prometheus' questions);
    ``phase``: a phase of the macro scenario (its users, its staff member, its figures)."""
    from bench import invariants

    event_id = int(event["id"])
    buyers_file = run.run_dir / "buyers.csv"
    monitor = invariants.AdmissionOrderMonitor(event_id=event_id, head=max(1000, 2 * args.capacity))
    monitor.start()
    csv_prefix = run.run_dir / "locust"
    cluster = LocustCluster(workers=args.locust_workers)
    users = phase.plan.accounts if phase is not None else args.users
    argv = locust_argv(args, system.url, csv_prefix, cluster, users=users)
    print(
        f"Locust: {users} users at {args.spawn_rate:g}/s for at most {args.run_time}"
        + (f" or {args.max_requests} requests" if args.max_requests else "")
        + (f", master + {cluster.workers} workers" if cluster.workers else "")
        + " (stops earlier once every buyer is done)"
    )
    if args.py_spy:
        start_py_spy(system, args)
    cpu = CpuMeter({**system.cpu_roots(), **(service_roots or {}), "driver": [os.getpid()]})
    started_at = datetime.now(tz=UTC)
    env = locust_env(args, run, event_id, buyers_file)
    if phase is not None:
        env.update(phase.locust_env())
        phase.start(system.url, event_id, run.run_dir)  # the staff member, with defences on
    nodes_before = node_snapshot(system)
    locust = system.processes.start("locust", argv, env=env)
    cpu.add("locust", locust.pid)
    for pid in cluster.start_workers(system, env):
        cpu.add("locust", pid)
    probe = (
        _start_probe(system.url, event_id, run.run_dir / f"buyers-probe-{run.run_id}.csv")
        if phase is None
        else None
    )
    elapsed = watch_locust(locust, system, cpu, event_id, parse_duration(args.run_time) + 120)
    probe_figures = probe.stop() if probe is not None else None
    if phase is not None:
        phase.stop()
    nodes = node_rows(nodes_before, node_snapshot(system), elapsed)
    cluster.stop_workers(system)
    cpu_split = cpu.split()
    cpu_line = cpu.report(elapsed)
    if on_locust_done is not None:
        on_locust_done()
    monitor.stop()
    system.processes.stop("py-spy", sig=signal.SIGINT)  # py-spy writes its file on SIGINT
    (run.run_dir / "admission.json").write_text(json.dumps(monitor.summary(), indent=1))
    late, sale = None, None
    if getattr(args, "waiting_list", False) and phase is None:
        sale = sale_figures(event_id, started_at)  # the sale's own, before the late phase books more
        late = run_late_phase(args, run, system, event_id, buyers_file)
    system.stop_web()
    print(f"\nLocust ran {elapsed:.1f} s (exit {locust.returncode}); waiting for the ticket mails…")
    waited = invariants.wait_for_mail(event_id, timeout=args.mail_wait)
    system.stop_celery()
    context = {"elapsed": elapsed, "started_at": started_at, "cpu_line": cpu_line, "waited": waited,
               "argv": argv, "admission": monitor.summary(), "nodes": nodes, "cpu_split": cpu_split,
               "late": late, "sale": sale, "probe": probe_figures}  # fmt: skip
    return print_results(args, run, event, context, phase)


def _start_probe(url: str, event_id: int, account_file: Path) -> PollProbe | None:
    """One buyer polling outside locust (bench/probe.py), with an account of its own."""
    accounts = read_buyers(account_file) if account_file.exists() else []
    if not accounts:
        return None
    probe = PollProbe(url, event_id, token=accounts[0][1])
    probe.start()
    return probe


def run_late_phase(
    args: argparse.Namespace, run: RunEnvironment, system: System, event_id: int, buyers_file: Path
) -> dict[str, Any] | None:
    """The late phase (``bench/late_phase.py``): its plan from the sale's journeys, a second
    locust run of it against the same system, watched until done or quiet."""
    from bench import invariants

    late_dir = run.run_dir / "late"
    (late_dir / "journeys").mkdir(parents=True, exist_ok=True)
    seed = args.wl_seed if args.wl_seed is not None else random.randrange(1 << 31)
    run_seconds = parse_duration(args.wl_run_time)
    plan = late_phase.build_plan(
        journeys=invariants.load_journeys(run.run_dir / "journeys"),
        accounts=read_buyers(buyers_file),
        args=args,
        run_seconds=run_seconds,
        rng=random.Random(seed),
    )
    plan_file = late_dir / "plan.jsonl"
    plan_file.write_text("".join(json.dumps(line) + "\n" for line in plan))
    state = late_phase.list_state(event_id)
    print(f"\n=== Late phase: cancellations and the waiting list (--wl-seed {seed}) ===")
    print(f"At its start: {state['sold']} seats sold, {state['bookings']} bookings")
    print(late_phase.describe_plan(plan))
    if not plan:
        return None
    late_args = argparse.Namespace(
        **{**vars(args), "run_time": args.wl_run_time, "spawn_rate": float(min(100, len(plan))),
           "max_requests": 0, "locust_processes": 1}
    )  # fmt: skip
    argv = locust_argv(late_args, system.url, late_dir / "locust", users=len(plan))
    env = {
        **locust_env(args, run, event_id, buyers_file),
        "LOCUST_LATE_PLAN": str(plan_file),
        "LOCUST_LATE_POLL_SECONDS": str(args.wl_poll_seconds),
        "LOCUST_RECORD_DIR": str(late_dir / "journeys"),
        "LOCUST_OUTCOMES_FILE": str(late_dir / "outcomes.json"),
        "LOCUST_MAX_REQUESTS": "0",
    }
    started_at = datetime.now(tz=UTC)
    locust = system.processes.start("locust-late", argv, env=env)
    elapsed, reason = late_phase.watch(
        locust,
        event_id=event_id,
        plan=plan,
        gather_seconds=args.wl_gather_seconds,
        limit=run_seconds + 30,
        stop=lambda: system.processes.stop("locust-late"),
    )
    system.processes.running.pop("locust-late", None)
    print(f"Late phase ran {elapsed:.1f} s: {reason}")
    return {"dir": late_dir, "started_at": started_at, "seconds": round(elapsed, 1), "ended": reason,
            "seed": seed, "buyers": len(plan), "argv": argv}  # fmt: skip


def print_late_phase(late: dict[str, Any], event_id: int) -> dict[str, Any]:
    """The late phase's requests, outcomes and waiting-list figures; the figures."""
    late_dir = late["dir"]
    print(
        f"\n=== Late phase ({late['seconds']} s, {late['buyers']} buyers; {late_dir.relative_to(ROOT)}/) ==="
    )
    rows = (
        report.stats_rows(late_dir / "locust_stats.csv") if (late_dir / "locust_stats.csv").exists() else []
    )
    if rows:
        print(report.locust_table(rows))
    outcomes: dict[str, Any] = {}
    if (late_dir / "outcomes.json").exists():
        outcomes = json.loads((late_dir / "outcomes.json").read_text()).get("outcomes", {})
        print("\n".join(report.outcomes_lines(outcomes, "expected refusals and outcomes of the late phase:")))
    figures = late_phase.late_figures(
        event_id, late["started_at"], late_phase.load_records(late_dir / "journeys")
    )
    print("\n" + "\n".join(late_phase.figure_lines(figures)))
    return {"figures": figures, "stats": rows, "outcomes": outcomes}


def print_results(
    args: argparse.Namespace,
    run: RunEnvironment,
    event: dict[str, Any],
    context: dict[str, Any],
    phase: macro.Phase | None = None,
) -> int:
    from bench import invariants

    run_dir, event_id = run.run_dir, int(event["id"])
    rows = report.stats_rows(run_dir / "locust_stats.csv")
    print("\n" + report.locust_table(rows))
    proxy_latencies = report.proxy_latencies(run_dir / "nginx" / "logs" / "access.log")
    if proxy_latencies:
        print(
            "\n"
            + report.proxy_table(
                proxy_latencies, [row["Name"] for row in rows if row["Name"] != "Aggregated"]
            )
        )
    if context.get("nodes"):
        print("\nRequests per web node (HAProxy's per-server counts over the locust run):")
        print(node_table(context["nodes"]))
    outcomes: dict[str, Any] = {}
    if (run_dir / "outcomes.json").exists():
        outcomes = json.loads((run_dir / "outcomes.json").read_text())
        print(
            "\n".join(
                report.outcomes_lines(
                    outcomes.get("outcomes", {}),
                    "expected refusals and journey outcomes (counted, not failures):",
                )
            )
        )
    figures = context.get("sale") or sale_figures(event_id, context["started_at"])
    print("\n" + sale_line(figures))
    macro_figures = None
    if phase is not None:
        macro_figures = phase.figures(event_id, run_dir)
        phase.result = macro_figures
        print("\n" + "\n".join(macro.figure_lines(macro_figures)))
    targets, target_lines = report.locust_targets(rows)
    polls_at_proxy = proxy_latencies.get(report.STATUS_ENDPOINT)
    if polls_at_proxy:
        targets["status_p99_ms_at_proxy"] = round(report.percentile(polls_at_proxy, 0.99), 1)
        target_lines.append(
            f"  the same polls as nginx timed them (the server's side): p99 {targets['status_p99_ms_at_proxy']:.0f} ms"
        )
    users = phase.plan.accounts if phase is not None else args.users
    windows = report.windowed_status_p99(run_dir / "locust_stats_history.csv", users / args.spawn_rate)
    if windows is not None:
        targets["status_p99_ms_arrival"], targets["status_p99_ms_after_arrival"] = windows
        target_lines.append(
            f"  locust's worst 10-s window: p99 {windows[0]:.0f} ms while users arrived "
            f"({users} at {args.spawn_rate:g}/s), {windows[1]:.0f} ms after"
        )
    if context.get("probe") is not None:
        probe: ProbeFigures = context["probe"]
        target_lines.append("  " + probe.line())
        if probe.polls:
            targets["status_p99_ms_probe"] = round(sorted(probe.polls)[int(len(probe.polls) * 0.99)], 1)
    print("\n" + "\n".join(target_lines))
    print(f"\n{context['cpu_line']}")
    if (run_dir / "py-spy.txt").exists():
        print("\n" + "\n".join(profile_summary(run_dir / "py-spy.txt")))
    late = context.get("late")
    late_report = print_late_phase(late, event_id) if late else None
    late_dir = late["dir"] if late else None
    checks = invariants.run_checks(
        event_id=event_id, mail_dir=run_dir / "mail", mail_wait=0, outcomes_file=run_dir / "outcomes.json",
        stats_csv=run_dir / "locust_stats.csv", records=run_dir / "journeys", admission=context["admission"],
        late_outcomes_file=late_dir / "outcomes.json" if late_dir else None,
        late_stats_csv=late_dir / "locust_stats.csv" if late_dir else None,
    )  # fmt: skip
    # run_checks did not wait (mail_wait=0): the wait happened while the workers ran.
    checks = invariants.with_mail_wait(checks, context["waited"])
    invariants.print_table(checks)
    if not any(int(row["Request Count"]) for row in rows if row["Name"] == "Aggregated"):
        checks.append(
            invariants.Check(
                "locust sent requests", False, f"none; see {run_dir.relative_to(ROOT)}/locust.log"
            )
        )
    failed = invariants.broken(checks)
    report.write_json(
        run_dir / "report.json",
        {"run": run.run_id, "args": vars(args), "event": event, "locust_seconds": round(context["elapsed"], 1),
         "locust_argv": context["argv"], "stats": rows, "outcomes": outcomes, "sale": figures, "targets": targets,
         "cpu": context["cpu_line"], "cpu_split": context.get("cpu_split"), "nodes": context.get("nodes"),
         "macro": macro_figures, "invariants": [vars(c) for c in checks],
         "late": {**{k: v for k, v in late.items() if k not in ("dir", "started_at")}, **(late_report or {})}
         if late else None},
    )  # fmt: skip
    print(f"\n{'BROKEN: ' + ', '.join(c.name for c in failed) if failed else 'All invariants hold.'}")
    print(f"Files: {run_dir.relative_to(ROOT)}/ (report.json, locust_*.csv, *.log, journeys/, mail/)")
    return 1 if failed else 0


def prepare(
    args: argparse.Namespace, run: RunEnvironment, phase: macro.Phase | None = None
) -> dict[str, Any]:
    """The event and its buyers (before the system starts: its first tick finds them)."""
    event = create_event(run, event_shape(args), title=f"Rehearsal {run.run_id}")
    if phase is not None:
        phase.prepare(run, event)
    else:
        # bench/probe.py's own account first: each call writes the password file anew, and
        # the share of buyers that logs in reads the last one.
        create_buyers(run, 1, prefix=f"probe-{run.run_id}")
        create_buyers(run, args.buyers)
    accounts = phase.plan.accounts if phase is not None else args.buyers
    print(
        f"Event {event['id']}: {event['seats_total']} seats ({event['layout']}), capacity {args.capacity}, "
        f"hold {args.hold_seconds} s, pass {args.pass_seconds} s; {accounts} buyer accounts"
    )
    if phase is not None:
        print(phase.describe())
    elif getattr(args, "waiting_list", False):
        print(late_phase.configure_event(int(event["id"]), args))
    return event


def setup_django(run: RunEnvironment) -> None:
    os.environ.update(run.env)  # this process reads the same database and Redis keys
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def rehearse(
    args: argparse.Namespace, run: RunEnvironment, services: RunServices, phase: macro.Phase | None = None
) -> int:
    """One rehearsal against the system started for it; the exit status."""
    config = system_config(args)
    if phase is not None:
        config.extra_env.update(phase.system_env(config.front))
    system = System(config, run)
    prometheus = None
    event: dict[str, Any] | None = None
    try:
        event = prepare(args, run, phase)
        system.start()
        system.wait_for_admission(int(event["id"]))
        print(f"System up: {system.describe()}")
        if args.prometheus:
            from bench.prometheus_run import start_for

            prometheus = start_for(system)
        roots = services.cpu_roots(run.env)
        ask = None
        if prometheus is not None:
            roots["prometheus"] = [prometheus.pid] if prometheus.pid else []
            ask = lambda: prometheus.report(run.run_dir)  # noqa: E731 (a one-line hook)
        return run_sale(args, run, system, event, roots, on_locust_done=ask, phase=phase)
    finally:
        if prometheus is not None:
            prometheus.stop()
        system.stop()
        if event is not None and not args.keep:
            with contextlib.suppress(Exception):
                unpublish(int(event["id"]))
            with contextlib.suppress(Exception):
                cleanup_redis(run)


def run_macro(args: argparse.Namespace, run: RunEnvironment, services: RunServices) -> int:
    """The macro scenario: one rehearsal per mode (off, then on), each with an event, a
    system and accounts of its own, in ``<run>/off/`` and ``<run>/on/``; then the two
    side by side (also in ``<run>/macro.json``)."""
    modes = args.macro
    if args.macro_seed is None:  # one order of arrival for every phase: same people, same order
        args.macro_seed = random.randrange(1 << 31)
    print(f"Macro scenario: phases {', '.join(modes)}; order of arrival --macro-seed {args.macro_seed}")
    results: dict[str, dict[str, Any]] = {}
    status = 0
    for mode in modes:
        phase_dir = run.run_dir / mode
        (phase_dir / "journeys").mkdir(parents=True, exist_ok=True)
        (phase_dir / "mail").mkdir(parents=True, exist_ok=True)
        # The same key prefixes (this process read them at setup) and broker database;
        # files, mails and account names of the phase's own.
        phase_run = dataclasses.replace(
            run,
            run_id=f"{run.run_id}-{mode}",
            run_dir=phase_dir,
            env={**run.env, "EMAIL_FILE_PATH": str(phase_dir / "mail")},
        )
        print(f"\n=== Macro scenario, defences {mode.upper()} ({phase_dir.relative_to(ROOT)}/) ===")
        phase = macro.Phase.from_args(args, mode)
        status = max(status, rehearse(args, phase_run, services, phase))
        if phase.result is not None:
            results[mode] = phase.result
    if results:
        print("\n=== Macro scenario: script operators vs honest buyers ===")
        print("\n".join(macro.comparison_lines(results)))
        report.write_json(
            run.run_dir / "macro.json", {"run": run.run_id, "args": vars(args), "results": results}
        )
        print(f"Files: {run.run_dir.relative_to(ROOT)}/ (macro.json, {', '.join(m + '/' for m in modes)})")
    return status


def main() -> int:
    args = parse_args()
    run_id = new_run_id()
    run_dir = ROOT / "var" / "loadtest" / run_id
    (run_dir / "journeys").mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, raise_interrupt)
    # Before the environment: a Redis Cluster, a RabbitMQ vhost or a MariaDB database of
    # the run's own, which the environment then points at (removed again at the end).
    services = RunServices(service_options(args), run_id, run_dir)
    try:
        run = run_environment(run_id, run_dir, overrides=services.start())
        setup_django(run)
        print(f"Rehearsal {run_id}: results in {run_dir.relative_to(ROOT)}/")
        if args.scaling:
            from bench.scaling import run_scaling

            return run_scaling(args, run, services)
        if args.macro:
            return run_macro(args, run, services)
        return rehearse(args, run, services)
    except KeyboardInterrupt:
        print("\nInterrupted: stopping everything this run started…")
        return 130
    finally:
        services.stop()


if __name__ == "__main__":
    raise SystemExit(main())
