"""The Celery app. Admission runs on its own queue (``admission``) so that a backlog of
ticket mail (``mail``) can never delay letting people in."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")

app = Celery("ticketing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
