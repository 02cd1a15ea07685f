"""Faults: what buyers see, and what survives, when Redis, the database or a mail
worker fails in the middle of a sale.

Real servers, real failures: Redis is a redis-server of our own on a spare loopback port
(ticketing/tests/conftest.py) that the tests SIGKILL, restart empty, or freeze with
SIGSTOP; the database is locked by a second real connection; the mail worker is a real
``celery worker`` subprocess killed with SIGKILL while it talks to a hung SMTP server.
What is simulated, and how, is said in each test's docstring (and in the README, "Reliability and security").
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection, connections
from django.utils import timezone

from booking.models import Booking, BookingStatus, Ticket
from booking.services import code_generate
from booking.tasks import requeue_unsent_emails, send_ticket_email
from booking.tests.conftest import admit_users, seat_ids_of
from conftest import (
    celery_worker_command,
    celery_worker_start,
    database_url_for_subprocess,
    make_auth_client,
    stop_process_group,
)
from events.models import Seat, SeatStatus
from events.tasks import reconcile_seat_maps
from queueing.connection import get_redis
from queueing.holds import holds_get, seats_hold
from queueing.keys import EventKeys
from queueing.seatmap import seatmap_load
from queueing.tests.helpers import seat_statuses
from ticketing.tests.conftest import free_port, timed, wait_until

# A stalled Redis must cost a request about this long, never more (settings.py default: 2 s).
STALL_SOCKET_TIMEOUT = 0.5
# Slack on top of the socket timeout for the rest of the request on a busy 2-core machine.
REQUEST_SLACK_SECONDS = 1.0


def assert_503(response: Any) -> None:
    assert response.status_code == 503, (response.status_code, response.content[:300])
    assert int(response["Retry-After"]) > 0
    if response["Content-Type"].startswith("application/json"):
        body = response.json()
        # /healthz names what is down; every other JSON answer is the API error body.
        assert body.get("code") == "service_unavailable" or body.get("redis") == "unavailable", body


def hold_and_confirm(client: Any, event_id: int, seat_ids: list[int], capture: Any) -> dict[str, Any]:
    held = client.post(f"/api/events/{event_id}/holds/", {"seat_ids": seat_ids}, format="json")
    assert held.status_code == 201, held.content
    with capture(execute=True):
        confirmed = client.post("/api/bookings/", {"event_id": event_id, "seat_ids": seat_ids}, format="json")
    assert confirmed.status_code == 201, confirmed.content
    return confirmed.json()


def seat_map(client: Any, event_id: int) -> dict[int, str]:
    response = client.get(f"/api/events/{event_id}/seats/")
    assert response.status_code == 200, response.content
    return {seat["id"]: seat["status"] for seat in response.json()["seats"]}


# --- Redis killed in the middle of a rush, restarted empty ----------------------------------


@pytest.mark.django_db
def test_redis_killed_mid_rush_answers_503_keeps_bookings_and_is_healed_after_restart(
    queue_on_spare_redis,
    event_factory,
    user_factory,
    django_capture_on_commit_callbacks,
    eager_celery,
    client,
):
    server = queue_on_spare_redis
    event = event_factory(rows=2, seats_per_row=5)
    seats = seat_ids_of(event)
    first, second, late = (make_auth_client(user_factory()) for _ in range(3))
    admit_users(event, first.user, second.user)
    booking = hold_and_confirm(first, event.pk, seats[:2], django_capture_on_commit_callbacks)
    to_cancel = hold_and_confirm(second, event.pk, seats[2:3], django_capture_on_commit_callbacks)
    admit_users(event, second.user)  # confirming handed the pass back; a second turn
    held = second.post(f"/api/events/{event.pk}/holds/", {"seat_ids": seats[3:5]}, format="json")
    assert held.status_code == 201
    assert seat_map(first, event.pk)[seats[0]] == "sold"
    mails_before = len(mail.outbox)

    server.kill()
    # Within one pulse interval a seat-map check may still be answered from this
    # process's last pulse (a public answer at most that old); after it, Redis is asked.
    time.sleep(settings.QUEUE_PULSE_SECONDS + 0.05)

    # Everything that needs Redis says 503 + Retry-After, at once (a refused connection).
    for response in (
        late.post(f"/api/events/{event.pk}/queue/"),  # the fast lane (bearer token)
        late.get(f"/api/events/{event.pk}/queue/"),
        second.post(f"/api/events/{event.pk}/holds/", {"seat_ids": seats[5:6]}, format="json"),
        second.get(f"/api/events/{event.pk}/holds/"),
        second.post("/api/bookings/", {"event_id": event.pk, "seat_ids": seats[3:5]}, format="json"),
        late.get(f"/api/events/{event.pk}/seats/"),
        late.get("/healthz"),
    ):
        assert_503(response)
    client.force_login(second.user)
    page = client.get(f"/events/{event.pk}/pick/")
    assert_503(page)
    assert b"<html" in page.content.lower()
    # What needs only the database keeps working: the catalogue, the buyer's bookings,
    # and a cancel (its seat map update is repaired later by the reconciler).
    assert late.get(f"/api/events/{event.pk}/").status_code == 200
    listed = first.get("/api/bookings/")
    assert listed.status_code == 200
    assert [row["code"] for row in listed.json()["results"]] == [booking["code"]]
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = second.post(f"/api/bookings/{to_cancel['code']}/cancel/")
    assert cancelled.status_code == 200, cancelled.content

    # Confirmed bookings are untouched; the failed confirm wrote nothing.
    kept = Booking.objects.get(code=booking["code"])
    assert kept.status == BookingStatus.CONFIRMED
    assert sorted(kept.tickets.values_list("seat_id", flat=True)) == seats[:2]
    assert Booking.objects.filter(event=event, status=BookingStatus.CONFIRMED).count() == 1
    assert Seat.objects.get(pk=seats[2]).status == SeatStatus.AVAILABLE
    assert (
        list(Seat.objects.filter(event=event, status=SeatStatus.SOLD).values_list("pk", flat=True))
        == (seats[:2])
    )
    assert len(mail.outbox) == mails_before + 1  # the cancellation mail only

    # Redis comes back empty (no persistence): the reconciler rebuilds the map from the DB.
    server.start()
    assert seat_statuses(event_id=event.pk) is None
    reconciled = reconcile_seat_maps()
    assert reconciled[event.pk] == 2
    rebuilt = seat_statuses(event_id=event.pk)
    assert rebuilt is not None
    assert {seat: rebuilt[seat] for seat in seats[:3]} == {
        seats[0]: "sold",
        seats[1]: "sold",
        seats[2]: "available",
    }
    assert sorted(seat for seat, status in rebuilt.items() if status == "sold") == seats[:2]
    assert seat_map(late, event.pk) == rebuilt
    # The queue and the holds lived only in Redis: they are gone, and say so plainly.
    assert holds_get(event_id=event.pk, user_id=second.user.pk).seat_ids == []
    assert late.get(f"/api/events/{event.pk}/queue/").json()["code"] == "not_in_queue"
    assert late.post(f"/api/events/{event.pk}/queue/").status_code == 201
    assert late.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_redis_back_from_a_stale_snapshot_cannot_double_sell_and_is_reconciled(
    queue_on_spare_redis, event_factory, user_factory, django_capture_on_commit_callbacks, eager_celery
):
    """Redis restarted from an old snapshot: its seat map says a sold seat is free and
    another buyer even holds it. The database refuses the second sale; the reconciler
    drops the stale hold and marks the seat sold again."""
    server = queue_on_spare_redis
    event = event_factory()
    seat = seat_ids_of(event, 1)[0]
    first, second = (make_auth_client(user_factory()) for _ in range(2))
    admit_users(event, first.user)
    hold_and_confirm(first, event.pk, [seat], django_capture_on_commit_callbacks)

    server.kill()
    server.start()
    # The stale snapshot: every seat available, and a pass and a hold for the sold seat.
    seatmap_load(event_id=event.pk, statuses={seat_id: "available" for seat_id in seat_ids_of(event)})
    admit_users(event, second.user)
    seats_hold(event_id=event.pk, user_id=second.user.pk, seat_ids=[seat], hold_seconds=60, cap=4)

    refused = second.post("/api/bookings/", {"event_id": event.pk, "seat_ids": [seat]}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "seat_unavailable"
    assert Ticket.objects.filter(seat_id=seat).count() == 1

    reconcile_seat_maps()
    assert seat_statuses(event_id=event.pk)[seat] == "sold"
    assert holds_get(event_id=event.pk, user_id=second.user.pk).seat_ids == []
    assert not get_redis().exists(EventKeys(event.pk).seat(seat))


# --- Redis stalled (SIGSTOP) ---------------------------------------------------------------


@pytest.mark.django_db
def test_stalled_redis_fails_in_bounded_time_with_503_then_recovers(
    settings, spare_redis_server, event_factory, user_factory
):
    """SIGSTOP freezes the server with its socket open: connects succeed and reads hang,
    the worst kind of outage. Each request must give up after about
    REDIS_SOCKET_TIMEOUT with 503, never hang; after SIGCONT the same requests work."""
    settings.REDIS_SOCKET_TIMEOUT = STALL_SOCKET_TIMEOUT
    settings.REDIS_URL = spare_redis_server.url  # the client is built with the timeout above
    event = event_factory()
    seats = seat_ids_of(event, 2)
    buyer, newcomer = (make_auth_client(user_factory()) for _ in range(2))
    admit_users(event, buyer.user)
    assert seat_map(buyer, event.pk)[seats[0]] == "available"

    spare_redis_server.pause()
    calls = {
        "queue join (fast lane)": lambda: newcomer.post(f"/api/events/{event.pk}/queue/"),
        "queue status": lambda: buyer.get(f"/api/events/{event.pk}/queue/"),
        "seat map": lambda: buyer.get(f"/api/events/{event.pk}/seats/"),
        "hold": lambda: buyer.post(f"/api/events/{event.pk}/holds/", {"seat_ids": seats}, format="json"),
        "confirm": lambda: buyer.post(
            "/api/bookings/", {"event_id": event.pk, "seat_ids": seats}, format="json"
        ),
        "healthz": lambda: buyer.get("/healthz"),
    }
    try:
        elapsed = {}
        for name, call in calls.items():
            response, elapsed[name] = timed(call)
            assert_503(response)
    finally:
        spare_redis_server.resume()
    print(
        f"\nFAULT-FIGURE stalled Redis (socket timeout {STALL_SOCKET_TIMEOUT} s): 503 after "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in elapsed.items())
    )
    assert max(elapsed.values()) < STALL_SOCKET_TIMEOUT + REQUEST_SLACK_SECONDS, elapsed
    # Every one of them waited on Redis (and gave up): none answered from somewhere else.
    assert min(elapsed.values()) >= STALL_SOCKET_TIMEOUT * 0.9, elapsed

    # Back: the connections that timed out were dropped, no reply is read out of turn.
    # A 503'd command may still have run when Redis woke up; the retries are idempotent.
    joined = newcomer.post(f"/api/events/{event.pk}/queue/")
    assert joined.status_code in (200, 201)
    assert joined.json()["state"] == "waiting" and joined.json()["position"] == 1
    held = buyer.post(f"/api/events/{event.pk}/holds/", {"seat_ids": seats}, format="json")
    assert held.status_code == 201, held.content
    assert sorted(held.json()["seat_ids"]) == sorted(seats)
    assert buyer.get("/healthz").status_code == 200
    assert (
        buyer.post("/api/bookings/", {"event_id": event.pk, "seat_ids": seats}, format="json").status_code
        == 201
    )


# --- The database unavailable during confirm -------------------------------------------------


@contextmanager
def short_lock_waits() -> Any:
    """This test's own connection gives up on a lock after ~0.1 s (SQLite busy timeout)
    or 1 s (InnoDB lock wait) instead of the production 20 s / 50 s."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            previous = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
            cursor.execute("PRAGMA busy_timeout = 100")
            restore = f"PRAGMA busy_timeout = {int(previous)}"
        elif connection.vendor == "mysql":
            cursor.execute("SELECT @@SESSION.innodb_lock_wait_timeout")
            previous = cursor.fetchone()[0]
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
            restore = f"SET SESSION innodb_lock_wait_timeout = {int(previous)}"
        else:
            pytest.skip(f"no short lock wait known for {connection.vendor}")
    connection_id = id(connection.connection)
    try:
        yield
    finally:
        assert id(connection.connection) == connection_id, "the connection was replaced mid-test"
        with connection.cursor() as cursor:
            cursor.execute(restore)


