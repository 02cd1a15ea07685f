"""Counters that other apps bump where something worth watching happens. Each call is
one in-memory (or, in multiprocess mode, one memory-mapped) increment: cheap enough for
the hot paths, and never an I/O of its own."""

from __future__ import annotations

from django.db import DatabaseError
from prometheus_client import Counter
from redis.exceptions import RedisError

from ticketing.errors import ServiceUnavailable

BACKEND_UNAVAILABLE = Counter(
    "ticketing_backend_unavailable",
    "Requests answered 503 because a backing service could not answer, by backend "
    "(counted where the app turns the error into a 503).",
    ["backend"],
)
QUEUE_STATUS_ANSWERS = Counter(
    "ticketing_queue_status_answers",
    "Waiting-room status polls by how they were answered: 'cursor' (estimated from the "
    "serving cursor, no Redis round trip) or 'exact' (one Lua step on the line).",
    ["path"],
)

_children: dict[tuple[int, str], Counter] = {}


def _child(metric: Counter, value: str) -> Counter:
    key = (id(metric), value)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(value)
    return child


def _backend(exc: BaseException) -> str | None:
    if isinstance(exc, RedisError):
        return "redis"
    if isinstance(exc, DatabaseError):
        return "database"
    if isinstance(exc, ServiceUnavailable):
        # "seat map" and "queue service" are Redis-side (the map was lost, a script
        # failed); only the booking transaction's retries give up on "database".
        return "database" if exc.what == "database" else "redis"
    return None


def count_unavailable(exc: BaseException) -> None:
    """Counts a Redis or database outage that is being answered with 503; any other
    exception is ignored, so a handler may call this for every error it sees."""
    backend = _backend(exc)
    if backend is not None:
        _child(BACKEND_UNAVAILABLE, backend).inc()


def count_queue_status(path: str) -> None:
    """A waiting-room status poll was answered: ``path`` is "cursor" or "exact"."""
    _child(QUEUE_STATUS_ANSWERS, path).inc()


# Every series exists, at 0, from the process's start: a counter whose series appears with
# its first increment loses that increment to rate() (the first burst of 503s of an
# outage would not show).
for _backend_name in ("redis", "database"):
    _child(BACKEND_UNAVAILABLE, _backend_name)
for _path in ("cursor", "exact"):
    _child(QUEUE_STATUS_ANSWERS, _path)
