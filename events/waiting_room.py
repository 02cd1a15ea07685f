"""Waiting-room services: the event-aware layer over the Redis queue (``queueing``).

These run on the hottest path of a rush (thousands of status polls a second), so they
touch no database once the event settings are warm (``event_settings_get`` keeps them
in the process for 2 s) and make exactly one Redis round trip per call.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from events.selectors import EventSettings, event_settings_get
from queueing import waiting_room as redis_queue
from queueing.waiting_room import QueueStatus
from ticketing.errors import DomainError

# Polling interval suggested to clients (``poll_after_ms``): fast near the front and
# while admitted, slow far back, so a crowd of thousands polls at a bearable rate.
POLL_MIN_MS = 1000
POLL_MAX_MS = 5000
# Far back, each person ahead adds this much to the interval (400 ahead → the maximum).
POLL_MS_PER_PERSON_AHEAD = 10


def _now_ms() -> int:
    return int(time.time() * 1000)


def event_for_queue(event_id: int) -> EventSettings:
    """The cached settings of a published event; 404 ``not_found`` otherwise."""
    event = event_settings_get(event_id)
    if event is None:
        raise DomainError("not_found", _("Not found."), status=404)
    return event


def queue_join(*, event_id: int, user_id: int) -> tuple[QueueStatus, EventSettings, bool]:
    """Puts the user in line (idempotent: a second join keeps the first place).

    Joining before sales open is allowed: the order among early arrivals is drawn at
    the opening. Returns the status, the event settings and whether this call joined."""
    event = event_for_queue(event_id)
    if event.sales_closed(_now_ms()):
        raise DomainError("sales_closed", _("Sales for this event are closed."), status=409)
    status, newly_joined = redis_queue.queue_join(
        event_id=event_id, user_id=user_id, sales_open_at_ms=event.sales_open_at_ms
    )
    if status.state == "sold_out":
        raise DomainError("sold_out", _("All seats of this event are sold."), status=409)
    return status, event, newly_joined


def queue_status_get(*, event_id: int, user_id: int) -> tuple[QueueStatus, EventSettings]:
    """The user's place in line; 404 ``not_in_queue`` when they are not in it."""
    event = event_for_queue(event_id)
    status = redis_queue.queue_status(event_id=event_id, user_id=user_id)
    if status.state == "none":
        raise DomainError("not_in_queue", _("You are not in the waiting room of this event."), status=404)
    return status, event


def queue_leave(*, event_id: int, user_id: int) -> None:
    """Leaves the line (or gives up an admission pass). Idempotent; no event check, so
    leaving never fails even for an event that was unpublished meanwhile."""
    redis_queue.queue_leave(event_id=event_id, user_id=user_id)


def _iso_from_ms(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.get_current_timezone())
    return moment.isoformat(timespec="milliseconds")


def poll_after_ms(status: QueueStatus, *, sales_open_at_ms: int, now_ms: int) -> int:
    """How long a client should wait before asking again.

    Near the front (few ahead, or a short ETA) and while admitted: every second. Far
    back: up to five seconds. Before the opening the order is not drawn yet, so polling
    faster than a quarter of the time left to the opening helps nobody."""
    if status.state == "active":
        return POLL_MIN_MS
    if status.state != "waiting":
        return POLL_MAX_MS
    interval = POLL_MIN_MS + max(status.ahead, 0) * POLL_MS_PER_PERSON_AHEAD
    if status.eta_seconds is not None:
        # About four polls over the remaining wait.
        interval = min(interval, status.eta_seconds * 1000 // 4)
    if now_ms < sales_open_at_ms:
        interval = max(interval, (sales_open_at_ms - now_ms) // 4)
    return int(min(max(interval, POLL_MIN_MS), POLL_MAX_MS))


def queue_status_payload(status: QueueStatus, *, event: EventSettings) -> dict[str, Any]:
    """The queue status body of API.md, plus ``poll_after_ms`` and ``sales_open_at``."""
    now_ms = _now_ms()
    waiting = status.state == "waiting"
    return {
        "state": status.state,
        "position": status.position if waiting else None,
        "ahead": status.ahead if waiting else None,
        "eta_seconds": status.eta_seconds if waiting else None,
        "pass_expires_at": (
            _iso_from_ms(status.pass_expires_at_ms)
            if status.state == "active" and status.pass_expires_at_ms
            else None
        ),
        "poll_after_ms": poll_after_ms(status, sales_open_at_ms=event.sales_open_at_ms, now_ms=now_ms),
        "sales_open_at": _iso_from_ms(event.sales_open_at_ms),
    }
