"""Times as the rush counts them: integer milliseconds since the epoch (the Redis clock's
unit) on one side, aware datetimes and ISO-8601 strings for people and the API on the
other. The only place that converts between them."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache

from django.utils import timezone


def ms_from_datetime(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def datetime_from_ms(ms: int) -> datetime:
    """An aware UTC datetime (templates and DRF show it in the current time zone)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso_from_ms(ms: int) -> str:
    """ISO-8601 with milliseconds and the current time zone's offset (API.md times)."""
    return _iso(ms, timezone.get_current_timezone())


# Thousands of waiting-room answers a second describe the same few moments (one pulse
# read serves them all for a quarter of a second): format each moment once.
@lru_cache(maxsize=256)
def _iso(ms: int, zone: tzinfo) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=zone).isoformat(timespec="milliseconds")
