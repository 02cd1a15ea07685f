"""The seat-map reconciler's task moved beside its service (events.services.seat_map):
the periodic task created by booking 0003 now names ``events.tasks.reconcile_seat_maps``."""

from django.db import migrations

OLD = ("booking: reconcile seat maps", "booking.tasks.reconcile_seatmaps")
NEW = ("events: reconcile seat maps", "events.tasks.reconcile_seat_maps")


def rename(apps, schema_editor, *, old=OLD, new=NEW):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task=old[1]).update(name=new[0], task=new[1])


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, old=NEW, new=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_admission_periodic_task"),
        ("booking", "0003_periodic_tasks"),
    ]

    operations = [migrations.RunPython(rename, rename_back)]
