"""One DRF exception handler: every API error becomes ``{code, detail}`` (API.md)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404
from django.utils.translation import gettext as _
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response

from ticketing.errors import (
    RETRY_AFTER_SECONDS,
    DomainError,
    ServiceUnavailable,
    csrf_failure_detail,
    error_body,
    unavailable_body,
)
from ticketing.metrics.counters import count_unavailable

logger = logging.getLogger(__name__)


def unavailable_response(what: str) -> Response:
    return Response(
        unavailable_body(what),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# simplejwt's refusals, which reach us in English only: its catalogue is not loaded (only
# its token_blacklist app is installed). Ours replace them; the codes stay simplejwt's.
_SIMPLEJWT_TEXTS = frozenset(
    {
        "Given token not valid for any token type",
        "Token is invalid or expired",
        "Token is invalid",
        "Token is expired",
        "Token contained no recognizable user identification",
        "No active account found with the given credentials",
        "User not found",
        "User is inactive",
        "The user's password has been changed.",
        "Authorization header must contain two space-delimited values",
    }
)


def _sign_in_detail(code: str, text: str) -> str:
    if text not in _SIMPLEJWT_TEXTS:
        return text  # ours, already in the request's language
    if code == "no_active_account":
        return _("The e-mail address or password is not correct.")
    if code == "bad_authorization_header":
        return _('The Authorization header must be "Bearer" followed by a token.')
    return _("Your sign-in has expired or is not valid. Please sign in again.")


def _code_for(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return "invalid"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    count_unavailable(exc)  # counts only Redis / database outages, answered 503 below
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.detail, **exc.extra), status=exc.status, headers=exc.headers)
    if isinstance(exc, ServiceUnavailable):
        return unavailable_response(exc.what)
    if isinstance(exc, RedisError):
        logger.warning("redis unavailable: %s", exc)
        return unavailable_response("queue service")
    if isinstance(exc, DatabaseError):
        logger.warning("database unavailable: %s", exc)
        return unavailable_response("database")
    if isinstance(exc, Http404):
        return Response(error_body("not_found", _("Not found.")), status=404)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        detail = _("Some fields are invalid.")
        if isinstance(exc.detail, list):
            detail = " ".join(str(item) for item in exc.detail) or detail
        body = error_body("invalid", detail, errors=exc.detail)
    elif isinstance(exc, exceptions.ParseError):
        # DRF's text carries the JSON parser's own words, in English whatever the language.
        body = error_body("malformed", _("The request body is not valid JSON."))
    else:
        detail = exc.detail
        if isinstance(detail, dict):
            text = str(detail.get("detail", exc.default_detail))
            code = str(detail.get("code", _code_for(exc)))
        else:
            text, code = str(detail), _code_for(exc)
        if isinstance(exc, exceptions.NotFound):
            code = "not_found"
        if isinstance(exc, exceptions.PermissionDenied) and text.startswith("CSRF Failed"):
            # SessionAuthentication's refusal, untranslated in DRF; the code stays.
            text = csrf_failure_detail()
        elif isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
            text = _sign_in_detail(code, text)
        body = error_body(code, text)
    return Response(body, status=exc.status_code, headers=headers)
