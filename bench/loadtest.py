"""``make loadtest``: rehearse a ticket open end to end and check the invariants.

Starts the system the way production runs it (gunicorn with several gthread workers and
DEBUG off; a Celery worker for the ``admission`` queue with beat, and one for ``mail`` and
``default``), all with the same environment: a fresh QUEUE_KEY_PREFIX / CACHE_KEY_PREFIX,
a Celery broker database of its own, the file e-mail backend, and REDIS_URL /
DATABASE_URL as given (else the embedded defaults). Creates an event and its buyers, runs
locust headless (``locustfile.py``), then prints requests, failures, requests/s and
p50/p95/p99 per endpoint, the bookings and the sell-out time, and the invariant table
(``bench/invariants.py``). Stops everything it started, also on Ctrl-C and on errors.
Exit status 1 when an invariant is broken.

    python bench/loadtest.py                      # 300 buyers, 60 s
    python bench/loadtest.py --users 1000 --run-time 60s
    python bench/loadtest.py --reference          # 3,000 buyers, up to 300,000 requests
    make loadtest LOADTEST_ARGS="--users 1000 --run-time 90s"

Everything a run leaves is under var/loadtest/<run>/ (locust CSV and log, journey
records, mail files, server logs, report.json).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
RUN_ID = datetime.now(tz=UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]

# Targets of the reference scenario (DESIGN.md: ~3,000 requests/s; polls must stay fast).
TARGET_RPS = 3000
TARGET_STATUS_P99_MS = 100

# The worker of the ``celery`` command, started through this bootstrap so that the file
# e-mail backend gets EMAIL_FILE_PATH from the environment even where ticketing/settings.py
# does not read that variable (settings stay the single place for everything else).
CELERY_BOOTSTRAP = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")
from django.conf import settings
if os.environ.get("EMAIL_FILE_PATH") and not getattr(settings, "EMAIL_FILE_PATH", None):
    settings.EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
from celery.__main__ import main
sys.argv = ["celery", *sys.argv[1:]]
sys.exit(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


# --- Processes ----------------------------------------------------------------------------


class Processes:
    """Every child process of the run, each in its own session (Ctrl-C on the terminal
    reaches only us; we stop them in order)."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=kwargs.pop("env", self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
        self.running[name] = process
        return process

    def stop(self, name: str, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def stop_all(self) -> None:
        for name in list(self.running)[::-1]:
            self.stop(name)

    def check_alive(self, *names: str) -> None:
        for name in names:
            process = self.running.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}; see {self.log_dir / (name + '.log')}"
                )


def manage(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stderr or result.stdout}")
    return result.stdout


