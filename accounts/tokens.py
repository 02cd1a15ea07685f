"""The stateless JWT user: hot endpoints (queue join/status, holds) authenticate from
the token alone, with no database query per request."""

from __future__ import annotations

from functools import cached_property

from rest_framework_simplejwt.models import TokenUser


class TicketingTokenUser(TokenUser):
    @cached_property
    def id(self) -> int:  # type: ignore[override]
        return int(self.token["user_id"])

    @cached_property
    def pk(self) -> int:  # type: ignore[override]
        return self.id
