"""Celery on RabbitMQ, the production broker (docs/DEPLOYMENT.md, "Broker").

Real processes only: ``celery worker`` and ``celery beat`` subprocesses on a private
virtual host of the machine's RabbitMQ (created and deleted here, ticketing/tests/
rabbitmq.py), this test's database and Redis, and a real SMTP sink. The web side is this
process: a booking's on-commit publish goes to RabbitMQ through the project's Celery app.

- the settings: for an ``amqp://`` URL publisher confirms and bounded waits, for the Redis
  default Celery's defaults as before, and the same durable queues, routes and acks;
- the admission tick, sent by beat through RabbitMQ, admits the people in line;
- two beats started by mistake: admission stays exact (never more than capacity, strictly
  in arrival order), and the negative control with the admission split in round trips
  overfills under the same two beats; the reconciler and the unsent-mail sweep twice over
  are harmless;
- ticket mail: a booking's mail reaches the SMTP sink exactly once; with the mail worker
  SIGKILLed mid-send RabbitMQ hands the task to the next worker, still exactly one mail;
- RabbitMQ unreachable when a booking commits (closed port, or a port that accepts and
  never answers): the booking answers 201 within a bounded time, and the sweep sends the
  mail later, once;
- the queues are durable, the tasks persistent, and stale admission ticks are dropped by
  RabbitMQ itself (per-message TTL);
- a worker or beat with no broker exits with status 69 and a clear message.

Without RabbitMQ the ``rabbitmq`` tests fail with a message saying so; they never skip.
Figures are printed on lines starting with ``BROKER-FIGURE`` (``-s`` shows them).
"""

from __future__ import annotations

import importlib
import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from booking.models import Booking
from booking.tasks import requeue_unsent_emails, send_ticket_email
from booking.tests.conftest import admit_users, seat_ids_of
from conftest import make_auth_client
from events.models import Event
from events.tasks import ADMISSION_TASK_NAME, admit_on_sale_events
from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import line_join, line_status
from queueing.tests.helpers import seat_statuses
from ticketing.celery import app as celery_app
from ticketing.celery_broker import (
    BROKER_UNAVAILABLE_EXIT_STATUS,
    CONNECT_TIMEOUT_SECONDS,
    HEARTBEAT_SECONDS,
    SOCKET_TIMEOUT_SECONDS,
)
from ticketing.celery_queues import QUEUE_NAMES, TASK_QUEUES
from ticketing.tests.broker_probe import PROBE_PREFIX, SPLIT_TASK_NAME
from ticketing.tests.conftest import SmtpSink, free_port, stop_process_group, wait_until
from ticketing.tests.rabbitmq import (
    RABBITMQ_HOST,
    RABBITMQ_PORT,
    RabbitMQUnavailable,
    SilentListener,
    app_publishing_to,
    celery_env,
    celery_settings_for,
    list_exchanges,
    list_queues,
    private_vhost,
    queue_depth,
    start_celery,
    vhost_of,
    worker_args,
)
from ticketing.tests.test_faults import make_unmailed_booking

pytestmark = pytest.mark.slow

Factory = Callable[..., Any]

schedule_migration = importlib.import_module("events.migrations.0002_admission_periodic_task")

# A worker or beat subprocess imports Django, Celery and the project: seconds on a busy
# 2-core machine. Generous: these bound waiting for an outcome, they measure nothing.
STARTUP_TIMEOUT_SECONDS = 60
# The booking request may spend one broker connect timeout on a broker that never
# answers; the slack covers the rest of the request on a busy machine.
PUBLISH_BOUND_SECONDS = CONNECT_TIMEOUT_SECONDS + 3.0
PROBE_LINE = re.compile(rf"{PROBE_PREFIX} task=(\S+) origin=gen(\d+)@\S+ redelivered=(\S+)")


def vhost_or_fail() -> Iterator[str]:
    """A private virtual host; fails the test (never skips it) without RabbitMQ."""
    missing = None
    try:
        with private_vhost() as url:
            yield url
    except RabbitMQUnavailable as exc:
        missing = str(exc)
    if missing is not None:  # outside the except block: one message, no chained traceback
        pytest.fail(missing, pytrace=False)


