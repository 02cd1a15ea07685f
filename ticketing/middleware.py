"""Cross-cutting HTTP behaviour: 503 instead of 500 when a backing service is down,
and the security headers every page carries."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from ticketing.errors import RETRY_AFTER_SECONDS, ServiceUnavailable, error_response, unavailable_response
from ticketing.metrics.counters import count_unavailable

logger = logging.getLogger(__name__)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def _in_request_language(request: HttpRequest, answer: Callable[[], HttpResponse]) -> HttpResponse:
    """``answer()`` in the language LocaleMiddleware would pick (the language cookie, then
    Accept-Language). This middleware answers before LocaleMiddleware has run (or after an
    exception skipped it): without this, the thread's previous language would be used."""
    language = translation.get_language_from_request(request)
    with translation.override(language):
        response = answer()
    response.headers["Content-Language"] = language
    patch_vary_headers(response, ("Accept-Language", "Cookie"))
    return response


def _too_large(request: HttpRequest) -> HttpResponse:
    def answer() -> HttpResponse:
        if _wants_json(request):
            return error_response("too_large", _("The request body is too large."), status=413)
        context = {"lang": translation.get_language(), "path": request.path}
        return HttpResponse(render_to_string("413.html", context), status=413)

    return _in_request_language(request, answer)


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
            return _too_large(request)
        try:
            return self.get_response(request)
        except (RedisError, DatabaseError, ServiceUnavailable) as exc:
            # Raised outside a view (e.g. the session middleware reading the database).
            return self.process_exception(request, exc)  # type: ignore[return-value]

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, RequestDataTooBig):
            return _too_large(request)
        if isinstance(exc, RedisError):
            what = "queue service"
        elif isinstance(exc, DatabaseError):
            what = "database"
        elif isinstance(exc, ServiceUnavailable):
            what = exc.what
        else:
            return None
        count_unavailable(exc)
        logger.warning("%s unavailable for %s: %s", what, request.path, exc)

        def answer() -> HttpResponse:
            if _wants_json(request):
                return unavailable_response(what)
            # Static but for its language order: it renders with Redis and the database down.
            context = {"what": what, "lang": translation.get_language()}
            response = HttpResponse(render_to_string("503.html", context), status=503)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response

        return _in_request_language(request, answer)


class SecurityHeadersMiddleware:
    """Content-Security-Policy (Django 5.2 has no built-in CSP), and caching that is
    private unless a view says otherwise: API answers carry personal data (no-store), and
    pages show who is logged in. Only the public reads (catalogue, seat map, serving
    cursor) declare themselves ``public``, and only they may be kept by a proxy or CDN."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(("/api/docs/", "/admin/")):
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        cache_control = response.headers.get("Cache-Control")
        if cache_control is None:
            response.headers["Cache-Control"] = (
                "private, no-store" if request.path.startswith("/api/") else "private"
            )
        elif cache_control.startswith("public"):
            # A public read says the same in every language (LocaleMiddleware adds
            # Accept-Language to Vary everywhere): one shared copy, not one per browser.
            vary = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
            kept = [v for v in vary if v.lower() != "accept-language"]
            if kept:
                response.headers["Vary"] = ", ".join(kept)
            elif "Vary" in response.headers:
                del response.headers["Vary"]
        return response
