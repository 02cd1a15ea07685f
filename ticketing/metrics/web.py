"""The web node's metrics: a request latency histogram by route, method and status class,
and ``GET /metrics`` for the holder of ``METRICS_TOKEN``.

``MetricsMiddleware`` goes first in ``MIDDLEWARE``: the latency then covers every other
middleware (a 503 made from a Redis error included), and the scrape is answered before
the HTTPS redirect and the ``ALLOWED_HOSTS`` check, neither of which fits a scraper that
talks plain HTTP to a node's internal address (the scrape never builds a URL from Host).

Not public: with no ``METRICS_TOKEN`` the endpoint does not exist (``/metrics`` goes on
to the URL resolver like any unknown path: 404), and a request without the right
``Authorization: Bearer`` header gets that same 404, so a prober cannot even tell that
metrics are on. The nginx in front refuses ``/metrics`` from outside anyway
(deploy/nginx/ticketing.conf.template); Prometheus scrapes each node directly.

Per request: two clock reads, one dict lookup and one histogram observation (two
increments). The route label is the URL pattern's name (``api-event-queue``,
``events:detail``) or, for an unnamed pattern, the pattern itself: never the path, so
event ids, booking codes and probes of random paths cannot multiply the series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

from ticketing.metrics.auth import bearer_token_matches
from ticketing.metrics.collectors import SaleCollector
from ticketing.metrics.exposition import CONTENT_TYPE, render

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# From half a millisecond (the status poll answered from the cursor) to the 30 s of
# gunicorn's worker timeout.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Requests that never reached a URL pattern: static files, unknown paths (404), and
# answers given by a middleware before routing (413, redirects).
UNRESOLVED = "unresolved"
STATIC = "static"

REQUEST_DURATION = Histogram(
    "ticketing_http_request_duration_seconds",
    "Time from the first middleware to the response, by route (URL pattern name), method "
    "and status class. Its _count is the number of requests.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
# One series, there from the start (the histogram's status="5xx" series per route only
# appear with their first error, whose burst rate() then misses): the one to alert on.
SERVER_ERRORS = Counter("ticketing_http_server_errors", "Responses with a 5xx status, all routes.")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
REFUSAL_LOG_INTERVAL_SECONDS = 60.0

_sale_collector = SaleCollector()
_last_refusal_logged = float("-inf")


def route_of(request: HttpRequest, static_prefix: str) -> str:
    """The bounded label for a request: its URL pattern's name, else the pattern."""
    match = request.resolver_match
    if match is not None:
        return match.view_name if match.url_name else match.route
    if static_prefix and request.path_info.startswith(static_prefix):
        return STATIC
    return UNRESOLVED


def _note_refused(request: HttpRequest) -> None:
    # Once a minute at most: a wrong token in Prometheus shows in the log, while
    # someone knocking on /metrics cannot flood it.
    global _last_refusal_logged
    now = time.monotonic()
    if now - _last_refusal_logged >= REFUSAL_LOG_INTERVAL_SECONDS:
        _last_refusal_logged = now
        logger.warning(
            "metrics scrape refused (missing or wrong bearer token) from %s", request.META.get("REMOTE_ADDR")
        )


def scrape_response(request: HttpRequest) -> HttpResponse | None:
    """The node's metrics for a GET with the right bearer token; None otherwise (the
    request then goes on and finds no URL: 404, the same as with metrics off)."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return None
    if request.method != "GET" or not bearer_token_matches(request.META.get("HTTP_AUTHORIZATION", ""), token):
        _note_refused(request)
        return None
    return HttpResponse(
        render(_sale_collector), content_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"}
    )


class MetricsMiddleware:
    """Times every request by route (see the module docstring) and answers the scrape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.static_prefix = settings.STATIC_URL or ""
        # (route, method, status class) -> the histogram's child: labels() takes a lock
        # and builds a tuple of strings; a plain dict lookup does not.
        self._children: dict[tuple[str, str, int], Histogram] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == METRICS_PATH:
            scraped = scrape_response(request)
            if scraped is not None:
                return scraped
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        try:
            self._observe(request, response.status_code, elapsed)
        except Exception:
            # Metrics must never cost a buyer an answer (a full disk under the
            # multiprocess directory, say).
            logger.exception("request metrics not recorded")
        return response

    def _observe(self, request: HttpRequest, status: int, elapsed: float) -> None:
        route = route_of(request, self.static_prefix)
        method = request.method if request.method in _METHODS else "other"
        key = (route, method, status // 100)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = REQUEST_DURATION.labels(
                route, method, _STATUS_CLASSES.get(status // 100, "other")
            )
        child.observe(elapsed)
        if status >= 500:
            SERVER_ERRORS.inc()
