"""``/api/auth/``: the contract of API.md "Auth"."""

from __future__ import annotations

import pytest
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.helpers import PASSWORD, obtain_token

pytestmark = pytest.mark.django_db

REGISTER = "/api/auth/register/"
REFRESH = "/api/auth/token/refresh/"
LOGOUT = "/api/auth/logout/"
ME = "/api/auth/me/"


def register(client: APIClient, **body: str):
    payload = {"email": "new.buyer@example.com", "password": PASSWORD, "name": "New Buyer", **body}
    return client.post(REGISTER, payload, format="json")


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


# --- register ------------------------------------------------------------------------------


def test_register_creates_an_account_that_can_log_in(api_client):
    response = register(api_client, email="  New.Buyer@Example.COM ")

    assert response.status_code == 201
    user = User.objects.get()
    assert response.json() == {"id": user.id, "email": "new.buyer@example.com", "name": "New Buyer"}
    assert "password" not in response.json()
    assert obtain_token(api_client, "new.buyer@example.com", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"password": "Ab3$x"}, "password"),  # too short
        ({"password": "password123"}, "password"),  # too common
        ({"name": ""}, "name"),
    ],
)
def test_register_refuses_invalid_fields_with_field_errors(api_client, body, field):
    response = register(api_client, **body)

    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid"
    assert data["detail"]
    assert list(data["errors"]) == [field]
    assert all(isinstance(message, str) and message for message in data["errors"][field])
    assert not User.objects.exists()


def test_register_reports_every_password_problem(api_client):
    response = register(api_client, password="1234")

    messages = " ".join(response.json()["errors"]["password"])
    assert "too short" in messages
    assert "too common" in messages
    assert "entirely numeric" in messages


def test_register_refuses_an_address_registered_in_another_case(api_client, user_factory):
    user_factory(email="taken@example.com")

    response = register(api_client, email="Taken@EXAMPLE.com")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "already exists" in response.json()["errors"]["email"][0]
    assert User.objects.count() == 1


def test_malformed_json_is_400_malformed(api_client):
    response = api_client.post(REGISTER, data='{"email": "a@example.com",', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed"
    assert response.json()["detail"]


# --- token ---------------------------------------------------------------------------------


def test_token_with_the_right_password_returns_a_working_pair(api_client, user):
    response = obtain_token(api_client, user.email.upper(), PASSWORD)

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert bearer(response.json()["access"]).get(ME).json()["email"] == user.email


def test_token_with_a_wrong_password_is_401(api_client, user):
    response = obtain_token(api_client, user.email, "not the password")

    assert response.status_code == 401
    assert set(response.json()) == {"code", "detail"}
    assert response.json()["code"] == "no_active_account"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_token_for_an_unknown_address_is_401(api_client):
    response = obtain_token(api_client, "nobody@example.com", PASSWORD)

    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


def test_token_for_an_inactive_user_is_401(api_client, user_factory):
    inactive = user_factory(is_active=False)

    assert obtain_token(api_client, inactive.email, PASSWORD).status_code == 401


def test_token_without_a_password_is_400_with_field_errors(api_client):
    response = api_client.post("/api/auth/token/", {"email": "a@example.com"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "password" in response.json()["errors"]


# --- refresh -------------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_refresh_token_is_refused(api_client, user):
    first = obtain_token(api_client, user.email, PASSWORD).json()

    rotated = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")

    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first["refresh"]
    assert bearer(rotated.json()["access"]).get(ME).status_code == 200

    reused = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_not_valid"
    assert reused.json()["detail"]

    again = api_client.post(REFRESH, {"refresh": rotated.json()["refresh"]}, format="json")
    assert again.status_code == 200


def test_refresh_with_garbage_is_401(api_client):
    response = api_client.post(REFRESH, {"refresh": "not.a.token"}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_refresh_for_a_deleted_user_is_401(api_client, user):
    refresh = obtain_token(api_client, user.email, PASSWORD).json()["refresh"]
    user.delete()

    response = api_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


# --- logout --------------------------------------------------------------------------------


def test_logout_blacklists_the_refresh_token(api_client, user):
    pair = obtain_token(api_client, user.email, PASSWORD).json()
    client = bearer(pair["access"])

    response = client.post(LOGOUT, {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 205
    assert response.content == b""
    refreshed = api_client.post(REFRESH, {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 401
    assert refreshed.json()["code"] == "token_not_valid"
    assert client.post(LOGOUT, {"refresh": pair["refresh"]}, format="json").status_code == 401


def test_logout_without_a_token_is_401(api_client, user):
    refresh = obtain_token(api_client, user.email, PASSWORD).json()["refresh"]

    response = api_client.post(LOGOUT, {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert api_client.post(REFRESH, {"refresh": refresh}, format="json").status_code == 200


def test_logout_cannot_blacklist_another_users_token(api_client, user_factory):
    victim, attacker = user_factory(), user_factory()
    victim_refresh = obtain_token(api_client, victim.email, PASSWORD).json()["refresh"]
    attacker_access = obtain_token(api_client, attacker.email, PASSWORD).json()["access"]

    response = bearer(attacker_access).post(LOGOUT, {"refresh": victim_refresh}, format="json")

    assert response.status_code == 401
    assert api_client.post(REFRESH, {"refresh": victim_refresh}, format="json").status_code == 200


# --- me ------------------------------------------------------------------------------------


def test_me_describes_the_caller(auth_client):
    response = auth_client.get(ME)

    assert response.status_code == 200
    user = auth_client.user
    assert response.json() == {"id": user.id, "email": user.email, "name": user.name, "is_staff": False}


def test_me_for_staff(api_client, staff_user):
    access = obtain_token(api_client, staff_user.email, PASSWORD).json()["access"]

    assert bearer(access).get(ME).json()["is_staff"] is True


def test_me_without_a_token_is_401(api_client):
    response = api_client.get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.json()["detail"]


def test_me_with_a_bad_token_is_401(api_client):
    response = bearer("not-a-jwt").get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_me_for_a_deleted_user_is_401(auth_client):
    auth_client.user.delete()

    response = auth_client.get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "user_not_found"


# --- schema --------------------------------------------------------------------------------


def test_schema_documents_the_auth_endpoints():
    # Generated from this app's URLs only, so that work in progress elsewhere cannot break it.
    generator = SchemaGenerator(patterns=[path("api/auth/", include("accounts.api.urls"))])
    schema = generator.get_schema(request=None, public=True)

    paths = schema["paths"]
    assert set(paths) == {
        "/api/auth/register/",
        "/api/auth/token/",
        "/api/auth/token/refresh/",
        "/api/auth/logout/",
        "/api/auth/me/",
    }
    assert set(paths["/api/auth/register/"]["post"]["responses"]) == {"201", "400", "429"}
    assert set(paths["/api/auth/token/"]["post"]["responses"]) == {"200", "400", "401", "429"}
    assert "205" in paths["/api/auth/logout/"]["post"]["responses"]
    me = schema["components"]["schemas"]["Me"]
    assert set(me["properties"]) == {"id", "email", "name", "is_staff"}
