"""The Celery app. Admission runs on its own queue (``admission``) so that a backlog of
ticket mail (``mail``) can never delay letting people in; the queues are declared in
ticketing.celery_queues, the broker's connection rules in ticketing.celery_broker."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init

from ticketing.celery_broker import STARTUP_WAIT_SECONDS, broker_check_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")


app = Celery("ticketing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _startup_wait_seconds() -> float:
    from django.conf import settings

    return float(getattr(settings, "BROKER_STARTUP_WAIT_SECONDS", STARTUP_WAIT_SECONDS))


@worker_init.connect
def _worker_needs_its_broker(sender: Any = None, **kwargs: Any) -> None:
    # Before the consumer starts: its own retry loop would keep a broker-less worker
    # "running" for about 45 minutes.
    broker_check_or_exit(sender.app, role="worker", wait_seconds=_startup_wait_seconds())


@beat_init.connect
def _beat_needs_its_broker(sender: Any = None, **kwargs: Any) -> None:
    # Beat would otherwise start, log one failed send per tick, and never admit anyone.
    broker_check_or_exit(sender.app, role="beat", wait_seconds=_startup_wait_seconds())
