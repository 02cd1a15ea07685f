"""The brute-force guard on the API token endpoint, and its backend (real Redis cache)."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from accounts.login_guard import client_ip
from accounts.tests.helpers import PASSWORD, obtain_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT_ACCOUNT = 3
    settings.LOGIN_FAILURE_LIMIT_IP = 5
    settings.LOGIN_FAILURE_WINDOW = 60
    return settings


def fail(api_client, email: str, times: int, ip: str = "10.0.0.1") -> None:
    for _ in range(times):
        assert obtain_token(api_client, email, "wrong password", ip=ip).status_code == 401


def test_the_account_is_locked_after_the_limit_even_for_the_right_password(api_client, user, limits):
    fail(api_client, user.email, 3)

    response = obtain_token(api_client, user.email, PASSWORD)

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert set(response.json()) == {"code", "detail"}
    assert 1 <= int(response["Retry-After"]) <= 60


def test_the_lock_is_per_account_not_per_spelling(api_client, user, limits):
    fail(api_client, user.email.upper(), 2)
    fail(api_client, f"  {user.email} ", 1)

    assert obtain_token(api_client, user.email, PASSWORD).status_code == 429


def test_the_locked_account_stays_locked_from_another_address(api_client, user, limits):
    fail(api_client, user.email, 3, ip="10.0.0.1")

    assert obtain_token(api_client, user.email, PASSWORD, ip="10.9.9.9").status_code == 429


def test_another_account_from_another_address_is_unaffected(api_client, user_factory, limits):
    victim, bystander = user_factory(), user_factory()
    fail(api_client, victim.email, 3, ip="10.0.0.1")

    assert obtain_token(api_client, bystander.email, PASSWORD, ip="10.0.0.2").status_code == 200


def test_one_address_is_locked_after_failing_on_many_accounts(api_client, user_factory, limits):
    limits.LOGIN_FAILURE_LIMIT_IP = 4
    for _ in range(2):
        fail(api_client, user_factory().email, 2, ip="10.0.0.66")  # under the account limit
    other = user_factory()

    assert obtain_token(api_client, other.email, PASSWORD, ip="10.0.0.66").status_code == 429
    assert obtain_token(api_client, other.email, PASSWORD, ip="10.0.0.7").status_code == 200


def test_a_successful_login_resets_the_account_counter(api_client, user, limits):
    fail(api_client, user.email, 2)
    assert obtain_token(api_client, user.email, PASSWORD).status_code == 200
    fail(api_client, user.email, 2)  # 4 failures in the window, but only 2 since the login

    assert obtain_token(api_client, user.email, PASSWORD).status_code == 200


def test_a_locked_out_user_gets_back_in_after_the_window(api_client, user, limits):
    limits.LOGIN_FAILURE_WINDOW = 1
    limits.LOGIN_FAILURE_LIMIT_ACCOUNT = 2
    fail(api_client, user.email, 2)
    locked = obtain_token(api_client, user.email, PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == "1"
    # Refused attempts do not count, so an attacker hammering on cannot extend the lock.
    assert obtain_token(api_client, user.email, "wrong password").status_code == 429

    time.sleep(1.2)

    assert obtain_token(api_client, user.email, PASSWORD).status_code == 200


def test_every_authenticate_call_goes_through_the_guard(user, limits):
    # Not only the token endpoint: any caller of django.contrib.auth.authenticate().
    request = RequestFactory().post("/", REMOTE_ADDR="10.0.0.1")
    assert authenticate(request, email=user.email, password=PASSWORD) == user
    for _ in range(3):
        assert authenticate(request, email=user.email, password="wrong password") is None

    assert authenticate(request, email=user.email, password=PASSWORD) is None
    elsewhere = RequestFactory().post("/", REMOTE_ADDR="10.0.0.2")
    assert authenticate(elsewhere, email=user.email.upper(), password=PASSWORD) is None


def test_a_client_cannot_dodge_the_address_counter_with_x_forwarded_for(api_client, user_factory, limits):
    limits.LOGIN_FAILURE_LIMIT_IP = 2
    for n in range(2):
        response = api_client.post(
            "/api/auth/token/",
            {"email": user_factory().email, "password": "wrong"},
            format="json",
            REMOTE_ADDR="10.0.0.5",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
        assert response.status_code == 401

    assert obtain_token(api_client, user_factory().email, PASSWORD, ip="10.0.0.5").status_code == 429


def test_client_ip_believes_only_the_hops_of_our_own_proxies(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert client_ip(request) == "10.0.0.1"

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert client_ip(request) == "203.0.113.9"
    assert client_ip(None) is None
