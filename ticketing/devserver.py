"""``make run``: the embedded Redis (unless REDIS_URL is set), the database migrations and
demo data, a Celery worker with beat for the admission, mail and default queues, and
Django's development server, started together and stopped together by Ctrl-C (or
SIGTERM / SIGHUP).

    python -m ticketing.devserver --host 127.0.0.1 --port 8000

Several of these may run from one checkout (on different ports); they share its
embedded Redis. So the supervisor

- refuses before starting anything when HOST:PORT is taken;
- stops at exit only what it started: its web server and Celery worker always, the
  embedded Redis only if it started that very server and nobody else still uses it;
- starts the embedded Redis again if it dies while the site runs, and says so;
- stops everything and exits non-zero if the web server or the Celery worker dies.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from ticketing import embedded_redis

ROOT = Path(__file__).resolve().parent.parent
LOOP_SECONDS = 0.2
REDIS_CHECK_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 20.0
# Our children's connections close when they exit, but Redis notices a moment later.
CLIENTS_DRAIN_SECONDS = 1.5
EXIT_FAILED = 1

SETUP_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("migrate", ("manage.py", "migrate", "--noinput", "-v", "0")),
    ("seed_demo", ("manage.py", "seed_demo")),
)
CELERY_ARGS: tuple[str, ...] = (
    *("-m", "celery", "-A", "ticketing", "worker", "-B"),
    *("-Q", "admission,mail,default", "--concurrency", "2", "-l", "warning"),
)


def bind_error(host: str, port: int) -> OSError | None:
    """Binds HOST:PORT the way the web server will (IPv4 unless HOST is an IPv6 address,
    SO_REUSEADDR so that a port in TIME_WAIT counts as free) and lets go at once;
    returns why it could not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        return error
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            return error
    return None


def free_port_after(host: str, port: int) -> int | None:
    """A port to suggest instead of a taken one: the next free one nearby."""
    return next((p for p in range(port + 1, min(port + 100, 65536)) if bind_error(host, p) is None), None)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. The children live in process groups of
    # their own (so that we, not the terminal's Ctrl-C, decide how they stop); should
    # the supervisor itself be killed outright, the kernel still sends them SIGTERM.
    # (The signal follows the forking thread; the supervisor has only one.)
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    def signal_group(self, sig: int) -> None:
        # The whole group: Celery's pool processes and beat go with their worker.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)


