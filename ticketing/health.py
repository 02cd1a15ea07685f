"""``GET /healthz``: is the database answering, is Redis answering."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError

from queueing.connection import ping as redis_ping


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        report["database"] = "ok"
    except DatabaseError:
        report["database"] = "unavailable"
    try:
        # On a cluster a PING reaches one node; this asks whether every slot is served.
        redis_ping()
        report["redis"] = "ok"
    except (RedisError, OSError):
        report["redis"] = "unavailable"
    healthy = all(value == "ok" for value in report.values())
    response = JsonResponse(report, status=200 if healthy else 503)
    if not healthy:
        response["Retry-After"] = "5"
    return response
