"""Staff steering of a live sale (docs/ARCHITECTURE.md, "Staff"): the dashboard's figures and
the pause / capacity / pass-length controls, every change audit-logged.

The controls live in the event's Redis ``ctl`` hash, where the admission script reads
them on its next tick (within a second). Capacity and pass length are also saved on the
Event row, so they survive a Redis wipe (the admission task passes the row's values as
the defaults); pausing is a live-only switch and lives in Redis alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from events.models import POW_DIFFICULTY_MAX, REVIEW_THRESHOLD_MAX, Event, RushControlChange
from events.services.seat_map import seat_map_rebuild
from queueing.line import controls_get, controls_set, rush_figures
from ticketing.errors import DomainError

if TYPE_CHECKING:
    from accounts.models import User

CAPACITY_MIN, CAPACITY_MAX = 1, 100_000
PASS_SECONDS_MIN, PASS_SECONDS_MAX = 30, 7200


def _sale_over(*, event: Event, figures: dict[str, Any]) -> bool:
    if timezone.now() >= event.sales_close_at:
        return True
    nothing_left = figures["available_seats"] == 0 and figures["held_seats"] == 0
    return bool(figures["sold_out"] or nothing_left)


def rush_state_get(*, event: Event) -> dict[str, Any]:
    """Live figures and the effective controls of one event, read from Redis in one
    consistent moment. ``shuffle_seed`` (the draw among the pre-opening arrivals) is
    published only once the sale is over (closed or sold out): before that it would
    let anyone predict who is admitted next."""
    figures = rush_figures(event_id=event.pk)
    if figures["available_seats"] is None:
        # No seat map in Redis (wiped or never built): rebuild it from the database.
        seat_map_rebuild(event.pk)
        figures = rush_figures(event_id=event.pk)
    return {
        "waiting": figures["waiting"],
        "active": figures["active"],
        "capacity": figures["capacity"] or event.queue_capacity,
        "pass_seconds": figures["pass_seconds"] or event.queue_pass_seconds,
        "paused": figures["paused"],
        "admitted_total": figures["admitted_total"],
        "dropped_total": figures["dropped_total"],
        "serving": figures["serving"],
        "admitted_per_second": figures["admitted_per_second"],
        "held_seats": figures["held_seats"],
        "sold_seats": figures["sold_seats"],
        "available_seats": figures["available_seats"],
        "sold_out": bool(figures["sold_out"]),
        "shuffle_seed": figures["shuffle_seed"] if _sale_over(event=event, figures=figures) else None,
        "history": figures["history"],
        "pow_difficulty": event.pow_difficulty,
        "review_threshold": event.review_threshold,
    }


def _check_range(field: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        bounds = {"low": low, "high": high}
        raise DomainError(
            "invalid",
            _("%(field)s must be between %(low)d and %(high)d.") % {"field": field, "low": low, "high": high},
            status=400,
            errors={field: [_("Ensure this value is between %(low)d and %(high)d.") % bounds]},
        )


def rush_control_update(
    *,
    event: Event,
    user: User,
    paused: bool | None = None,
    capacity: int | None = None,
    pass_seconds: int | None = None,
    pow_difficulty: int | None = None,
    review_threshold: int | None = None,
) -> dict[str, Any]:
    """Applies the given controls (None = unchanged), records who changed what
    (``RushControlChange.changes`` = {field: [old, new]}, only fields whose value really
    changed; no row when nothing changed) and returns the new ``rush_state_get``.

    The Redis write comes last inside the transaction: if Redis refuses it, the Event
    row and the audit row roll back with it, so the log never claims a change that the
    admission never saw."""
    _check_range("capacity", capacity, CAPACITY_MIN, CAPACITY_MAX)
    _check_range("pass_seconds", pass_seconds, PASS_SECONDS_MIN, PASS_SECONDS_MAX)
    _check_range("pow_difficulty", pow_difficulty, 0, POW_DIFFICULTY_MAX)
    _check_range("review_threshold", review_threshold, 0, REVIEW_THRESHOLD_MAX)
    current = controls_get(event_id=event.pk)
    old: dict[str, Any] = {
        "paused": bool(current["paused"]),
        "capacity": current["capacity"] or event.queue_capacity,
        "pass_seconds": current["pass_seconds"] or event.queue_pass_seconds,
        "pow_difficulty": event.pow_difficulty,
        "review_threshold": event.review_threshold,
    }
    requested: dict[str, Any] = {
        name: value
        for name, value in (
            ("paused", paused),
            ("capacity", capacity),
            ("pass_seconds", pass_seconds),
            ("pow_difficulty", pow_difficulty),
            ("review_threshold", review_threshold),
        )
        if value is not None
    }
    changes = {name: [old[name], value] for name, value in requested.items() if value != old[name]}

    with transaction.atomic():
        row_fields: list[str] = []
        if capacity is not None and event.queue_capacity != capacity:
            event.queue_capacity = capacity
            row_fields.append("queue_capacity")
        if pass_seconds is not None and event.queue_pass_seconds != pass_seconds:
            event.queue_pass_seconds = pass_seconds
            row_fields.append("queue_pass_seconds")
        if pow_difficulty is not None and event.pow_difficulty != pow_difficulty:
            # On the event row only (read through the cached event settings: live on every
            # web process within EVENT_SETTINGS_LOCAL_TTL).
            event.pow_difficulty = pow_difficulty
            row_fields.append("pow_difficulty")
        if review_threshold is not None and event.review_threshold != review_threshold:
            event.review_threshold = review_threshold
            row_fields.append("review_threshold")
        if row_fields:
            event.save(update_fields=[*row_fields, "updated_at"])
        if changes:
            RushControlChange.objects.create(event=event, changed_by=user, changes=changes)
        if requested.keys() - {"pow_difficulty", "review_threshold"}:
            controls_set(event_id=event.pk, paused=paused, capacity=capacity, pass_seconds=pass_seconds)
    return rush_state_get(event=event)
