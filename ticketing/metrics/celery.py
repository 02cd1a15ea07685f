"""Celery worker metrics: tasks started, succeeded, failed, retried and dropped unrun,
and a duration histogram, per task name; served over HTTP by the worker's main process.

Off by default. With ``CELERY_METRICS_PORT`` set (and ``METRICS_TOKEN``, which the
endpoint requires as the web nodes' does), the worker's main process, at ``worker_init``:
prepares the multiprocess directory, connects the task signal handlers (inherited by
the prefork pool's processes, which write their samples to that directory) and serves
``GET /metrics`` on ``CELERY_METRICS_ADDR`` (127.0.0.1 unless set) and that port. One
scrape returns the whole worker, every pool process included.

The prefork pool needs ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory of this worker's
own) in the worker's environment: without it each pool process would count in its own
memory, out of the scrape's reach, so the endpoint refuses to start rather than show
zeros. The solo and threads pools run tasks in the main process and need none.

How it is connected: this module must be imported in the worker before ``worker_init``
is sent; ``CELERY_IMPORTS = ["ticketing.metrics.celery"]`` in settings does that (Celery
imports those modules first thing in a worker, and beat never sends ``worker_init``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from celery import signals
from django.conf import settings
from prometheus_client import Counter, Histogram
from prometheus_client.exposition import ThreadingWSGIServer

from ticketing.metrics import multiprocess
from ticketing.metrics.auth import bearer_token_matches
from ticketing.metrics.exposition import CONTENT_TYPE, render

logger = logging.getLogger(__name__)

PORT_ENV = "CELERY_METRICS_PORT"
ADDR_ENV = "CELERY_METRICS_ADDR"
DEFAULT_ADDR = "127.0.0.1"
METRICS_PATH = "/metrics"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

TASKS_STARTED = Counter("ticketing_celery_tasks_started", "Tasks a worker started, by task name.", ["task"])
TASKS_SUCCEEDED = Counter("ticketing_celery_tasks_succeeded", "Tasks that returned, by task name.", ["task"])
TASKS_FAILED = Counter(
    "ticketing_celery_tasks_failed", "Tasks that raised and will not be retried, by task name.", ["task"]
)
TASKS_RETRIED = Counter(
    "ticketing_celery_tasks_retried", "Tasks that asked for a retry, by task name.", ["task"]
)
TASKS_REVOKED = Counter(
    "ticketing_celery_tasks_revoked",
    "Tasks dropped unrun, by task name and reason: 'expired' (an admission tick older than "
    "its expiry after a backlog) or 'revoked'.",
    ["task", "reason"],
)
TASK_DURATION = Histogram(
    "ticketing_celery_task_duration_seconds",
    "Run time of a task in the worker, by task name.",
    ["task"],
    buckets=DURATION_BUCKETS,
)

# task id -> perf_counter() at task_prerun, in the process that runs the task.
_started_at: dict[str, float] = {}


def _name(task: Any) -> str:
    return str(getattr(task, "name", None) or "unknown")


def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is not None:
        _started_at[task_id] = time.perf_counter()
    TASKS_STARTED.labels(_name(task)).inc()


def _on_postrun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    started = _started_at.pop(task_id, None) if task_id is not None else None
    if started is not None:
        TASK_DURATION.labels(_name(task)).observe(time.perf_counter() - started)


def _on_success(sender: Any = None, **_: Any) -> None:
    TASKS_SUCCEEDED.labels(_name(sender)).inc()


def _on_failure(sender: Any = None, **_: Any) -> None:
    TASKS_FAILED.labels(_name(sender)).inc()


def _on_retry(sender: Any = None, **_: Any) -> None:
    TASKS_RETRIED.labels(_name(sender)).inc()


def _on_revoked(sender: Any = None, expired: bool = False, **_: Any) -> None:
    TASKS_REVOKED.labels(_name(sender), "expired" if expired else "revoked").inc()


def _on_pool_process_shutdown(**_: Any) -> None:
    multiprocess.process_dead(os.getpid())


def series_create(task_names: Iterable[str]) -> None:
    """Creates every task's series at 0, so that the first failure or retry of a task
    shows in rate() (a series that appears with its first increment loses it)."""
    for name in task_names:
        for counter in (TASKS_STARTED, TASKS_SUCCEEDED, TASKS_FAILED, TASKS_RETRIED):
            counter.labels(name)
        for reason in ("expired", "revoked"):
            TASKS_REVOKED.labels(name, reason)


def connect_task_signals() -> None:
    """Connects the task handlers (idempotent: each has a dispatch uid)."""
    for signal, handler in (
        (signals.task_prerun, _on_prerun),
        (signals.task_postrun, _on_postrun),
        (signals.task_success, _on_success),
        (signals.task_failure, _on_failure),
        (signals.task_retry, _on_retry),
        (signals.task_revoked, _on_revoked),
        (signals.worker_process_shutdown, _on_pool_process_shutdown),
    ):
        signal.connect(handler, weak=False, dispatch_uid=f"ticketing.metrics.celery.{handler.__name__}")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line each."""


def metrics_app(token: str) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI app answering ``GET /metrics`` with the bearer token, 404 to anything else."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != METRICS_PATH
            or environ.get("REQUEST_METHOD") != "GET"
            or not bearer_token_matches(environ.get("HTTP_AUTHORIZATION", ""), token)
        ):
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not found.\n"]
        body = render()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Cache-Control", "no-store")])
        return [body]

    return app


def serve(*, port: int, addr: str, token: str) -> ThreadingWSGIServer:
    """Serves the worker's metrics from a daemon thread; returns the server (its
    ``server_address`` has the port, also when 0 asked for any free one)."""
    server = make_server(addr, port, metrics_app(token), ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="celery-metrics", daemon=True).start()
    return server


def _pool_forks(worker: Any) -> bool:
    pool = getattr(worker, "pool_cls", "prefork")
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__qualname__}"
    return "prefork" in name or "processes" in name


@signals.worker_init.connect(weak=False, dispatch_uid="ticketing.metrics.celery.worker_init")
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    port = os.environ.get(PORT_ENV, "").strip()
    if not port:
        return
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        logger.warning("%s is set but METRICS_TOKEN is not: worker metrics stay off", PORT_ENV)
        return
    if multiprocess.directory() is None and _pool_forks(sender):
        logger.error(
            "%s is set but PROMETHEUS_MULTIPROC_DIR is not: the prefork pool's task metrics "
            "could not be collected, so worker metrics stay off",
            PORT_ENV,
        )
        return
    multiprocess.directory_prepare()
    series_create(name for name in sender.app.tasks if not name.startswith("celery."))
    connect_task_signals()
    addr = os.environ.get(ADDR_ENV, DEFAULT_ADDR)
    server = serve(port=int(port), addr=addr, token=token)
    logger.info("worker metrics on http://%s:%s%s", addr, server.server_address[1], METRICS_PATH)
