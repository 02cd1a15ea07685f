"""The admin: users with e-mail logins, and the brute-force guard on its login."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY

from accounts.models import User
from accounts.tests.helpers import PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"


def test_admin_login_is_throttled(client, staff_user, settings):
    settings.LOGIN_FAILURE_LIMIT_ACCOUNT = 2
    for _ in range(2):
        response = client.post(ADMIN_LOGIN, {"username": staff_user.email, "password": "wrong"})
        assert response.status_code == 200
        assert SESSION_KEY not in client.session

    response = client.post(ADMIN_LOGIN, {"username": staff_user.email, "password": PASSWORD})

    assert "Too many failed log-in attempts" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_admin_login_for_staff(client, staff_user):
    response = client.post(
        f"{ADMIN_LOGIN}?next=/admin/", {"username": staff_user.email, "password": PASSWORD}
    )

    assert response.status_code == 302
    assert int(client.session[SESSION_KEY]) == staff_user.id


def test_admin_adds_a_user_by_email(admin_client_for):
    response = admin_client_for.post(
        "/admin/accounts/user/add/",
        {
            "email": "Added@Example.com",
            "name": "Added By Staff",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    added = User.objects.get(name="Added By Staff")
    assert added.email == "added@example.com"
    assert added.check_password(PASSWORD)


def test_admin_refuses_an_address_differing_only_in_case(admin_client_for, user_factory):
    existing = user_factory(email="twin@example.com")

    add = admin_client_for.post(
        "/admin/accounts/user/add/",
        {
            "email": "TWIN@example.com",
            "name": "Twin",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert add.status_code == 200
    assert "already exists" in add.content.decode()

    other = user_factory(email="other@example.com")
    change = admin_client_for.post(
        f"/admin/accounts/user/{other.pk}/change/",
        {
            "email": "Twin@Example.com",
            "name": other.name,
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
        },
    )
    assert change.status_code == 200
    assert "already exists" in change.content.decode()
    other.refresh_from_db()
    assert other.email == "other@example.com"
    assert User.objects.filter(email__iexact="twin@example.com").get() == existing


def test_admin_changes_a_user(admin_client_for, user_factory):
    user = user_factory(email="before@example.com")

    response = admin_client_for.post(
        f"/admin/accounts/user/{user.pk}/change/",
        {
            "email": "After@Example.com",
            "name": "Renamed",
            "is_active": "on",
            "is_staff": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert (user.email, user.name, user.is_staff) == ("after@example.com", "Renamed", True)


def test_admin_user_list_searches_email_and_name(admin_client_for, user_factory):
    user_factory(email="findme@example.com", name="Zed Zimmer")
    user_factory(email="hidden@example.com", name="Other")

    by_email = admin_client_for.get("/admin/accounts/user/", {"q": "findme"}).content.decode()
    by_name = admin_client_for.get("/admin/accounts/user/", {"q": "Zimmer"}).content.decode()

    assert "findme@example.com" in by_email
    assert "hidden@example.com" not in by_email
    assert "findme@example.com" in by_name


@pytest.fixture
def admin_client_for(client, staff_user):
    client.force_login(staff_user)
    return client
