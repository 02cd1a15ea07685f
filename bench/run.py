"""``make bench``: requests/s of each hot endpoint through the real web server (gunicorn,
production settings shape) next to a bare Django JSON view on the same server, measured in
the same run with the same load tool (wrk), and the ratio. The machine is shared and noisy:
read the ratios, not the absolute figures.

    python bench/run.py [--duration 8] [--connections 32] [--only join,status] [--json]

Scenarios: bare (baseline), join, status, seats (full map), seats_304, seats_proxy (the
full map through nginx with deploy/nginx/, gzip accepted as browsers do), status_proxy (the
status poll through nginx, which answers it itself: deploy/nginx/queue_edge.js), hold (contended),
confirm (distinct seats; bookings/s), join_pow (first joins carrying a verified ALTCHA
proof-of-work answer, through Django's full stack as such joins go), checkin (door scans of distinct signed tickets by
door staff; check-ins/s). Uses DATABASE_URL / REDIS_URL like the app, with its
own Redis key prefix and its own event and buyers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUN_ID = uuid.uuid4().hex[:8]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")
os.environ["QUEUE_KEY_PREFIX"] = f"bench-{RUN_ID}:"
os.environ["CACHE_KEY_PREFIX"] = f"bench-{RUN_ID}"
# Every simulated buyer comes from 127.0.0.1: the per-address join limit would refuse them.
os.environ.setdefault("QUEUE_JOIN_LIMIT_ADDRESS", "0")

from bench.system import SystemConfig, free_port, web_argv  # noqa: E402


@dataclass
class Result:
    scenario: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    statuses: dict[str, int]
    ratio_to_bare: float | None = None
    note: str = ""


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("wrk not found: installing Debian's wrk package", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or "wrk"


def server_argv(kind: str, workers: int, port: int) -> list[str]:
    """The web server under test, production settings shape (DEBUG off): the web node of
    bench/system.py with one thread per worker (granian) or gunicorn's sync workers, as
    the benchmarks before granian measured."""
    config = SystemConfig(server=kind, web_workers=workers, web_threads=1, worker_class="sync", backlog=2048)
    return web_argv(config, port)


class Server:
    """The web server under test (``server_argv``), started and waited for."""

    def __init__(self, workers: int, kind: str = "granian") -> None:
        self.port = free_port()
        env = {**os.environ, "DEBUG": "0", "BENCH_ENDPOINTS": "1", "LOG_LEVEL": "WARNING"}
        self.process = subprocess.Popen(
            server_argv(kind, workers, self.port), cwd=ROOT, env=env, start_new_session=True
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/bench/bare/", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the web server did not start")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=20)


def run_wrk(
    wrk: str, url: str, lines: list[str], *, duration: float, connections: int, once: bool = False
) -> dict:
    threads = 2
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
        request_file = handle.name
    env = {
        **os.environ,
        "WRK_REQUESTS": request_file,
        "WRK_THREADS": str(threads),
        "ONCE": "1" if once else "0",
    }
    output = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench/wrk_rotate.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(request_file)
    stats_line = next(line for line in output.splitlines() if line.startswith("WRKSTATUS "))
    stats = json.loads(stats_line.removeprefix("WRKSTATUS "))
    stats["requests_per_s"] = stats["requests"] / stats["duration_s"] if stats["duration_s"] else 0.0
    return stats


def setup_data(buyers: int) -> dict:
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from events.services.catalogue import event_create_with_seats
    from events.services.seat_map import seat_map_rebuild

    call_command("migrate", verbosity=0)
    password = make_password(None)
    users = User.objects.bulk_create(
        [
            User(email=f"bench-{RUN_ID}-{n}@example.com", name=f"Bench {n}", password=password)
            for n in range(buyers)
        ],
        batch_size=1000,
    )
    if users[0].pk is None:  # MySQL does not return bulk ids
        users = list(User.objects.filter(email__startswith=f"bench-{RUN_ID}-").order_by("pk"))
    event = event_create_with_seats(
        title=f"Bench {RUN_ID}",
        # 5,000 seats: the seat-map figures of the issue are measured at that size.
        sections=["A", "B", "C", "D"],
        rows=25,
        seats_per_row=50,
        capacity=buyers,
        pass_seconds=3600,
        hold_seconds=600,
        max_tickets_per_user=4,
        open_now=True,
    )
    seat_map_rebuild(event.pk)
    tokens = [str(AccessToken.for_user(user)) for user in users]
    seat_ids = list(event.seats.order_by("pk").values_list("pk", flat=True))
    return {"event": event, "users": users, "tokens": tokens, "seat_ids": seat_ids}


def retire_data(data: dict) -> None:
    """Takes the run's events off the site's catalogue: they share the database with
    ``make run`` (bookings keep them from being deleted, so they are unpublished)."""
    from events.models import Event

    events = [data["event"].pk] + ([data["pow_event"].pk] if "pow_event" in data else [])
    Event.objects.filter(pk__in=events).update(is_published=False)


def admit_all(data: dict) -> None:
    """Admits as many buyers as there are seats (the stock-aware admission stops there);
    the hold and confirm scenarios use only the admitted ones."""
    from queueing.line import line_admit, line_join, pass_expires_at_ms

    event = data["event"]
    open_ms = int(event.sales_open_at.timestamp() * 1000)
    for user in data["users"]:
        line_join(event_id=event.pk, user_id=user.pk, sales_open_at_ms=open_ms)
    line_admit(event_id=event.pk, capacity=len(data["users"]), pass_seconds=3600)
    data["admitted"] = [
        (user, token)
        for user, token in zip(data["users"], data["tokens"], strict=True)
        if pass_expires_at_ms(event_id=event.pk, user_id=user.pk)
    ]


def queue_tickets(data: dict) -> list[str]:
    """Each buyer's queue ticket (joining again keeps the place and hands out a fresh one)."""
    if "tickets" not in data:
        from events.services.waiting_room import queue_join

        data["tickets"] = [
            queue_join(event_id=data["event"].pk, user_id=user.pk)[0].ticket for user in data["users"]
        ]
    return data["tickets"]


