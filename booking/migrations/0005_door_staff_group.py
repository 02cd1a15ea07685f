"""The "Door staff" group: members may check in tickets at every event (the scanner page
and POST /api/checkins/), and nothing of the admin. Per-event door staff are on the event."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Door staff"


def create_group(apps, schema_editor):
    # Permissions are made after all migrations (post_migrate); this one is needed now.
    app_config = apps.get_app_config("booking")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(Permission.objects.get(content_type__app_label="booking", codename="check_in_tickets"))


def delete_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0004_checkin"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
