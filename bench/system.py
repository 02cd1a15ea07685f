"""The system under test, started the way production runs it and stopped again.

``System`` starts N web nodes (separate web server instances, granian or gunicorn, each on its own port, as
separate hosts would be), the Celery admission worker with beat and the mail worker, and
optionally a load balancer in front: nginx (``bench/proxy.py``) or HAProxy
(``bench/balancer.py``); it waits until every node answers and the first admission tick
has run, and stops everything it started, in reverse order, also on Ctrl-C.
``run_environment`` builds the one environment they all share: a fresh key prefix, a
Celery broker database of its own (unless the backing services of ``bench/services.py``
gave a broker: RabbitMQ), the file e-mail backend, and whatever those services point at
(a Redis Cluster, a MariaDB database of the run's own).

Every child runs in its own session, so Ctrl-C on the terminal reaches only the driver,
which then stops them in order (a web node first, so no request lands on a dead worker).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
VAR_DIR = Path(os.environ.get("VAR_DIR", ROOT / "var"))


def new_run_id() -> str:
    """Sortable and unique: names the run directory, key prefixes and worker names."""
    return datetime.now(tz=UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def executable(name: str) -> str:
    """A tool from the virtualenv when it has one, else from PATH."""
    return str(BIN / name) if (BIN / name).exists() else name


# --- Child processes ----------------------------------------------------------------------


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
        for name in names or tuple(self.running):
            process = self.running.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}; see {self.log_dir / (name + '.log')}"
                )


def manage(args: list[str], env: dict[str, str]) -> str:
    """``manage.py`` in a child process with the run's environment; its stdout."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stderr or result.stdout}")
    return result.stdout


