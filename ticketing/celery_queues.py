"""The Celery queues, declared rather than left for Celery to create on first use.

``admission`` (the admission tick and the seat-map reconciler), ``mail`` (ticket and
cancellation mail) and ``default`` (everything else, e.g. the unsent-mail sweep); which
task goes where is ``CELERY_TASK_ROUTES`` in ticketing/settings.py. Each queue has its own
durable direct exchange of the same name and a routing key of the same name: exactly what
Celery would make for a missing queue, written down so that RabbitMQ keeps the queues (and
the persistent messages in them) across a restart and so that an operator can read here
what ``rabbitmqctl list_queues`` should show. On Redis, the embedded default, the same
declarations give the same list keys (``admission``, ``mail``, ``default``) as before.
"""

from __future__ import annotations

from kombu import Exchange, Queue

ADMISSION_QUEUE = "admission"
MAIL_QUEUE = "mail"
DEFAULT_QUEUE = "default"
QUEUE_NAMES = (ADMISSION_QUEUE, MAIL_QUEUE, DEFAULT_QUEUE)


def durable_queue(name: str) -> Queue:
    """A durable queue bound to a durable direct exchange, both called ``name``."""
    return Queue(
        name,
        Exchange(name, type="direct", durable=True),
        routing_key=name,
        durable=True,
        # Never auto-deleted: a queue must outlive its last consumer (a worker restart)
        # or the tasks published meanwhile would be dropped.
        auto_delete=False,
    )


TASK_QUEUES = tuple(durable_queue(name) for name in QUEUE_NAMES)
