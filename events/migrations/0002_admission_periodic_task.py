"""Creates the django-celery-beat schedule of the admission tick, so staff see it (and
can pause or retime it) under Admin > Periodic tasks. Celery beat runs with the
DatabaseScheduler (settings.CELERY_BEAT_SCHEDULER) and picks it up from here."""

from __future__ import annotations

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

ADMISSION_TASK_NAME = "events.tasks.admit_on_sale_events"
PERIODIC_TASK_NAME = "Admit waiting buyers"


def create_admission_schedule(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_second = IntervalSchedule.objects.filter(every=1, period="seconds").first()
    if every_second is None:
        every_second = IntervalSchedule.objects.create(every=1, period="seconds")
    PeriodicTask.objects.update_or_create(
        name=PERIODIC_TASK_NAME,
        defaults={
            "task": ADMISSION_TASK_NAME,
            "interval": every_second,
            "queue": "admission",
            # A tick that waited longer than this is dropped unrun (no backlog replay).
            "expire_seconds": 2,
            "enabled": True,
            "description": (
                "Every second: drops expired passes and lets the next buyers in line into "
                "seat selection, for every event on sale (events.tasks)."
            ),
        },
    )


def delete_admission_schedule(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=PERIODIC_TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        # The oldest migration that has every field used here (expire_seconds, description).
        ("django_celery_beat", "0016_alter_crontabschedule_timezone"),
    ]

    operations = [migrations.RunPython(create_admission_schedule, delete_admission_schedule)]
