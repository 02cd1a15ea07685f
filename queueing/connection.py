"""The queue's Redis connection: one pool per process, bounded timeouts, and errors
are never swallowed (a failed hold must not look like a success)."""

from __future__ import annotations

import redis
from django.conf import settings

_client: redis.Redis | None = None
_client_url: str | None = None


def get_redis() -> redis.Redis:
    global _client, _client_url
    if _client is None or _client_url != settings.REDIS_URL:
        _client = redis.Redis.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
            health_check_interval=30,
            max_connections=200,
        )
        _client_url = settings.REDIS_URL
    return _client
