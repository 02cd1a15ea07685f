"""Domain errors shared by every app: an exception with a machine code that the API
exception handler turns into ``{code, detail}`` and the pages turn into a message."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the user can understand. ``status`` is the HTTP status for the API."""

    status: int = 400
    default_detail: str = "The request cannot be completed."

    def __init__(
        self, code: str, detail: str | None = None, *, status: int | None = None, **extra: Any
    ) -> None:
        self.code = code
        self.detail = detail or self.default_detail
        if status is not None:
            self.status = status
        self.extra = extra
        super().__init__(f"{code}: {self.detail}")


class ServiceUnavailable(Exception):
    """Redis or the database cannot answer now; the client should retry shortly."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} unavailable")
