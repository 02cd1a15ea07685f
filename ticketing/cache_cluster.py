"""django-redis on Redis Cluster: ``CACHE_REDIS_URL=redis+cluster://host:port,...``.

django-redis builds a plain ``redis.Redis`` from a pool per URL; a cluster needs a
``RedisCluster``. ``ClusterConnectionFactory`` (set as the cache's
``OPTIONS["CONNECTION_FACTORY"]``) builds one per cluster URL and process, with the
cache's socket timeouts, and hands plain URLs to django-redis's own factory unchanged.
``LOCATION`` must then be a one-item list: django-redis splits a string at commas into
a primary and read replicas, which would cut a cluster URL's node list apart.

What keeps the cache failing open (``IGNORE_EXCEPTIONS``) on a cluster: django-redis
ignores only connection, timeout and response errors, and redis-py's cluster client raises
``RedisClusterException`` (not a ``RedisError``) when a slot has no master or no node
answers; ``QueueRedisCluster`` turns those into ``ClusterUnavailable``, a connection
error. And the cache's keys are not hash-tagged, so one call's keys lie in many slots:
``get_many`` (MGET) is split per slot here; ``delete_many`` (DEL) is split by redis-py;
``set_many`` and ``delete_pattern`` use a non-transactional pipeline, which redis-py sends
node by node; ``delete_pattern`` and ``iter_keys`` SCAN every master. ``keys()`` would
ask one node only (redis-py sends KEYS to its default node): nothing here calls it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, cast

import redis
from django_redis.pool import ConnectionFactory

from queueing.cluster import QueueRedisCluster, RedisModeMismatch
from queueing.connection import connect
from queueing.redis_urls import is_cluster

logger = logging.getLogger(__name__)


class ClusterCacheRedis(QueueRedisCluster):
    """The cache's cluster client: multi-key reads split per slot."""

    def mget(self, keys: Any, *args: Any) -> list[Any]:
        # A cluster refuses an MGET over several slots; the cache's reads need no
        # atomicity (django-redis's get_many is a best-effort read anyway).
        return self.mget_nonatomic(keys, *args)


class ClusterClientProxy:
    """What django-redis holds for a cluster URL: finds (or builds) the process's cluster
    client on each attribute access. django-redis asks for its client outside its
    ``try`` blocks but calls the client's methods inside them, so building the cluster
    client here, late, puts "no node answers" where ``IGNORE_EXCEPTIONS`` can catch it;
    and a cache that could not connect tries again on its next call."""

    def __init__(self, factory: ClusterConnectionFactory, url: str) -> None:
        self._factory = factory
        self.cluster_url = url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._factory.cluster_client(self.cluster_url), name)


class ClusterConnectionFactory(ConnectionFactory):
    """django-redis's factory, plus ``redis+cluster://`` / ``rediss+cluster://`` URLs."""

    # One client per URL and process, like django-redis's own pools: Django builds a
    # cache client per thread, and a cluster client holds a pool per node.
    _clusters: dict[str, ClusterCacheRedis] = {}
    _clusters_lock = threading.Lock()

    def connect(self, url: str) -> Any:
        if not is_cluster(url):
            return super().connect(url)
        return ClusterClientProxy(self, url)

    def cluster_client(self, url: str) -> ClusterCacheRedis:
        client = self._clusters.get(url)
        if client is None:
            with self._clusters_lock:
                client = self._clusters.get(url)
                if client is None:
                    client = self._new_cluster_client(url)
                    self._clusters[url] = client
        return client

    def _new_cluster_client(self, url: str) -> ClusterCacheRedis:
        timeout = self.options.get("SOCKET_TIMEOUT") or None
        try:
            client = connect(
                url,
                decode_responses=False,  # the cache stores pickled bytes
                socket_timeout=timeout,
                setting="CACHE_REDIS_URL",
                cluster_class=ClusterCacheRedis,
            )
        except RedisModeMismatch as exc:
            # A misconfiguration, not an outage, but the cache still fails open: every
            # cache call logs this (DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS) and falls back to
            # the database; manage.py check reports it as an error.
            logger.error("%s", exc)
            raise redis.exceptions.ConnectionError(str(exc)) from exc
        return cast(ClusterCacheRedis, client)

    def disconnect(self, connection: Any) -> None:
        if isinstance(connection, ClusterClientProxy):
            client = self._clusters.get(connection.cluster_url)
            if client is not None:
                # Closes the sockets; the shared client reconnects on its next command.
                client.disconnect_connection_pools()
            return
        super().disconnect(connection)