@pytest.fixture(scope="module")
def rabbitmq_vhost() -> Iterator[str]:
    """One private virtual host for the module's tests."""
    yield from vhost_or_fail()


@pytest.fixture
def fresh_vhost() -> Iterator[str]:
    """A private virtual host of the test's own, with nothing declared yet."""
    yield from vhost_or_fail()


@pytest.fixture
def broker(rabbitmq_vhost: str) -> str:
    """The module's virtual host with the three queues declared and empty: no message a
    previous test left behind reaches this test's workers."""
    with celery_app.connection_for_write(rabbitmq_vhost) as connection:
        channel = connection.default_channel
        for queue in TASK_QUEUES:
            bound = queue(channel)
            bound.declare()
            bound.purge()
    return rabbitmq_vhost


def probe_records(log: str) -> list[tuple[str, int, str]]:
    """(task name, publishing pid, redelivered) for every task the worker ran."""
    return [(name, int(pid), redelivered) for name, pid, redelivered in PROBE_LINE.findall(log)]


def wait_for_ready(process: subprocess.Popen, log_path: Path) -> None:
    ready = wait_until(
        lambda: process.poll() is not None or " ready." in log_path.read_text(errors="replace"),
        timeout=STARTUP_TIMEOUT_SECONDS,
    )
    log = log_path.read_text(errors="replace")
    assert ready and process.poll() is None, f"the worker did not start:\n{log[-4000:]}"


def hold_and_confirm(client: Any, event: Event, seat_ids: list[int]) -> tuple[Any, float]:
    """Holds the seats, then books them; returns the booking answer and its duration."""
    held = client.post(f"/api/events/{event.pk}/holds/", {"seat_ids": seat_ids}, format="json")
    assert held.status_code == 201, held.content
    started = time.monotonic()
    confirmed = client.post("/api/bookings/", {"event_id": event.pk, "seat_ids": seat_ids}, format="json")
    return confirmed, time.monotonic() - started


# --- the settings ---------------------------------------------------------------------------

RABBITMQ_ONLY = {
    "broker_transport_options",
    "broker_connection_timeout",
    "broker_heartbeat",
    "task_publish_retry_policy",
}


def test_settings_give_rabbitmq_confirms_and_bounded_waits_and_leave_the_redis_broker_as_it_was() -> None:
    """What ticketing/settings.py gives a process for an ``amqp://`` CELERY_BROKER_URL and
    for the Redis default: the same declared durable queues, routes and acks for both; the
    RabbitMQ-only connection rules for RabbitMQ alone."""
    amqp = celery_settings_for("amqp://guest:guest@127.0.0.1:5672//")
    redis_conf = celery_settings_for(settings.CELERY_BROKER_URL)
    assert amqp["broker_transport_options"]["confirm_publish"] is True
    assert amqp["broker_transport_options"]["read_timeout"] == SOCKET_TIMEOUT_SECONDS
    assert amqp["broker_transport_options"]["write_timeout"] == SOCKET_TIMEOUT_SECONDS
    assert amqp["broker_connection_timeout"] == CONNECT_TIMEOUT_SECONDS
    assert amqp["broker_heartbeat"] == HEARTBEAT_SECONDS
    assert amqp["task_publish_retry_policy"]["max_retries"] == 1
    assert not RABBITMQ_ONLY & set(redis_conf), "the Redis broker keeps Celery's defaults"
    for conf in (amqp, redis_conf):
        queues = {queue.name: queue for queue in conf["task_queues"]}
        assert sorted(queues) == sorted(QUEUE_NAMES)
        for name, queue in queues.items():
            assert (queue.durable, queue.auto_delete, queue.routing_key) == (True, False, name)
            assert (queue.exchange.name, queue.exchange.type, queue.exchange.durable) == (
                name,
                "direct",
                True,
            )
        assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
        assert conf["worker_prefetch_multiplier"] == 1
        assert conf["broker_connection_retry_on_startup"] is True
        assert conf["worker_cancel_long_running_tasks_on_connection_loss"] is False
    # The routes, as before: admission tick and reconciler, mail, the rest.
    router = celery_app.amqp.router
    for task, queue in (
        (ADMISSION_TASK_NAME, "admission"),
        ("events.tasks.reconcile_seat_maps", "admission"),
        ("booking.tasks.send_ticket_email", "mail"),
        ("booking.tasks.send_cancellation_email", "mail"),
        ("booking.tasks.requeue_unsent_emails", "default"),
    ):
        assert router.route({}, task)["queue"].name == queue, task
    # Mail is acked after it is sent; the tick is not (a lost tick costs one second).
    assert celery_app.tasks["booking.tasks.send_ticket_email"].acks_late is True
    assert celery_app.tasks[ADMISSION_TASK_NAME].acks_late is False


