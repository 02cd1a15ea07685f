"""The Celery worker's consumer (``CELERY_WORKER_CONSUMER``): Celery's own, except that it
survives losing its broker connection with a task message in hand. In a module of its
own because importing Celery's worker code costs every process that loads the settings
25-60 ms; only workers import this.
"""

from __future__ import annotations

import functools
import logging

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu import Connection

logger = logging.getLogger(__name__)


def close_collected_connection(connection: Connection) -> None:
    """``connection.close()`` for a broker connection that ``collect()`` has already
    released, as Celery's consumer closes the connection it lost; never raises
    AttributeError.

    Why it would (Celery 5.7, kombu 5.7, the Redis broker): when Redis goes away, the
    consumer's channel has a BRPOP out. ``collect()`` closes that channel first, and its
    close stops at reading the BRPOP reply (connection closed): the channel stays open.
    Closing the connection's other channels fails as well (remote control and gossip need
    Redis to close their broadcast queues), and the transport stops at the first failure,
    so nothing retries the first channel before ``collect()`` detaches the transport.
    ``close()`` then closes that channel again: it cancels its consumers and, if it was
    handed a task message not yet acknowledged, tries to give it back, for which it looks
    up the detached transport's address: ``None.hostname``. That AttributeError gets past
    Celery's ``ignore_errors``; the worker logs "Unrecoverable error" and shuts down instead
    of reconnecting. Here a message is in hand often: an admission tick comes every second.

    The channel's sockets are closed by then (that comes before the give-back), and the
    give-back could not have worked: it needs the broker that is gone. The Redis transport
    also keeps the message in its unacknowledged set on the broker, which hands it out
    again after the visibility timeout if the broker kept its data."""
    try:
        type(connection).close(connection)  # the class's: Consumer shadows this instance's
    except AttributeError as error:
        if connection._transport is not None:  # not a collected connection: not this case
            raise
        logger.info("celery worker: dropped the lost broker connection's last channel (%r)", error)


class Consumer(CeleryConsumer):
    """The worker's consumer (``CELERY_WORKER_CONSUMER``): Celery's, except that it closes
    the connection it lost with ``close_collected_connection``, so that losing the broker
    with a message in hand does not stop the worker."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        lost = self.connection
        if lost is not None:
            # Celery collects the lost connection, then calls ``lost.close()``: this one.
            lost.close = functools.partial(close_collected_connection, lost)  # type: ignore[method-assign]
        super().on_connection_error_after_connected(exc)