def wait_http(url: str, *, timeout: float, processes: Processes, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive(name)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer {url} within {timeout:.0f} s")


def child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process so far (Linux /proc), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


class CpuMeter:
    """Where the machine's CPU went during the sale: each of our process trees (sampled
    every few seconds, so a process that exits keeps its last reading), everything else on
    the machine, and idle time."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.baseline: dict[int, float] = {}
        self.latest: dict[tuple[str, int], float] = {}
        self.started = _machine_jiffies()
        self.sample(baseline=True)

    def _tree(self, pid: int) -> list[int]:
        pids, stack = [], [pid]
        while stack:
            current = stack.pop()
            pids.append(current)
            stack.extend(child_pids(current))
        return pids

    def sample(self, *, baseline: bool = False) -> None:
        for group, root in self.roots.items():
            # The driver is the parent of everything else: count only its own CPU.
            for pid in [root] if group == "driver" else self._tree(root):
                seconds = _cpu_seconds(pid)
                if seconds is None:
                    continue
                if baseline:
                    self.baseline[pid] = seconds
                self.latest[(group, pid)] = seconds

    def add(self, group: str, pid: int) -> None:
        self.roots[group] = pid

    def report(self, elapsed: float) -> str:
        self.sample()
        busy0, total0 = self.started
        busy1, total1 = _machine_jiffies()
        machine_busy = (busy1 - busy0) / CLOCK_TICKS
        machine_total = (total1 - total0) / CLOCK_TICKS
        groups: Counter[str] = Counter()
        for (group, pid), seconds in self.latest.items():
            groups[group] += seconds - self.baseline.get(pid, 0.0)
        ours = sum(groups.values())
        parts = [f"{name} {seconds:.0f}" for name, seconds in groups.most_common()]
        parts.append(f"other processes {max(0.0, machine_busy - ours):.0f}")
        parts.append(f"idle {max(0.0, machine_total - machine_busy):.0f}")
        cores = os.cpu_count() or 1
        return f"CPU during the sale, core-seconds of {cores} cores x {elapsed:.0f} s: " + ", ".join(parts)


PROJECT_PACKAGES = ("ticketing/", "events/", "queueing/", "booking/", "accounts/")


def profile_summary(path: Path, *, top: int = 10) -> list[str]:
    """Where one gunicorn worker spent its (non-idle) time, from py-spy's raw output
    (collapsed stacks: "func (path:line);func (path:line);... count", paths relative to
    sys.path): self time by package and by function, and inclusive time of the project's
    own functions."""
    by_package: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        leaf_path = frames[-1].rpartition(" (")[2].rstrip(")")
        by_package[leaf_path.split("/")[0].removesuffix(".py")] += samples
        by_leaf[frames[-1]] += samples
        for frame in set(frames):
            if frame.rpartition(" (")[2].startswith(PROJECT_PACKAGES):
                own[frame] += samples
    if not total:
        return ["py-spy recorded no samples"]
    lines = [f"py-spy: {total} samples (100/s) of one gunicorn worker's busy threads"]
    for title, counter in (
        ("self time by package", by_package),
        ("self time by function", by_leaf),
        ("project functions, inclusive", own),
    ):
        lines.append(f"  {title}:")
        lines += [f"    {n / total:6.1%}  {name}" for name, n in counter.most_common(top)]
    return lines


# --- Environment --------------------------------------------------------------------------


def redis_url() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    from ticketing.embedded_redis import ensure_running

    return ensure_running(Path(os.environ.get("VAR_DIR", ROOT / "var")))


def private_broker(url: str) -> tuple[str, int]:
    """A Celery broker URL on an empty database of the same Redis server, so that no
    other worker sharing this Redis (someone's ``make run``) takes our tasks, and ours
    take none of theirs. Returns (broker URL, database number)."""
    import redis

    # From the low end: events/tests/test_admission_task.py draws its broker from 9-15.
    for db in range(1, 16):
        if url.startswith("unix://"):
            path = url.removeprefix("unix://").split("?", 1)[0]
            client = redis.Redis(unix_socket_path=path, db=db)
            broker = f"redis+socket://{path}?virtual_host={db}"
        else:
            base = url.rsplit("/", 1)[0] if url.count("/") >= 3 else url.rstrip("/")
            client = redis.Redis.from_url(f"{base}/{db}")
            broker = f"{base}/{db}"
        try:
            if client.dbsize() == 0:
                return broker, db
        except redis.ResponseError:  # fewer databases configured
            continue
    raise RuntimeError("no empty Redis database for the Celery broker; set CELERY_BROKER_URL")


def build_env(args: argparse.Namespace, run_dir: Path) -> tuple[dict[str, str], int | None]:
    url = redis_url()
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "ticketing.settings",
            "QUEUE_KEY_PREFIX": f"lt-{RUN_ID}:",
            "CACHE_KEY_PREFIX": f"lt-{RUN_ID}",
            "REDIS_URL": url,
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(run_dir / "mail"),
            # One client address for every buyer: the per-IP log-in throttle would refuse
            # the share that logs in; it protects nothing in a rehearsal.
            "THROTTLE_LOGIN_IP": "1000000/min",
            "PYTHONUNBUFFERED": "1",
        }
    )
    broker_db = None
    if not os.environ.get("CELERY_BROKER_URL"):
        env["CELERY_BROKER_URL"], broker_db = private_broker(url)
    return env, broker_db


# --- Reading the results ------------------------------------------------------------------


def stats_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def print_stats(rows: list[dict[str, str]]) -> None:
    print(
        f"\n{'endpoint':<34}{'requests':>10}{'failures':>10}{'req/s':>9}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    )
    for row in rows:
        name = row["Name"] if row["Name"] != "Aggregated" else "all endpoints"
        if row["Name"] == "Aggregated":
            print("-" * 90)
        print(
            f"{name:<34}{int(row['Request Count']):>10}{int(row['Failure Count']):>10}"
            f"{float(row['Requests/s']):>9.0f}{row['50%']:>9}{row['95%']:>9}{row['99%']:>9}"
        )


def sale_figures(event_id: int, started_at: datetime) -> dict[str, Any]:
    from django.db.models import Count, Max, Min

    from booking.models import Booking, BookingStatus
    from events.models import Seat, SeatStatus

    seats = Seat.objects.filter(event_id=event_id)
    total = seats.count()
    sold = seats.filter(status=SeatStatus.SOLD).count()
    bookings = Booking.objects.filter(event_id=event_id, status=BookingStatus.CONFIRMED)
    agg = bookings.aggregate(n=Count("id"), first=Min("confirmed_at"), last=Max("confirmed_at"))
    figures: dict[str, Any] = {"seats": total, "sold": sold, "bookings": agg["n"]}
    if agg["first"]:
        figures["first_booking_s"] = round((agg["first"] - started_at).total_seconds(), 1)
        figures["last_booking_s"] = round((agg["last"] - started_at).total_seconds(), 1)
    figures["sold_out_s"] = figures.get("last_booking_s") if sold == total else None
    return figures


def progress_line(event_id: int, elapsed: float) -> str:
    from queueing.connection import get_redis
    from queueing.keys import EventKeys

    keys = EventKeys(event_id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.zcard(keys.waiting)
    pipe.zcard(keys.active)
    pipe.hget(keys.ctl, "admitted_total")
    pipe.hvals(keys.seatmap)
    waiting, active, admitted, seatmap = pipe.execute()
    sold = sum(1 for value in seatmap if value == "s")
    held = sum(1 for value in seatmap if value.startswith("h:"))
    return (
        f"  t={elapsed:5.0f}s  waiting {waiting:>5}  active {active:>4}  admitted {int(admitted or 0):>5}  "
        f"held {held:>4}  sold {sold:>5}/{len(seatmap)}"
    )


def cleanup_redis(prefixes: list[str], broker_db: int | None, env: dict[str, str]) -> None:
    from queueing.connection import get_redis

    client = get_redis()
    for prefix in prefixes:
        batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
    if broker_db is not None:
        import redis

        url = env["REDIS_URL"]
        if url.startswith("unix://"):
            broker = redis.Redis(unix_socket_path=url.removeprefix("unix://").split("?", 1)[0], db=broker_db)
        else:
            broker = redis.Redis.from_url(f"{url.rsplit('/', 1)[0]}/{broker_db}")
        broker.flushdb()  # chosen empty at the start: everything in it is ours


# --- Main -----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shape = parser.add_argument_group("load shape")
    shape.add_argument("--users", type=int, default=300, help="locust -u (default 300)")
    shape.add_argument("--spawn-rate", type=float, help="locust -r (default users/5 per second, at most 100)")
    shape.add_argument("--run-time", default="60s", help="locust -t upper bound (default 60s)")
    shape.add_argument("--max-requests", type=int, default=0, help="stop after this many requests (0: off)")
    shape.add_argument(
        "--reference", action="store_true", help="3,000 buyers, 300,000 requests at most, 2,000 seats"
    )
    shape.add_argument("--locust-processes", type=int, default=1, help="locust --processes (1: one process)")
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
    sale = parser.add_argument_group("event")
    sale.add_argument("--seats", type=int, default=400, help="seats on sale (rounded up to whole rows)")
    sale.add_argument("--capacity", type=int, default=100, help="buyers admitted at once (active queue)")
    # Short enough that abandoned holds and passes lapse, and come back, within a run.
    sale.add_argument("--hold-seconds", type=int, default=30)
    sale.add_argument("--pass-seconds", type=int, default=60)
    sale.add_argument("--max-tickets", type=int, default=4, help="max tickets per user")
    system = parser.add_argument_group("system")
    system.add_argument("--web-workers", type=int, default=max(2, (os.cpu_count() or 2) + 1))
    system.add_argument("--web-threads", type=int, default=4)
    system.add_argument(
        "--celery",
        choices=["split", "single"],
        default="split",
        help="split (default, as docker-compose): admission worker with beat + mail/default worker; "
        "single: one `worker -B -Q admission,mail,default` as `make run`",
    )
    system.add_argument("--mail-concurrency", type=int, default=2)
    system.add_argument("--mail-wait", type=float, default=30.0, help="seconds to wait for the mail worker")
    system.add_argument(
        "--py-spy", action="store_true", help="profile one gunicorn worker during the sale (py-spy record)"
    )
    system.add_argument("--keep", action="store_true", help="keep the event published and the Redis keys")
    args = parser.parse_args()
    if args.reference:
        args.users = 3000 if args.users == 300 else args.users
        args.max_requests = args.max_requests or 300_000
        args.run_time = "180s" if args.run_time == "60s" else args.run_time
        args.seats = 2000 if args.seats == 400 else args.seats
        args.capacity = 300 if args.capacity == 100 else args.capacity
    args.spawn_rate = args.spawn_rate or min(100.0, max(1.0, args.users / 5))
    args.buyers = args.buyers or args.users * 2
    return args


def seat_layout(seats: int) -> tuple[list[str], int, int]:
    """Sections, rows per section and seats per row for at least ``seats`` seats."""
    sections = 4 if seats >= 400 else 2 if seats >= 40 else 1
    per_row = 20 if seats >= 200 else 10 if seats >= 20 else 1
    rows = max(1, math.ceil(seats / (sections * per_row)))
    return [chr(ord("A") + n) for n in range(sections)], rows, per_row


def main() -> int:
    args = parse_args()
    run_dir = ROOT / "var" / "loadtest" / RUN_ID
    (run_dir / "mail").mkdir(parents=True, exist_ok=True)
    (run_dir / "journeys").mkdir(exist_ok=True)
    env, broker_db = build_env(args, run_dir)
    os.environ.update(env)  # this process reads the same database and Redis keys

    import django

    django.setup()
    from django.core.management import call_command

    from bench import invariants

    print(f"Rehearsal {RUN_ID}: results in {run_dir.relative_to(ROOT)}/")
    call_command("migrate", verbosity=0)
    processes = Processes(run_dir, env)
    event_id: int | None = None
    exit_code = 1

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        sections, rows, per_row = seat_layout(args.seats)
        event = json.loads(
            manage(
                [
                    "create_event",
                    "--title",
                    f"Rehearsal {RUN_ID}",
                    "--sections",
                    ",".join(sections),
                    "--rows",
                    str(rows),
                    "--seats-per-row",
                    str(per_row),
                    "--price",
                    "55000",
                    "--capacity",
                    str(args.capacity),
                    "--hold-seconds",
                    str(args.hold_seconds),
                    "--pass-seconds",
                    str(args.pass_seconds),
                    "--max-tickets-per-user",
                    str(args.max_tickets),
                    "--open-now",
                    "--json",
                ],
                env,
            )
            .strip()
            .splitlines()[-1]
        )
        event_id = int(event["id"])
        buyers_file = run_dir / "buyers.csv"
        manage(
            [
                "create_buyers",
                "--count",
                str(args.buyers),
                "--prefix",
                f"lt-{RUN_ID}",
                "--password-file",
                str(run_dir / "password"),
                "--tokens",
                str(buyers_file),
                "--token-minutes",
                "240",
            ],
            env,
        )
        print(
            f"Event {event_id}: {event['seats_total']} seats "
            f"({len(sections)} sections x {rows} rows x {per_row}), "
            f"capacity {args.capacity}, hold {args.hold_seconds} s, pass {args.pass_seconds} s; "
            f"{args.buyers} buyer accounts"
        )

        port = free_port()
        host = f"http://127.0.0.1:{port}"
        processes.start(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "ticketing.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.web_workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(args.web_threads),
                "--keep-alive",
                "5",
                "--timeout",
                "30",
                "--graceful-timeout",
                "10",
                "--backlog",
                "4096",
                "--log-level",
                "warning",
            ],
        )
        celery = [
            PYTHON,
            "-c",
            CELERY_BOOTSTRAP,
            "-A",
            "ticketing",
            "worker",
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
        ]
        if args.celery == "split":
            processes.start(
                "celery-admission",
                [*celery, "-B", "-Q", "admission", "-P", "solo", "-n", f"admission-{RUN_ID}@%h"],
            )
            processes.start(
                "celery-mail",
                [*celery, "-Q", "mail,default", "-c", str(args.mail_concurrency), "-n", f"mail-{RUN_ID}@%h"],
            )
        else:
            processes.start(
                "celery",
                [
                    *celery,
                    "-B",
                    "-Q",
                    "admission,mail,default",
                    "-c",
                    str(args.mail_concurrency),
                    "-n",
                    f"worker-{RUN_ID}@%h",
                ],
            )
        wait_http(f"{host}/healthz", timeout=60, processes=processes, name="gunicorn")
        # The admission tick has run for our event once beat and the admission worker are up.
        from queueing.connection import get_redis
        from queueing.keys import EventKeys

        deadline = time.monotonic() + 90
        while not get_redis().exists(EventKeys(event_id).admissions):
            processes.check_alive(*processes.running)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "no admission tick within 90 s: is the 'Admit waiting buyers' task enabled?"
                )
            time.sleep(0.5)
        print(
            f"System up: gunicorn {args.web_workers} gthread workers x {args.web_threads} threads on {host}, "
            f"celery ({args.celery}), broker {env['CELERY_BROKER_URL']}"
        )

        monitor = invariants.AdmissionOrderMonitor(event_id=event_id, head=max(1000, 2 * args.capacity))
        monitor.start()
        csv_prefix = run_dir / "locust"
        locust_argv = [
            str(BIN / "locust"),
            "-f",
            str(ROOT / "locustfile.py"),
            "--headless",
            "--host",
            host,
            "-u",
            str(args.users),
            "-r",
            str(args.spawn_rate),
            "-t",
            args.run_time,
            "--csv",
            str(csv_prefix),
            "--only-summary",
            "--stop-timeout",
            "0",
            "--exit-code-on-error",
            "0",
        ]
        if args.locust_processes != 1:
            locust_argv += ["--processes", str(args.locust_processes)]
        locust_env = {
            **env,
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
        }
        print(
            f"Locust: {args.users} users at {args.spawn_rate:g}/s for at most {args.run_time}"
            + (f" or {args.max_requests} requests" if args.max_requests else "")
            + " (stops earlier once every buyer is done)"
        )
        if args.py_spy:
            workers = child_pids(processes.running["gunicorn"].pid)
            if workers:
                processes.start(
                    "py-spy",
                    [
                        str(BIN / "py-spy") if (BIN / "py-spy").exists() else "py-spy",
                        "record",
                        "-p",
                        str(workers[0]),
                        "-o",
                        str(run_dir / "py-spy.txt"),
                        "--format",
                        "raw",
                        "-r",
                        "100",
                        "--nonblocking",
                        "-d",
                        str(int(parse_duration(args.run_time)) + 5),
                    ],
                )
        roots = {name: process.pid for name, process in processes.running.items() if name != "py-spy"}
        redis_pid = Path(os.environ.get("VAR_DIR", ROOT / "var")) / "redis.pid"
        if redis_pid.exists() and env["REDIS_URL"].startswith("unix://"):  # the embedded Redis
            with contextlib.suppress(ValueError):
                roots["redis"] = int(redis_pid.read_text().strip())
        roots["driver"] = os.getpid()
        started_at = datetime.now(tz=UTC)
        started = time.monotonic()
        locust = processes.start("locust", locust_argv, env=locust_env)
        cpu = CpuMeter(roots)
        cpu.add("locust", locust.pid)
        limit = parse_duration(args.run_time) + 120
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
                processes.stop("locust")
        elapsed = time.monotonic() - started
        cpu_line = cpu.report(elapsed)
        processes.running.pop("locust", None)
        monitor.stop()
        processes.stop("py-spy", sig=signal.SIGINT)  # py-spy writes its file on SIGINT
        (run_dir / "admission.json").write_text(json.dumps(monitor.summary(), indent=1))
        processes.stop("gunicorn")

        print(f"\nLocust ran {elapsed:.1f} s (exit {locust.returncode}); waiting for the ticket mails…")
        waited = invariants.wait_for_mail(event_id, timeout=args.mail_wait)
        for name in [n for n in processes.running if n.startswith("celery")]:
            processes.stop(name)

        rows_ = stats_rows(Path(f"{csv_prefix}_stats.csv"))
        print_stats(rows_)
        outcomes = {}
        if (run_dir / "outcomes.json").exists():
            outcomes = json.loads((run_dir / "outcomes.json").read_text())
            print("\nexpected refusals and journey outcomes (counted, not failures):")
            for kind, number in sorted(outcomes.get("outcomes", {}).items()):
                print(f"  {kind:<44}{number:>8}")
        figures = sale_figures(event_id, started_at)
        sold_out = (
            f"sold out {figures['sold_out_s']} s after the start"
            if figures["sold_out_s"] is not None
            else ("not sold out")
        )
        print(
            f"\nsale: {figures['bookings']} bookings, {figures['sold']} of {figures['seats']} seats sold; "
            f"{sold_out}"
            + (f" (first booking at +{figures['first_booking_s']} s)" if "first_booking_s" in figures else "")
        )

        aggregated = next((row for row in rows_ if row["Name"] == "Aggregated"), None)
        status_row = next(
            (row for row in rows_ if row["Name"].startswith("GET /api/events/[id]/queue/")), None
        )
        targets = {}
        if aggregated:
            rps = float(aggregated["Requests/s"])
            targets["requests_per_s"] = rps
            print(
                f"\ntarget ≥ {TARGET_RPS} requests/s overall: {rps:.0f} "
                f"({'met' if rps >= TARGET_RPS else 'MISSED'}; {int(aggregated['Request Count'])} requests)"
            )
        if status_row:
            p99 = float(status_row["99%"])
            targets["status_p99_ms"] = p99
            print(
                f"target status-poll p99 < {TARGET_STATUS_P99_MS} ms: {p99:.0f} ms "
                f"({'met' if p99 < TARGET_STATUS_P99_MS else 'MISSED'})"
            )

        print(f"\n{cpu_line}")
        if (run_dir / "py-spy.txt").exists():
            print()
            print("\n".join(profile_summary(run_dir / "py-spy.txt")))

        checks = invariants.run_checks(
            event_id=event_id,
            mail_dir=run_dir / "mail",
            mail_wait=0,
            outcomes_file=run_dir / "outcomes.json",
            stats_csv=Path(f"{csv_prefix}_stats.csv"),
            records=run_dir / "journeys",
            admission=monitor.summary(),
        )
        # run_checks did not wait (mail_wait=0): the wait above happened while the workers ran.
        checks = [
            invariants.Check(c.name, c.ok, c.detail + f" (waited {waited[2]:.1f} s)")
            if c.name.startswith("every confirmed booking e-mailed")
            else c
            for c in checks
        ]
        invariants.print_table(checks)
        if not aggregated or not int(aggregated["Request Count"]):
            checks.append(
                invariants.Check(
                    "locust sent requests", False, f"none; see {run_dir.relative_to(ROOT)}/locust.log"
                )
            )
        failed = invariants.broken(checks)
        (run_dir / "report.json").write_text(
            json.dumps(
                {
                    "run": RUN_ID,
                    "args": vars(args),
                    "event": event,
                    "locust_seconds": round(elapsed, 1),
                    "locust_argv": locust_argv,
                    "stats": rows_,
                    "outcomes": outcomes,
                    "sale": figures,
                    "targets": targets,
                    "cpu": cpu_line,
                    "invariants": [vars(c) for c in checks],
                },
                indent=1,
                default=str,
            )
        )
        print(f"\n{'BROKEN: ' + ', '.join(c.name for c in failed) if failed else 'All invariants hold.'}")
        print(f"Files: {run_dir.relative_to(ROOT)}/ (report.json, locust_*.csv, *.log, journeys/, mail/)")
        exit_code = 1 if failed else 0
    except KeyboardInterrupt:
        print("\nInterrupted: stopping everything this run started…")
        exit_code = 130
    finally:
        processes.stop_all()
        if event_id is not None and not args.keep:
            with contextlib.suppress(Exception):
                from events.models import Event

                # Out of the catalogue and out of everyone's admission ticks.
                stale = Event.objects.get(pk=event_id)
                stale.is_published = False
                stale.save(update_fields=["is_published"])
            with contextlib.suppress(Exception):
                cleanup_redis([env["QUEUE_KEY_PREFIX"], env["CACHE_KEY_PREFIX"]], broker_db, env)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
