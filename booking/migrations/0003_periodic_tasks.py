"""Schedules the booking app's periodic tasks (django-celery-beat DatabaseScheduler):
the seat-map reconciler every 30 s and the unsent-mail sweeper every 60 s."""

from django.db import migrations

TASKS = [
    ("booking: reconcile seat maps", "booking.tasks.reconcile_seatmaps", 30),
    ("booking: re-queue unsent e-mails", "booking.tasks.requeue_unsent_emails", 60),
]


def create_tasks(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in TASKS:
        # No unique constraint on schedules: another app's migration may have made twins.
        schedule = IntervalSchedule.objects.filter(every=seconds, period="seconds").first()
        if schedule is None:
            schedule = IntervalSchedule.objects.create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={"task": task, "interval": schedule, "enabled": True},
        )


def delete_tasks(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0002_booking_language"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_tasks, delete_tasks)]
