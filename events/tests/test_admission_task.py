"""The admission tick: what one run does, its Celery wiring, its beat schedule, and a
real worker with embedded beat admitting buyers (real Redis, real database)."""

from __future__ import annotations

import importlib
import os
import random
import time
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts.models import User
from conftest import (
    celery_worker_command,
    celery_worker_start,
    database_url_for_subprocess,
    stop_process_group,
)
from events.caching import invalidate_event
from events.models import Event
from events.services.rush_control import rush_control_update
from events.tasks import ADMISSION_TASK_NAME, admit_on_sale_events
from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import line_join, line_status, rush_figures
from queueing.tests.helpers import seatmap_exists
from ticketing.celery import app as celery_app

OPEN = 0  # sales_open_at_ms in the past: a normal arrival

schedule_migration = importlib.import_module("events.migrations.0002_admission_periodic_task")


def join(event: Event, user_ids: list[int], *, sales_open_at_ms: int = OPEN) -> None:
    for user_id in user_ids:
        line_join(event_id=event.pk, user_id=user_id, sales_open_at_ms=sales_open_at_ms)


def states(event: Event, user_ids: list[int]) -> list[str]:
    return [line_status(event_id=event.pk, user_id=user_id).state for user_id in user_ids]


@pytest.mark.django_db
def test_one_run_admits_up_to_capacity_in_arrival_order(event_factory):
    event = event_factory(capacity=3)
    join(event, [11, 12, 13, 14, 15])
    results = admit_on_sale_events()
    assert results[event.pk]["admitted"] == 3
    assert states(event, [11, 12, 13, 14, 15]) == ["active"] * 3 + ["waiting"] * 2
    # Full: the next run admits nobody until a pass ends.
    assert admit_on_sale_events()[event.pk]["admitted"] == 0


@pytest.mark.django_db
def test_a_paused_event_admits_nobody_until_resumed(event_factory, staff_user):
    event = event_factory(capacity=5)
    join(event, [1, 2])
    rush_control_update(event=event, user=staff_user, paused=True)
    result = admit_on_sale_events()[event.pk]
    assert result["paused"] and result["admitted"] == 0
    assert states(event, [1, 2]) == ["waiting", "waiting"]

    rush_control_update(event=event, user=staff_user, paused=False)
    assert admit_on_sale_events()[event.pk]["admitted"] == 2


@pytest.mark.django_db
def test_staff_capacity_change_applies_on_the_next_run(event_factory, staff_user):
    event = event_factory(capacity=1)
    join(event, [1, 2, 3, 4])
    assert admit_on_sale_events()[event.pk]["admitted"] == 1
    rush_control_update(event=event, user=staff_user, capacity=3)
    assert admit_on_sale_events()[event.pk]["admitted"] == 2


@pytest.mark.django_db
def test_events_not_on_sale_are_left_alone(event_factory):
    later = event_factory(sales_open_at=timezone.now() + timedelta(hours=1))
    join(later, [1])
    assert later.pk not in admit_on_sale_events()
    assert states(later, [1]) == ["waiting"]


@pytest.mark.django_db
def test_pre_opening_arrivals_are_shuffled_once_with_a_recorded_seed(event_factory):
    event = event_factory(sales_open_at=timezone.now() + timedelta(hours=1), capacity=1)
    early = list(range(1, 41))
    join(event, early, sales_open_at_ms=2**62)  # all arrive before the opening
    # The sale opens.
    Event.objects.filter(pk=event.pk).update(sales_open_at=timezone.now() - timedelta(seconds=1))
    invalidate_event(event.pk)

    first = admit_on_sale_events()[event.pk]
    assert first["shuffled"] and first["admitted"] == 1
    seed = get_redis().hget(EventKeys(event.pk).ctl, "shuffle_seed")
    assert seed is not None
    admitted = [int(m) for m in get_redis().zrange(EventKeys(event.pk).active, 0, -1)]
    order = [int(m) for m in get_redis().zrange(EventKeys(event.pk).waiting, 0, -1)]
    assert sorted(admitted + order) == early
    assert admitted + order != early, "the opening draw must reorder the early arrivals"

    second = admit_on_sale_events()[event.pk]
    assert not second["shuffled"]
    assert get_redis().hget(EventKeys(event.pk).ctl, "shuffle_seed") == seed


