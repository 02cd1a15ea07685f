"""Prometheus metrics (ticketing/metrics/): the endpoint is not public, the latency
histogram is labelled by route, the sale's figures are read at scrape time and survive
an outage, a gunicorn node answers for all its workers, a Celery worker for its pool, and
the shipped Prometheus config and Grafana queries are accepted by a real Prometheus.

Real parts only: the Django test client against the real middleware chain, the test's
Redis and database, a spare redis-server for outages and as a private broker, the
machine's RabbitMQ when it answers, real gunicorn and Celery subprocesses, and the
Debian ``prometheus`` / ``promtool`` binaries (skipped where they are not installed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings as django_settings
from kombu import Connection, Exchange, Queue
from kombu.exceptions import OperationalError
from prometheus_client.parser import text_string_to_metric_families

from booking.tests.conftest import admit_users, seat_ids_of
from conftest import make_auth_client, stop_process_group
from ticketing.metrics.auth import bearer_token_matches
from ticketing.metrics.broker import BROKER_TIMEOUT_SECONDS, queue_depths
from ticketing.tests.conftest import SpareRedis, free_port, timed, wait_until

TOKEN = "metrics-test-token-" + uuid.uuid4().hex
MIDDLEWARE = "ticketing.metrics.web.MetricsMiddleware"
# A stalled or refused Redis may cost a scrape one socket timeout, never more; the slack
# covers the database and broker reads of the same scrape on a busy 2-core machine.
STALL_SOCKET_TIMEOUT = 0.5
SCRAPE_SLACK_SECONDS = 1.5
REPO = Path(django_settings.BASE_DIR)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def metrics_on(settings: Any) -> None:
    """What the settings diff of the metrics work does: the token and the middleware
    first in the chain (kept as is when settings.py already has them)."""
    settings.METRICS_TOKEN = TOKEN
    if MIDDLEWARE not in settings.MIDDLEWARE:
        settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {
        dict(labels)[label]
        for sample_name, labels in samples
        if sample_name == name and label in dict(labels)
    }


def scrape(client: Any) -> Samples:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    return parse(response.content.decode())


def requests_of(samples: Samples, route: str, method: str = "GET", status: str = "2xx") -> float:
    return (
        value(
            samples,
            "ticketing_http_request_duration_seconds_count",
            route=route,
            method=method,
            status=status,
        )
        or 0.0
    )


# --- not public ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_configured_token_the_endpoint_does_not_exist(client, settings):
    settings.METRICS_TOKEN = ""
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer "}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}):
        response = client.get("/metrics", **header)
        assert response.status_code == 404, header
        assert b"ticketing_" not in response.content


@pytest.mark.django_db
def test_a_missing_or_wrong_token_gets_the_same_404_as_an_unknown_path(client):
    """404, not 401: whoever lacks the token cannot even learn that metrics are on (a 401
    would confirm the endpoint and invite guessing); Prometheus shows the status, and
    the node logs the refusal once a minute."""
    unknown = client.get("/no-such-page")
    for header in (
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong"},
        {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x"},
        {"HTTP_AUTHORIZATION": f"Bearer {TOKEN[:-1]}"},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"HTTP_AUTHORIZATION": TOKEN},
    ):
        response = client.get("/metrics", **header)
        assert response.status_code == 404, header
        assert response["Content-Type"] == unknown["Content-Type"]
        assert b"ticketing_" not in response.content
    # Only GET scrapes.
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code in (403, 404)


def test_the_token_check_is_exact():
    assert bearer_token_matches(f"Bearer {TOKEN}", TOKEN)
    assert bearer_token_matches(f"Bearer {TOKEN} ", TOKEN)
    assert not bearer_token_matches(f"Bearer {TOKEN}", "")
    assert not bearer_token_matches("Bearer ", "")
    assert not bearer_token_matches(f"bearer {TOKEN}", TOKEN)
    assert not bearer_token_matches(f"Bearer {TOKEN.upper()}", TOKEN)


# --- web metrics ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_scrape_has_the_latency_of_a_route_just_called_and_the_sale_figures(client, event_factory, user):
    event = event_factory(rows=2, seats_per_row=5)
    buyer = make_auth_client(user)
    before = scrape(client)

    joined = buyer.post(f"/api/events/{event.pk}/queue/")
    assert joined.status_code == 201
    after = scrape(client)

    assert requests_of(after, "api-event-queue", "POST") == requests_of(before, "api-event-queue", "POST") + 1
    buckets = {
        dict(labels)["le"]: count
        for (name, labels), count in after.items()
        if name == "ticketing_http_request_duration_seconds_bucket"
        and dict(labels).get("route") == "api-event-queue"
        and dict(labels).get("method") == "POST"
        and dict(labels).get("status") == "2xx"
    }
    assert buckets["+Inf"] == requests_of(after, "api-event-queue", "POST")
    assert len(buckets) == 16  # 15 bounds + Inf

    ev = str(event.pk)
    assert value(after, "ticketing_redis_up") == 1
    assert value(after, "ticketing_database_up") == 1
    assert value(after, "ticketing_broker_up") == 1
    assert (value(after, "ticketing_events_on_sale") or 0) >= 1
    assert value(after, "ticketing_event_waiting", event=ev) == 1
    assert value(after, "ticketing_event_active", event=ev) == 0
    assert value(after, "ticketing_event_admitted_total", event=ev) == 0
    assert value(after, "ticketing_event_available_seats", event=ev) == 10
    assert value(after, "ticketing_event_held_seats", event=ev) == 0
    assert value(after, "ticketing_event_sold_seats", event=ev) == 0
    assert value(after, "ticketing_event_paused", event=ev) == 0
    assert value(after, "ticketing_event_sold_out", event=ev) == 0
    assert value(after, "ticketing_event_bookings_total", event=ev) == 0
    assert label_values(after, "ticketing_celery_queue_messages", "queue") == {"admission", "mail", "default"}


@pytest.mark.django_db
def test_admissions_holds_and_bookings_show_in_the_scrape(
    client, event_factory, user_factory, eager_celery, django_capture_on_commit_callbacks
):
    event = event_factory(rows=2, seats_per_row=5)
    buyer = make_auth_client(user_factory())
    admit_users(event, buyer.user)
    seats = seat_ids_of(event, 3)
    assert buyer.post(f"/api/events/{event.pk}/holds/", {"seat_ids": seats}, format="json").status_code == 201
    held = scrape(client)
    ev = str(event.pk)
    assert value(held, "ticketing_event_admitted_total", event=ev) == 1
    assert value(held, "ticketing_event_active", event=ev) == 1
    assert value(held, "ticketing_event_held_seats", event=ev) == 3

    with django_capture_on_commit_callbacks(execute=True):
        booked = buyer.post("/api/bookings/", {"event_id": event.pk, "seat_ids": seats}, format="json")
    assert booked.status_code == 201, booked.content
    sold = scrape(client)
    assert value(sold, "ticketing_event_bookings_total", event=ev) == 1
    assert value(sold, "ticketing_event_bookings_cancelled_total", event=ev) == 0
    assert value(sold, "ticketing_event_sold_seats", event=ev) == 3
    assert value(sold, "ticketing_event_held_seats", event=ev) == 0
    assert value(sold, "ticketing_event_available_seats", event=ev) == 7


@pytest.mark.django_db
def test_the_route_label_is_the_url_pattern_never_the_path(client, event_factory):
    first, second = event_factory(), event_factory()
    before = scrape(client)
    for event in (first, second):
        assert client.get(f"/api/events/{event.pk}/seats/").status_code == 200
    for path in ("/no/such/page/123", "/no/such/page/456", "/api/events/999999999/seats/"):
        client.get(path)
    after = scrape(client)

    routes = label_values(after, "ticketing_http_request_duration_seconds_count", "route")
    assert "api-event-seats" in routes
    assert requests_of(after, "api-event-seats") == requests_of(before, "api-event-seats") + 2
    # The unknown event's seat map is a 404 of the same route; unknown paths are one label.
    assert (
        requests_of(after, "api-event-seats", status="4xx")
        == requests_of(before, "api-event-seats", status="4xx") + 1
    )
    assert (
        requests_of(after, "unresolved", status="4xx") >= requests_of(before, "unresolved", status="4xx") + 2
    )
    assert not [route for route in routes if "/" in route and "<" not in route], routes
    assert not [route for route in routes if str(first.pk) in route or str(second.pk) in route], routes


@pytest.mark.django_db
def test_waiting_room_polls_are_counted_by_how_they_were_answered(client, on_sale_event, user):
    buyer = make_auth_client(user)
    ticket = buyer.post(f"/api/events/{on_sale_event.pk}/queue/").json()["queue_ticket"]
    before = scrape(client)
    exact = buyer.get(f"/api/events/{on_sale_event.pk}/queue/")
    estimated = buyer.get(f"/api/events/{on_sale_event.pk}/queue/", HTTP_X_QUEUE_TICKET=ticket)
    assert (exact.json()["estimated"], estimated.json()["estimated"]) == (False, True)
    after = scrape(client)
    for path in ("exact", "cursor"):
        counted = value(after, "ticketing_queue_status_answers_total", path=path) or 0
        assert counted == (value(before, "ticketing_queue_status_answers_total", path=path) or 0) + 1, path


# --- outages -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_redis_refusing_connections_makes_the_scrape_say_so(client, settings, on_sale_event, user):
    buyer = make_auth_client(user)
    before = scrape(client)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    refused = buyer.get(f"/api/events/{on_sale_event.pk}/queue/")
    assert refused.status_code == 503
    samples, elapsed = timed(lambda: scrape(client))
    print(f"\nMETRICS-FIGURE scrape with Redis refusing connections: 200 in {elapsed:.3f} s")
    assert value(samples, "ticketing_redis_up") == 0
    assert value(samples, "ticketing_database_up") == 1
    assert not label_values(samples, "ticketing_event_waiting", "event")
    assert value(samples, "ticketing_event_bookings_total", event=str(on_sale_event.pk)) == 0
    unavailable = value(samples, "ticketing_backend_unavailable_total", backend="redis") or 0
    assert unavailable == (value(before, "ticketing_backend_unavailable_total", backend="redis") or 0) + 1
    assert (
        value(samples, "ticketing_http_server_errors_total")
        == value(before, "ticketing_http_server_errors_total") + 1
    )
    assert (
        requests_of(samples, "api-event-queue", status="5xx")
        == requests_of(before, "api-event-queue", status="5xx") + 1
    )
    assert elapsed < settings.REDIS_SOCKET_TIMEOUT + SCRAPE_SLACK_SECONDS, elapsed


@pytest.mark.django_db
def test_a_frozen_redis_costs_the_scrape_one_socket_timeout(
    client, settings, spare_redis_server, on_sale_event
):
    """SIGSTOP: connections are accepted and nothing is answered, here with the same Redis
    as queue and broker. The scrape gives up on each after one timeout (not one per event
    or per queue), waits for both side by side, and still answers."""
    settings.REDIS_SOCKET_TIMEOUT = STALL_SOCKET_TIMEOUT
    settings.REDIS_URL = spare_redis_server.url
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{spare_redis_server.port}/1"
    spare_redis_server.pause()
    try:
        samples, elapsed = timed(lambda: scrape(client))
    finally:
        spare_redis_server.resume()
    print(
        f"\nMETRICS-FIGURE scrape with Redis frozen (queue socket timeout {STALL_SOCKET_TIMEOUT} s, broker "
        f"{BROKER_TIMEOUT_SECONDS} s): 200 in {elapsed:.2f} s"
    )
    assert (value(samples, "ticketing_redis_up"), value(samples, "ticketing_broker_up")) == (0, 0)
    assert elapsed < max(STALL_SOCKET_TIMEOUT, BROKER_TIMEOUT_SECONDS) + SCRAPE_SLACK_SECONDS, elapsed
    assert value(scrape(client), "ticketing_redis_up") == 1


@pytest.mark.django_db
def test_a_broker_that_is_down_makes_the_scrape_say_so(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    samples = scrape(client)
    assert value(samples, "ticketing_broker_up") == 0
    assert not label_values(samples, "ticketing_celery_queue_messages", "queue")
    assert value(samples, "ticketing_redis_up") == 1


# --- Celery queue depth from the broker ---------------------------------------------------


def test_queue_depth_on_a_redis_broker(spare_redis_server: SpareRedis):
    broker = spare_redis_server.client(db=2)
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    url = f"redis://127.0.0.1:{spare_redis_server.port}/2"
    with Connection(url) as connection:
        producer = connection.Producer()
        for n in range(3):
            producer.publish(
                {"n": n}, routing_key=queue, declare=[Queue(queue, Exchange(queue), routing_key=queue)]
            )
    assert broker.llen(queue) == 3
    assert queue_depths(url, [queue, "never-used"]) == {queue: 3, "never-used": 0}


def test_queue_depth_on_rabbitmq():
    url = os.environ.get("METRICS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    queue = Queue(f"metrics-test-{uuid.uuid4().hex[:8]}", Exchange(""), routing_key="", durable=False)
    try:
        with Connection(url, connect_timeout=1) as connection:
            connection.ensure_connection(max_retries=1)
            bound = queue(connection.default_channel)
            bound.declare()
            try:
                producer = connection.Producer()
                for n in range(2):
                    producer.publish({"n": n}, routing_key=queue.name)
                assert wait_until(lambda: queue_depths(url, [queue.name])[queue.name] == 2, timeout=5)
                assert queue_depths(url, [f"{queue.name}-absent"]) == {f"{queue.name}-absent": 0}
            finally:
                bound.delete()
    except OSError as exc:
        pytest.skip(f"no RabbitMQ at {url}: {exc}")


def test_an_unreachable_broker_is_an_error_not_a_wait():
    with pytest.raises(OperationalError):
        queue_depths("redis://127.0.0.1:1/0", ["mail"])


# --- real processes: a gunicorn node, a Celery worker, Prometheus ---------------------------

SUBPROCESS_SETTINGS = '''"""Settings of the processes started by ticketing/tests/test_metrics.py: the metrics
settings of the project (kept when settings.py already has them)."""
import os

from ticketing.settings import *  # noqa: F403
from ticketing.settings import CELERY_BROKER_URL, MIDDLEWARE  # noqa: F401

METRICS_TOKEN = os.environ["METRICS_TOKEN"]
if "ticketing.metrics.web.MetricsMiddleware" not in MIDDLEWARE:
    MIDDLEWARE = ["ticketing.metrics.web.MetricsMiddleware", *MIDDLEWARE]
CELERY_IMPORTS = ["ticketing.metrics.celery"]
'''


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "metrics_test_settings.py").write_text(SUBPROCESS_SETTINGS)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "DJANGO_SETTINGS_MODULE": "metrics_test_settings",
        "METRICS_TOKEN": TOKEN,
        "REDIS_URL": django_settings.REDIS_URL,
        "QUEUE_KEY_PREFIX": django_settings.QUEUE_KEY_PREFIX,
        # No tables: a real database error for every query the scrape makes.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def http_scrape(url: str, token: str = TOKEN) -> tuple[int, str]:
    # Loopback http:// URLs of the servers this module starts.
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


@pytest.mark.slow
def test_one_scrape_of_a_gunicorn_node_counts_every_worker(tmp_path):
    """Two sync workers under deploy/gunicorn.conf.py: every scrape, whichever worker
    answers it, counts all the requests of the node; a worker killed and replaced
    (``child_exit``) keeps its requests in the node's totals."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed next to this Python")
    port = free_port()
    multiproc = tmp_path / "multiproc"
    (multiproc).mkdir()
    (multiproc / "counter_999999999.db").write_bytes(b"")  # left by a previous run
    env = subprocess_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(gunicorn), "-c", str(REPO / "deploy/gunicorn.conf.py"), "ticketing.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", "2", "--worker-class", "sync", "--log-level", "warning"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: http_scrape(f"{base}/metrics")[0] == 200, timeout=30), log_path.read_text()
        assert not (multiproc / "counter_999999999.db").exists()
        sent = 40

        def hit(count: int) -> None:
            for _ in range(count):
                with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:  # noqa: S310
                    assert response.status == 200

        threads = [threading.Thread(target=hit, args=(10,)) for _ in range(sent // 10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = []
        for _ in range(6):
            status, text = http_scrape(f"{base}/metrics")
            assert status == 200
            counts.append(requests_of(parse(text), "healthz"))
        pids = {int(path.stem.rsplit("_", 1)[1]) for path in multiproc.glob("histogram_*.db")}
        print(
            f"\nMETRICS-FIGURE gunicorn node, 2 workers ({len(pids)} wrote samples): 6 scrapes counted {counts}"
        )
        assert counts == [sent] * 6

        samples = parse(http_scrape(f"{base}/metrics")[1])
        # The scrape read a database without tables: that is the database being down.
        assert value(samples, "ticketing_database_up") == 0
        assert value(samples, "ticketing_redis_up") == 1

        worker_pid = next(iter(pids))
        os.kill(worker_pid, signal.SIGKILL)
        assert wait_until(lambda: http_scrape(f"{base}/metrics")[0] == 200, timeout=30)
        after = [requests_of(parse(http_scrape(f"{base}/metrics")[1]), "healthz") for _ in range(4)]
        assert after == [sent] * 4, after
    finally:
        stop_process_group(process)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]


@pytest.mark.slow
def test_a_celery_worker_serves_its_pool_task_metrics(tmp_path, spare_redis_server):
    """A real prefork worker (one pool process) on a private broker: tasks that succeed,
    fail and retry are counted by task name, their durations observed, and the worker's
    main process serves them on CELERY_METRICS_PORT to the token holder only."""
    port = free_port()
    broker_url = f"redis://127.0.0.1:{spare_redis_server.port}/1"
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    env = subprocess_env(
        tmp_path,
        CELERY_BROKER_URL=broker_url,
        CELERY_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "multiproc"),
    )
    celery = Path(sys.executable).with_name("celery")
    if not celery.exists():
        pytest.skip("the celery command is not installed next to this Python")
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(celery), "-A", "ticketing", "worker", "-Q", queue, "-l", "info", "--concurrency", "1",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        assert wait_until(lambda: http_scrape(url)[0] == 200, timeout=60), log_path.read_text()[-3000:]
        assert http_scrape(url, token="wrong")[0] == 404
        assert http_scrape(url.replace("/metrics", "/"))[0] == 404

        from celery import Celery

        sender = Celery("metrics-test", broker=broker_url)
        sender.send_task("celery.accumulate", args=(1, 2), queue=queue)
        sender.send_task("celery.accumulate", args=(1, 2), queue=queue)
        sender.send_task("celery.accumulate", args=(1,), kwargs={"index": 5}, queue=queue)  # IndexError
        # A database without tables: the mail task's automatic retry.
        sender.send_task("booking.tasks.send_ticket_email", args=(1,), queue=queue)

        def counted() -> Samples:
            return parse(http_scrape(url)[1])

        accumulate, mail = "celery.accumulate", "booking.tasks.send_ticket_email"
        assert wait_until(
            lambda: (value(counted(), "ticketing_celery_tasks_retried_total", task=mail) or 0) >= 1,
            timeout=30,
        ), log_path.read_text()[-3000:]
        samples = counted()
        assert value(samples, "ticketing_celery_tasks_started_total", task=accumulate) == 3
        assert value(samples, "ticketing_celery_tasks_succeeded_total", task=accumulate) == 2
        assert value(samples, "ticketing_celery_tasks_failed_total", task=accumulate) == 1
        assert value(samples, "ticketing_celery_task_duration_seconds_count", task=accumulate) == 3
        assert (value(samples, "ticketing_celery_tasks_started_total", task=mail) or 0) >= 1
        assert value(samples, "ticketing_celery_tasks_failed_total", task=mail) == 0  # created at 0 at start
        # The tasks ran in the pool process, which wrote its own file next to the main's.
        files = {path.name for path in (tmp_path / "multiproc").glob("counter_*.db")}
        assert files - {f"counter_{process.pid}.db"}, files
    finally:
        stop_process_group(process)


PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def prometheus_dir(tmp_path: Path) -> Path:
    """deploy/prometheus/ laid out as the rehearsal does: the config, a token file and
    the target files (file_sd) for two web nodes and a worker."""
    directory = tmp_path / "prometheus"
    shutil.copytree(REPO / "deploy/prometheus", directory)
    (directory / "metrics-token").write_text(TOKEN + "\n")
    targets = directory / "targets"
    targets.mkdir(exist_ok=True)
    (targets / "web.json").write_text(json.dumps([{"targets": ["127.0.0.1:8001", "127.0.0.1:8002"]}]))
    (targets / "celery.json").write_text(json.dumps([{"targets": ["127.0.0.1:9101"]}]))
    return directory


def test_the_prometheus_config_passes_promtool(tmp_path):
    if not os.access(PROMTOOL, os.X_OK):
        pytest.skip("promtool (Debian package prometheus) is not installed")
    directory = prometheus_dir(tmp_path)
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(directory / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dashboard_checker() -> ModuleType:
    """deploy/prometheus/check_dashboard.py, the operators' check of the dashboard's queries."""
    spec = importlib.util.spec_from_file_location(
        "check_dashboard", REPO / "deploy/prometheus/check_dashboard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_queries() -> list[tuple[str, str, str]]:
    return dashboard_checker().dashboard_queries(REPO / "deploy/grafana/ticketing.json")


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus on a spare loopback port with the shipped config (its targets
    are down: only the query engine is needed), its own data directory."""
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip("prometheus (Debian package prometheus) is not installed")
    directory = prometheus_dir(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: http_scrape(f"{url}/-/ready")[0] == 200, timeout=30)
        yield url
    finally:
        stop_process_group(process)


def test_every_dashboard_query_is_valid_promql(prometheus_server):
    checker = dashboard_checker()
    queries = dashboard_queries()
    assert len(queries) >= 12
    refused = [
        (title, expr, answer)
        for title, _legend, expr in queries
        if (answer := checker.instant_query(prometheus_server, expr)).get("status") != "success"
    ]
    assert not refused, refused


def test_the_dashboard_covers_what_operators_watch():
    exprs = " ".join(expr for _, _, expr in dashboard_queries())
    for metric in (
        "ticketing_http_request_duration_seconds_bucket",
        "ticketing_http_request_duration_seconds_count",
        "ticketing_event_waiting",
        "ticketing_event_active",
        "ticketing_event_admitted_total",
        "ticketing_event_held_seats",
        "ticketing_event_sold_seats",
        "ticketing_event_bookings_total",
        "ticketing_celery_queue_messages",
        "ticketing_backend_unavailable_total",
        "ticketing_redis_up",
        "ticketing_celery_tasks_failed_total",
    ):
        assert metric in exprs, metric


def test_worker_metrics_stay_off_without_a_port(tmp_path):
    """The default: no CELERY_METRICS_PORT, nothing listens and nothing is connected."""
    from celery import signals

    from ticketing.metrics import celery as worker_metrics

    assert not os.environ.get(worker_metrics.PORT_ENV)
    receivers_before = len(signals.task_prerun.receivers)
    worker_metrics._on_worker_init(sender=None)
    assert len(signals.task_prerun.receivers) == receivers_before
