"""Schedules the waiting lists' tick (booking.tasks.tick_waiting_lists) every 2 s."""

from django.db import migrations

NAME = "booking: tick waiting lists"
TASK = "booking.tasks.tick_waiting_lists"
SECONDS = 2


def create_task(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule = IntervalSchedule.objects.filter(every=SECONDS, period="seconds").first()
    if schedule is None:
        schedule = IntervalSchedule.objects.create(every=SECONDS, period="seconds")
    PeriodicTask.objects.update_or_create(name=NAME, defaults={"task": TASK, "interval": schedule, "enabled": True})


def delete_task(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0006_waiting_list"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_task, delete_task)]
