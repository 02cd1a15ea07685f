"""The account pages: sign up, log in (with the brute-force guard), log out."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts.models import User
from accounts.tests.helpers import PASSWORD, obtain_token

pytestmark = pytest.mark.django_db

SIGNUP = "/accounts/signup/"
LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"


def signup_data(**overrides: str) -> dict[str, str]:
    return {
        "name": "Page Buyer",
        "email": "page.buyer@example.com",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        **overrides,
    }


def logged_in_user_id(client: Client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


# --- sign up -------------------------------------------------------------------------------


def test_signup_page_has_a_labelled_form_with_csrf(client):
    response = client.get(SIGNUP)

    assert response.status_code == 200
    html = response.content.decode()
    assert "csrfmiddlewaretoken" in html
    for field in ("name", "email", "password", "password_confirm"):
        assert f'<label for="id_{field}"' in html


def test_signup_creates_the_user_logs_in_and_follows_next(client):
    response = client.post(f"{SIGNUP}?next=/events/7/", signup_data(email="Page.Buyer@Example.com"))

    assert response.status_code == 302
    assert response["Location"] == "/events/7/"
    user = User.objects.get()
    assert user.email == "page.buyer@example.com"
    assert user.name == "Page Buyer"
    assert logged_in_user_id(client) == user.id


def test_signup_without_next_goes_home_and_ignores_offsite_next(client):
    response = client.post(SIGNUP, {**signup_data(), "next": "https://evil.example/"})

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_signup_shows_a_duplicate_address_next_to_the_email_field(client, user_factory):
    user_factory(email="page.buyer@example.com")

    response = client.post(SIGNUP, signup_data(email="PAGE.buyer@example.com"))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<ul class="errorlist" id="id_email_error">' in html
    assert "already exists" in html
    assert 'aria-describedby="id_email_error"' in html
    assert User.objects.count() == 1
    assert logged_in_user_id(client) is None


def test_signup_shows_password_problems_next_to_the_password_fields(client):
    weak = client.post(SIGNUP, signup_data(password="password123", password_confirm="password123"))
    assert weak.status_code == 200
    assert "too common" in weak.content.decode()
    assert 'id="id_password_error"' in weak.content.decode()

    mismatch = client.post(SIGNUP, signup_data(password_confirm="something else entirely"))
    assert mismatch.status_code == 200
    assert 'id="id_password_confirm_error"' in mismatch.content.decode()
    assert not User.objects.exists()


# --- log in --------------------------------------------------------------------------------


def test_login_page_has_a_labelled_form_with_csrf(client):
    html = client.get(LOGIN).content.decode()

    assert "csrfmiddlewaretoken" in html
    assert '<label for="id_username"' in html
    assert '<label for="id_password"' in html


def test_login_with_the_right_password_follows_next(client, user):
    response = client.post(
        f"{LOGIN}?next=/my/tickets/", {"username": user.email.upper(), "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == "/my/tickets/"
    assert logged_in_user_id(client) == user.id


def test_login_with_a_wrong_password_shows_an_error(client, user):
    response = client.post(LOGIN, {"username": user.email, "password": "wrong"})

    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert logged_in_user_id(client) is None


def test_login_page_is_throttled_with_429(client, user, settings):
    settings.LOGIN_FAILURE_LIMIT_ACCOUNT = 2
    for _ in range(2):
        assert client.post(LOGIN, {"username": user.email, "password": "wrong"}).status_code == 200

    response = client.post(LOGIN, {"username": user.email, "password": PASSWORD})

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "Too many failed log-in attempts" in response.content.decode()
    assert logged_in_user_id(client) is None


def test_login_page_and_api_share_the_counter(client, api_client, user, settings):
    settings.LOGIN_FAILURE_LIMIT_ACCOUNT = 2
    obtain_token(api_client, user.email, "wrong", ip="10.0.0.8")
    client.post(LOGIN, {"username": user.email, "password": "wrong"}, REMOTE_ADDR="10.0.0.9")

    assert client.post(LOGIN, {"username": user.email, "password": PASSWORD}).status_code == 429


def test_login_refuses_a_post_without_csrf_token(user):
    csrf_client = Client(enforce_csrf_checks=True)

    response = csrf_client.post(LOGIN, {"username": user.email, "password": PASSWORD})

    assert response.status_code == 403
    assert logged_in_user_id(csrf_client) is None


def test_login_with_the_csrf_token_works_under_enforcement(user):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.get(LOGIN)
    token = csrf_client.cookies["csrftoken"].value

    response = csrf_client.post(
        LOGIN, {"username": user.email, "password": PASSWORD, "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert logged_in_user_id(csrf_client) == user.id


# --- log out -------------------------------------------------------------------------------


def test_logout_is_post_only(client, user):
    client.force_login(user)

    assert client.get(LOGOUT).status_code == 405
    assert logged_in_user_id(client) == user.id

    response = client.post(LOGOUT)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert logged_in_user_id(client) is None


def test_an_office_of_200_signs_up_within_the_hour_then_the_address_is_limited(client, monkeypatch):
    """The default per-address rate (THROTTLE_REGISTER) lets a whole office behind one
    address sign up through the page; past it the page answers 429 with Retry-After."""
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    cache.delete_pattern("throttle_register_*")
    for n in range(200):
        assert client.post(SIGNUP, signup_data(email=f"office{n}@example.com")).status_code == 302, n
        client.logout()

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"register": "200/hour"})
    refused = client.post(SIGNUP, signup_data(email="office200@example.com"))

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many accounts" in refused.content.decode()
    assert not User.objects.filter(email="office200@example.com").exists()