# --- admission through RabbitMQ -------------------------------------------------------------


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_beat_sends_the_admission_tick_through_rabbitmq_and_the_worker_admits(
    broker: str, event_factory: Factory, tmp_path: Path
) -> None:
    """``celery worker -B`` (beat embedded, as ``make run`` starts it) on RabbitMQ: beat's
    DatabaseScheduler sends the migration's "Admit waiting buyers" every second through the
    ``admission`` queue, and the worker lets the first two of three buyers in."""
    event = event_factory(capacity=2)
    schedule_migration.create_admission_schedule(django_apps, None)
    buyers = [1, 2, 3]
    for user_id in buyers:
        line_join(event_id=event.pk, user_id=user_id, sales_open_at_ms=0)

    log_path = tmp_path / "worker.log"
    worker = start_celery(
        [*worker_args("admission", name="admission"), "-B"], log_path=log_path, env=celery_env(broker)
    )
    try:
        admitted = wait_until(
            lambda: worker.poll() is not None or get_redis().zcard(EventKeys(event.pk).active) >= 2,
            timeout=STARTUP_TIMEOUT_SECONDS,
            interval=0.2,
        )
        final = [line_status(event_id=event.pk, user_id=user_id).state for user_id in buyers]
    finally:
        stop_process_group(worker)
    log = log_path.read_text(errors="replace")
    assert admitted and final == ["active", "active", "waiting"], log[-4000:]
    assert f"amqp://guest:**@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{vhost_of(broker)}" in log, log[:3000]
    assert any(name == ADMISSION_TASK_NAME for name, _pid, _redelivered in probe_records(log)), log[-4000:]
    assert "Admit waiting buyers" in log


# --- two beats by mistake ---------------------------------------------------------------------

CAPACITY = 3
PASS_SECONDS = 2
BUYERS = 40
# The negative control's pause between reading the free slots and taking people: wider
# than the gap between the two beats' ticks, so two runs always overlap.
SPLIT_PAUSE_SECONDS = 0.7
TWO_BEATS_TIMEOUT_SECONDS = 45


def every_second() -> IntervalSchedule:
    schedule = IntervalSchedule.objects.filter(every=1, period="seconds").first()
    return schedule or IntervalSchedule.objects.create(every=1, period="seconds")


