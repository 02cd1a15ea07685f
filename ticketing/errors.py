"""Domain errors shared by every app (an exception with a machine code that the API
exception handler turns into ``{code, detail}`` and the pages turn into a message), and
the one builder of every ``{code, detail}`` error body."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# Compact separators: the hot paths answer thousands of small bodies a second.
COMPACT_JSON = {"separators": (",", ":")}


class DomainError(Exception):
    """A refusal the user can understand. ``status`` is the HTTP status for the API."""

    status: int = 400
    default_detail: str | Promise = gettext_lazy("The request cannot be completed.")
    retry_after: int | None = None  # seconds; answered as the Retry-After header too

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        self.code = code
        # Translated now, in the request's language (the raise happens inside the request).
        self.detail = detail or str(self.default_detail)
        if status is not None:
            self.status = status
        if retry_after is not None:
            self.retry_after = retry_after
            extra["retry_after"] = retry_after
        self.extra = extra
        super().__init__(f"{code}: {self.detail}")

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class ServiceUnavailable(Exception):
    """Redis or the database cannot answer now; the client should retry shortly."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} unavailable")


# Seconds a client is asked to wait (Retry-After) when Redis or the database can't answer.
RETRY_AFTER_SECONDS = 5


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The one shape of every API error (API.md): ``{code, detail}`` plus optional fields."""
    return {"code": code, "detail": str(detail), **extra}


def csrf_failure_detail() -> str:
    """The text of a refused CSRF check (the API's and the page's), in the active language."""
    return _(
        "The security check of this page (CSRF) failed: the page was open too long, or your browser "
        "blocks this site's cookies. Reload the page and try again."
    )


def unavailable_body(what: str) -> dict[str, Any]:
    """The 503 body, in the active language, with the busy page's words. ``what`` (the
    service that could not answer: "database", "queue service"...) is for the logs of
    the callers; pasted into the sentence it would not translate."""
    return error_body(
        "service_unavailable",
        _(
            "We are very busy right now. Your place in the queue and your bookings are kept; "
            "please try again in a few seconds."
        ),
    )


def error_response(
    code: str, detail: str, *, status: int, headers: dict[str, str] | None = None, **extra: Any
) -> JsonResponse:
    """The error body as a plain Django response, for the answers given outside DRF (the
    middleware, the hot paths that skip DRF)."""
    return JsonResponse(
        error_body(code, detail, **extra), status=status, headers=headers, json_dumps_params=COMPACT_JSON
    )


def domain_error_response(error: DomainError) -> JsonResponse:
    return error_response(error.code, error.detail, status=error.status, headers=error.headers, **error.extra)


def unavailable_response(what: str) -> JsonResponse:
    return JsonResponse(
        unavailable_body(what),
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        json_dumps_params=COMPACT_JSON,
    )
