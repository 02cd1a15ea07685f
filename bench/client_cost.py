"""What one request costs the load generator: client CPU per request of the crowd
driver's HTTP clients, against a static answer from nginx (so the server costs next to
nothing and the figure is the client's), with and without uvloop.

    python bench/client_cost.py [--seconds 5] [--concurrency 64]
    python bench/client_cost.py --locust-users 5000     # can locust hold a crowd?
    python bench/client_cost.py --crowd 50000           # the crowd driver's own cost

Clients: ``minimal`` (bench/httpclient.py: asyncio.Protocol, keep-alive pool) and
``aiohttp`` (ClientSession, keep-alive connector of the same size). Each runs
``--concurrency`` coroutines sending back-to-back status polls (a 300-byte JSON answer,
parsed) for ``--seconds``; the figure is this process's CPU time divided by the requests.

``--crowd N`` runs bench/crowd.py's buyers (``journeys.crowd_journey``: join, then poll
as told with jitter and tickets, every answer tallied) against the same static answer
(``poll_after_ms`` = ``--poll-ms``), N buyers arriving over 30 s, for ``--seconds``:
the driver's whole CPU per request at that crowd size, and its memory.

``--locust-users N`` asks the question behind bench/crowd.py: locust (FastHttpUser, one
greenlet and one connection per user) with N users polling the same answer every
20-30 s, spawned at 500/s: its CPU per request and its memory per user, read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.httpclient import Pool  # noqa: E402
from bench.system import free_port  # noqa: E402

ANSWER = json.dumps(
    {
        "state": "waiting",
        "position": 41234,
        "ahead": 41233,
        "eta_seconds": 812,
        "pass_expires_at": None,
        "poll_after_ms": 25000,
        "sales_open_at": "2026-11-29T23:00:00.000+09:00",
        "estimated": True,
        "queue_ticket": "eyJhbGciOiJIUzI1NiJ9." + "x" * 40 + "." + "y" * 43,
    }
)
NGINX_CONF = """worker_processes 1; daemon off; pid {run}/nginx.pid; error_log {run}/error.log warn;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 75s;
  client_body_temp_path {run}/t1; proxy_temp_path {run}/t2; fastcgi_temp_path {run}/t3;
  uwsgi_temp_path {run}/t4; scgi_temp_path {run}/t5;
  server {{ listen 127.0.0.1:{port}; location / {{ default_type application/json; return 200 '{answer}'; }} }} }}
"""
HEADERS = {"Authorization": "Bearer " + "t" * 200, "X-Queue-Ticket": "q" * 120}


def start_nginx(run: Path, port: int, poll_ms: int) -> subprocess.Popen[bytes]:
    answer = ANSWER.replace('"poll_after_ms": 25000', f'"poll_after_ms": {poll_ms}')
    (run / "nginx.conf").write_text(NGINX_CONF.format(run=run, port=port, answer=answer))
    process = subprocess.Popen(
        ["nginx", "-p", str(run), "-c", str(run / "nginx.conf")], start_new_session=True
    )
    time.sleep(0.5)
    return process


async def drive(send: Callable[[], Awaitable[int]], seconds: float, concurrency: int) -> tuple[int, float]:
    """(requests, CPU seconds of this process) of ``concurrency`` back-to-back loops."""
    count = 0
    deadline = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal count
        while time.monotonic() < deadline:
            await send()
            count += 1

    cpu = time.process_time()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return count, time.process_time() - cpu


async def minimal(port: int, seconds: float, concurrency: int) -> tuple[int, float]:
    pool = Pool("127.0.0.1", port, size=concurrency)
    headers = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())

    async def send() -> int:
        response = await pool.request("GET", "/api/events/1/queue/", headers=headers)
        json.loads(response.body)
        return response.status

    try:
        return await drive(send, seconds, concurrency)
    finally:
        pool.close()


async def with_aiohttp(port: int, seconds: float, concurrency: int) -> tuple[int, float]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector) as session:

        async def send() -> int:
            async with session.get("/api/events/1/queue/", headers=HEADERS) as response:
                json.loads(await response.read())
                return response.status

        return await drive(send, seconds, concurrency)


def measure(name: str, use_uvloop: bool, port: int, args: argparse.Namespace) -> None:
    client = {"minimal": minimal, "aiohttp": with_aiohttp}[name]
    if name == "aiohttp" and importlib.util.find_spec("aiohttp") is None:
        print("aiohttp  (not installed: pip install aiohttp to compare)")
        return
    if use_uvloop:
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run
    requests, cpu = runner(client(port, args.seconds, args.concurrency))
    loop = "uvloop" if use_uvloop else "asyncio"
    print(
        f"{name:<8} {loop:<8} {requests:>8} requests  {requests / args.seconds:>7.0f} req/s  "
        f"client CPU {cpu / requests * 1e6:>5.0f} µs/request",
        flush=True,
    )


LOCUSTFILE = """
from locust import FastHttpUser, between, task

