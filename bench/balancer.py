"""A real HAProxy in front of the web nodes, configured from ``deploy/haproxy/``: the load
balancer of the multi-node rehearsal (``bench/loadtest.py --balancer haproxy``) and of the
failover drills (``bench/drills``).

    with HAProxy(servers=["127.0.0.1:8001", "127.0.0.1:8002"], run_dir=Path("var/lb")) as lb:
        lb.url                 # "http://127.0.0.1:<port>"
        lb.pid                 # the HAProxy process while running (CPU accounting)
        lb.server_stats()      # {"web1": ServerStats(requests=..., ...), ...}
        lb.stats_url           # the stats page (loopback)

``HAProxy(servers=..., run_dir=..., port=None, balance="leastconn", server_maxconn=12,
maxconn=None, nbthread=1)``: ``servers`` are the nodes' ``host:port``; ``run_dir`` holds
the rendered config, the admin socket and HAProxy's output. ``start()`` renders the
template, checks it with ``haproxy -c``, runs HAProxy in the foreground (``-db``) as our
child in its own session, and returns once ``/lb-health`` answers and every node passed
its health check; ``stop()`` ends it (idempotent).

The per-server counters come from the admin socket (``show stat``): requests forwarded to
each node and their answers by class, which is how the rehearsal reports requests/s per
node. Standalone, in front of running nodes::

    .venv/bin/python bench/balancer.py --server 127.0.0.1:8001 --server 127.0.0.1:8002 --port 8080

HAProxy is Debian's ``haproxy`` package (``/usr/sbin/haproxy``); HAPROXY_BIN overrides it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import csv
import io
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "haproxy" / "haproxy.cfg.template"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
_ADDRESS = re.compile(r"[A-Za-z0-9_.\-]+:\d{1,5}")


class HAProxyError(RuntimeError):
    """HAProxy is missing, refuses its configuration, or did not come up."""


@dataclass(frozen=True)
class ServerStats:
    """One web node as HAProxy counts it (cumulative since HAProxy started)."""

    name: str
    address: str
    status: str  # UP, DOWN, MAINT, "no check" ...
    requests: int  # HTTP requests forwarded to it
    responses_2xx: int
    responses_3xx: int
    responses_4xx: int
    responses_5xx: int
    connection_errors: int  # econ: could not connect
    response_errors: int  # eresp: connection lost mid-answer
    downtime_s: int


def haproxy_binary() -> str:
    configured = os.environ.get("HAPROXY_BIN")
    for candidate in [configured] if configured else [shutil.which("haproxy"), "/usr/sbin/haproxy"]:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise HAProxyError("haproxy not found: apt-get install haproxy, or point HAPROXY_BIN at one")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_maxconn() -> int:
    """As many client connections as the file limit allows: HAProxy needs two
    descriptors per proxied connection (client + node) and refuses to start when
    ``maxconn`` would need more than it may open."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else 65536
    return max(256, min(20000, (limit - 200) // 2))


def server_lines(servers: list[str]) -> str:
    """``server webN host:port`` per node. Addresses go into the config verbatim, so
    anything that could end the line and start another directive is refused."""
    if not servers:
        raise ValueError("at least one web node is needed")
    for address in servers:
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"not a host:port address: {address!r}")
    return "\n".join(f"    server web{index} {address}" for index, address in enumerate(servers, 1))


def render(values: dict[str, str]) -> str:
    text = string.Template(TEMPLATE.read_text()).safe_substitute(values)
    missing = sorted(set(_PLACEHOLDER.findall(text)))
    if missing:
        raise HAProxyError(f"{TEMPLATE.name}: no value for {', '.join(missing)}")
    return text


def _int(row: dict[str, str], name: str) -> int:
    value = row.get(name) or "0"
    return int(value) if value.isdigit() else 0


def parse_show_stat(text: str) -> dict[str, dict[str, str]]:
    """``show stat`` CSV ("# pxname,svname,...") as {(proxy/server): row}."""
    reader = csv.DictReader(io.StringIO(text.lstrip("# ")))
    return {f"{row['pxname']}/{row['svname']}": row for row in reader if row.get("pxname")}


class HAProxy:
    """One HAProxy instance under ``run_dir`` in front of ``servers``."""

    def __init__(
        self,
        *,
        servers: list[str],
        run_dir: Path,
        port: int | None = None,
        balance: str = "leastconn",
        server_maxconn: int = 12,
        maxconn: int | None = None,
        nbthread: int = 1,
    ) -> None:
        if balance not in ("roundrobin", "leastconn"):
            raise ValueError(f"balance must be roundrobin or leastconn, not {balance!r}")
        self.servers = list(servers)
        self.run_dir = Path(run_dir).resolve()
        self.requested_port = port
        self.port = port or 0
        self.stats_port = 0
        self.balance = balance
        self.server_maxconn = server_maxconn
        self.maxconn = maxconn or default_maxconn()
        self.nbthread = nbthread
        self.process: subprocess.Popen[bytes] | None = None

    # --- where things are -----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}/"

    @property
    def config_path(self) -> Path:
        return self.run_dir / "haproxy.cfg"

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "admin.sock"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running and self.process is not None else None

    # --- configuration --------------------------------------------------------------------

    def write_config(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = render(
            {
                "LISTEN": f"127.0.0.1:{self.port}",
                "SERVERS": server_lines(self.servers),
                "BALANCE": self.balance,
                "SERVER_MAXCONN": str(self.server_maxconn),
                "MAXCONN": str(self.maxconn),
                "NBTHREAD": str(self.nbthread),
                "STATS_SOCKET": str(self.socket_path),
                "STATS_LISTEN": f"127.0.0.1:{self.stats_port}",
                "CHECK_HOST": "127.0.0.1",
            }
        )
        self.config_path.write_text(text)
        return self.config_path

    def check_config(self) -> None:
        argv = [haproxy_binary(), "-c", "-q", "-f", str(self.config_path)]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HAProxyError(f"haproxy refused {self.config_path}:\n{result.stderr or result.stdout}")

    # --- process --------------------------------------------------------------------------

    def start(self) -> HAProxy:
        if self.running:
            return self
        if not self.requested_port:
            self.port = free_port()
        self.stats_port = free_port()
        self.write_config()
        self.check_config()
        self.socket_path.unlink(missing_ok=True)
        output = (self.run_dir / "haproxy.out").open("ab")
        # -db: foreground, no daemon; its own session so Ctrl-C reaches only the driver.
        self.process = subprocess.Popen(
            [haproxy_binary(), "-db", "-f", str(self.config_path)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        output.close()
        atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Until HAProxy answers and every node passed its first health checks."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.run_dir / "haproxy.out").read_text(errors="replace")[-2000:]
                raise HAProxyError(f"haproxy exited at start-up:\n{tail}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/lb-health", timeout=2) as answer,
            ):
                if answer.status == 200 and all(s.status == "UP" for s in self.server_stats().values()):
                    return
            time.sleep(0.2)
        raise HAProxyError(f"haproxy or its nodes not up within {START_TIMEOUT_SECONDS:.0f} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # HAProxy: SIGTERM is an immediate stop
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def __enter__(self) -> HAProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # --- counters -------------------------------------------------------------------------

    def command(self, line: str, timeout: float = 2.0) -> str:
        """One command on the admin socket (``show stat``, ``disable server web/web1``)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def server_stats(self) -> dict[str, ServerStats]:
        """Per web node: requests forwarded and answers by class (cumulative)."""
        rows = parse_show_stat(self.command("show stat"))
        stats = {}
        for key, row in rows.items():
            proxy, _, name = key.partition("/")
            if proxy != "web" or name in ("FRONTEND", "BACKEND"):
                continue
            stats[name] = ServerStats(
                name=name,
                address=row.get("addr", ""),
                status=row.get("status", ""),
                # req_tot counts HTTP requests per server (stot counts sessions: with
                # keep-alive reuse, one session carries several requests).
                requests=_int(row, "req_tot") or _int(row, "stot"),
                responses_2xx=_int(row, "hrsp_2xx"),
                responses_3xx=_int(row, "hrsp_3xx"),
                responses_4xx=_int(row, "hrsp_4xx"),
                responses_5xx=_int(row, "hrsp_5xx"),
                connection_errors=_int(row, "econ"),
                response_errors=_int(row, "eresp"),
                downtime_s=_int(row, "downtime"),
            )
        return stats

    def frontend_stats(self) -> dict[str, int]:
        """Requests HAProxy took from clients, and the 503s it answered itself (no node)."""
        rows = parse_show_stat(self.command("show stat"))
        front = rows.get("ticketing/FRONTEND", {})
        back = rows.get("web/BACKEND", {})
        return {
            "requests": _int(front, "req_tot"),
            "responses_5xx": _int(front, "hrsp_5xx"),
            "backend_5xx": _int(back, "hrsp_5xx"),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description="HAProxy (deploy/haproxy/) in front of running web nodes.")
    parser.add_argument("--server", action="append", default=[], help="host:port of a node (repeatable)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--balance", choices=["roundrobin", "leastconn"], default="leastconn")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "var" / "haproxy")
    args = parser.parse_args()
    balancer = HAProxy(
        servers=args.server or ["127.0.0.1:8000"], run_dir=args.run_dir, port=args.port, balance=args.balance
    )
    with balancer:
        print(f"HAProxy on {balancer.url}, stats on {balancer.stats_url}; Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            while balancer.running:
                time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