@dataclass
class Supervisor:
    host: str
    port: int
    var_dir: Path
    embedded: bool
    signals: int = 0
    children: list[Child] = field(default_factory=list)
    # The pid of the embedded Redis this supervisor started (at start or after it died).
    owned_redis: int | None = None
    redis_trouble_reported: bool = False

    @property
    def stop_requested(self) -> bool:
        return self.signals > 0

    def on_signal(self, signum: int, frame: object) -> None:
        self.signals += 1

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self.on_signal)
        if not self._port_is_free():
            return EXIT_FAILED
        try:
            return self._start_and_watch()
        finally:
            self._shutdown()

    def _port_is_free(self) -> bool:
        error = bind_error(self.host, self.port)
        if error is None:
            return True
        suggestion = free_port_after(self.host, self.port) or 9000
        who = (
            "  Another `make run` (or another server) is using it. "
            if error.errno == errno.EADDRINUSE
            else "  "
        )
        print(
            f"\n  Cannot serve on {self.host}:{self.port}: {error.strerror or error}.\n"
            f"{who}Nothing was started and nothing was stopped.\n"
            f"  Stop the other server, or pick another port: make run PORT={suggestion}\n",
            file=sys.stderr,
            flush=True,
        )
        return False

    def _start_and_watch(self) -> int:
        if self.embedded:
            try:
                server = embedded_redis.ensure_server(self.var_dir)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
                print(f"Could not start the embedded Redis: {error}", file=sys.stderr, flush=True)
                return EXIT_FAILED
            if server.started:
                self.owned_redis = server.pid
                print(f"Embedded Redis: started {server.url} (pid {server.pid}).", flush=True)
            else:
                print(
                    f"Embedded Redis: {server.url} was already running (pid {server.pid}); "
                    "it stays running when this stops.",
                    flush=True,
                )
        for name, args in SETUP_STEPS:
            step = self._spawn(name, (sys.executable, *args))
            while step.process.poll() is None and not self.stop_requested:
                time.sleep(LOOP_SECONDS)
            self.children.remove(step)
            if self.stop_requested:
                self.children.append(step)  # still running: _shutdown stops it
                return 0
            if step.process.returncode != 0:
                print(
                    f"`{name}` failed (exit status {step.process.returncode}).", file=sys.stderr, flush=True
                )
                return EXIT_FAILED
        # The setup took seconds: somebody may have taken the port meanwhile.
        if not self._port_is_free():
            return EXIT_FAILED
        self._spawn("the Celery worker", (sys.executable, *CELERY_ARGS))
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self._spawn("the web server", (sys.executable, "manage.py", "runserver", "--noreload", address))
        print(
            f"\n  Ticket Rush is starting on http://{address}/  (admin: /admin/, API: /api/docs/)\n"
            "  Ctrl-C stops the web server, the Celery worker and beat"
            + (", and the embedded Redis if this started it" if self.embedded else "")
            + ".\n",
            flush=True,
        )
        return self._watch()

    def _spawn(self, name: str, argv: tuple[str, ...]) -> Child:
        child = Child(
            name,
            subprocess.Popen(
                argv,
                cwd=ROOT,
                process_group=0,
                preexec_fn=_die_with_parent,
            ),
        )
        self.children.append(child)
        return child

    def _watch(self) -> int:
        next_redis_check = time.monotonic() + REDIS_CHECK_SECONDS
        while not self.stop_requested:
            for child in self.children:
                status = child.process.poll()
                if status is not None:
                    how = (
                        f"was killed by {signal.Signals(-status).name}"
                        if status < 0
                        else f"exited ({status})"
                    )
                    print(
                        f"\n  {child.name.capitalize()} {how}: stopping the rest.\n",
                        file=sys.stderr,
                        flush=True,
                    )
                    return EXIT_FAILED
            if self.embedded and time.monotonic() >= next_redis_check:
                self._check_redis()
                next_redis_check = time.monotonic() + REDIS_CHECK_SECONDS
            time.sleep(LOOP_SECONDS)
        return 0

    def _check_redis(self) -> None:
        if embedded_redis.ping(self.var_dir):
            if self.redis_trouble_reported:
                print("\n  The embedded Redis answers again.\n", flush=True)
                self.redis_trouble_reported = False
            return
        alive = embedded_redis.server_pid(self.var_dir)
        if alive is not None:
            # Busy, frozen or starved, but alive: a second server would take its socket.
            self._report_once(f"The embedded Redis (pid {alive}) does not answer; waiting for it.")
            return
        try:
            server = embedded_redis.ensure_server(self.var_dir)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
            self._report_once(f"The embedded Redis has stopped and could not be started again: {error}")
            return
        self.redis_trouble_reported = False
        if server.started:
            self.owned_redis = server.pid
            how = f"started it again (pid {server.pid})"
        else:
            how = f"another process already started it again (pid {server.pid})"
        print(
            f"\n  The embedded Redis had stopped; {how} on {server.url}.\n"
            "  The waiting rooms, passes and seat holds it held are lost; the seat map rebuilds\n"
            "  itself from the database, and the web server and Celery reconnect on their own.\n",
            flush=True,
        )

    def _report_once(self, message: str) -> None:
        if not self.redis_trouble_reported:
            print(f"\n  {message}\n", file=sys.stderr, flush=True)
            self.redis_trouble_reported = True

    def _other_redis_clients(self) -> int:
        try:
            return embedded_redis.other_clients(self.var_dir)
        except (redis.RedisError, OSError):
            return 0  # not answering: nobody can be using it

    def _shutdown(self) -> None:
        names = [child.name for child in self.children]
        # SIGTERM to every group at once, the web server's first so it stops taking
        # requests; Celery's warm shutdown then lets running tasks finish.
        for child in reversed(self.children):
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        signals_seen = self.signals
        while any(child.process.poll() is None for child in self.children):
            # Another Ctrl-C means "now": no more waiting for Celery's warm shutdown.
            if time.monotonic() > deadline or self.signals > signals_seen:
                break
            time.sleep(LOOP_SECONDS)
        for child in self.children:
            child.signal_group(signal.SIGKILL)  # stragglers of a group whose leader is gone
            child.process.wait()
        self.children.clear()
        stopped = [*reversed(names), *self._stop_redis()]
        if stopped:
            listed = ", ".join(stopped[:-1]) + " and " + stopped[-1] if len(stopped) > 1 else stopped[0]
            print(f"Stopped {listed}.", flush=True)

    def _stop_redis(self) -> list[str]:
        if self.owned_redis is None or embedded_redis.server_pid(self.var_dir) != self.owned_redis:
            return []
        deadline = time.monotonic() + CLIENTS_DRAIN_SECONDS
        others = self._other_redis_clients()
        while others and time.monotonic() < deadline:
            time.sleep(0.1)
            others = self._other_redis_clients()
        if others:
            print(
                f"Left the embedded Redis running: {others} other connection(s) still use it "
                "(another `make run` or a test run of this checkout).",
                flush=True,
            )
            return []
        return ["the embedded Redis"] if embedded_redis.stop(self.var_dir, pid=self.owned_redis) else []


# Listening on every interface: mail links name this machine instead.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104  (compared with, never bound)


def default_site_url(host: str, port: int) -> str:
    """The address links in mails point to (SITE_URL) when the environment names none:
    this server's own, so ``make run PORT=9000`` sends links that work."""
    if host in WILDCARD_HOSTS:
        host = "localhost"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # The web server, the worker that sends mails and beat inherit it.
    os.environ.setdefault("SITE_URL", default_site_url(args.host, args.port))
    supervisor = Supervisor(
        host=args.host,
        port=args.port,
        var_dir=Path(os.environ.get("VAR_DIR", ROOT / "var")),
        embedded=not os.environ.get("REDIS_URL"),
    )
    return supervisor.run()


if __name__ == "__main__":
    raise SystemExit(main())
