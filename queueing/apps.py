from __future__ import annotations

from django.apps import AppConfig


class QueueingConfig(AppConfig):
    name = "queueing"

    def ready(self) -> None:
        from queueing import checks  # noqa: F401  (registers the Redis URL checks)
