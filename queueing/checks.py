"""``manage.py check`` for the Redis URLs (tag ``redis``): a cluster URL at a Redis that
is not a cluster, a plain URL at a cluster node, a cluster that cannot serve every slot,
a cache, Celery broker or key prefix configured in a way that cannot work on a cluster.

A Redis that does not answer is not reported: a check cannot tell an outage from a
server that is not started yet (``migrate`` and ``check --deploy`` run without one), and
requests answer 503 with Retry-After for it anyway. Each URL costs one connection
attempt, bounded by ``REDIS_SOCKET_TIMEOUT``.
"""

from __future__ import annotations

from typing import Any

import redis
from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured

from queueing.cluster import ClusterUnavailable, RedisModeMismatch
from queueing.connection import connect
from queueing.redis_urls import is_cluster, redact

CLUSTER_CACHE_FACTORY = "ticketing.cache_cluster.ClusterConnectionFactory"
DJANGO_REDIS_BACKEND = "django_redis.cache.RedisCache"


def _mode_messages(setting: str, url: str) -> list[CheckMessage]:
    try:
        client = connect(url, max_connections=2, setting=setting)
    except RedisModeMismatch as exc:
        hint = (
            "List the cluster's nodes as redis+cluster://host:port,host:port,..."
            if not is_cluster(url)
            else "Use redis://host:port/db for a single Redis."
        )
        return [Error(str(exc), hint=hint, id="queueing.E002")]
    except ClusterUnavailable as exc:
        return [
            Error(
                f"{setting}: {exc}",
                hint="Wait for the failover to finish, or repair the cluster (redis-cli --cluster check).",
                id="queueing.E003",
            )
        ]
    except redis.exceptions.AuthenticationError as exc:
        return [
            Error(f"{setting}={redact(url)}: the server refused the credentials: {exc}", id="queueing.E004")
        ]
    except ImproperlyConfigured as exc:
        return [Error(f"{setting}: {exc}", id="queueing.E001")]
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return []  # not reachable now: see the module docstring
    client.close()
    return []


def _cache_messages() -> list[CheckMessage]:
    cache = settings.CACHES.get("default", {})
    if cache.get("BACKEND") != DJANGO_REDIS_BACKEND:
        return []
    location = cache.get("LOCATION")
    urls = [location] if isinstance(location, str) else list(location or [])
    if not any(is_cluster(url) for url in urls):
        return [message for url in urls for message in _mode_messages("CACHE_REDIS_URL", url)]
    messages: list[CheckMessage] = []
    if cache.get("OPTIONS", {}).get("CONNECTION_FACTORY") != CLUSTER_CACHE_FACTORY:
        messages.append(
            Error(
                "The cache's LOCATION is a Redis Cluster URL, but django-redis would build a plain client for it.",
                hint=f'Set CACHES["default"]["OPTIONS"]["CONNECTION_FACTORY"] = "{CLUSTER_CACHE_FACTORY}".',
                id="queueing.E005",
            )
        )
    if isinstance(location, str):
        messages.append(
            Error(
                "The cache's LOCATION is a Redis Cluster URL given as a string: django-redis splits it at "
                "the commas into a primary and read replicas.",
                hint='Give it as a one-item list: "LOCATION": [CACHE_REDIS_URL].',
                id="queueing.E006",
            )
        )
    if not messages:
        messages.extend(_mode_messages("CACHE_REDIS_URL", urls[0]))
    return messages


def _broker_messages() -> list[CheckMessage]:
    broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if not is_cluster(broker):
        return []
    return [
        Error(
            f"CELERY_BROKER_URL={redact(broker)} is a Redis Cluster URL; Celery's broker (kombu) cannot use "
            "Redis Cluster.",
            hint="Set CELERY_BROKER_URL to a single Redis (redis://...) or RabbitMQ (amqp://...); it "
            "defaults to REDIS_URL.",
            id="queueing.E007",
        )
    ]


def key_prefix_messages() -> list[CheckMessage]:
    prefix = str(settings.QUEUE_KEY_PREFIX)
    if not is_cluster() or not ({"{", "}"} & set(prefix)):
        return []
    # Redis hashes only the text between the first "{" and the next "}": braces in the
    # prefix would move or empty the {ev:<id>} hash tag, and one event's keys could land
    # in different slots (CROSSSLOT errors from every multi-key script).
    return [
        Error(
            f"QUEUE_KEY_PREFIX={prefix!r} contains a brace; on Redis Cluster it would break the "
            "{ev:<id>} hash tag that keeps each event's keys in one slot.",
            hint="Use a prefix without { and }.",
            id="queueing.E008",
        )
    ]


@register("redis")
def redis_urls_check(app_configs: list[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    return [
        *_mode_messages("REDIS_URL", settings.REDIS_URL),
        *key_prefix_messages(),
        *_cache_messages(),
        *_broker_messages(),
    ]