@contextmanager
def seats_locked_by_another_connection(seat_ids: list[int]) -> Any:
    """A second real connection updates the seat rows and keeps its transaction open:
    SQLite then refuses every other writer (one writer at a time), InnoDB every writer of
    those rows. That is the database as a confirm sees it during a long lock or a stall."""
    other = connections.create_connection("default")
    other.ensure_connection()
    other.set_autocommit(False)
    try:
        with other.cursor() as cursor:
            table = other.ops.quote_name(Seat._meta.db_table)
            placeholders = ", ".join(["%s"] * len(seat_ids))
            cursor.execute(f"UPDATE {table} SET status = status WHERE id IN ({placeholders})", seat_ids)  # noqa: S608
        yield
    finally:
        other.rollback()
        other.set_autocommit(True)
        other.close()


@pytest.mark.django_db(transaction=True)
def test_database_locked_during_confirm_is_503_keeps_the_holds_and_sends_no_mail(
    event_factory, user_factory, eager_celery, client
):
    event = event_factory()
    seats = seat_ids_of(event, 2)
    buyer = make_auth_client(user_factory())
    admit_users(event, buyer.user)
    assert buyer.post(f"/api/events/{event.pk}/holds/", {"seat_ids": seats}, format="json").status_code == 201
    body = {"event_id": event.pk, "seat_ids": seats}
    client.force_login(buyer.user)  # the checkout page's session, written before the lock

    with short_lock_waits(), seats_locked_by_another_connection(seats):
        response, elapsed = timed(lambda: buyer.post("/api/bookings/", body, format="json"))
        assert_503(response)
        # The page path too: an HTML 503, not a 500.
        page = client.post(f"/events/{event.pk}/checkout/", {"seat_ids": seats, "idempotency_key": "k1"})
        assert_503(page)

    # Bounded: three attempts of one short lock wait each, with a small backoff.
    print(f"\nFAULT-FIGURE database locked ({connection.vendor}): confirm answered 503 after {elapsed:.2f} s")
    assert elapsed < (1.0 if connection.vendor == "sqlite" else 3.0) * 3 + 2, elapsed
    assert not Booking.objects.filter(event=event).exists()
    assert set(Seat.objects.filter(pk__in=seats).values_list("status", flat=True)) == {SeatStatus.AVAILABLE}
    # No orphan: the holds are still the buyer's, so a retry goes through.
    assert sorted(holds_get(event_id=event.pk, user_id=buyer.user.pk).seat_ids) == sorted(seats)
    assert mail.outbox == []

    retried = buyer.post("/api/bookings/", body, format="json")
    assert retried.status_code == 201, retried.content
    assert len(mail.outbox) == 1
    assert retried.json()["code"] in mail.outbox[0].subject


