"""The bearer token check of both metrics endpoints (the web nodes' ``/metrics`` and the
workers' port): ``Authorization: Bearer <METRICS_TOKEN>``, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

_PREFIX = "Bearer "


def bearer_token_matches(authorization: str, token: str) -> bool:
    """True when ``authorization`` (the header's value) carries ``token``. An empty
    ``token`` matches nothing: the endpoints are off until one is configured.

    Both sides are hashed first so that the comparison takes the same time whatever the
    length of the guess (``compare_digest`` alone returns early on a length mismatch)."""
    if not token or not authorization.startswith(_PREFIX):
        return False
    given = authorization[len(_PREFIX) :].strip().encode()
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(token.encode()).digest())
