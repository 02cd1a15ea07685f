"""Loaded into the Celery worker subprocesses of ticketing/tests/test_broker.py
(``celery worker --include ticketing.tests.broker_probe``), never into the site.

- Logs, for every task a worker runs, the process that published it (Celery's ``origin``
  header: ``gen<pid>@<host>``) and whether RabbitMQ redelivered it: the proof that two
  beats really both sent ticks, and that a mail task came back after a killed worker.
- ``split_admission_tick``: the negative control of the two-beats test. The admission
  step done in separate round trips (count the passes, then move people), with a pause
  in between that stands in for a slow network or a busy Redis; two beats' overlapping
  ticks then each see the same free slots and together overfill the active queue. This
  is what queueing/lua/admit.lua closes (queueing/tests/test_line.py shows the same race
  with threads, ``test_negative_control_admission_outside_one_script_exceeds_capacity``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task
from celery.signals import task_prerun, worker_process_init

from queueing.connection import get_redis
from queueing.keys import EventKeys

logger = logging.getLogger("broker_probe")

PROBE_PREFIX = "broker-probe"
SPLIT_TASK_NAME = "ticketing.tests.broker_probe.split_admission_tick"


def log_sender(sender: Task | None = None, task: Task | None = None, **kwargs: Any) -> None:
    if task is None:
        return
    delivery = task.request.delivery_info or {}
    logger.info(
        "%s task=%s origin=%s redelivered=%s",
        PROBE_PREFIX,
        task.name,
        task.request.origin,
        delivery.get("redelivered"),
    )


@worker_process_init.connect
def _probe_in_pool_processes(**kwargs: Any) -> None:
    # Only in a worker's pool processes: the test process imports this module for its
    # names, and its eager tasks elsewhere in the suite need no probe lines.
    task_prerun.connect(log_sender)


@shared_task(name=SPLIT_TASK_NAME, ignore_result=True, acks_late=False)
def split_admission_tick(event_id: int, capacity: int, pass_seconds: int, pause_seconds: float) -> int:
    """Admission NOT in one script: returns how many passes are live after this run."""
    keys = EventKeys(event_id)
    redis = get_redis()
    seconds, micros = redis.time()
    now_ms = seconds * 1000 + micros // 1000
    redis.zremrangebyscore(keys.active, "-inf", now_ms)
    free = capacity - redis.zcard(keys.active)
    time.sleep(pause_seconds)
    if free > 0:  # (redis-py reads a count of 0 as "no count": one member)
        for member, _arrival in redis.zpopmin(keys.waiting, free):
            redis.zadd(keys.active, {member: now_ms + pass_seconds * 1000})
    return redis.zcard(keys.active)
