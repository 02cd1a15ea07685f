"""Deployment hygiene: production settings pass ``check --deploy`` with no warning, refuse
to start without a real SECRET_KEY, and every page carries the security headers (HSTS
and secure cookies in production).

Production settings are read once per process, so those tests run ``manage.py`` or a
short script in a subprocess with ``DJANGO_ENV=production`` (the way ``make
check-deploy`` and docker-compose run them), with the queue's Redis pointed at a closed
port and SQLite in a temporary directory: nothing of the machine's is touched.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from ticketing.tests.conftest import free_port

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
SUBPROCESS_TIMEOUT = 60


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "tickets.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "VAR_DIR": str(tmp_path / "var"),
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens: never reached
        "DJANGO_SETTINGS_MODULE": "ticketing.settings",
    }
    for name in ("DEBUG", "TESTING", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"):
        env.pop(name, None)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run([MANAGE, "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("secret_key", "why"),
    [
        (None, "unset"),
        ("", "empty"),
        ("short-secret", "too short"),
        ("dev-only-insecure-secret-key-never-use-in-production-0123456789", "the development key"),
    ],
)
def test_production_refuses_to_start_without_a_real_secret_key(tmp_path, secret_key, why):
    result = run([MANAGE, "check"], production_env(tmp_path, SECRET_KEY=secret_key))
    assert result.returncode != 0, why
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr, result.stderr[-2000:]


def test_production_has_no_default_allowed_hosts(tmp_path):
    script = "import django; django.setup(); from django.conf import settings; print(settings.ALLOWED_HOSTS)"
    result = run(["-c", script], production_env(tmp_path, ALLOWED_HOSTS=None))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="tickets.example.com")
plain = client.get("/accounts/login/")
page = client.get("/accounts/login/", secure=True)
print(json.dumps({
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location"),
    "status": page.status_code,
    "headers": dict(page.headers),
    "csrf_cookie_secure": bool(page.cookies["csrftoken"]["secure"]),
    "debug": django.conf.settings.DEBUG,
    "session_cookie_secure": django.conf.settings.SESSION_COOKIE_SECURE,
}))
"""


def test_production_pages_redirect_to_https_and_carry_hsts_and_secure_cookies(tmp_path):
    result = run(["-c", PROBE], production_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["debug"] is False
    assert probe["plain_status"] == 301
    assert probe["plain_location"] == "https://tickets.example.com/accounts/login/"
    assert probe["status"] == 200
    headers = probe["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert probe["csrf_cookie_secure"] and probe["session_cookie_secure"]


# --- headers on every kind of page, in this (development) process ------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/", "/accounts/login/", "/accounts/signup/", "/events/1/", "/my/tickets/", "/no-such-page/"],
)
def test_pages_carry_csp_nosniff_and_deny_framing(client, path, on_sale_event, user):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code in (200, 404), path
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_api_answers_carry_nosniff_and_deny_framing(api_client, on_sale_event):
    for path in ("/api/events/", f"/api/events/{on_sale_event.pk}/seats/", "/api/nope/"):
        response = api_client.get(path)
        assert response["X-Content-Type-Options"] == "nosniff", path
        assert response["X-Frame-Options"] == "DENY", path


@pytest.mark.django_db
def test_session_and_csrf_cookies_are_not_readable_or_sent_cross_site_by_default(client, user):
    response = client.post(
        "/accounts/login/", {"username": user.email, "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    session_cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session_cookie["httponly"]
    assert session_cookie["samesite"] == "Lax"
