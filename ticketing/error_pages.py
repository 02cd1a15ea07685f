"""Friendly error pages; the API answers ``{code, detail}`` JSON instead."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from ticketing.errors import csrf_failure_detail, error_response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": _("Not found.")}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "server_error", "detail": _("Something went wrong on our side.")}, status=500
        )
    return render(request, "500.html", status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a refused form explained in the buyer's language (Django's
    own page is English and technical). LocaleMiddleware has run: the language is set."""
    if request.path.startswith("/api/"):
        return error_response("permission_denied", csrf_failure_detail(), status=403)
    # The page the form came from, opened again, gets a fresh token.
    retry_url = request.get_full_path()
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        retry_url = referer
    return render(request, "403_csrf.html", {"retry_url": retry_url}, status=403)
