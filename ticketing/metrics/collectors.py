"""The sale's figures, read when Prometheus scrapes (never per request): for each event on
sale its waiting room and seats (``queueing.line.rush_figures``, one Lua script), its
bookings (one grouped count in the database), and the Celery queue depth (the broker).

Every web node exports them (simpler than electing one); they are the same numbers
everywhere, so dashboards take ``max by (event)``, never ``sum``.

Bounded: at most ``MAX_EVENTS`` events; Redis stops being asked at its first error (each
call waits at most ``REDIS_SOCKET_TIMEOUT``) or once ``REDIS_BUDGET_SECONDS`` are spent;
the broker gets ``broker.BROKER_TIMEOUT_SECONDS`` per round trip, read at the same time
as Redis. An outage never makes
the scrape fail: ``ticketing_redis_up``, ``ticketing_database_up`` and
``ticketing_broker_up`` say 0 and the figures that could not be read are left out.

Counters come from sources that never go back (Redis' admitted / dropped totals, the
count of bookings ever confirmed), so ``rate()`` gives admissions/s and bookings/s across
any number of nodes; a Redis wipe reads as a counter reset, which ``rate()`` handles.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Count, Q
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from booking.models import Booking, BookingStatus
from events.selectors import event_ids_on_sale
from queueing.connection import get_redis
from queueing.line import rush_figures
from ticketing.metrics.broker import celery_queue_names, queue_depths

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_EVENTS = 50
REDIS_BUDGET_SECONDS = 5.0

# rush_figures key -> (metric name, help). Booleans are exported as 0/1.
EVENT_GAUGES = (
    ("waiting", "ticketing_event_waiting", "People in the waiting line."),
    ("active", "ticketing_event_active", "People holding a live admission pass."),
    ("held_seats", "ticketing_event_held_seats", "Seats under a live hold."),
    ("sold_seats", "ticketing_event_sold_seats", "Seats sold, as the seat map in Redis says."),
    (
        "available_seats",
        "ticketing_event_available_seats",
        "Seats neither sold nor held (absent while the seat map is missing from Redis).",
    ),
    ("paused", "ticketing_event_paused", "1 while staff have paused admission."),
    ("sold_out", "ticketing_event_sold_out", "1 once no seat is left unsold."),
    (
        "admitted_per_second",
        "ticketing_event_admitted_per_second",
        "Admissions per second over the last minute, as the waiting room measures it for ETAs.",
    ),
)
EVENT_COUNTERS = (
    ("admitted_total", "ticketing_event_admitted", "People admitted from the waiting line (Redis)."),
    (
        "dropped_total",
        "ticketing_event_dropped",
        "Waiters taken off the line when reached after going silent (Redis).",
    ),
)


def _booking_counts(event_ids: list[int]) -> dict[int, dict[str, int]]:
    rows = (
        Booking.objects.filter(event_id__in=event_ids)
        .order_by()  # the model's default ordering would join the GROUP BY
        .values("event_id")
        .annotate(total=Count("id"), cancelled=Count("id", filter=Q(status=BookingStatus.CANCELLED)))
    )
    counts = {event_id: {"total": 0, "cancelled": 0} for event_id in event_ids}
    for row in rows:
        counts[row["event_id"]] = {"total": row["total"], "cancelled": row["cancelled"]}
    return counts


class SaleCollector(Collector):
    """Collects the sale's figures at each scrape (see the module docstring)."""

    def __init__(self) -> None:
        # The events of the last scrape whose database answered: while the database is
        # down, Redis' figures of those events are still worth showing.
        self._last_event_ids: list[int] = []

    def collect(self) -> Iterable[Metric]:
        timings = GaugeMetricFamily(
            "ticketing_metrics_collect_seconds",
            "Time this scrape spent reading each source of the sale's figures.",
            labels=["source"],
        )
        started = time.perf_counter()
        database_up, event_ids, bookings = self._from_database()
        timings.add_metric(["database"], time.perf_counter() - started)
        yield GaugeMetricFamily(
            "ticketing_database_up", "1 if the database answered this scrape.", database_up
        )
        if database_up:
            yield GaugeMetricFamily("ticketing_events_on_sale", "Events on sale now.", len(event_ids))
        yield from self._booking_families(bookings)

        # Redis and the broker are read side by side: when both stall (one Redis serving
        # as queue and broker) the scrape waits for the slower timeout, not their sum.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="metrics") as pool:
            from_redis = pool.submit(self._timed, self._from_redis, event_ids)
            from_broker = pool.submit(self._timed, self._from_broker)
            (redis_up, figures), redis_seconds = from_redis.result()
            (broker_up, depths), broker_seconds = from_broker.result()
        timings.add_metric(["redis"], redis_seconds)
        timings.add_metric(["broker"], broker_seconds)
        yield GaugeMetricFamily(
            "ticketing_redis_up", "1 if the queue's Redis answered this scrape.", redis_up
        )
        yield from self._event_families(figures)
        yield GaugeMetricFamily(
            "ticketing_broker_up", "1 if the Celery broker answered this scrape.", broker_up
        )
        queue_family = GaugeMetricFamily(
            "ticketing_celery_queue_messages", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        for queue, depth in depths.items():
            queue_family.add_metric([queue], depth)
        yield queue_family
        yield timings

    @staticmethod
    def _timed(read: Callable[..., T], *args: Any) -> tuple[T, float]:
        started = time.perf_counter()
        return read(*args), time.perf_counter() - started

    def _from_database(self) -> tuple[int, list[int], dict[int, dict[str, int]]]:
        try:
            event_ids = event_ids_on_sale()[:MAX_EVENTS]
            bookings = _booking_counts(event_ids) if event_ids else {}
        except Exception as exc:
            # One line, no traceback: a scrape every few seconds per node during an outage.
            logger.warning("metrics: database unavailable: %r", exc)
            return 0, list(self._last_event_ids), {}
        self._last_event_ids = event_ids
        return 1, event_ids, bookings

    def _from_redis(self, event_ids: list[int]) -> tuple[int, dict[int, dict[str, Any]]]:
        figures: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + REDIS_BUDGET_SECONDS
        try:
            if not event_ids:
                get_redis().ping()
            for event_id in event_ids:
                if time.monotonic() > deadline:
                    logger.warning(
                        "metrics: Redis budget spent; %d events left out", len(event_ids) - len(figures)
                    )
                    break
                figures[event_id] = rush_figures(event_id=event_id)
        except Exception as exc:
            # Any error (RedisError, a socket error, a cluster misconfiguration): the
            # next event would most likely wait out the same timeout.
            logger.warning("metrics: Redis unavailable: %r", exc)
            return 0, figures
        return 1, figures

    def _from_broker(self) -> tuple[int, dict[str, int]]:
        try:
            return 1, queue_depths(settings.CELERY_BROKER_URL, celery_queue_names())
        except Exception as exc:
            logger.warning("metrics: Celery broker unavailable: %r", exc)
            return 0, {}

    @staticmethod
    def _event_families(figures: dict[int, dict[str, Any]]) -> Iterable[Metric]:
        for key, name, documentation in EVENT_GAUGES:
            family = GaugeMetricFamily(name, documentation, labels=["event"])
            for event_id, values in figures.items():
                if values.get(key) is not None:
                    family.add_metric([str(event_id)], float(values[key]))
            yield family
        for key, name, documentation in EVENT_COUNTERS:
            family = CounterMetricFamily(name, documentation, labels=["event"])
            for event_id, values in figures.items():
                family.add_metric([str(event_id)], float(values[key]))
            yield family

    @staticmethod
    def _booking_families(bookings: dict[int, dict[str, int]]) -> Iterable[Metric]:
        confirmed = CounterMetricFamily(
            "ticketing_event_bookings",
            "Bookings ever confirmed (cancelled ones included: the count never goes back), "
            "from the database.",
            labels=["event"],
        )
        cancelled = CounterMetricFamily(
            "ticketing_event_bookings_cancelled", "Bookings cancelled, from the database.", labels=["event"]
        )
        for event_id, counts in bookings.items():
            confirmed.add_metric([str(event_id)], counts["total"])
            cancelled.add_metric([str(event_id)], counts["cancelled"])
        yield confirmed
        yield cancelled
