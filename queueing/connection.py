"""The queue's Redis connection: one client per process, chosen by ``settings.REDIS_URL``,
bounded timeouts, and errors never swallowed (a failed hold must not look like a success).

``redis://``, ``rediss://`` and ``unix://`` URLs give a plain ``redis.Redis``;
``redis+cluster://[[user]:password@]host:port,host:port[,...][?option=value]`` (or
``rediss+cluster://`` for TLS) gives a ``redis.cluster.RedisCluster`` bootstrapped from
those startup nodes. Every key of one event shares the hash tag ``{ev:<id>}``
(``queueing.keys``), so each Lua script's keys live in one slot on one master.

The first use of a URL checks that the server agrees with it: a cluster URL at a Redis
without cluster mode, or a plain URL at a cluster node (whose answers would be MOVED
errors for most keys), raises ``RedisModeMismatch`` instead of failing request by request;
``manage.py check`` reports the same (``queueing/checks.py``). A cluster whose state is
not ``ok`` raises ``ClusterUnavailable``, a ``RedisError``: the API answers 503 with
Retry-After, as for any Redis outage, and the next call checks again.

URL parsing is in ``queueing/redis_urls.py``, the cluster client in ``queueing/cluster.py``.
"""

from __future__ import annotations

import logging
import threading

import redis
from django.conf import settings
from redis.cluster import RedisCluster

from queueing.cluster import (
    ClusterUnavailable,
    QueueRedisCluster,
    RedisModeMismatch,
    cluster_client,
    cluster_state_problem,
)
from queueing.redis_urls import parse_cluster_url, redact

logger = logging.getLogger(__name__)

# Connections per server and process: gunicorn's gthread workers share one client.
MAX_CONNECTIONS = 200
HEALTH_CHECK_INTERVAL = 30

QueueRedis = redis.Redis | RedisCluster


def plain_server_is_cluster(client: redis.Redis) -> bool | None:
    """True if the server behind a plain client is a cluster node; None if it will not
    say (INFO refused, e.g. behind some proxies)."""
    try:
        return bool(client.info("cluster").get("cluster_enabled"))
    except redis.exceptions.ResponseError:
        return None


def _plain_client(
    url: str, *, decode_responses: bool, timeout: float, max_connections: int, verify: bool, setting: str
) -> redis.Redis:
    client = redis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        max_connections=max_connections,
    )
    if verify:
        clustered = plain_server_is_cluster(client)
        if clustered:
            client.close()
            raise RedisModeMismatch(
                f"{setting}={redact(url)} points at a Redis Cluster node (cluster_enabled:1): most keys "
                "would answer MOVED. Use redis+cluster://host:port,host:port,... instead."
            )
        if clustered is None:
            logger.warning("Could not tell whether %s is a cluster node (INFO refused)", redact(url))
    return client


def connect(
    url: str,
    *,
    decode_responses: bool = True,
    socket_timeout: float | None = None,
    max_connections: int = MAX_CONNECTIONS,
    verify: bool = True,
    setting: str = "REDIS_URL",
    cluster_class: type[QueueRedisCluster] = QueueRedisCluster,
) -> QueueRedis:
    """A new client for ``url``: ``redis.Redis`` for a plain URL, ``cluster_class`` for a
    cluster URL. With ``verify`` it first checks (one round trip) that the server's mode
    matches the URL and, for a cluster, that its state is ok: raises
    ``RedisModeMismatch``, ``ClusterUnavailable``, or the ``RedisError`` of an unreachable
    server. ``setting`` names the URL in messages."""
    timeout = settings.REDIS_SOCKET_TIMEOUT if socket_timeout is None else socket_timeout
    spec = parse_cluster_url(url)
    if spec is None:
        return _plain_client(
            url,
            decode_responses=decode_responses,
            timeout=timeout,
            max_connections=max_connections,
            verify=verify,
            setting=setting,
        )
    return cluster_client(
        url,
        spec,
        decode_responses=decode_responses,
        timeout=timeout,
        max_connections=max_connections,
        verify=verify,
        setting=setting,
        cluster_class=cluster_class,
    )


_client: QueueRedis | None = None
_client_url: str | None = None
_lock = threading.Lock()


def get_redis() -> QueueRedis:
    """The process's queue client for ``settings.REDIS_URL``, rebuilt when the setting
    changes (tests point it elsewhere). Built and verified on first use; if that fails the
    error propagates and the next call tries again."""
    global _client, _client_url
    url = settings.REDIS_URL
    client = _client
    if client is not None and _client_url == url:
        return client
    with _lock:
        if _client is None or _client_url != url:
            # The previous client is dropped, not closed: another thread may still be
            # finishing a command on it.
            _client = connect(url)
            _client_url = url
        return _client


def ping() -> None:
    """Raises a ``RedisError`` unless the queue's Redis can serve requests (``/healthz``).
    For a cluster a PING reaches one node, which answers while another master is down, so
    ask that node whether the cluster serves every slot instead."""
    client = get_redis()
    if isinstance(client, RedisCluster):
        problem = cluster_state_problem(client.cluster_info())
        if problem:
            raise ClusterUnavailable(f"Redis Cluster cannot serve every slot: {problem}")
    else:
        client.ping()