class Poller(FastHttpUser):
    wait_time = between(20, 30)

    @task
    def poll(self):
        self.client.get("/api/events/1/queue/", headers={HEADERS!r}).json()
"""


def measure_locust(port: int, users: int, seconds: float) -> None:
    """Locust's CPU per request once every user is spawned (steady polling), its CPU
    while spawning, and its peak memory."""
    from bench.cpu import cpu_seconds, process_tree
    from bench.system import executable

    work = Path(tempfile.mkdtemp(prefix="client-cost-locust-"))
    (work / "locustfile.py").write_text(LOCUSTFILE.format(HEADERS=HEADERS))
    spawn_seconds = users / 500
    argv = [executable("locust"), "-f", str(work / "locustfile.py"), "--headless", "--host",
            f"http://127.0.0.1:{port}", "-u", str(users), "-r", "500", "-t", f"{int(spawn_seconds + seconds)}s",
            "--only-summary", "--csv", str(work / "locust")]  # fmt: skip
    locust = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[tuple[float, float]] = []  # (wall clock, CPU seconds of locust)
    peak_rss = 0
    while locust.poll() is None:
        time.sleep(1)
        status = Path(f"/proc/{locust.pid}/status").read_text()
        if "VmRSS:" not in status:  # exiting
            break
        peak_rss = max(peak_rss, int(status.split("VmRSS:")[1].split()[0]))
        samples.append((time.time(), sum(cpu_seconds(pid) or 0.0 for pid in process_tree(locust.pid))))
    locust.wait()
    history = [line.split(",") for line in (work / "locust_stats_history.csv").read_text().splitlines()[1:]]
    shutil.rmtree(work, ignore_errors=True)
    spawned = next(int(row[0]) for row in history if int(row[1]) >= users) + 2
    steady = [row for row in history if int(row[0]) >= spawned]
    requests = int(steady[-1][17]) - int(steady[0][17])
    cpu_from = next(cpu for when, cpu in samples if when >= spawned)
    cpu_steady = samples[-1][1] - cpu_from
    print(
        f"locust   gevent   {users} users polling every 20-30 s: spawning {spawn_seconds:.0f} s cost "
        f"{cpu_from:.1f} CPU s; then {requests} requests in {int(steady[-1][0]) - int(steady[0][0])} s, "
        f"{cpu_steady / max(requests, 1) * 1e6:.0f} µs CPU/request; peak RSS {peak_rss / 1024:.0f} MiB "
        f"= {peak_rss / users:.0f} KiB/user",
        flush=True,
    )


async def crowd(port: int, buyers: int, seconds: float) -> tuple[int, float, int]:
    """(requests, CPU seconds, peak told waiting) of ``buyers`` crowd journeys."""
    import random

    from bench.journeys import Api, Buyer, CrowdPlan, crowd_journey
    from bench.tally import Tally

    pool = Pool("127.0.0.1", port, size=200)
    api = Api(pool, Tally(), event_id=1)
    api.deadline = time.monotonic() + seconds
    rng = random.Random(1)
    token = "Authorization: Bearer " + "t" * 200 + "\r\n"
    cpu = time.process_time()
    tasks = [
        asyncio.create_task(crowd_journey(api, Buyer(f"b{n}", token), n * 30 / buyers, CrowdPlan(), rng))
        for n in range(buyers)
    ]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pool.close()
    return api.tally.requests, time.process_time() - cpu, api.peak_waiting


def measure_crowd(port: int, buyers: int, seconds: float) -> None:
    import resource

    import uvloop

    requests, cpu, peak = uvloop.run(crowd(port, buyers, seconds))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"crowd    uvloop   {buyers} buyers ({peak} waiting at once) for {seconds:.0f} s: {requests} requests, "
        f"{requests / seconds:.0f} req/s, driver CPU {cpu:.1f} s = {cpu / max(requests, 1) * 1e6:.0f} µs/request, "
        f"peak RSS {rss / 1024:.0f} MiB",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--locust-users", type=int, default=0, help="measure locust with this many users")
    parser.add_argument("--crowd", type=int, default=0, help="measure the crowd driver with this many buyers")
    parser.add_argument("--poll-ms", type=int, default=25000, help="poll_after_ms of the static answer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="client-cost-") as directory:
        port = free_port()
        nginx = start_nginx(Path(directory), port, args.poll_ms)
        try:
            if args.crowd:
                measure_crowd(port, args.crowd, args.seconds)
                return 0
            if args.locust_users:
                measure_locust(port, args.locust_users, args.seconds)
                return 0
            for name in ("minimal", "aiohttp"):
                for use_uvloop in (True, False):
                    measure(name, use_uvloop, port, args)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
