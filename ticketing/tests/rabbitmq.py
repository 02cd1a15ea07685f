"""Helpers of the RabbitMQ tests (ticketing/tests/test_broker.py): a private virtual host
on the machine's RabbitMQ, this process's Celery app pointed at it, queue depths, and
Celery worker and beat subprocesses that share the test's database and Redis.

The machine's RabbitMQ is shared with other users and CI: the tests only ever create,
use and delete a virtual host of their own (``rabbitmqctl add_vhost``), so no two runs
see each other's messages, and they never stop or reset the server.
"""

from __future__ import annotations

import os
import runpy
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery
from celery.app.defaults import DEFAULTS
from django.conf import settings

from ticketing.tests.conftest import database_url_for_subprocess

RABBITMQ_HOST = os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1")
RABBITMQ_PORT = int(os.environ.get("TEST_RABBITMQ_PORT", "5672"))
RABBITMQ_USER = "guest"
RABBITMQ_PASSWORD = "guest"  # RabbitMQ's built-in loopback-only account, not a secret
CELERY_BIN = Path(sys.executable).with_name("celery")
RABBITMQCTL_TIMEOUT_SECONDS = 60


class RabbitMQUnavailable(RuntimeError):
    """Raised (and turned into a test failure, never a skip) when RabbitMQ or rabbitmqctl
    is missing: CI has both, so their absence is a broken environment."""


def rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=2):
            return True
    except OSError:
        return False


def rabbitmqctl(*args: str) -> str:
    """Runs ``rabbitmqctl -s <args>`` (silent: no banner, no table headers)."""
    binary = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not Path(binary).exists():
        raise RabbitMQUnavailable("rabbitmqctl is not installed (Debian: apt-get install rabbitmq-server)")
    done = subprocess.run(
        [binary, "-s", *args],
        capture_output=True,
        text=True,
        timeout=RABBITMQCTL_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise RabbitMQUnavailable(
            f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout}"
        )
    return done.stdout


@contextmanager
def private_vhost() -> Iterator[str]:
    """A new virtual host for the guest user; yields its broker URL, deletes it after."""
    if not rabbitmq_reachable():
        raise RabbitMQUnavailable(
            f"RabbitMQ is not reachable on {RABBITMQ_HOST}:{RABBITMQ_PORT}. These tests need it "
            "(CI has it): start it (`rabbitmq-server -detached`), or deselect them explicitly "
            "with -m 'not rabbitmq'."
        )
    vhost = f"ticketing-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, RABBITMQ_USER, ".*", ".*", ".*")
        yield f"amqp://{RABBITMQ_USER}:{RABBITMQ_PASSWORD}@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


def vhost_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def list_queues(url: str) -> dict[str, dict[str, str]]:
    """``rabbitmqctl list_queues`` of the URL's virtual host: name -> its columns."""
    columns = ("name", "durable", "auto_delete", "messages_ready", "messages_unacknowledged")
    rows: dict[str, dict[str, str]] = {}
    for line in rabbitmqctl("list_queues", "-p", vhost_of(url), *columns).splitlines():
        values = line.split("\t")
        if len(values) == len(columns):
            rows[values[0]] = dict(zip(columns, values, strict=True))
    return rows


def list_exchanges(url: str) -> dict[str, dict[str, str]]:
    columns = ("name", "type", "durable")
    rows: dict[str, dict[str, str]] = {}
    for line in rabbitmqctl("list_exchanges", "-p", vhost_of(url), *columns).splitlines():
        values = line.split("\t")
        if len(values) == len(columns) and values[0]:
            rows[values[0]] = dict(zip(columns, values, strict=True))
    return rows


def _forget_connections(app: Celery) -> None:
    # The app keeps its connection and producer pools for the broker URL it first used;
    # forget them so that the next publish takes the pools of the URL now configured.
    # Not closed: kombu keeps one pool per URL process-wide and would hand the closed
    # one back the next time that URL is used.
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


# The Celery settings that depend on the broker URL: what ``app_publishing_to`` changes.
BROKER_DEPENDENT = (
    "broker_url",
    "broker_transport_options",
    "broker_connection_timeout",
    "broker_heartbeat",
    "task_publish_retry_policy",
)


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def celery_settings_for(broker_url: str) -> dict[str, Any]:
    """The Celery settings ticketing/settings.py gives a process whose CELERY_BROKER_URL
    is ``broker_url`` (the settings module run again in that environment), by Celery's
    lowercase names, e.g. ``broker_transport_options``. Not set means Celery's default."""
    module = Path(settings.BASE_DIR) / "ticketing" / "settings.py"
    with _environment(CELERY_BROKER_URL=broker_url, REDIS_URL=settings.REDIS_URL):
        values = runpy.run_path(str(module))
    return {
        name.removeprefix("CELERY_").lower(): value
        for name, value in values.items()
        if name.startswith("CELERY_")
    }


@contextmanager
def app_publishing_to(url: str) -> Iterator[None]:
    """Points this process's Celery app (the web side: a booking's on-commit publish) at
    ``url``, configured as ticketing/settings.py configures it for that URL, and really
    publishes (not eager); restores the app afterwards."""
    from ticketing.celery import app

    derived = celery_settings_for(url)
    conf = {key: derived.get(key, DEFAULTS[key]) for key in BROKER_DEPENDENT}
    conf["task_always_eager"] = False
    saved = {key: app.conf[key] for key in conf}
    _forget_connections(app)
    app.conf.update(conf)
    try:
        yield
    finally:
        _forget_connections(app)
        app.conf.update(saved)


def queue_depth(url: str, queue: str) -> int:
    """Messages ready in ``queue`` (not those delivered and awaiting an ack), asked with a
    passive declare: the queue must exist, nothing is created."""
    from ticketing.celery import app

    with app.connection_for_write(url) as connection:
        _name, ready, _consumers = connection.default_channel.queue_declare(queue=queue, passive=True)
    return ready


def celery_env(broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker or beat subprocess: this test's database, Redis key
    prefixes and the given broker."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ticketing.settings",
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": settings.REDIS_URL,
        "QUEUE_KEY_PREFIX": settings.QUEUE_KEY_PREFIX,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def start_celery(args: list[str], *, log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """``celery -A ticketing <args>`` in its own process group (so that we can signal
    exactly it and its pool children), output to ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(CELERY_BIN), "-A", "ticketing", *args],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def worker_args(queues: str, *, name: str, concurrency: int = 1) -> list[str]:
    return [
        "worker",
        "-Q",
        queues,
        "-n",
        f"{name}@%h",
        "--concurrency",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        # Logs who sent each task and whether RabbitMQ redelivered it.
        "--include",
        "ticketing.tests.broker_probe",
        "-l",
        "info",
    ]


class SilentListener:
    """A TCP port that accepts connections and never says a word: a broker host whose
    RabbitMQ hangs (or a wrong port on a busy machine). A client blocks in the AMQP
    handshake until its own timeout."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return
            self._accepted.append(connection)

    def close(self) -> None:
        self._sock.close()
        for connection in self._accepted:
            connection.close()
