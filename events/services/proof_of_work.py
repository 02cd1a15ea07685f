"""Proof-of-work on join, with ALTCHA (the ``altcha`` library's v2 challenges).

A challenge is bound to one event and one buyer (its signed ``data``), expires after
``POW_CHALLENGE_SECONDS`` and is spent by the join it lets in (``queue_join.lua`` marks it
used in the same step as it hands out the place). The work: iterated SHA-256 over a
counter the server drew between half the event's difficulty and the difficulty; the
client must find exactly that counter (ALTCHA's deterministic mode), so the expected
cost is ~0.75 x difficulty hashes and nobody can be lucky by much.

Verifying is two HMACs (the challenge's signature, and the derived key's signature made
when the challenge was created: ALTCHA's fast path), no hashing of the work itself.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import altcha
from django.conf import settings
from django.utils.translation import gettext as _

from ticketing.errors import DomainError

ALGORITHM = "SHA-256"
COST = 1
# A join whose proof-of-work came back in less than this many ms per 1,000 hashes of
# the least work the challenge could need (half the difficulty) was solved faster than
# honest devices do: desktop Chromium on the development machine needs ~5.9 ms per 1,000
# (170,000 hashes/s with two workers), phones 3-5 times that; a Python script ~1.7 ms.
# The staff's "suspicious" panel lists such joins.
FAST_MS_PER_1000 = 2.5


def _secret(purpose: str) -> bytes:
    return hashlib.sha256(f"pow:{purpose}:{settings.POW_HMAC_KEY}".encode()).digest()


def challenge_create(
    *, event_id: int, user_id: int, difficulty: int, purpose: str = "join"
) -> dict[str, Any]:
    """A fresh challenge (``Challenge.to_dict()``: what the ALTCHA widget fetches).
    ``purpose``: "join" (the waiting room) or "human" (the check before seat selection);
    an answer serves only its own purpose."""
    counter = difficulty // 2 + secrets.randbelow(difficulty - difficulty // 2 + 1)
    challenge = altcha.create_challenge(
        ALGORITHM,
        COST,
        counter=counter,
        expires_at=int(time.time()) + settings.POW_CHALLENGE_SECONDS,
        data={"event": event_id, "user": user_id, "issued": int(time.time() * 1000), "purpose": purpose},
        hmac_secret=_secret("challenge"),
        hmac_key_secret=_secret("key"),
    )
    return challenge.to_dict()


@dataclass(frozen=True)
class VerifiedSolution:
    marker: str  # what makes it single-use: the challenge's signature
    ttl_ms: int  # how long the challenge would still be valid
    solve_ms: int  # from the challenge's issue to now


def _refused(code: str, detail: str, status: int = 400) -> DomainError:
    return DomainError(code, detail, status=status)


def solution_verify(*, payload: str, event_id: int, user_id: int, purpose: str = "join") -> VerifiedSolution:
    """Checks a solution (the widget's base64 payload) for this event and buyer. Raises
    400 ``pow_invalid`` (forged, edited, wrong, malformed), 400 ``pow_expired``, 403
    ``pow_mismatch`` (another event's or buyer's). Single use is enforced by the join."""
    if not isinstance(payload, str) or len(payload) > 4096:
        raise _refused("pow_invalid", _("The proof-of-work answer is not valid."))
    result = altcha.verify_solution(payload, _secret("challenge"), hmac_key_secret=_secret("key"))
    if result.expired:
        raise _refused("pow_expired", _("The proof-of-work challenge has expired. Please try again."))
    if not result.verified:
        raise _refused("pow_invalid", _("The proof-of-work answer is not valid."))
    parsed = altcha.Payload.from_base64(payload)
    parameters = parsed.challenge.parameters
    data = parameters.data or {}
    if data.get("event") != event_id or data.get("user") != user_id or data.get("purpose") != purpose:
        raise _refused(
            "pow_mismatch",
            _("This proof-of-work answer was made for another event, buyer or purpose."),
            status=403,
        )
    now = time.time()
    return VerifiedSolution(
        marker=str(parsed.challenge.signature),
        ttl_ms=max(1, int(((parameters.expires_at or now) - now) * 1000)),
        solve_ms=max(0, int(now * 1000) - int(data.get("issued", 0))),
    )


def too_fast(*, solve_ms: int, difficulty: int) -> bool:
    """Faster than the least work (half the difficulty) allows on an honest device."""
    return solve_ms < (difficulty / 2) / 1000 * FAST_MS_PER_1000
