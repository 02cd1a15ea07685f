"""System checks of the waiting room's timing settings."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register()
def queue_edge_check(app_configs: list[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """nginx answers a buyer's polls for up to QUEUE_EDGE_SECONDS after the app last saw
    them, and a buyer far back polls every QUEUE_POLL_MAX_MS: together they must stay under
    QUEUE_SILENT_SECONDS, or a buyer who never stopped polling is dropped as silent."""
    edge, silent = settings.QUEUE_EDGE_SECONDS, settings.QUEUE_SILENT_SECONDS
    if edge < 0:
        return [Error("QUEUE_EDGE_SECONDS must not be negative.", id="events.E001")]
    if edge == 0 or silent == 0:
        return []
    longest_unseen = edge + settings.QUEUE_POLL_MAX_MS / 1000
    if longest_unseen < silent:
        return []
    return [
        Error(
            f"QUEUE_EDGE_SECONDS ({edge}) + QUEUE_POLL_MAX_MS ({settings.QUEUE_POLL_MAX_MS} ms) reach "
            f"QUEUE_SILENT_SECONDS ({silent}): buyers who keep polling would be dropped as silent.",
            hint="Lower QUEUE_EDGE_SECONDS or QUEUE_POLL_MAX_MS, or raise QUEUE_SILENT_SECONDS.",
            id="events.E002",
        )
    ]
