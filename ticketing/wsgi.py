"""The WSGI application: Django, behind the waiting room's poll lane (the rush's hottest
request answered before Django's middleware; events/api/queue_lane.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")
django_application = get_wsgi_application()

from events.api.queue_lane import QueuePollLane  # noqa: E402  (needs the apps loaded)

application = QueuePollLane(django_application)
