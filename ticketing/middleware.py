"""Cross-cutting HTTP behaviour: 503 instead of 500 when a backing service is down,
and the security headers every page carries."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from redis.exceptions import RedisError

from ticketing.api_errors import RETRY_AFTER_SECONDS
from ticketing.errors import ServiceUnavailable

logger = logging.getLogger(__name__)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


class ServiceUnavailableMiddleware:
    """Turns Redis/database outages and oversized bodies into clear 4xx/503 answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # DRF parses JSON straight from the stream, so Django's own size check never
        # fires for the API: refuse an oversized body here, before any view reads it.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit and not request.path.startswith("/admin/"):
            return JsonResponse({"code": "too_large", "detail": "The request body is too large."}, status=413)
        try:
            return self.get_response(request)
        except (RedisError, DatabaseError, ServiceUnavailable) as exc:
            # Raised outside a view (e.g. the session middleware reading the database).
            return self.process_exception(request, exc)  # type: ignore[return-value]

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, RequestDataTooBig):
            return JsonResponse({"code": "too_large", "detail": "The request body is too large."}, status=413)
        if isinstance(exc, RedisError):
            what = "queue service"
        elif isinstance(exc, DatabaseError):
            what = "database"
        elif isinstance(exc, ServiceUnavailable):
            what = exc.what
        else:
            return None
        logger.warning("%s unavailable for %s: %s", what, request.path, exc)
        if _wants_json(request):
            response: HttpResponse = JsonResponse(
                {
                    "code": "service_unavailable",
                    "detail": f"The {what} is unavailable; please retry shortly.",
                },
                status=503,
            )
        else:
            response = HttpResponse(render_to_string("503.html", {"what": what}), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class SecurityHeadersMiddleware:
    """Content-Security-Policy (Django 5.2 has no built-in CSP) and a no-store default
    for API answers, which carry personal data."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(("/api/docs/", "/admin/")):
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
