"""Celery queue depth, read from the broker at scrape time through kombu: a passive
``queue_declare`` answers with the message count on RabbitMQ (AMQP) and on Redis (where
kombu sums the queue's priority lists), so one code path serves either broker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from kombu import Connection

# Each broker round trip (connect, then one declare per queue) waits at most this long.
BROKER_TIMEOUT_SECONDS = 1.0


def celery_queue_names() -> list[str]:
    """The queues the project routes tasks to (``CELERY_TASK_ROUTES``) and the default."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route}
    return sorted(routed | {settings.CELERY_TASK_DEFAULT_QUEUE})


def _timeouts(driver: str, seconds: float) -> dict[str, Any]:
    if driver == "redis":
        return {"socket_timeout": seconds, "socket_connect_timeout": seconds}
    if driver == "amqp":
        return {"read_timeout": seconds, "write_timeout": seconds}
    return {}


def queue_depths(
    url: str, queues: Iterable[str], *, timeout: float = BROKER_TIMEOUT_SECONDS
) -> dict[str, int]:
    """Messages waiting in each queue. A queue the broker does not know has none (Redis
    deletes an empty list; RabbitMQ has no such queue until a worker declares it).
    Raises kombu's ``OperationalError`` (or the transport's error) when the broker
    cannot be reached within ``timeout``: one try, no retry loop."""
    connection = Connection(url, connect_timeout=timeout)
    # The project's own transport options (a key prefix, say) apply here too.
    connection.transport_options = {
        **getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
        **_timeouts(connection.transport.driver_type, timeout),
    }
    with connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=timeout
        )
        depths: dict[str, int] = {}
        for queue in queues:
            # A channel per queue: RabbitMQ closes the channel that asked for a missing queue.
            channel = connection.channel()
            try:
                depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except connection.channel_errors:
                depths[queue] = 0
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
    return depths