@pytest.mark.django_db
def test_a_missing_seat_map_is_rebuilt_by_the_tick(event_factory):
    event = event_factory()
    get_redis().delete(EventKeys(event.pk).seatmap)
    result = admit_on_sale_events()[event.pk]
    assert result["available_seats"] is None
    assert seatmap_exists(event_id=event.pk)
    assert admit_on_sale_events()[event.pk]["available_seats"] == 10


def test_task_is_routed_to_the_admission_queue_and_never_replays_old_ticks():
    task = celery_app.tasks[ADMISSION_TASK_NAME]
    assert task.expires == 2
    assert task.ignore_result
    route = celery_app.amqp.router.route({}, ADMISSION_TASK_NAME)
    assert route["queue"].name == "admission"


@pytest.mark.django_db
def test_migration_schedules_the_tick_every_second():
    # A transactional test elsewhere may have flushed the migration's rows: recreate
    # them with the migration's own code, which is what this test checks.
    schedule_migration.create_admission_schedule(django_apps, None)
    periodic = PeriodicTask.objects.get(name=schedule_migration.PERIODIC_TASK_NAME)
    assert periodic.task == ADMISSION_TASK_NAME
    assert (periodic.interval.every, periodic.interval.period) == (1, "seconds")
    assert periodic.queue == "admission"
    assert periodic.expire_seconds == 2
    assert periodic.enabled
    # Running it again (e.g. a re-applied migration) does not duplicate it.
    schedule_migration.create_admission_schedule(django_apps, None)
    assert PeriodicTask.objects.filter(task=ADMISSION_TASK_NAME).count() == 1


# --- a real worker with embedded beat ----------------------------------------------------


def _private_broker_url(url: str) -> str:
    """The same Redis server, another database number: a ``make run`` worker (or another
    test run) consuming the shared ``admission`` queue must not take this test's ticks."""
    number = random.randint(9, 15)
    parts = urlsplit(url)
    if parts.scheme.endswith("socket"):
        # redis+socket:///path/redis.sock: kombu reads the database from virtual_host.
        query = urlencode({**dict(parse_qsl(parts.query)), "virtual_host": str(number)})
        return f"{url.split('?', 1)[0]}?{query}"
    return urlunsplit(parts._replace(path=f"/{number}"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_celery_beat_admits_buyers_through_a_real_worker(event_factory, tmp_path):
    command = celery_worker_command("admission", beat=True)  # skips without the celery command
    event = event_factory(capacity=2)
    schedule_migration.create_admission_schedule(django_apps, None)
    buyers = [User.objects.create_user(email=f"beat{n}@example.com", password="x" * 12).pk for n in range(3)]
    join(event, buyers)
    assert states(event, buyers) == ["waiting"] * 3

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ticketing.settings",
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": settings.REDIS_URL,
        "QUEUE_KEY_PREFIX": settings.QUEUE_KEY_PREFIX,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "CELERY_BROKER_URL": _private_broker_url(settings.CELERY_BROKER_URL),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "worker.log"
    process = celery_worker_start(command, env=env, log_path=log_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            if rush_figures(event_id=event.pk)["active"] >= 2:
                break
            time.sleep(0.25)
        final = states(event, buyers)
    finally:
        stop_process_group(process)
    output = log_path.read_text(errors="replace")
    assert final == ["active", "active", "waiting"], f"worker output:\n{output[-4000:]}"
    # It was beat (DatabaseScheduler, the migration's periodic task) that sent the tick.
    assert "Admit waiting buyers" in output, output[-4000:]
    assert ADMISSION_TASK_NAME in output
