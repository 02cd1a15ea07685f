"""A real nginx in front of the app, configured from ``deploy/nginx/`` (the same
``ticketing.conf.template`` the nginx Docker image renders in docker-compose).

Used by ``make bench`` (scenario ``seats_proxy``), the load test and the proxy tests
(``ticketing/tests/test_proxy.py``), and by hand in front of ``make run``::

    make run                                   # the app on 127.0.0.1:8000
    .venv/bin/python bench/proxy.py --upstream 127.0.0.1:8000 --port 8080
    curl -si http://127.0.0.1:8080/api/events/ | grep -i x-cache-status

The API (other code depends on it; keep it stable)::

    with Nginx(upstreams=["127.0.0.1:8001"], run_dir=Path("var/nginx")) as proxy:
        proxy.url        # "http://127.0.0.1:<port>"
        proxy.log_dir    # access.log (with the cache status), error.log, nginx.out
        proxy.pid        # the master process while running (CPU accounting)

``Nginx(upstreams=..., run_dir=..., port=None, static_root=None, worker_processes=1,
queue_upstreams=None, queue_ticket_key=None)``: ``upstreams`` are ``host:port`` or
``unix:/path`` addresses of the app servers; ``queue_upstreams`` those that answer the
waiting room's join and polls (``upstreams`` when None); ``queue_ticket_key`` the app's
QUEUE_TICKET_KEY, with which nginx answers polls from behind the cursor itself
(``deploy/nginx/queue_edge.js``; default: ``app_queue_ticket_key()``);
``run_dir`` holds the rendered configs, the pid file, the logs, the temp files and the
micro-cache (created if missing; reuse one per instance); ``port`` is picked free when
None; ``static_root`` (Django's STATIC_ROOT) is served for /static/, else /static/ goes
to the app. ``start()`` renders both templates, checks them with ``nginx -t``, starts
nginx in the foreground as our child (its own process group) and returns when it
answers; ``stop()`` stops it (idempotent). The context manager does both.

nginx is Debian's ``nginx`` package (``/usr/sbin/nginx``; NGINX_BIN overrides the path)
with its njs module (``libnginx-mod-http-js``; NGINX_JS_MODULE overrides the path).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "deploy" / "nginx"
SITE_TEMPLATE = TEMPLATE_DIR / "ticketing.conf.template"
MAIN_TEMPLATE = TEMPLATE_DIR / "nginx.conf.template"
SYSTEM_MIME_TYPES = Path("/etc/nginx/mime.types")
EDGE_JS = TEMPLATE_DIR / "queue_edge.js"
# Debian's libnginx-mod-http-js; NGINX_JS_MODULE overrides the path.
JS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0
# A port picked free can be taken by someone else before nginx binds it: try again.
PORT_ATTEMPTS = 3
HEALTH_PATH = "/proxy-health"
# Our names in the templates; anything else with a dollar sign is nginx's own variable.
_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# Enough for the files under static/ when the system has no mime.types.
_FALLBACK_MIME_TYPES = """types {
    text/html html;
    text/css css;
    text/plain txt;
    application/javascript js;
    application/json json;
    image/svg+xml svg;
    image/png png;
    image/x-icon ico;
    font/woff2 woff2;
}
"""


class NginxError(RuntimeError):
    """nginx is missing, its configuration is refused, or it did not come up."""


def nginx_binary() -> str:
    """The nginx executable, or a clear error naming the package to install."""
    configured = os.environ.get("NGINX_BIN")
    candidates = [configured] if configured else [shutil.which("nginx"), "/usr/sbin/nginx"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise NginxError(
        "nginx not found: install Debian's nginx package (`apt-get install nginx`, or "
        "`make .venv/.nginx`), or point NGINX_BIN at an nginx binary"
    )


def js_module() -> str:
    """The njs module (queue_edge.js runs on it), or a clear error naming the package."""
    path = Path(os.environ.get("NGINX_JS_MODULE") or JS_MODULE)
    if not path.is_file():
        raise NginxError(
            f"nginx's njs module not found at {path}: install Debian's libnginx-mod-http-js "
            "(`make .venv/.nginx`), or point NGINX_JS_MODULE at ngx_http_js_module.so"
        )
    return str(path)


def app_queue_ticket_key() -> str | None:
    """The app's queue-ticket key: QUEUE_TICKET_KEY, else the Django settings' value (derived
    from SECRET_KEY) when settings are configured; None: nginx answers no poll itself."""
    if os.environ.get("QUEUE_TICKET_KEY"):
        return os.environ["QUEUE_TICKET_KEY"]
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return None
    from django.conf import settings

    return str(settings.QUEUE_TICKET_KEY) or None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render(template: Path, values: dict[str, str]) -> str:
    """``string.Template.safe_substitute`` with our names only, as the docs of the
    templates promise; refuses to leave one of our names unrendered (nginx would read
    it as an unknown variable and fail with a less helpful message)."""
    text = string.Template(template.read_text()).safe_substitute(values)
    missing = sorted(set(_PLACEHOLDER.findall(text)))
    if missing:
        raise NginxError(f"{template.name}: no value for {', '.join(missing)}")
    return text


def _upstream_servers(upstreams: list[str]) -> str:
    if not upstreams:
        raise ValueError("at least one upstream address is needed")
    for address in upstreams:
        # Addresses go into the config verbatim: refuse anything that could end the
        # directive and start another one.
        if not re.fullmatch(r"[A-Za-z0-9_.:\[\]/-]+", address):
            raise ValueError(f"not an upstream address: {address!r}")
    return " ".join(f"server {address};" for address in upstreams)


class Nginx:
    """One nginx instance under ``run_dir``, in front of ``upstreams``."""

    def __init__(
        self,
        *,
        upstreams: list[str],
        run_dir: Path,
        port: int | None = None,
        static_root: Path | None = None,
        worker_processes: int = 1,
        worker_connections: int = 8192,
        queue_upstreams: list[str] | None = None,
        queue_ticket_key: str | None = None,
    ) -> None:
        self.upstreams = list(upstreams)
        self.upstream_servers = _upstream_servers(self.upstreams)
        self.queue_upstream_servers = _upstream_servers(list(queue_upstreams or upstreams))
        self.run_dir = Path(run_dir).resolve()
        self.requested_port = port
        self.port = port or 0
        self.static_root = Path(static_root).resolve() if static_root else None
        self.worker_processes = worker_processes
        # Each proxied request holds two: the client's and the upstream one.
        self.worker_connections = worker_connections
        self.process: subprocess.Popen[bytes] | None = None
        # queue_edge.js checks queue tickets with it; without it every poll goes to the app.
        self.queue_ticket_key = queue_ticket_key if queue_ticket_key is not None else app_queue_ticket_key()

    # --- where things are -----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def cache_dir(self) -> Path:
        return self.run_dir / "cache"

    @property
    def config_path(self) -> Path:
        return self.run_dir / "nginx.conf"

    @property
    def site_config_path(self) -> Path:
        return self.run_dir / "ticketing.conf"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        """The master process (its workers are its children), None when stopped."""
        return self.process.pid if self.running and self.process is not None else None

    # --- configuration --------------------------------------------------------------------

    def _mime_types(self) -> Path:
        if SYSTEM_MIME_TYPES.is_file():
            return SYSTEM_MIME_TYPES
        path = self.run_dir / "mime.types"
        path.write_text(_FALLBACK_MIME_TYPES)
        return path

    def write_config(self) -> Path:
        """Renders both templates into ``run_dir``; returns the main config's path."""
        for directory in (self.run_dir, self.log_dir, self.run_dir / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
        # Without a static root, an alias to a directory that does not exist makes every
        # /static/ lookup miss, so the request goes on to the app (whitenoise).
        static_root = self.static_root or self.run_dir / "no-static-root"
        site = render(
            SITE_TEMPLATE,
            {
                "UPSTREAM_SERVERS": self.upstream_servers,
                "QUEUE_UPSTREAM_SERVERS": self.queue_upstream_servers,
                "LISTEN": f"127.0.0.1:{self.port}",
                "CACHE_DIR": str(self.cache_dir),
                "STATIC_ROOT": str(static_root),
                "QUEUE_EDGE_JS": str(EDGE_JS),
            },
        )
        self.site_config_path.write_text(site)
        main = render(
            MAIN_TEMPLATE,
            {
                "WORKER_USER": "user root root;" if os.geteuid() == 0 else "",
                "WORKER_PROCESSES": str(self.worker_processes),
                "WORKER_CONNECTIONS": str(self.worker_connections),
                "RUN_DIR": str(self.run_dir),
                "MIME_TYPES": str(self._mime_types()),
                "TICKETING_CONF": str(self.site_config_path),
                "JS_MODULE": js_module(),
            },
        )
        self.config_path.write_text(main)
        return self.config_path

    def _argv(self, *extra: str) -> list[str]:
        return [nginx_binary(), "-p", f"{self.run_dir}/", "-c", str(self.config_path), *extra]

    def check_config(self) -> None:
        """``nginx -t`` on the rendered configuration; raises with nginx's own words."""
        result = subprocess.run(self._argv("-t", "-q"), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise NginxError(f"nginx refused {self.config_path}:\n{result.stderr or result.stdout}")

    # --- process --------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            return
        attempts = 1 if self.requested_port else PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if not self.requested_port:
                self.port = free_port()
            self.write_config()
            self.check_config()
            try:
                self._spawn_and_wait()
                return
            except NginxError as error:
                if "Address already in use" not in str(error) or attempt == attempts:
                    raise

    def _spawn_and_wait(self) -> None:
        output = (self.log_dir / "nginx.out").open("ab")
        # Its own session: a Ctrl-C on our terminal reaches only us, and stop() can signal
        # the master and its workers as one process group.
        env = {name: value for name, value in os.environ.items() if name != "QUEUE_TICKET_KEY"}
        if self.queue_ticket_key:
            env["QUEUE_TICKET_KEY"] = self.queue_ticket_key
        self.process = subprocess.Popen(
            self._argv("-g", "daemon off;"),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        output.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise NginxError(f"nginx exited at start-up:\n{self._log_tail()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise NginxError(f"nginx did not answer {self.url}{HEALTH_PATH} in {START_TIMEOUT_SECONDS:.0f} s")

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", HEALTH_PATH)
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def _log_tail(self, lines: int = 20) -> str:
        text = ""
        for name in ("nginx.out", "error.log"):
            path = self.log_dir / name
            if path.exists():
                text += "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        return text

    def stop(self) -> None:
        """Fast shutdown (SIGTERM to the master and its workers); SIGKILL if it hangs."""
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description="nginx with deploy/nginx/ in front of a running app (e.g. `make run`); Ctrl-C stops it."
    )
    parser.add_argument("--upstream", action="append", default=[], help="host:port of the app (repeatable)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "var" / "nginx")
    parser.add_argument("--static-root", type=Path, default=None, help="serve /static/ from here")
    parser.add_argument("--workers", type=int, default=1, help="nginx worker processes")
    args = parser.parse_args()
    # The app's settings give the queue tickets' key (derived from SECRET_KEY unless set),
    # so that nginx answers polls from behind the cursor as in production.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")
    proxy = Nginx(
        upstreams=args.upstream or ["127.0.0.1:8000"],
        run_dir=args.run_dir,
        port=args.port,
        static_root=args.static_root,
        worker_processes=args.workers,
    )
    with proxy:
        print(f"nginx on {proxy.url} -> {', '.join(proxy.upstreams)}; logs in {proxy.log_dir}; Ctrl-C stops")
        try:
            while proxy.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
