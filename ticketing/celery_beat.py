"""The beat scheduler (``CELERY_BEAT_SCHEDULER``): django-celery-beat's DatabaseScheduler,
except that reading the schedule when beat starts survives a passing database error.

Without this, one error at that moment ends beat for good: a database that restarts as
beat starts, or SQLite's "disk I/O error", which it can return while several processes
open the same WAL database at once (seen once in CI, with a worker and its embedded beat
starting against the test database). Under ``worker -B`` (``make run``) the worker goes on
without beat and nothing notices: the line stops moving. Beat retries for a few seconds
instead; an error that lasts is raised as before.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, close_old_connections, connection
from django_celery_beat.schedulers import DatabaseScheduler as CeleryBeatDatabaseScheduler

logger = logging.getLogger(__name__)

STARTUP_ATTEMPTS = 10
STARTUP_RETRY_SECONDS = 0.5


class DatabaseScheduler(CeleryBeatDatabaseScheduler):
    def setup_schedule(self) -> None:
        for attempt in range(1, STARTUP_ATTEMPTS + 1):
            try:
                super().setup_schedule()
                return
            except DatabaseError as error:
                if attempt == STARTUP_ATTEMPTS:
                    raise
                logger.warning(
                    "beat: reading the schedule failed (%s); trying again (%d of %d)",
                    error,
                    attempt,
                    STARTUP_ATTEMPTS,
                )
                self._schedule = None
                self._initial_read = True  # the next ``schedule`` reads it all again
                connection.close()  # a new connection next time, not the one that failed
                close_old_connections()
                time.sleep(STARTUP_RETRY_SECONDS)
