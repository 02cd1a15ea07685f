"""Attacks: forged and replayed tokens, other people's objects, mass assignment, CSRF,
password guessing, skipping the queue, and one account trying to stand in line twice.

Each test plays the attacker against the real endpoints (test client, or real threads
against the live server for the concurrent ones) and then checks what the attacker got:
the status, and that nothing changed in the database or Redis.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import Counter
from typing import Any

import jwt
import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.api.views import TokenRefreshApi
from accounts.models import User
from booking.models import Booking, BookingStatus
from booking.services import booking_confirm, seats_hold
from booking.tests.conftest import admit_users, seat_ids_of
from conftest import make_auth_client
from events.models import Event, Seat, SeatStatus
from queueing.connection import get_redis
from queueing.holds import holds_get
from queueing.keys import EventKeys
from queueing.line import controls_get, line_status, pass_expires_at_ms

PASSWORD = "correct horse battery staple"  # the user_factory default
REQUEST_TIMEOUT = 30


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def signed(payload: dict[str, Any], *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key or django_settings.SIMPLE_JWT["SIGNING_KEY"], algorithm=algorithm)


def forged_tokens(victim: User, attacker: User) -> dict[str, str]:
    """Access tokens that must all be refused, each claiming to be ``victim``."""
    genuine = AccessToken.for_user(victim)
    claims = dict(genuine.payload)
    now = int(time.time())
    header, _payload, signature = str(AccessToken.for_user(attacker)).split(".")
    return {
        "alg none (unsigned)": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.",
        "signed with another key": signed(claims, key="k" * 64),
        "HS512 with the right key (algorithm confusion)": signed(claims, algorithm="HS512"),
        "expired": signed({**claims, "iat": now - 3600, "exp": now - 60}),
        "not valid before (nbf) an hour from now": signed({**claims, "nbf": now + 3600}),
        "issued (iat) an hour from now": signed({**claims, "iat": now + 3600, "exp": now + 7200}),
        "refresh token used as access": str(RefreshToken.for_user(victim)),
        "attacker's token with the user id edited": f"{header}.{b64(claims)}.{signature}",
        "no user id claim": signed({key: value for key, value in claims.items() if key != "user_id"}),
        "garbage": "not.a.token",
    }


@pytest.fixture
def victim_world(
    user_factory, event_factory, django_capture_on_commit_callbacks, eager_celery
) -> dict[str, Any]:
    victim = user_factory(is_staff=True)
    attacker = user_factory()
    event = event_factory()
    seats = seat_ids_of(event)
    admit_users(event, victim)
    seats_hold(event_id=event.pk, user_id=victim.pk, seat_ids=seats[:1])
    with django_capture_on_commit_callbacks(execute=True):
        booking, _ = booking_confirm(user_id=victim.pk, event_id=event.pk, seat_ids=seats[:1])
    return {"victim": victim, "attacker": attacker, "event": event, "booking": booking, "seats": seats}


def authenticated_endpoints(event: Event, booking: Booking, seat: int) -> list[tuple[str, str, dict | None]]:
    """Every endpoint that needs a user (API.md), with a body an owner could send."""
    queue = f"/api/events/{event.pk}/queue/"
    holds = f"/api/events/{event.pk}/holds/"
    rush = f"/api/staff/events/{event.pk}/rush/"
    return [
        ("get", "/api/auth/me/", None),
        ("post", "/api/auth/logout/", {"refresh": "x"}),
        ("post", queue, None),  # the fast lane (bearer)
        ("get", queue, None),  # the fast lane (bearer)
        ("delete", queue, None),
        ("post", holds, {"seat_ids": [seat]}),
        ("get", holds, None),
        ("delete", holds, None),
        ("post", "/api/bookings/", {"event_id": event.pk, "seat_ids": [seat]}),
        ("get", "/api/bookings/", None),
        ("get", f"/api/bookings/{booking.code}/", None),
        ("post", f"/api/bookings/{booking.code}/cancel/", None),
        ("get", rush, None),
        ("patch", rush, {"paused": True}),
    ]


# --- forged tokens ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the HS512 forgery
@pytest.mark.parametrize(
    "kind",
    [
        "alg none (unsigned)",
        "signed with another key",
        "HS512 with the right key (algorithm confusion)",
        "expired",
        "not valid before (nbf) an hour from now",
        "issued (iat) an hour from now",
        "refresh token used as access",
        "attacker's token with the user id edited",
        "no user id claim",
        "garbage",
    ],
)
def test_forged_access_tokens_are_401_on_every_authenticated_endpoint(kind, victim_world):
    world = victim_world
    token = forged_tokens(world["victim"], world["attacker"])[kind]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    answers = {}
    for method, path, body in authenticated_endpoints(world["event"], world["booking"], world["seats"][1]):
        response = (
            getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)
        )
        answers[f"{method.upper()} {path}"] = response.status_code
        if response.status_code == 401:
            assert response.json()["code"] in {
                "token_not_valid",
                "not_authenticated",
                "authentication_failed",
            }
    assert set(answers.values()) == {401}, answers
    # Nothing happened on the victim's behalf.
    event, victim = world["event"], world["victim"]
    assert Booking.objects.get(pk=world["booking"].pk).status == BookingStatus.CONFIRMED
    assert Booking.objects.filter(user=victim).count() == 1
    assert holds_get(event_id=event.pk, user_id=victim.pk).seat_ids == []
    assert line_status(event_id=event.pk, user_id=victim.pk).state in {"none", "active"}
    assert not controls_get(event_id=event.pk).get("paused")


@pytest.mark.django_db
def test_forged_and_misused_refresh_tokens_are_401(user, user_factory):
    genuine = RefreshToken.for_user(user)
    claims = dict(genuine.payload)
    now = int(time.time())
    header, _payload, signature = str(RefreshToken.for_user(user_factory())).split(".")
    refreshes = {
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.",
        "another key": signed(claims, key="k" * 64),
        "expired": signed({**claims, "exp": now - 60}),
        "access token as refresh": str(genuine.access_token),
        "user id edited": f"{header}.{b64(claims)}.{signature}",
    }
    client = APIClient()
    for kind, token in refreshes.items():
        response = client.post("/api/auth/token/refresh/", {"refresh": token}, format="json")
        assert response.status_code == 401, kind
    # The genuine one still works once (it was never touched above).
    assert (
        client.post("/api/auth/token/refresh/", {"refresh": str(genuine)}, format="json").status_code == 200
    )


@pytest.mark.django_db
def test_a_rotated_or_logged_out_refresh_token_is_refused(user):
    client = APIClient()
    first = str(RefreshToken.for_user(user))
    rotated = client.post("/api/auth/token/refresh/", {"refresh": first}, format="json")
    assert rotated.status_code == 200
    assert client.post("/api/auth/token/refresh/", {"refresh": first}, format="json").status_code == 401

    second = rotated.json()["refresh"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated.json()['access']}")
    assert client.post("/api/auth/logout/", {"refresh": second}, format="json").status_code == 205
    client.credentials()
    assert client.post("/api/auth/token/refresh/", {"refresh": second}, format="json").status_code == 401


# --- concurrent refreshes of one token -------------------------------------------------------


def concurrent_refreshes(base_url: str, refresh: str, count: int) -> list[int]:
    barrier = threading.Barrier(count)
    statuses: list[Any] = [None] * count

    def run(index: int) -> None:
        with requests.Session() as session:
            try:
                session.get(f"{base_url}/healthz", timeout=REQUEST_TIMEOUT)  # connect before the start
                barrier.wait(timeout=REQUEST_TIMEOUT)
                statuses[index] = session.post(
                    f"{base_url}/api/auth/token/refresh/", json={"refresh": refresh}, timeout=REQUEST_TIMEOUT
                ).status_code
            except Exception as exc:  # reported below
                statuses[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT * 2)
    assert all(isinstance(status, int) for status in statuses), statuses
    return statuses


# Scale with REFRESH_ROUNDS / REFRESH_RACERS for the README figure.
REFRESH_ROUNDS = int(os.environ.get("REFRESH_ROUNDS", "5"))
REFRESH_RACERS = int(os.environ.get("REFRESH_RACERS", "8"))


@pytest.fixture
def refresh_server(live_server: Any) -> Any:
    live_server.thread.httpd.socket.listen(64)  # more simultaneous connects than the default 10
    return live_server


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_token_yield_at_most_one_new_pair(refresh_server, user):
    for _round in range(REFRESH_ROUNDS):
        statuses = concurrent_refreshes(refresh_server.url, str(RefreshToken.for_user(user)), REFRESH_RACERS)
        assert Counter(statuses) == {200: 1, 401: REFRESH_RACERS - 1}, statuses
    print(
        f"\nATTACK-FIGURE {REFRESH_ROUNDS} rounds x {REFRESH_RACERS} simultaneous refreshes of one token: "
        f"exactly one new pair per round"
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_control_stock_simplejwt_refresh_forks_a_token_under_concurrency(refresh_server, user, monkeypatch):
    """The negative control: with simplejwt's own serializer (check, then get_or_create
    the blacklist row) concurrent refreshes of one token hand out several pairs."""
    monkeypatch.setattr(TokenRefreshApi, "serializer_class", TokenRefreshSerializer)
    forked = pairs = rounds = 0
    # At least REFRESH_ROUNDS rounds; more (up to 4x) only while no fork showed yet, so
    # that an unlucky schedule does not fail the control spuriously.
    while rounds < REFRESH_ROUNDS or (not forked and rounds < 4 * REFRESH_ROUNDS):
        statuses = concurrent_refreshes(refresh_server.url, str(RefreshToken.for_user(user)), REFRESH_RACERS)
        rounds += 1
        forked += Counter(statuses)[200] > 1
        pairs += Counter(statuses)[200]
    print(
        f"\nATTACK-FIGURE control (stock simplejwt serializer): {forked} of {rounds} rounds forked "
        f"the token, {pairs} pairs issued for {rounds} tokens"
    )
    assert forked >= 1


# --- other people's objects ------------------------------------------------------------------


@pytest.mark.django_db
def test_another_users_booking_is_404_everywhere_and_their_holds_untouchable(victim_world, client):
    world = victim_world
    event, victim, attacker, code = world["event"], world["victim"], world["attacker"], world["booking"].code
    admit_users(event, victim)
    seats_hold(event_id=event.pk, user_id=victim.pk, seat_ids=world["seats"][1:3])
    api = make_auth_client(attacker)
    admit_users(event, attacker)

    assert api.get(f"/api/bookings/{code}/").status_code == 404
    assert api.post(f"/api/bookings/{code}/cancel/").status_code == 404
    assert api.get("/api/bookings/").json()["results"] == []
    client.force_login(attacker)
    assert client.get(f"/my/tickets/{code}/").status_code == 404
    assert client.get(f"/my/tickets/{code}/cancel/").status_code == 404
    assert client.post(f"/my/tickets/{code}/cancel/").status_code == 404
    # Holds and queue places are per caller: the victim's seats can be neither released,
    # read, nor booked by the attacker.
    assert (
        api.delete(
            f"/api/events/{event.pk}/holds/", {"seat_ids": world["seats"][1:3]}, format="json"
        ).status_code
        == 204
    )
    assert api.get(f"/api/events/{event.pk}/holds/").json()["seat_ids"] == []
    booked = api.post(
        "/api/bookings/", {"event_id": event.pk, "seat_ids": world["seats"][1:3]}, format="json"
    )
    assert booked.status_code == 409 and booked.json()["code"] == "hold_missing"
    assert sorted(holds_get(event_id=event.pk, user_id=victim.pk).seat_ids) == sorted(world["seats"][1:3])
    assert Booking.objects.get(code=code).status == BookingStatus.CONFIRMED
    # Staff endpoints: a buyer is refused, not shown a 404.
    assert api.get(f"/api/staff/events/{event.pk}/rush/").status_code == 403
    assert (
        api.patch(f"/api/staff/events/{event.pk}/rush/", {"paused": True}, format="json").status_code == 403
    )


# --- mass assignment ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_register_ignores_privilege_fields(api_client):
    response = api_client.post(
        "/api/auth/register/",
        {
            "email": "mallory@example.com",
            "password": "a long enough passphrase",
            "name": "Mallory",
            "is_staff": True,
            "is_superuser": True,
            "is_active": False,
            "id": 1,
            "user": 1,
        },
        format="json",
    )
    assert response.status_code == 201
    mallory = User.objects.get(email="mallory@example.com")
    assert (mallory.is_staff, mallory.is_superuser, mallory.is_active) == (False, False, True)
    assert response.json() == {"id": mallory.pk, "email": "mallory@example.com", "name": "Mallory"}


@pytest.mark.django_db
def test_confirm_ignores_status_user_price_and_total_in_the_body(user, user_factory, on_sale_event):
    other = user_factory()
    client = make_auth_client(user)
    admit_users(on_sale_event, user)
    seat = seat_ids_of(on_sale_event, 1)
    assert (
        client.post(
            f"/api/events/{on_sale_event.pk}/holds/", {"seat_ids": seat, "user": other.pk}, format="json"
        ).status_code
        == 201
    )
    response = client.post(
        "/api/bookings/",
        {
            "event_id": on_sale_event.pk,
            "seat_ids": seat,
            "status": "cancelled",
            "user": other.pk,
            "user_id": other.pk,
            "price": "0.01",
            "total": "0.00",
            "is_staff": True,
            "emailed_at": "2020-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    booking = Booking.objects.get(code=response.json()["code"])
    assert (booking.user_id, booking.status, str(booking.total)) == (
        user.pk,
        BookingStatus.CONFIRMED,
        "55000.00",
    )
    assert booking.emailed_at is None
    assert response.json()["total"] == "55000.00"
    assert [str(ticket.price) for ticket in booking.tickets.all()] == ["55000.00"]
    assert not User.objects.get(pk=user.pk).is_staff
    assert not Booking.objects.filter(user=other).exists()


@pytest.mark.django_db
def test_staff_controls_ignore_read_only_figures(staff_user, on_sale_event):
    response = make_auth_client(staff_user).patch(
        f"/api/staff/events/{on_sale_event.pk}/rush/",
        {"capacity": 7, "admitted_total": 10**6, "sold_seats": 0, "available_seats": 10**6, "waiting": -1},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["capacity"], body["admitted_total"], body["sold_seats"], body["available_seats"]) == (
        7,
        0,
        0,
        10,
    )
    assert Seat.objects.filter(event=on_sale_event, status=SeatStatus.AVAILABLE).count() == 10


@pytest.mark.django_db
def test_me_cannot_be_written(auth_client):
    for method in ("post", "put", "patch"):
        response = getattr(auth_client, method)("/api/auth/me/", {"is_staff": True}, format="json")
        assert response.status_code == 405
    assert auth_client.get("/api/auth/me/").json()["is_staff"] is False


# --- CSRF ------------------------------------------------------------------------------------


def csrf_client(user: User | None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def csrf_token_of(client: Client) -> str:
    client.get("/accounts/login/")  # any page with a form sets the cookie
    return client.cookies["csrftoken"].value


@pytest.mark.django_db
def test_every_state_changing_browser_form_refuses_a_post_without_the_csrf_token(victim_world):
    world = victim_world
    event, code = world["event"], world["booking"].code
    anonymous_forms = [
        ("/accounts/login/", {"username": world["victim"].email, "password": PASSWORD}),
        (
            "/accounts/signup/",
            {"name": "x", "email": "x@example.com", "password": "p" * 12, "password_confirm": "p" * 12},
        ),
        ("/i18n/setlang/", {"language": "ko"}),
        ("/admin/login/", {"username": world["victim"].email, "password": PASSWORD}),
    ]
    user_forms = [
        ("/accounts/logout/", {}),
        (f"/events/{event.pk}/queue/", {"action": "join"}),
        (f"/events/{event.pk}/pick/", {"seat_ids": [world["seats"][2]]}),
        (f"/events/{event.pk}/checkout/", {"seat_ids": [world["seats"][2]], "idempotency_key": "k"}),
        (f"/my/tickets/{code}/cancel/", {}),
        ("/admin/events/event/add/", {"title": "x"}),
        (f"/admin/events/event/{event.pk}/delete/", {"post": "yes"}),
    ]
    for path, data in anonymous_forms:
        assert csrf_client(None).post(path, data).status_code == 403, path
    for path, data in user_forms:
        assert csrf_client(world["victim"]).post(path, data).status_code == 403, path
    assert Booking.objects.get(code=code).status == BookingStatus.CONFIRMED
    assert Event.objects.filter(pk=event.pk).exists()
    # The same post with the token passes the CSRF check (the 403 above was CSRF's).
    client = csrf_client(world["victim"])
    token = csrf_token_of(client)
    response = client.post(f"/my/tickets/{code}/cancel/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Booking.objects.get(code=code).status == BookingStatus.CANCELLED


@pytest.mark.django_db
def test_session_authenticated_api_calls_need_the_csrf_token(victim_world):
    world = victim_world
    event, victim = world["event"], world["victim"]
    admit_users(event, victim)
    calls = [
        ("post", f"/api/events/{event.pk}/queue/", None),
        ("delete", f"/api/events/{event.pk}/queue/", None),
        ("post", f"/api/events/{event.pk}/holds/", {"seat_ids": [world["seats"][3]]}),
        ("delete", f"/api/events/{event.pk}/holds/", None),
        ("post", "/api/bookings/", {"event_id": event.pk, "seat_ids": [world["seats"][3]]}),
        ("post", f"/api/bookings/{world['booking'].code}/cancel/", None),
        ("patch", f"/api/staff/events/{event.pk}/rush/", {"paused": True}),
        ("post", "/api/auth/logout/", {"refresh": str(RefreshToken.for_user(victim))}),
    ]
    client = csrf_client(victim)
    for method, path, body in calls:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"} if body else {}
        response = getattr(client, method)(path, **kwargs)
        assert response.status_code == 403, (path, response.content[:200])
        assert "CSRF" in response.json()["detail"], path
    assert not controls_get(event_id=event.pk).get("paused")
    assert Booking.objects.get(pk=world["booking"].pk).status == BookingStatus.CONFIRMED
    # Reads are safe methods: no token needed.
    assert client.get(f"/api/events/{event.pk}/queue/").status_code == 200
    # With the header the page JS sends, the same call goes through.
    token = csrf_token_of(client)
    response = client.patch(
        f"/api/staff/events/{event.pk}/rush/",
        data=json.dumps({"paused": True}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200


# --- brute-force log-in ------------------------------------------------------------------------


@pytest.mark.django_db
def test_password_guessing_is_throttled_on_the_api_the_site_and_the_admin(staff_user, settings):
    settings.LOGIN_FAILURE_LIMIT_ACCOUNT = 3
    email = staff_user.email
    api = APIClient()
    for _ in range(3):
        assert (
            api.post("/api/auth/token/", {"email": email, "password": "guess"}, format="json").status_code
            == 401
        )
    # Locked everywhere, even with the right password, each surface saying so.
    locked = api.post("/api/auth/token/", {"email": email, "password": PASSWORD}, format="json")
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    site = Client().post("/accounts/login/", {"username": email, "password": PASSWORD})
    assert site.status_code == 429 and int(site["Retry-After"]) > 0
    admin = Client().post("/admin/login/", {"username": email, "password": PASSWORD})
    assert admin.status_code == 200 and "_auth_user_id" not in admin.wsgi_request.session
    assert b"Too many failed" in admin.content


@pytest.mark.django_db
def test_one_address_guessing_across_many_accounts_is_throttled(user_factory, settings):
    settings.LOGIN_FAILURE_LIMIT_IP = 5
    users = [user_factory() for _ in range(6)]
    api = APIClient()
    answers = [
        api.post(
            "/api/auth/token/",
            {"email": u.email, "password": "guess"},
            format="json",
            REMOTE_ADDR="203.0.113.9",
        ).status_code
        for u in users
    ]
    assert answers == [401] * 5 + [429]


# --- skipping the queue ----------------------------------------------------------------------


@pytest.mark.django_db
def test_hold_and_confirm_without_a_pass_are_refused(user, on_sale_event, client):
    api = make_auth_client(user)
    seat = seat_ids_of(on_sale_event, 1)
    held = api.post(f"/api/events/{on_sale_event.pk}/holds/", {"seat_ids": seat}, format="json")
    assert held.status_code == 403 and held.json()["code"] == "not_admitted"
    booked = api.post("/api/bookings/", {"event_id": on_sale_event.pk, "seat_ids": seat}, format="json")
    assert booked.status_code == 403 and booked.json()["code"] == "not_admitted"
    # Joining gives a place in line, not a pass.
    assert api.post(f"/api/events/{on_sale_event.pk}/queue/").json()["state"] == "waiting"
    assert (
        api.post(f"/api/events/{on_sale_event.pk}/holds/", {"seat_ids": seat}, format="json").status_code
        == 403
    )
    client.force_login(user)
    assert client.get(f"/events/{on_sale_event.pk}/pick/")["Location"] == f"/events/{on_sale_event.pk}/queue/"
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_a_pass_for_one_event_opens_no_other(user, event_factory):
    admitted_to, other = event_factory(title="A"), event_factory(title="B")
    admit_users(admitted_to, user)
    api = make_auth_client(user)
    seat = seat_ids_of(other, 1)
    held = api.post(f"/api/events/{other.pk}/holds/", {"seat_ids": seat}, format="json")
    assert held.status_code == 403 and held.json()["code"] == "not_admitted"
    # Nor do its seats: seats of another event are refused even where the pass is valid.
    cross = api.post(f"/api/events/{admitted_to.pk}/holds/", {"seat_ids": seat}, format="json")
    assert cross.status_code == 400
    booked = api.post("/api/bookings/", {"event_id": other.pk, "seat_ids": seat}, format="json")
    assert booked.status_code == 403
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_an_expired_pass_is_refused(user, on_sale_event):
    admit_users(on_sale_event, user)
    api = make_auth_client(user)
    seat = seat_ids_of(on_sale_event, 1)
    # The pass expires: its score (expiry, Redis clock, ms) moves into the past.
    get_redis().zadd(EventKeys(on_sale_event.pk).active, {str(user.pk): 1}, xx=True)
    assert pass_expires_at_ms(event_id=on_sale_event.pk, user_id=user.pk) is None
    held = api.post(f"/api/events/{on_sale_event.pk}/holds/", {"seat_ids": seat}, format="json")
    assert held.status_code == 403 and held.json()["code"] == "not_admitted"
    booked = api.post("/api/bookings/", {"event_id": on_sale_event.pk, "seat_ids": seat}, format="json")
    assert booked.status_code == 403


# --- one account, one place ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_account_cannot_hold_two_places_in_one_queue(refresh_server, user, event_factory):
    """Ten simultaneous joins by one account, each with its own freshly issued token (ten
    devices, ten logins): one place in line, the same position for all of them."""
    event = event_factory()
    count = 10
    tokens = [str(AccessToken.for_user(user)) for _ in range(count)]
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count

    def join(index: int) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {tokens[index]}"
            try:
                session.get(f"{refresh_server.url}/healthz", timeout=REQUEST_TIMEOUT)
                barrier.wait(timeout=REQUEST_TIMEOUT)
                response = session.post(
                    f"{refresh_server.url}/api/events/{event.pk}/queue/", timeout=REQUEST_TIMEOUT
                )
                answers[index] = (response.status_code, response.json().get("position"))
            except Exception as exc:
                answers[index] = exc

    threads = [threading.Thread(target=join, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT * 2)
    assert Counter(status for status, _ in answers) == {201: 1, 200: count - 1}, answers
    assert {position for _, position in answers} == {1}
    assert get_redis().zcard(EventKeys(event.pk).waiting) == 1
    # A session (the waiting-room page) joins the same place too.
    page = APIClient()
    page.force_authenticate(user)
    assert page.get(f"/api/events/{event.pk}/queue/").json()["position"] == 1
