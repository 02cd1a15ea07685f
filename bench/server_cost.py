"""What one waiting-room poll costs each tier of the server: the CPU per request of the
Python lane alone, of Django's full stack for the same poll, of the granian process that
serves it, and of nginx in front. It is the profile behind
the reference rush's ceiling (README, "The reference rush"): the figures are CPU time per
request (read from /proc), which a noisy machine disturbs far less than requests/s. Since
nginx answers such polls itself (deploy/nginx/queue_edge.js), it is measured three ways:
granian alone, nginx passing every poll to granian (the edge off), and nginx answering.

    python bench/server_cost.py [--seconds 8] [--connections 32] [--rounds 2]

The poll is the crowd's common case: ``GET /api/events/<id>/queue/`` with a bearer token
and the queue ticket of the last answer, from behind the serving cursor (bench/run.py's
``status`` scenario, its event and buyers). In-process figures are ``time.process_time``
over a loop of the same WSGI environ; the served figures drive granian (one worker, four
threads, as a queue node of bench/system.py) with wrk, directly and through nginx
(deploy/nginx/, one worker), each run with freshly signed tickets.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import run as bench_run  # noqa: E402  (sets the run's Redis key prefix first)
from bench.cpu import cpu_seconds, process_tree  # noqa: E402
from bench.proxy import Nginx  # noqa: E402
from bench.system import SystemConfig, free_port, granian_argv  # noqa: E402

IN_PROCESS_POLLS = 20_000


def _poll_environs(data: dict[str, Any], count: int) -> list[dict[str, Any]]:
    event_id = data["event"].pk
    tickets = bench_run.queue_tickets(data)
    return [
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": f"/api/events/{event_id}/queue/",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "HTTP_X_QUEUE_TICKET": ticket,
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
        }
        for token, ticket in list(zip(data["tokens"], tickets, strict=True))[:count]
    ]


def _in_process_us(
    app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]], environs: list
) -> float:
    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"the poll was answered {status}")

    for environ in environs:  # warm up: caches, the pulse, the settings
        b"".join(app(dict(environ), start_response))
    started = time.process_time()
    for n in range(IN_PROCESS_POLLS):
        b"".join(app(dict(environs[n % len(environs)]), start_response))
    return 1e6 * (time.process_time() - started) / IN_PROCESS_POLLS


def _tree_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    return sum(cpu_seconds(member) or 0.0 for member in process_tree(pid))


def _served(lines: list[str], *, front: str, seconds: float, connections: int) -> dict[str, float]:
    """One wrk run against granian (``front``: none, or nginx in front of it)."""
    with tempfile.TemporaryDirectory(prefix="server-cost-") as run_dir:
        port = free_port()
        argv = granian_argv(SystemConfig(web_workers=1, web_threads=4), port)
        upstream = f"127.0.0.1:{port}"
        env = {**os.environ, "DEBUG": "0", "BENCH_ENDPOINTS": "1", "LOG_LEVEL": "WARNING"}
        server = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        try:
            _wait_for(lambda: _listening(port))
            time.sleep(1.0)  # the worker imports the app after the socket opens
            proxy = None
            if front != "none":
                # The edge off: nginx without the ticket key passes every poll to granian.
                key = None if front == "edge" else ""
                proxy = Nginx(upstreams=[upstream], run_dir=Path(run_dir) / "nginx", queue_ticket_key=key)
            if proxy is not None:
                proxy.start()
            try:
                url = proxy.url if proxy is not None else f"http://127.0.0.1:{port}"
                bench_run.run_wrk(bench_run.ensure_wrk(), url, lines[:50], duration=1, connections=4)
                granian_before, nginx_before = _tree_cpu(server.pid), _tree_cpu(proxy and proxy.pid)
                client_before = os.times().children_user + os.times().children_system
                stats = bench_run.run_wrk(
                    bench_run.ensure_wrk(), url, lines, duration=seconds, connections=connections
                )
                client = os.times().children_user + os.times().children_system - client_before
                granian = _tree_cpu(server.pid) - granian_before
                nginx = _tree_cpu(proxy and proxy.pid) - nginx_before
            finally:
                if proxy is not None:
                    proxy.stop()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
    requests = max(1, stats["requests"])
    return {
        "other_than_200": stats["requests"] - stats["statuses"].get("200", 0),
        "requests_per_s": stats["requests_per_s"],
        "granian_us": 1e6 * granian / requests,
        "nginx_us": 1e6 * nginx / requests,
        "wrk_us": 1e6 * client / requests,
    }


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(ready: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError("granian did not start")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="served runs per front, interleaved")
    parser.add_argument("--buyers", type=int, default=500)
    args = parser.parse_args()

    data = bench_run.setup_data(args.buyers)
    from events.api.queue_lane import QueueLane
    from ticketing.wsgi import django_application

    environs = _poll_environs(data, 50)
    lane_us = _in_process_us(QueueLane(django_application), environs)
    django_us = _in_process_us(django_application, environs)

    rows: dict[str, list[dict[str, float]]] = {"none": [], "nginx": [], "edge": []}
    try:
        for _round in range(args.rounds):
            for front in rows:
                # Fresh tickets: nginx answers a ticket only within QUEUE_EDGE_SECONDS of
                # the app's last answer (wrk replays the same ones).
                data.pop("tickets", None)
                lines, _once = bench_run.scenario_lines("status", data, random.Random(1))
                rows[front].append(
                    _served(lines, front=front, seconds=args.seconds, connections=args.connections)
                )
    finally:
        bench_run.retire_data(data)

    print(
        f"\nCPU per waiting-room poll (ticket from behind the cursor), {args.rounds} run(s) each, medians\n"
    )
    print(f"in process: the lane {lane_us:.0f} µs; Django's full stack for the same poll {django_us:.0f} µs")
    print(
        f"\n{'served':34s} {'req/s':>7s} {'granian µs':>11s} {'nginx µs':>9s} {'wrk µs':>7s} {'server µs':>10s} {'not 200':>8s}"
    )
    names = {
        "none": "granian alone (wrk → granian)",
        "nginx": "nginx → granian (the edge off)",
        "edge": "nginx answers (queue_edge.js)",
    }
    for front, runs in rows.items():
        median = {key: sorted(run[key] for run in runs)[len(runs) // 2] for key in runs[0]}
        server = median["granian_us"] + median["nginx_us"]
        print(
            f"{names[front]:34s} {median['requests_per_s']:7.0f} {median['granian_us']:11.0f} "
            f"{median['nginx_us']:9.0f} {median['wrk_us']:7.0f} {server:10.0f} {sum(run['other_than_200'] for run in runs):8.0f}"
        )
    print(
        "\ngranian's share beyond the lane is its HTTP parsing, the WSGI environ and the hand-over"
        "\nbetween its Rust threads and the Python thread; 'server µs' is what one poll costs the box."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