# --- A mail worker killed before it sent the ticket ------------------------------------------


def make_unmailed_booking(event: Any, user: Any) -> Booking:
    """A committed, confirmed booking whose ticket mail has not gone out yet, written
    directly so that no task is queued on the machine's broker."""
    seat = Seat.objects.filter(event=event).order_by("pk").first()
    Seat.objects.filter(pk=seat.pk).update(status=SeatStatus.SOLD)
    booking = Booking.objects.create(
        code=code_generate(8),
        user=user,
        event=event,
        status=BookingStatus.CONFIRMED,
        total=seat.price,
        confirmed_at=timezone.now(),
    )
    Ticket.objects.create(booking=booking, seat=seat, price=seat.price, code=code_generate(12))
    return booking


WORKER_SETTINGS = '''"""Settings of the mail worker started by ticketing/tests/test_faults.py."""
from ticketing.settings import *  # noqa: F403

# Redeliver an unacknowledged task after 1 s instead of 1 h, and look for such tasks every
# second instead of every 100 s, so that the test need not wait.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 1,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# Longer than the test needs to notice the hung SMTP connection and kill the worker.
EMAIL_TIMEOUT = 60
'''


def start_mail_worker(tmp_path: Path, *, name: str, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    log_path = tmp_path / f"{name}.log"
    return celery_worker_start(celery_worker_command("mail", name=name), env=env, log_path=log_path), log_path


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_mail_worker_killed_before_sending_the_ticket_sends_it_exactly_once_after_redelivery(
    tmp_path, spare_redis_server, smtp_sink, event_factory, user_factory
):
    """A real ``celery worker -Q mail`` takes the ticket task and hangs on an SMTP relay
    that accepts the connection but never greets; we SIGKILL the worker (main process
    and pool child) there. The task was acked late, so the broker still has it; a new
    worker gets it again (visibility timeout shortened to 1 s for the test) and the
    buyer receives exactly one mail, recorded in ``emailed_at``."""
    celery_worker_command("mail")  # skips here, before any setup, without the celery command
    event = event_factory()
    booking = make_unmailed_booking(event, user_factory())
    broker_url = f"redis://127.0.0.1:{spare_redis_server.port}/1"
    (tmp_path / "fault_worker_settings.py").write_text(WORKER_SETTINGS)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fault_worker_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(settings.BASE_DIR)]),
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": spare_redis_server.url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_sink.port),
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",
    }
    from ticketing.celery import app

    eager, app.conf.task_always_eager = app.conf.task_always_eager, False  # really publish it
    try:
        with app.connection_for_write(broker_url) as broker:
            send_ticket_email.apply_async((booking.pk,), connection=broker)
    finally:
        app.conf.task_always_eager = eager
    assert spare_redis_server.client(db=1).llen("mail") == 1

    smtp_sink.stall()
    worker, log_path = start_mail_worker(tmp_path, name="doomed", env=env)
    try:
        reached_smtp = wait_until(lambda: smtp_sink.connections >= 1 or worker.poll() is not None, timeout=45)
        if not reached_smtp:
            stop_process_group(worker, sig=signal.SIGABRT, timeout=5)  # faulthandler: where it hangs
    finally:
        stop_process_group(worker, sig=signal.SIGKILL)
    log = log_path.read_text(errors="replace")
    assert reached_smtp and smtp_sink.connections >= 1, log[-3000:]
    booking.refresh_from_db()
    assert booking.emailed_at is None
    assert smtp_sink.messages == []
    # Acked late: the task is still in the broker's unacknowledged set, not lost.
    assert spare_redis_server.client(db=1).hlen("unacked") == 1

    smtp_sink.answer()
    restarted = time.monotonic()
    worker, log_path = start_mail_worker(tmp_path, name="survivor", env=env)
    try:
        delivered = wait_until(lambda: len(smtp_sink.messages) >= 1 or worker.poll() is not None, timeout=60)
        delivery_seconds = time.monotonic() - restarted
        time.sleep(1.0)  # room for a (wrong) second delivery before we look
    finally:
        stop_process_group(worker)
    log = log_path.read_text(errors="replace")
    assert delivered, log[-3000:]
    print(
        f"\nFAULT-FIGURE mail worker SIGKILLed mid-send: the new worker delivered the ticket "
        f"{delivery_seconds:.1f} s after its start; mails received: {len(smtp_sink.messages)}"
    )
    assert len(smtp_sink.messages) == 1, log[-3000:]
    assert booking.code.encode() in smtp_sink.messages[0]
    booking.refresh_from_db()
    assert booking.emailed_at is not None

    # A third delivery (another redelivery, or the requeue sweep) sends nothing.
    assert send_ticket_email.run(booking.pk) is False
    assert len(smtp_sink.messages) == 1


@pytest.mark.django_db
def test_mail_interrupted_before_send_stays_unsent_and_the_sweep_sends_it_once(
    settings, event_factory, user_factory, eager_celery
):
    """The idempotency contract without a worker: a send that fails before the relay took
    the mail (nothing listens on the SMTP port) leaves ``emailed_at`` unset; the
    periodic sweep ``requeue_unsent_emails`` picks it up later, once."""
    booking = make_unmailed_booking(event_factory(), user_factory())
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()

    with pytest.raises(OSError):
        send_ticket_email.run(booking.pk)
    booking.refresh_from_db()
    assert booking.emailed_at is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert requeue_unsent_emails() == 0  # too recent: the task's own retries come first
    Booking.objects.filter(pk=booking.pk).update(confirmed_at=timezone.now() - timedelta(minutes=11))
    assert requeue_unsent_emails() == 1
    assert requeue_unsent_emails() == 0
    assert len(mail.outbox) == 1
    assert booking.code in mail.outbox[0].subject