def scenario_lines(name: str, data: dict, rng: random.Random) -> tuple[list[str], bool]:
    event_id = data["event"].pk
    tokens = data["tokens"]
    if name == "bare":
        return ["GET\t/bench/bare/\t\t\t"], False
    if name == "join":
        return [f"POST\t/api/events/{event_id}/queue/\t{token}\t\t" for token in tokens], False
    if name == "status":
        # As clients poll: with the queue ticket of their last answer; nobody admitted
        # yet, so every poll is from behind the serving cursor (the crowd's common case).
        return [
            f"GET\t/api/events/{event_id}/queue/\t{token}\t\tX-Queue-Ticket: {ticket}"
            for token, ticket in zip(tokens, queue_tickets(data), strict=True)
        ], False
    if name == "status_exact":
        # Without a ticket: the exact Lua step on every poll (clients written before tickets).
        return [f"GET\t/api/events/{event_id}/queue/\t{token}\t\t" for token in tokens], False
    if name == "seats":
        return [f"GET\t/api/events/{event_id}/seats/\t\t\t"], False
    if name == "seats_304":
        from events.services.seat_map import seat_map_current

        etag = seat_map_current(event_id).etag
        return [f"GET\t/api/events/{event_id}/seats/\t\t\tIf-None-Match: {etag}"], False
    if name == "status_proxy":
        # Fresh tickets: nginx answers one only within QUEUE_EDGE_SECONDS of the app's
        # last answer, and wrk replays the same ones.
        data.pop("tickets", None)
        return scenario_lines("status", data, rng)
    if name == "seats_proxy":
        # Browsers accept gzip; the map is stored and served compressed by the proxy.
        return [f"GET\t/api/events/{event_id}/seats/\t\t\tAccept-Encoding: gzip"], False
    if name == "hold":
        # Contention: every buyer asks for one of the first 40 seats; most get 409.
        hot = data["seat_ids"][:40]
        return [
            f'POST\t/api/events/{event_id}/holds/\t{token}\t{{"seat_ids": [{rng.choice(hot)}]}}\t'
            for _, token in data["admitted"]
        ], False
    if name == "confirm":
        from queueing.holds import holds_release, seats_hold

        free = data["seat_ids"][40:]
        lines = []
        for (user, token), seat_id in zip(data["admitted"], free, strict=False):
            holds_release(event_id=event_id, user_id=user.pk)
            seats_hold(event_id=event_id, user_id=user.pk, seat_ids=[seat_id], hold_seconds=600, cap=4)
            body = json.dumps({"event_id": event_id, "seat_ids": [seat_id]})
            lines.append(f"POST\t/api/bookings/\t{token}\t{body}\t")
        return lines, True
    if name == "join_pow":
        return join_pow_lines(data), True
    if name == "checkin":
        return checkin_lines(data), True
    raise ValueError(name)


# The work asked does not change the cost of checking an answer (two HMACs), only the
# cost of making the bench's answers in advance here.
JOIN_POW_DIFFICULTY = 1000


