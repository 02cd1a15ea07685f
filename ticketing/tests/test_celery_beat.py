"""Beat reads its schedule through a passing database error when it starts
(``ticketing.celery_beat``): with django-celery-beat's scheduler alone, one error there
ends beat, and under ``worker -B`` nothing notices. The error is real: the table beat
reads is renamed away and put back a moment later by another connection."""

from __future__ import annotations

import importlib
import threading
import time

import pytest
from django.apps import apps as django_apps
from django.db import connection, connections
from django_celery_beat.schedulers import DatabaseScheduler as CeleryBeatDatabaseScheduler

from events.tasks import ADMISSION_TASK_NAME
from ticketing.celery import app as celery_app
from ticketing.celery_beat import DatabaseScheduler

pytestmark = pytest.mark.django_db(transaction=True)

# Transactional tests empty the tables between them: the schedule is made again here.
schedule_migration = importlib.import_module("events.migrations.0002_admission_periodic_task")

TABLE, AWAY = "django_celery_beat_periodictask", "periodictask_away"
GONE_SECONDS = 1.2


def rename(old: str, new: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {connection.ops.quote_name(old)} RENAME TO {connection.ops.quote_name(new)}"
        )


def put_back_later() -> threading.Thread:
    def put_back() -> None:
        time.sleep(GONE_SECONDS)
        try:
            rename(AWAY, TABLE)  # this thread's own connection
        finally:
            connections.close_all()

    thread = threading.Thread(target=put_back)
    thread.start()
    return thread


def admission_entries(scheduler: CeleryBeatDatabaseScheduler) -> list[str]:
    return [entry.task for entry in scheduler.schedule.values() if entry.task == ADMISSION_TASK_NAME]


@pytest.mark.parametrize(
    "scheduler_class", [DatabaseScheduler, CeleryBeatDatabaseScheduler], ids=["ours", "control"]
)
def test_beat_reads_its_schedule_through_a_passing_database_error(scheduler_class: type) -> None:
    schedule_migration.create_admission_schedule(django_apps, None)
    rename(TABLE, AWAY)
    thread = put_back_later()
    try:
        if scheduler_class is DatabaseScheduler:
            scheduler = scheduler_class(app=celery_app)
            assert admission_entries(scheduler) == [ADMISSION_TASK_NAME]
        else:  # the control: django-celery-beat's own scheduler gives up at once
            with pytest.raises(Exception, match=r"(?i)periodictask|no such table|doesn't exist"):
                scheduler_class(app=celery_app)
    finally:
        thread.join()
