"""The WSGI application: Django, behind the waiting room's lane (the rush's two hottest
requests, the poll from behind the cursor and the join, answered before Django's
middleware; events/api/queue_lane.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")
django_application = get_wsgi_application()

from events.api.queue_lane import QueueLane  # noqa: E402  (needs the apps loaded)

application = QueueLane(django_application)