def wait_http(url: str, *, timeout: float, check: Any = None) -> None:
    """Until ``url`` answers 200; ``check()`` runs between tries (raises when a child died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check is not None:
            check()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


# --- Environment --------------------------------------------------------------------------


def redis_url() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    from ticketing.embedded_redis import ensure_running

    return ensure_running(VAR_DIR)


def _redis_db_client(url: str, db: int) -> tuple[Any, str]:
    """A client of database ``db`` on the server of ``url``, and its Celery broker URL."""
    import redis

    if url.startswith("unix://"):
        path = url.removeprefix("unix://").split("?", 1)[0]
        return redis.Redis(unix_socket_path=path, db=db), f"redis+socket://{path}?virtual_host={db}"
    base = url.rsplit("/", 1)[0] if url.count("/") >= 3 else url.rstrip("/")
    return redis.Redis.from_url(f"{base}/{db}"), f"{base}/{db}"


def private_broker(url: str) -> tuple[str, int]:
    """A Celery broker URL on an empty database of the same Redis server, so that no
    other worker sharing this Redis (someone's ``make run``) takes our tasks, and ours
    take none of theirs. Returns (broker URL, database number)."""
    import redis

    if url.partition("://")[0].endswith("+cluster"):
        # A cluster has database 0 only, and Celery (kombu) cannot use one as its broker.
        raise RuntimeError("REDIS_URL is a Redis Cluster: set CELERY_BROKER_URL (a single Redis or RabbitMQ)")
    # From the low end: events/tests/test_admission_task.py draws its broker from 9-15.
    for db in range(1, 16):
        client, broker = _redis_db_client(url, db)
        try:
            if client.dbsize() == 0:
                return broker, db
        except redis.ResponseError:  # fewer databases configured
            continue
    raise RuntimeError("no empty Redis database for the Celery broker; set CELERY_BROKER_URL")


@dataclass
class RunEnvironment:
    env: dict[str, str]
    broker_db: int | None  # ours to empty at the end; None when CELERY_BROKER_URL was given
    run_id: str
    run_dir: Path

    @property
    def prefixes(self) -> list[str]:
        return [self.env["QUEUE_KEY_PREFIX"], self.env["CACHE_KEY_PREFIX"]]


def run_environment(
    run_id: str, run_dir: Path, *, tag: str = "lt", overrides: dict[str, str] | None = None
) -> RunEnvironment:
    """The environment every process of one run shares (and this process adopts);
    ``overrides`` (``bench/services.py``: REDIS_URL, CACHE_REDIS_URL, CELERY_BROKER_URL,
    DATABASE_URL) win over the caller's environment."""
    overrides = overrides or {}
    url = overrides.get("REDIS_URL") or redis_url()
    env = {**os.environ, **overrides}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "ticketing.settings",
            "QUEUE_KEY_PREFIX": f"{tag}-{run_id}:",
            "CACHE_KEY_PREFIX": f"{tag}-{run_id}",
            "REDIS_URL": url,
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            # ticketing/settings.py reads both: the mails land in the run directory.
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(run_dir / "mail"),
            # One client address for every buyer: the per-IP log-in throttle would refuse
            # the share that logs in; it protects nothing in a rehearsal.
            "THROTTLE_LOGIN_IP": "1000000/min",
            # Likewise the join limit per address: every simulated buyer shares 127.0.0.1.
            "QUEUE_JOIN_LIMIT_ADDRESS": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # The queue tickets' key, shared by the app processes and nginx (queue_edge.js).
    env.setdefault("QUEUE_TICKET_KEY", secrets.token_urlsafe(32))
    broker_db = None
    if not env.get("CELERY_BROKER_URL"):
        env["CELERY_BROKER_URL"], broker_db = private_broker(url)
    (run_dir / "mail").mkdir(parents=True, exist_ok=True)
    return RunEnvironment(env=env, broker_db=broker_db, run_id=run_id, run_dir=run_dir)


def _delete_prefix(client: Any, prefix: str, *, per_key: bool) -> None:
    batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if per_key:  # a Redis Cluster: one slot per command
        for key in batch:
            client.delete(key)
        return
    for start in range(0, len(batch), 500):
        client.delete(*batch[start : start + 500])


def cleanup_redis(run: RunEnvironment) -> None:
    """Deletes this run's keys (never anyone else's: only our prefixes and our broker DB)."""
    import redis

    from queueing.connection import get_redis

    queue = get_redis()
    clustered = "+cluster" in run.env["REDIS_URL"].partition("://")[0]
    _delete_prefix(queue, run.env["QUEUE_KEY_PREFIX"], per_key=clustered)
    # The cache may live on a Redis of its own (CACHE_REDIS_URL: always so with a cluster).
    cache_url = run.env.get("CACHE_REDIS_URL") or run.env["REDIS_URL"]
    if cache_url == run.env["REDIS_URL"]:
        _delete_prefix(queue, run.env["CACHE_KEY_PREFIX"], per_key=clustered)
    else:
        _delete_prefix(redis.Redis.from_url(cache_url), run.env["CACHE_KEY_PREFIX"], per_key=False)
    if run.broker_db is not None:
        broker, _ = _redis_db_client(run.env["REDIS_URL"], run.broker_db)
        broker.flushdb()  # chosen empty at the start: everything in it is ours


def unpublish(event_id: int) -> None:
    """Out of the catalogue and out of everyone's admission ticks (``save``, not
    ``update``: the post_save signal drops the cached catalogue entry)."""
    from events.models import Event

    event = Event.objects.get(pk=event_id)
    event.is_published = False
    event.save(update_fields=["is_published"])


def embedded_redis_pid(env: dict[str, str]) -> int | None:
    """The embedded Redis server's pid (for the CPU split), None for an external Redis."""
    pid_file = VAR_DIR / "redis.pid"
    if not env["REDIS_URL"].startswith("unix://") or not pid_file.exists():
        return None
    try:
        return int(pid_file.read_text().strip())
    except ValueError:
        return None


# --- The system ---------------------------------------------------------------------------


@dataclass
class SystemConfig:
    server: str = "granian"  # the WSGI server of a web node: granian | gunicorn
    web_nodes: int = 1
    web_workers: int = max(2, (os.cpu_count() or 2) + 1)
    web_threads: int = 4
    worker_class: str = "gthread"  # or "sync" (no keep-alive: one connection per request)
    keep_alive: int = 5
    backlog: int = 4096
    celery: str = "split"  # split (as docker-compose) | single (as make run)
    mail_concurrency: int = 2
    mail_nice: int = 0  # niceness of the split mail worker (0: as the rest)
    # Web processes of their own for the waiting room's join and polls, behind nginx (the
    # bulkhead of deploy/nginx/ticketing.conf.template); 0: the web nodes answer them.
    queue_nodes: int = 0
    queue_workers: int = 1
    proxy: bool = False  # nginx in front (same as balancer="nginx")
    proxy_workers: int = 1
    balancer: str = "none"  # none | nginx | haproxy
    balance: str = "leastconn"  # HAProxy's algorithm: leastconn | roundrobin
    metrics: bool = False  # METRICS_TOKEN, multiprocess metrics per node, worker metrics ports
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def front(self) -> str:
        """What stands in front of the nodes: none, nginx or haproxy."""
        return "nginx" if self.proxy and self.balancer == "none" else self.balancer

    @property
    def requests_per_node(self) -> int:
        """Requests one node serves at once: HAProxy's per-server maxconn."""
        threaded = self.server == "granian" or self.worker_class == "gthread"
        return self.web_workers * (self.web_threads if threaded else 1)


def web_argv(config: SystemConfig, port: int) -> list[str]:
    """The command of one web node on ``port``."""
    return granian_argv(config, port) if config.server == "granian" else gunicorn_argv(config, port)


def queue_node_argv(config: SystemConfig, port: int) -> list[str]:
    """A web node for the waiting room's join and polls only: the same server and app
    with ``queue_workers`` processes."""
    return web_argv(dataclasses.replace(config, web_workers=config.queue_workers), port)


def granian_argv(config: SystemConfig, port: int) -> list[str]:
    """granian (Rust HTTP server) running the same WSGI application: the HTTP parsing and
    writing that cost gunicorn's Python several times the poll's own work are done in
    Rust (a poll: 0.10 ms of CPU against 0.37 ms under gunicorn's sync worker, wrk against
    one worker of each; README, "Benchmarks"). Worker processes x blocking threads, like
    gthread; with metrics, each node's PROMETHEUS_MULTIPROC_DIR comes from the environment."""
    return [
        executable("granian"),
        "--interface",
        "wsgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(config.web_workers),
        "--blocking-threads",
        str(config.web_threads),
        "--backlog",
        str(config.backlog),
        "--http",
        "1",
        "--no-ws",
        "--respawn-failed-workers",
        "--log-level",
        "warning",
        "ticketing.wsgi:application",
    ]


def gunicorn_argv(config: SystemConfig, port: int) -> list[str]:
    argv = [executable("gunicorn"), "ticketing.wsgi:application"]
    if config.metrics:
        # prometheus_client's multiprocess mode: one scrape returns the whole node.
        argv += ["-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    argv += [
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(config.web_workers),
        "--worker-class",
        config.worker_class,
        "--keep-alive",
        str(config.keep_alive),
        "--timeout",
        "30",
        "--graceful-timeout",
        "10",
        "--backlog",
        str(config.backlog),
        "--log-level",
        "warning",
    ]
    if config.worker_class == "gthread":
        argv += ["--threads", str(config.web_threads)]
    return argv


def celery_argv(*args: str) -> list[str]:
    """The plain ``celery`` command: settings read EMAIL_FILE_PATH etc. from the environment."""
    return [executable("celery"), "-A", "ticketing", "worker", "-l", "warning", "--without-gossip",
            "--without-mingle", *args]  # fmt: skip


class System:
    """Web nodes (+ nginx or HAProxy) and Celery workers of one run; a context manager."""

    def __init__(self, config: SystemConfig, run: RunEnvironment) -> None:
        self.config = config
        self.run = run
        self.env = {**run.env, **config.extra_env}
        if config.front == "haproxy":
            # HAProxy appends the client's address to X-Forwarded-For (option forwardfor):
            # one proxy of ours, which the per-IP throttles and the login guard then trust.
            self.env.setdefault("NUM_PROXIES", "1")
        if config.metrics:
            import secrets

            self.env.setdefault("METRICS_TOKEN", secrets.token_urlsafe(32))
        self.processes = Processes(run.run_dir, self.env)
        self.web_ports: list[int] = []
        self.queue_ports: list[int] = []
        self.proxy: Any = None  # nginx or HAProxy, whichever stands in front
        # host:port of each web node and each Celery worker's metrics endpoint (--prometheus).
        self.metrics_targets: dict[str, list[str]] = {"web": [], "celery": []}

    # -- starting --

    def start(self) -> System:
        try:
            self.start_web()
            self.start_celery()
            self.wait_web()
            if self.config.front == "nginx":
                self.start_proxy()
            elif self.config.front == "haproxy":
                self.start_balancer()
        except BaseException:
            self.stop()
            raise
        return self

    def web_name(self, index: int) -> str:
        return "web" if self.config.web_nodes == 1 else f"web-{index + 1}"

    def queue_name(self, index: int) -> str:
        return "web-queue" if self.config.queue_nodes == 1 else f"web-queue-{index + 1}"

    def _metrics_env(self, name: str, port: int | None = None) -> dict[str, str]:
        """A process's own multiprocess-metrics directory (and a worker's metrics port)."""
        if not self.config.metrics:
            return self.env
        directory = self.run.run_dir / "metrics" / name
        directory.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
        if port is not None:
            env.update(CELERY_METRICS_PORT=str(port), CELERY_METRICS_ADDR="127.0.0.1")
            self.metrics_targets["celery"].append(f"127.0.0.1:{port}")
        return env

    def start_web(self) -> None:
        nodes = [(self.web_name(i), web_argv, self.web_ports) for i in range(self.config.web_nodes)]
        nodes += [
            (self.queue_name(i), queue_node_argv, self.queue_ports) for i in range(self.config.queue_nodes)
        ]
        for name, argv, ports in nodes:
            port = free_port()
            ports.append(port)
            self.metrics_targets["web"].append(f"127.0.0.1:{port}")
            self.processes.start(name, argv(self.config, port), env=self._metrics_env(name))

    def start_celery(self) -> None:
        run_id, config = self.run.run_id, self.config
        if config.celery == "split":
            workers = {
                "celery-admission": ["-B", "-Q", "admission", "-P", "solo", "-n", f"admission-{run_id}@%h"],
                "celery-mail": ["-Q", "mail,default", "-c", str(config.mail_concurrency),
                                "-n", f"mail-{run_id}@%h"],
            }  # fmt: skip
        else:
            workers = {
                "celery": ["-B", "-Q", "admission,mail,default", "-c", str(config.mail_concurrency),
                           "-n", f"worker-{run_id}@%h"],
            }  # fmt: skip
        for name, args in workers.items():
            env = self._metrics_env(name, free_port() if config.metrics else None)
            argv = celery_argv(*args)
            if name == "celery-mail" and config.mail_nice:
                argv = ["nice", "-n", str(config.mail_nice), *argv]  # exec: the same pid
            self.processes.start(name, argv, env=env)

    def wait_web(self) -> None:
        for port in self.web_ports + self.queue_ports:
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60, check=self.processes.check_alive)

    def start_proxy(self) -> None:
        from bench.proxy import Nginx  # bench/proxy.py: nginx with a config of its own

        self.proxy = Nginx(
            upstreams=[f"127.0.0.1:{port}" for port in self.web_ports],
            queue_upstreams=[f"127.0.0.1:{port}" for port in self.queue_ports] or None,
            run_dir=self.run.run_dir / "nginx",
            worker_processes=self.config.proxy_workers,
        )
        self.proxy.start()
        wait_http(f"{self.proxy.url}/healthz", timeout=30, check=self.processes.check_alive)

    def start_balancer(self) -> None:
        from bench.balancer import HAProxy  # bench/balancer.py: deploy/haproxy/ rendered

        self.proxy = HAProxy(
            servers=[f"127.0.0.1:{port}" for port in self.web_ports],
            run_dir=self.run.run_dir / "haproxy",
            balance=self.config.balance,
            server_maxconn=self.config.requests_per_node,
        )
        self.proxy.start()

    def wait_for_admission(self, event_id: int, timeout: float = 90.0) -> None:
        """The admission tick has run for our event once beat and the worker are up."""
        from queueing.connection import get_redis
        from queueing.keys import EventKeys

        deadline = time.monotonic() + timeout
        while not get_redis().exists(EventKeys(event_id).admissions):
            self.processes.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no admission tick within {timeout:.0f} s: is the 'Admit waiting buyers' task enabled?"
                )
            time.sleep(0.5)

    # -- looking at it --

    @property
    def url(self) -> str:
        """Where clients go: nginx when there is one, else the first web node."""
        return (
            self.proxy.url.rstrip("/") if self.proxy is not None else f"http://127.0.0.1:{self.web_ports[0]}"
        )

    def web_pids(self) -> list[int]:
        return [self.processes.running[self.web_name(i)].pid for i in range(len(self.web_ports))]

    def cpu_roots(self) -> dict[str, list[int]]:
        """Process trees per group for ``bench.cpu.CpuMeter``: one group per web node
        when there are several (the scaling report shows each)."""
        roots: dict[str, list[int]] = {}
        for index, pid in enumerate(self.web_pids()):
            roots[self.web_name(index)] = [pid]
        for index in range(len(self.queue_ports)):
            name = self.queue_name(index)
            roots[name] = [self.processes.running[name].pid]
        for name, process in self.processes.running.items():
            if name.startswith("celery"):
                roots[name] = [process.pid]
        redis_pid = embedded_redis_pid(self.env)
        if redis_pid:
            roots["redis"] = [redis_pid]
        proxy_pid = self.proxy_pid()
        if proxy_pid:
            roots[self.config.front] = [proxy_pid]
        return roots

    def proxy_pid(self) -> int | None:
        if self.proxy is None:
            return None
        for name in ("pid", "master_pid"):
            value = getattr(self.proxy, name, None)
            if isinstance(value, int):
                return value
        process = getattr(self.proxy, "process", None)
        return getattr(process, "pid", None)

    def describe(self) -> str:
        config = self.config
        workers = f"{config.web_workers} {config.worker_class} workers" + (
            f" x {config.web_threads} threads" if config.worker_class == "gthread" else ""
        )
        nodes = f"{config.web_nodes} {config.server} nodes" if config.web_nodes > 1 else config.server
        if config.queue_nodes:
            nodes = (
                f"{nodes} + {config.queue_nodes} for the waiting room ({config.queue_workers} worker each)"
            )
        if self.proxy is None:
            front = f" on {self.url}"
        elif config.front == "haproxy":
            front = f" behind HAProxy ({config.balance}, stats {self.proxy.stats_url}) on {self.url}"
        else:
            front = f" behind nginx ({config.proxy_workers} worker) on {self.url}"
        from queueing.redis_urls import redact

        return (
            f"{nodes} ({workers}){front}, celery ({config.celery}), broker {redact(self.env['CELERY_BROKER_URL'])}, "
            f"Redis {redact(self.env['REDIS_URL'])}, database {redact(self.env.get('DATABASE_URL', 'sqlite (var/)'))}"
        )

    # -- stopping --

    def stop_web(self) -> None:
        if self.proxy is not None:
            with contextlib.suppress(Exception):
                self.proxy.stop()
            self.proxy = None
        for index in range(len(self.web_ports)):
            self.processes.stop(self.web_name(index))

    def stop_celery(self) -> None:
        for name in [n for n in self.processes.running if n.startswith("celery")]:
            self.processes.stop(name)

    def stop(self) -> None:
        self.stop_web()
        self.processes.stop_all()

    def __enter__(self) -> System:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