def join_pow_lines(data: dict) -> list[str]:
    """Every buyer's first join of a second event that asks for proof-of-work, each with
    its own solved challenge (single use)."""
    import altcha

    from events.services.catalogue import event_create_with_seats
    from events.services.proof_of_work import challenge_create

    event = event_create_with_seats(
        title=f"Bench PoW {RUN_ID}",
        sections=["A"],
        rows=1,
        seats_per_row=10,
        capacity=1,
        open_now=True,
        pow_difficulty=JOIN_POW_DIFFICULTY,
    )
    data["pow_event"] = event
    lines = []
    for user, token in zip(data["users"], data["tokens"], strict=True):
        challenge = altcha.Challenge.from_dict(
            challenge_create(event_id=event.pk, user_id=user.pk, difficulty=JOIN_POW_DIFFICULTY)
        )
        payload = altcha.Payload(challenge, altcha.solve_challenge(challenge)).to_base64()
        lines.append(f"POST\t/api/events/{event.pk}/queue/\t{token}\t{json.dumps({'altcha': payload})}\t")
    return lines


CHECKIN_TICKETS = 2500


def checkin_lines(data: dict) -> list[str]:
    """One scan per ticket of the last 2,500 seats (sold to one bench buyer directly in the
    database: setup, not what is measured), by 50 gates of one door-staff account."""
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from booking.checkins import door_staff_group
    from booking.models import Booking, Ticket
    from booking.services import code_generate
    from booking.ticket_signing import qr_payload
    from events.models import Seat, SeatStatus

    event = data["event"]
    seat_ids = data["seat_ids"][-CHECKIN_TICKETS:]
    Seat.objects.filter(pk__in=seat_ids).update(status=SeatStatus.SOLD)
    booking = Booking.objects.create(
        code=code_generate(8), user=data["users"][0], event=event, total=0, confirmed_at=event.sales_open_at
    )
    Ticket.objects.bulk_create(
        [Ticket(booking=booking, seat_id=seat_id, price=0, code=code_generate(12)) for seat_id in seat_ids],
        batch_size=1000,
    )
    door = User.objects.create_user(email=f"bench-{RUN_ID}-door@example.com", name="Bench door")
    door.groups.add(door_staff_group())
    token = str(AccessToken.for_user(door))
    codes = Ticket.objects.filter(booking=booking).values_list("code", flat=True)
    return [
        f"POST\t/api/checkins/\t{token}\t"
        + json.dumps({"code": qr_payload(event_id=event.pk, ticket_code=code), "gate": f"Gate {n % 50}"})
        + "\t"
        for n, code in enumerate(codes)
    ]


def join_pow_rate(event: object) -> tuple[float, str]:
    """Joins/s between the first and the last join (the Redis clock of the line's
    sign-of-life record): the run ends when every prepared answer is spent."""
    from queueing.connection import get_redis
    from queueing.keys import EventKeys

    seen = get_redis().zrange(EventKeys(event.pk).seen, 0, -1, withscores=True)
    if len(seen) < 2:
        return 0.0, f"{len(seen)} joins"
    seconds = (max(score for _, score in seen) - min(score for _, score in seen)) / 1000
    return len(seen) / seconds, f"{len(seen)} joins in {seconds:.2f} s"


def checkin_rate(event: object) -> tuple[float, str]:
    """Check-ins/s between the first and the last recorded entry (as for confirms)."""
    from django.db.models import Count, Max, Min

    from booking.models import CheckInLog

    span = CheckInLog.objects.filter(event=event, outcome="entered").aggregate(
        first=Min("recorded_at"), last=Max("recorded_at"), count=Count("pk")
    )
    seconds = (span["last"] - span["first"]).total_seconds() if span["count"] > 1 else 0.0
    return (span["count"] / seconds if seconds else 0.0), f"{span['count']} check-ins in {seconds:.2f} s"


SCENARIOS = [
    "bare",
    "join",
    "status",
    "status_exact",
    "seats",
    "seats_304",
    "seats_proxy",
    "status_proxy",
    "hold",
    "confirm",
    "join_pow",
    "checkin",
]
# Issue 10's targets: (absolute req/s or None, ratio to the bare view in the same run).
TARGETS = {
    "join": (None, 0.60),
    "status": (None, 0.80),
    "seats_304": (None, 0.70),
    "seats_proxy": (5000, 0.0),
}


