"""Fixtures of the booking tests: admitted buyers, held seats, eager Celery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from events.models import Event, Seat
from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import line_admit, line_join


def admit_users(event: Event, *users: Any) -> None:
    """Joins the users in order and admits all of them (a pass each); capacity is ample
    so users admitted earlier don't block them."""
    for user in users:
        line_join(event_id=event.pk, user_id=user.pk, sales_open_at_ms=0)
    result = line_admit(event_id=event.pk, capacity=100_000, pass_seconds=event.queue_pass_seconds)
    assert result.waiting == 0, result


def expire_hold(event: Event, seat_ids: list[int]) -> None:
    """Deletes the seats' hold keys: exactly what Redis does when the hold's PX runs out."""
    keys = EventKeys(event.pk)
    get_redis().delete(*(keys.seat(seat_id) for seat_id in seat_ids))


def seat_ids_of(event: Event, count: int | None = None) -> list[int]:
    ids = list(
        Seat.objects.filter(event=event).order_by("section", "row", "number").values_list("pk", flat=True)
    )
    return ids if count is None else ids[:count]


@pytest.fixture
def admitted() -> Callable[..., None]:
    return admit_users


@pytest.fixture
def eager_celery(settings: Any) -> Iterator[None]:
    """Runs Celery tasks in-process, as a worker would (CELERY_TASK_ALWAYS_EAGER)."""
    from ticketing.celery import app

    # Read the current value before changing the setting: the first read loads the
    # Celery config, which would otherwise pick up the eager setting and keep it.
    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
