"""What a Celery broker connection needs beyond its URL: the RabbitMQ-only transport
options, bounded waits for connecting and publishing, and the start-up check that makes
a worker or beat without a broker exit with a clear message instead of retrying for ever
(docs/DEPLOYMENT.md, "Broker").

Production runs RabbitMQ (``CELERY_BROKER_URL=amqp://...``); the embedded default keeps
the Redis broker, for which nothing here changes how messages are published or consumed.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})

# TCP connect plus AMQP handshake, per attempt. Celery's default (4 s) would let one
# booking request wait that long for a broker that accepts connections but never answers.
CONNECT_TIMEOUT_SECONDS = 2.0
# Every later blocking read or write on a RabbitMQ connection (py-amqp's SO_RCVTIMEO /
# SO_SNDTIMEO). Without it a RabbitMQ that blocks publishers (memory or disk alarm) holds
# a booking request for ever: the publisher confirm never comes, and neither does the
# reply to closing the channel afterwards. Replies normally take milliseconds.
SOCKET_TIMEOUT_SECONDS = 2.0
AMQP_TRANSPORT_OPTIONS: dict[str, Any] = {
    # Publisher confirms: RabbitMQ acknowledges a publish once the message is in its
    # queue, and a persistent message for a durable queue once it is on disk. Without
    # them a publish made while RabbitMQ shuts down "succeeds" into a closing socket and
    # the task is gone; with them publish() raises, and the booking's mail is left to the
    # retry below and then to the unsent-mail sweep.
    "confirm_publish": True,
    "read_timeout": SOCKET_TIMEOUT_SECONDS,
    "write_timeout": SOCKET_TIMEOUT_SECONDS,
}
# One retry, on a fresh connection, covers the common case: a pooled connection that
# RabbitMQ closed when it restarted. More retries cannot outlast a restart inside a web
# request, and each costs the request up to three socket timeouts while RabbitMQ blocks
# publishers; what could not be queued is sent by the unsent-mail sweep.
AMQP_PUBLISH_RETRY_POLICY: dict[str, Any] = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Worker connections: a broker that vanished without closing the TCP connection (host
# lost, network cut) is noticed within about two heartbeats, not Celery's default 2 min.
HEARTBEAT_SECONDS = 10
# How long a worker or beat that starts waits for its broker before giving up.
STARTUP_WAIT_SECONDS = 20.0
# sysexits.h EX_UNAVAILABLE: "a service is unavailable"; supervisors restart on non-zero.
BROKER_UNAVAILABLE_EXIT_STATUS = os.EX_UNAVAILABLE


def broker_is_amqp(url: str) -> bool:
    return urlsplit(url).scheme in AMQP_SCHEMES


def broker_check_or_exit(app: Celery, *, role: str, wait_seconds: float) -> None:
    """Connects to the broker, retrying for about ``wait_seconds`` (a broker started in
    the same breath, as by ``docker compose up``, gets that long; the last attempt may
    add one retry interval and one connect timeout); when it still cannot, logs why and
    exits with status 69. Runs when a worker or beat starts: without it Celery retries
    for about 45 minutes, and a worker that looks alive but takes no task is a
    half-working site nobody notices. Wrong credentials or a missing virtual host fail
    at the first attempt."""
    connection = app.connection_for_write()
    started = time.monotonic()

    def retrying(exc: BaseException, interval: float) -> None:
        logger.warning(
            "celery %s: broker %s not reachable yet (%s); retrying in %.0f s",
            role,
            connection.as_uri(),
            exc,
            interval,
        )

    try:
        connection.ensure_connection(
            errback=retrying,
            max_retries=None,
            interval_start=1,
            interval_step=1,
            interval_max=3,
            timeout=wait_seconds,
        )
    # Refused, timed out, unknown host, wrong credentials or virtual host: each means
    # this process cannot do its job, and each says why in its text.
    except (OperationalError, OSError, *connection.connection_errors, *connection.channel_errors) as exc:
        logger.critical(
            "celery %s: cannot connect to the broker %s (gave up after %.1f s: %s). Check "
            "CELERY_BROKER_URL and that the broker is running; exiting with status %d instead "
            "of running without it.",
            role,
            connection.as_uri(),
            time.monotonic() - started,
            exc,
            BROKER_UNAVAILABLE_EXIT_STATUS,
        )
        raise SystemExit(BROKER_UNAVAILABLE_EXIT_STATUS) from exc
    finally:
        connection.release()
    logger.info("celery %s: broker %s reachable", role, connection.as_uri())