def run_wrk_via_proxy(
    wrk: str, server: Server, lines: list[str], *, duration: float, connections: int, proxy_workers: int
) -> tuple[dict, str]:
    """The wrk run against nginx (bench/proxy.py, deploy/nginx/) in front of the gunicorn
    under test, with a fresh cache; the note says how nginx answered (its access log)."""
    from collections import Counter

    from bench.proxy import Nginx

    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as run_dir:
        proxy = Nginx(
            upstreams=[server.url.removeprefix("http://")],
            run_dir=Path(run_dir),
            worker_processes=proxy_workers,
        )
        with proxy:
            stats = run_wrk(wrk, proxy.url, lines, duration=duration, connections=connections)
        # nginx has stopped, so its buffered access log is complete.
        log = (proxy.log_dir / "access.log").read_text()
    cache = Counter(
        field.removeprefix("cache=") or "none" for field in log.split() if field.startswith("cache=")
    )
    total = sum(cache.values()) or 1
    shares = ", ".join(f"{status} {count / total:.2%}" for status, count in cache.most_common(3))
    at_edge = log.count(" edge=1")
    if at_edge:
        shares = f"answered by nginx itself {at_edge / total:.2%}"
    return stats, f"nginx {proxy_workers} worker(s): {shares}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument(
        "--server",
        choices=["granian", "gunicorn"],
        default="granian",
        help="the WSGI server: granian (the default web server) or gunicorn sync workers",
    )
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--proxy-workers", type=int, default=1, help="nginx workers of seats_proxy")
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    wanted = [name for name in args.only.split(",") if name]
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    wrk = ensure_wrk()
    rng = random.Random(7)
    data = setup_data(args.buyers)
    server = Server(args.workers, args.server)
    results: list[Result] = []
    try:
        # Warm every worker (settings caches, script SHAs, DB connections).
        warm, _ = scenario_lines("status_exact", data, rng)
        run_wrk(wrk, server.url, warm[:200], duration=2, connections=args.connections)
        for name in ["bare", *[n for n in SCENARIOS if n in wanted and n != "bare"]]:
            if name in ("hold", "confirm") and "admitted" not in data:
                admit_all(data)
            lines, once = scenario_lines(name, data, rng)
            note = ""
            if name in ("seats_proxy", "status_proxy"):
                stats, note = run_wrk_via_proxy(
                    wrk,
                    server,
                    lines,
                    duration=args.duration,
                    connections=args.connections,
                    proxy_workers=args.proxy_workers,
                )
            else:
                stats = run_wrk(
                    wrk, server.url, lines, duration=args.duration, connections=args.connections, once=once
                )
            if name == "confirm":
                from django.db.models import Max, Min

                from booking.models import Booking

                span = Booking.objects.filter(event=data["event"]).aggregate(
                    first=Min("confirmed_at"), last=Max("confirmed_at")
                )
                confirmed = Booking.objects.filter(event=data["event"]).count()
                seconds = (span["last"] - span["first"]).total_seconds() if confirmed > 1 else 0.0
                # Rate between the first and the last commit: the run ends when every
                # prepared buyer has confirmed, so the wrk duration would include idle time.
                stats["requests_per_s"] = confirmed / seconds if seconds else 0.0
                note = f"{confirmed} bookings in {seconds:.2f} s"
            if name == "checkin":
                stats["requests_per_s"], note = checkin_rate(data["event"])
            if name == "join_pow":
                stats["requests_per_s"], note = join_pow_rate(data["pow_event"])
            results.append(
                Result(
                    scenario=name,
                    requests_per_s=round(stats["requests_per_s"], 1),
                    p50_ms=round(stats["p50_ms"], 2),
                    p99_ms=round(stats["p99_ms"], 2),
                    requests=stats["requests"],
                    statuses=stats["statuses"],
                    note=note,
                )
            )
    finally:
        server.stop()
        retire_data(data)

    bare = next(r for r in results if r.scenario == "bare").requests_per_s
    for result in results:
        result.ratio_to_bare = round(result.requests_per_s / bare, 3) if bare else None
    if args.json:
        print(
            json.dumps(
                {
                    "run": RUN_ID,
                    "server": args.server,
                    "workers": args.workers,
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
        )
        return 0
    print(
        f"\nmake bench — {args.server} {args.workers} workers (one thread each), wrk 2 threads x {args.connections} connections, "
        f"{args.duration:g} s per scenario, same machine\n"
    )
    print(f"{'scenario':<13}{'req/s':>10}{'vs bare':>9}{'p50 ms':>9}{'p99 ms':>9}  statuses / note")
    for r in results:
        statuses = " ".join(f"{code}:{count}" for code, count in sorted(r.statuses.items()))
        target = ""
        if r.scenario in TARGETS:
            absolute, ratio = TARGETS[r.scenario]
            ok = r.requests_per_s >= (absolute or 0) and (r.ratio_to_bare or 0) >= ratio
            wanted = " and ".join(
                part
                for part in (f"≥{absolute}/s" if absolute else "", f"≥{ratio:.0%} of bare" if ratio else "")
                if part
            )
            target = f"  target {wanted}: {'met' if ok else 'MISSED'}"
        unit = {"confirm": "bookings/s", "checkin": "check-ins/s"}.get(r.scenario, "")
        print(
            f"{r.scenario:<13}{r.requests_per_s:>10.0f}{(r.ratio_to_bare or 0):>9.0%}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"  {statuses} {r.note}{unit and ' (' + unit + ')'}{target}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