def line_snapshot(event_id: int) -> tuple[set[str], set[str]]:
    """The waiting and active members of one event at one instant (MULTI/EXEC)."""
    keys = EventKeys(event_id)
    pipe = get_redis().pipeline(transaction=True)
    pipe.zrange(keys.waiting, 0, -1)
    pipe.zrange(keys.active, 0, -1)
    waiting, active = pipe.execute()
    return {str(member) for member in waiting}, {str(member) for member in active}


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_two_beats_by_mistake_keep_admission_exact_and_sweeps_harmless(
    broker: str, event_factory: Factory, user_factory: Factory, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Two ``celery beat`` processes (the DatabaseScheduler, the same periodic tasks) and
    one worker for ``admission,mail,default``, all on RabbitMQ. Every periodic task is
    sent twice. Sampling the line all along: never more than ``CAPACITY`` passes, and
    admission strictly in arrival order (everyone let in arrived before everyone still
    waiting), because each tick is one Lua script. The same two beats driving the
    admission split in round trips (``broker_probe.split_admission_tick``, on an event
    that is not on sale, so the real tick leaves it alone) overfill it. The reconciler
    and the unsent-mail sweep, every second from each beat, leave one mail and a correct
    seat map."""
    event = event_factory(capacity=CAPACITY, pass_seconds=PASS_SECONDS)
    control = event_factory(title="Negative control", sales_open_at=timezone.now() + timedelta(hours=1))
    schedule_migration.create_admission_schedule(django_apps, None)
    PeriodicTask.objects.create(
        name="negative control: admission split in round trips",
        task=SPLIT_TASK_NAME,
        interval=every_second(),
        queue="admission",
        expire_seconds=2,
        kwargs=json.dumps(
            {
                "event_id": control.pk,
                "capacity": CAPACITY,
                "pass_seconds": PASS_SECONDS,
                "pause_seconds": SPLIT_PAUSE_SECONDS,
            }
        ),
    )
    # The reconciler (30 s) and the unsent-mail sweep (60 s) every second, so that the
    # test sees each of them sent by both beats many times.
    for name, task in (
        ("events: reconcile seat maps", "events.tasks.reconcile_seat_maps"),
        ("booking: re-queue unsent e-mails", "booking.tasks.requeue_unsent_emails"),
    ):
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": every_second(), "enabled": True}
        )
    # A booking whose mail never went out (the broker was down at commit), old enough for
    # the sweep; its seat is sold in the database only, so the reconciler must fix the map.
    booking = make_unmailed_booking(event, user_factory())
    Booking.objects.filter(pk=booking.pk).update(confirmed_at=timezone.now() - timedelta(minutes=11))
    sold_seat = booking.tickets.get().seat_id
    assert seat_statuses(event_id=event.pk)[sold_seat] == "available"

    arrival: dict[str, int] = {}
    for user_id in range(1, BUYERS + 1):
        entry, _ = line_join(event_id=event.pk, user_id=user_id, sales_open_at_ms=0)
        arrival[str(user_id)] = entry.arrival
        line_join(event_id=control.pk, user_id=user_id, sales_open_at_ms=0)
    everyone = set(arrival)

    env = celery_env(broker, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_sink.port))
    worker_log = tmp_path / "worker.log"
    worker = start_celery(
        worker_args("admission,mail,default", name="everything", concurrency=2), log_path=worker_log, env=env
    )
    beats: list[subprocess.Popen] = []
    samples = most_active = most_control = 0
    log_while_running = ""
    order_violations: list[str] = []
    admitted_ever: set[str] = set()
    beats_alive = False
    try:
        wait_for_ready(worker, worker_log)
        beats = [
            start_celery(["beat", "-l", "info"], log_path=tmp_path / f"beat{n}.log", env=env) for n in (1, 2)
        ]
        deadline = time.monotonic() + TWO_BEATS_TIMEOUT_SECONDS
        while time.monotonic() < deadline and worker.poll() is None:
            waiting, active = line_snapshot(event.pk)
            admitted = everyone - waiting
            samples += 1
            most_active = max(most_active, len(active))
            admitted_ever |= admitted
            if admitted and waiting:
                last_in = max(admitted, key=arrival.__getitem__)
                first_waiting = min(waiting, key=arrival.__getitem__)
                if arrival[last_in] > arrival[first_waiting]:
                    order_violations.append(f"{last_in} admitted while {first_waiting} still waits")
            most_control = max(most_control, get_redis().zcard(EventKeys(control.pk).active))
            if (
                len(admitted_ever) >= 3 * CAPACITY
                and most_control > CAPACITY
                and len(smtp_sink.messages) >= 1
            ):
                break
            time.sleep(0.02)
        beats_alive = all(beat.poll() is None for beat in beats)
        time.sleep(1.0)  # room for a (wrong) second mail
        # Read before the shutdown below: stopping the worker mid-task (the control's
        # 0.7 s tick) logs a WorkerLostError of the test's own making.
        log_while_running = worker_log.read_text(errors="replace")
    finally:
        for beat in beats:
            stop_process_group(beat)
        stop_process_group(worker)
    log = worker_log.read_text(errors="replace")
    beat_logs = "\n".join((tmp_path / f"beat{n}.log").read_text(errors="replace") for n in (1, 2) if beats)
    records = probe_records(log)
    tick_senders = {pid for name, pid, _ in records if name == ADMISSION_TASK_NAME}
    beat_pids = {beat.pid for beat in beats}
    sweeps = sum(1 for name, _, _ in records if name == "booking.tasks.requeue_unsent_emails")
    sends = sum(1 for name, _, _ in records if name == "booking.tasks.send_ticket_email")
    reconciles = {pid for name, pid, _ in records if name == "events.tasks.reconcile_seat_maps"}
    print(
        f"\nBROKER-FIGURE two beats: {sum(1 for r in records if r[0] == ADMISSION_TASK_NAME)} admission "
        f"ticks run, sent by beat pids {sorted(tick_senders)}; {samples} snapshots: at most {most_active} "
        f"live passes (capacity {CAPACITY}), {len(admitted_ever)} admitted, "
        f"{len(order_violations)} order violations; negative control (split admission): at most "
        f"{most_control} live passes; {sweeps} sweeps, {sends} ticket sends, "
        f"{len(smtp_sink.messages)} mail(s)"
    )
    assert beats_alive, beat_logs[-4000:]
    # Both beats really ran: the worker ran ticks published by each of them.
    assert tick_senders >= beat_pids, (sorted(tick_senders), sorted(beat_pids), log[-3000:])
    assert samples > 50 and len(admitted_ever) >= 3 * CAPACITY, (samples, len(admitted_ever), log[-3000:])
    assert most_active <= CAPACITY, most_active
    assert order_violations == [], order_violations[:5]
    # The negative control: the same beats, the admission split in round trips, overfill.
    assert most_control > CAPACITY, (most_control, log[-3000:])
    # The sweep ran from both beats and queued the send more than once: still one mail.
    assert len(smtp_sink.messages) == 1, log[-3000:]
    assert booking.code.encode() in smtp_sink.messages[0]
    booking.refresh_from_db()
    assert booking.emailed_at is not None
    assert reconciles >= beat_pids, (sorted(reconciles), log[-3000:])
    assert seat_statuses(event_id=event.pk)[sold_seat] == "sold"
    assert "Traceback" not in log_while_running, log_while_running[-6000:]


# --- ticket mail through RabbitMQ ------------------------------------------------------------


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_ticket_mail_survives_a_mail_worker_killed_mid_send_and_arrives_once(
    broker: str, event_factory: Factory, user_factory: Factory, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The booking's on-commit publish puts the ticket task in RabbitMQ. A real ``celery
    worker -Q mail`` takes it (acked late: RabbitMQ holds it as unacknowledged) and hangs
    on an SMTP relay that never greets; we SIGKILL the worker and its pool child. RabbitMQ
    requeues the task as soon as the dead worker's channel closes (no visibility timeout
    to wait for), marks it redelivered, and the next worker sends exactly one mail."""
    event = event_factory()
    buyer = make_auth_client(user_factory())
    admit_users(event, buyer.user)
    with app_publishing_to(broker):
        confirmed, _ = hold_and_confirm(buyer, event, seat_ids_of(event, 2))
    assert confirmed.status_code == 201, confirmed.content
    booking = Booking.objects.get(code=confirmed.json()["code"])
    assert queue_depth(broker, "mail") == 1

    env = celery_env(broker, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_sink.port))
    smtp_sink.stall()
    doomed_log = tmp_path / "doomed.log"
    doomed = start_celery(worker_args("mail", name="doomed"), log_path=doomed_log, env=env)
    try:
        reached_smtp = wait_until(
            lambda: smtp_sink.connections >= 1 or doomed.poll() is not None, timeout=STARTUP_TIMEOUT_SECONDS
        )
        # Delivered to the doomed worker and not acknowledged: nothing ready in the queue.
        ready_while_sending = queue_depth(broker, "mail")
    finally:
        stop_process_group(doomed, sig=signal.SIGKILL)
    assert reached_smtp, doomed_log.read_text(errors="replace")[-3000:]
    assert ready_while_sending == 0
    killed = time.monotonic()
    assert wait_until(lambda: queue_depth(broker, "mail") == 1, timeout=10), list_queues(broker)
    requeue_seconds = time.monotonic() - killed
    assert smtp_sink.messages == []
    booking.refresh_from_db()
    assert booking.emailed_at is None

    smtp_sink.answer()
    survivor_log = tmp_path / "survivor.log"
    restarted = time.monotonic()
    survivor = start_celery(worker_args("mail", name="survivor"), log_path=survivor_log, env=env)
    try:
        delivered = wait_until(
            lambda: len(smtp_sink.messages) >= 1 or survivor.poll() is not None,
            timeout=STARTUP_TIMEOUT_SECONDS,
        )
        delivery_seconds = time.monotonic() - restarted
        time.sleep(1.0)  # room for a (wrong) second mail
    finally:
        stop_process_group(survivor)
    log = survivor_log.read_text(errors="replace")
    print(
        f"\nBROKER-FIGURE mail worker SIGKILLed mid-send: task back in the queue {requeue_seconds:.2f} s "
        f"after the kill; the next worker sent it {delivery_seconds:.1f} s after its start; "
        f"mails received: {len(smtp_sink.messages)}"
    )
    assert delivered, log[-3000:]
    assert len(smtp_sink.messages) == 1, log[-3000:]
    assert booking.code.encode() in smtp_sink.messages[0]
    booking.refresh_from_db()
    assert booking.emailed_at is not None
    assert ("booking.tasks.send_ticket_email", "True") in {
        (name, again) for name, _, again in probe_records(log)
    }
    queues = list_queues(broker)
    assert (queues["mail"]["messages_ready"], queues["mail"]["messages_unacknowledged"]) == ("0", "0"), queues


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_bookings_answer_at_once_with_rabbitmq_unreachable_and_the_sweep_mails_them_once(
    broker: str, event_factory: Factory, user_factory: Factory, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Three bookings: one while the broker URL points at a closed port, one while it
    points at a port that accepts connections and never answers, one with RabbitMQ up.
    All three answer 201; the first two within a bounded time (the connect timeout), with
    their mail left unsent (``emailed_at`` NULL) instead of a hung request. The third's mail
    arrives once. Then the unsent-mail sweep runs twice (as two beats would send it): the
    two missing mails arrive, once each."""
    event = event_factory(rows=2, seats_per_row=5)
    seats = seat_ids_of(event)
    buyers = [make_auth_client(user_factory()) for _ in range(3)]
    admit_users(event, *(buyer.user for buyer in buyers))
    env = celery_env(broker, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_sink.port))
    worker_log = tmp_path / "worker.log"
    worker = start_celery(worker_args("mail", name="mail"), log_path=worker_log, env=env)
    silent = SilentListener()
    try:
        with app_publishing_to(f"amqp://guest:guest@127.0.0.1:{free_port()}//"):
            refused, refused_seconds = hold_and_confirm(buyers[0], event, seats[0:1])
        with app_publishing_to(f"amqp://guest:guest@127.0.0.1:{silent.port}//"):
            unanswered, unanswered_seconds = hold_and_confirm(buyers[1], event, seats[1:2])
        assert (refused.status_code, unanswered.status_code) == (201, 201), (
            refused.content,
            unanswered.content,
        )
        unsent = Booking.objects.filter(code__in=[refused.json()["code"], unanswered.json()["code"]])
        assert [row.emailed_at for row in unsent] == [None, None]

        wait_for_ready(worker, worker_log)
        with app_publishing_to(broker):
            normal, _ = hold_and_confirm(buyers[2], event, seats[2:3])
            assert normal.status_code == 201, normal.content
            assert wait_until(lambda: len(smtp_sink.messages) >= 1, timeout=30), worker_log.read_text()[
                -3000:
            ]

            unsent.update(confirmed_at=timezone.now() - timedelta(minutes=11))
            swept = [requeue_unsent_emails(), requeue_unsent_emails()]
            assert swept[0] == 2
            assert wait_until(lambda: len(smtp_sink.messages) >= 3, timeout=30), worker_log.read_text()[
                -3000:
            ]
            time.sleep(1.0)  # room for (wrong) extra mails
    finally:
        silent.close()
        stop_process_group(worker)
    print(
        f"\nBROKER-FIGURE RabbitMQ unreachable at commit: booking 201 in {refused_seconds:.2f} s "
        f"(port closed) and {unanswered_seconds:.2f} s (port silent); sweeps queued {swept}; "
        f"mails received: {len(smtp_sink.messages)} for 3 bookings"
    )
    assert refused_seconds < PUBLISH_BOUND_SECONDS
    assert unanswered_seconds < PUBLISH_BOUND_SECONDS
    codes = [booking["code"] for booking in (refused.json(), unanswered.json(), normal.json())]
    assert sorted(sum(code.encode() in message for message in smtp_sink.messages) for code in codes) == [
        1,
        1,
        1,
    ]
    assert len(smtp_sink.messages) == 3
    assert not Booking.objects.filter(code__in=codes, emailed_at__isnull=True).exists()


# --- what RabbitMQ keeps ----------------------------------------------------------------------


@pytest.mark.rabbitmq
def test_celery_declares_durable_queues_persistent_tasks_and_rabbitmq_drops_stale_ticks(
    fresh_vhost: str,
) -> None:
    """On a fresh virtual host, the project's own publishes declare the three queues:
    durable, never auto-deleted, each bound to a durable direct exchange of its name. A
    task is persistent (delivery mode 2: on disk with its durable queue, it survives a
    RabbitMQ restart). The admission tick carries a per-message TTL of 2 s (Celery turns
    ``expires=2`` into the AMQP ``expiration``, besides the ``expires`` header a worker
    checks), so RabbitMQ drops a tick nobody took in time: no backlog of ticks replays
    after an admission worker outage."""
    url = fresh_vhost
    with app_publishing_to(url):
        send_ticket_email.delay(0)  # no such booking; nobody consumes it here anyway
        requeue_unsent_emails.delay()
        admit_on_sale_events.delay()
        with celery_app.connection_for_write(url) as connection:
            mail_message = connection.default_channel.basic_get("mail", no_ack=True)
            tick = connection.default_channel.basic_get("admission", no_ack=True)
        admit_on_sale_events.delay()  # this one nobody takes
        published = time.monotonic()
        ticks_waiting = queue_depth(url, "admission")
        dropped = wait_until(lambda: queue_depth(url, "admission") == 0, timeout=10, interval=0.1)
        dropped_after = time.monotonic() - published
    queues, exchanges = list_queues(url), list_exchanges(url)
    print(
        f"\nBROKER-FIGURE an untaken admission tick was dropped by RabbitMQ {dropped_after:.1f} s after publish"
    )
    for name in QUEUE_NAMES:
        assert (queues[name]["durable"], queues[name]["auto_delete"]) == ("true", "false"), queues
        assert (exchanges[name]["type"], exchanges[name]["durable"]) == ("direct", "true"), exchanges
    assert mail_message is not None and mail_message.properties["delivery_mode"] == 2
    assert tick is not None and tick.properties["expiration"] == "2000"
    assert tick.headers["expires"]
    assert ticks_waiting == 1
    assert dropped, "RabbitMQ kept a tick past its TTL"
    assert queues["admission"]["messages_ready"] == "0"


# --- fail fast ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_without_a_broker_exit_69_with_a_clear_message(tmp_path: Path) -> None:
    """``celery worker`` and ``celery beat`` pointed at a broker that is down (a closed
    port) retry for ``CELERY_BROKER_STARTUP_WAIT`` seconds (2 here, 20 by default), then
    exit with status 69 and say which broker they could not reach, password masked."""
    port = free_port()
    env = celery_env(f"amqp://guest:guest@127.0.0.1:{port}//", CELERY_BROKER_STARTUP_WAIT="2")
    started = time.monotonic()
    processes = {
        "worker": start_celery(
            worker_args("admission", name="orphan"), log_path=tmp_path / "worker.log", env=env
        ),
        "beat": start_celery(["beat", "-l", "info"], log_path=tmp_path / "beat.log", env=env),
    }
    statuses: dict[str, int | None] = {}
    seconds: dict[str, float] = {}
    try:
        for role, process in processes.items():
            try:
                statuses[role] = process.wait(timeout=STARTUP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                statuses[role] = None
            seconds[role] = time.monotonic() - started
    finally:
        for process in processes.values():
            stop_process_group(process, sig=signal.SIGKILL)
    print(
        f"\nBROKER-FIGURE no broker at start: worker exited {statuses['worker']} after {seconds['worker']:.1f} s, "
        f"beat exited {statuses['beat']} after {seconds['beat']:.1f} s (process start included)"
    )
    for role in processes:
        log = (tmp_path / f"{role}.log").read_text(errors="replace")
        assert statuses[role] == BROKER_UNAVAILABLE_EXIT_STATUS, log[-3000:]
        assert f"celery {role}: cannot connect to the broker amqp://guest:**@127.0.0.1:{port}//" in log, log[
            -3000:
        ]
        assert "guest:guest" not in log
