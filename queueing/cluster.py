"""The queue's Redis Cluster client: redis-py's ``RedisCluster`` with outages reported as
``RedisError`` (so they are 503s, and cache misses for the Django cache), a slot map that
can always be rebuilt from the URL's nodes, bounded waits while the cluster is
unreachable, and the check that a ``redis+cluster://`` URL really points at a cluster.

Built by ``queueing.connection.connect`` for ``redis+cluster://`` URLs.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, NodesManager, RedisCluster
from redis.exceptions import RedisClusterException, SlotNotCoveredError
from redis.retry import Retry

from queueing.redis_urls import SSL_OPTIONS, ClusterSpec, redact

CLUSTER_SLOTS = 16384
# Cluster commands retried (with a fresh slot map) after a connection error, a
# CLUSTERDOWN or an uncovered slot. None by default, as for the plain client: a command
# that meets a dead or frozen master fails after one socket timeout (503 + Retry-After)
# and the slot map is refreshed for the next request, instead of holding the worker for
# (1 + retries) timeouts. ``?retries=N`` in the URL trades that bound for transparency.
CLUSTER_RETRIES = 0
# After a slot map refresh found no node answering, later refreshes within this many
# seconds fail at once instead of walking every node again (each walk costs up to one
# socket timeout per node while the whole cluster is unreachable).
REFRESH_BACKOFF_SECONDS = 2.0


class RedisModeMismatch(ImproperlyConfigured):
    """The URL says cluster and the server is not one, or the other way round."""


class ClusterUnavailable(redis.exceptions.ConnectionError):
    """The cluster cannot serve every slot right now (state ``fail``, a master down
    before its replica took over). A ``RedisError``, so the request gets a 503 with
    Retry-After like any other Redis outage."""


# Raised by redis-py when rebuilding the slot map finds no reachable node or an
# incomplete map: outages (a failover in progress, the cluster down), not bugs.
_OUTAGE_MESSAGES = ("Redis Cluster cannot be connected", "All slots are not covered")


def _as_unavailable(exc: RedisClusterException) -> Exception:
    if isinstance(exc, SlotNotCoveredError) or str(exc).startswith(_OUTAGE_MESSAGES):
        return ClusterUnavailable(f"Redis Cluster unavailable: {exc}")
    return exc


class _QueueNodesManager(NodesManager):
    """redis-py's slot map keeper, whose "no node answers" / "slots not covered" on a
    refresh is ``ClusterUnavailable``. Every path that meets an outage (a command, a
    pipeline, MGET split per slot) refreshes the map here, so this one place covers all.

    It also keeps the URL's nodes among those it rediscovers the cluster from: redis-py
    replaces them with the addresses it discovered and drops each node a command failed
    on, so after a total outage only old addresses would remain, and nodes that come
    back elsewhere (new pod IPs behind the same names) would never be found."""

    seed: tuple[tuple[str, int], ...] = ()
    failed_at: float | None = None  # time.monotonic() of the last refresh that found no node

    def initialize(self) -> None:
        failed_at = self.failed_at
        if failed_at is not None and time.monotonic() - failed_at < REFRESH_BACKOFF_SECONDS:
            raise ClusterUnavailable(
                f"Redis Cluster unavailable: no node answered {time.monotonic() - failed_at:.1f} s ago"
            )
        for host, port in self.seed:
            node = ClusterNode(host, port)
            # After the known nodes: the first that answers with a full map ends the search.
            self.startup_nodes.setdefault(node.name, node)
        try:
            super().initialize()
        except RedisClusterException as exc:
            error = _as_unavailable(exc)
            if isinstance(error, ClusterUnavailable):
                self.failed_at = time.monotonic()
            raise error from exc
        self.failed_at = None


class QueueRedisCluster(RedisCluster):
    """``RedisCluster`` whose "the cluster cannot serve this now" errors are
    ``ClusterUnavailable`` (a ``RedisError``, hence 503 + Retry-After, and a cache miss for
    django-redis) instead of redis-py's ``RedisClusterException``, which is not a
    ``RedisError`` and would be a 500.

    Errors that are programming mistakes (keys of one command in different slots, a
    command without a key) stay ``RedisClusterException``: they must be loud.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except RedisClusterException as exc:
            raise _as_unavailable(exc) from exc
        # redis-py builds its NodesManager inside __init__ with no way to choose the
        # class; ours only overrides initialize() (and keeps the two attributes it reads).
        self.nodes_manager.__class__ = _QueueNodesManager
        self.nodes_manager.seed = tuple((node.host, node.port) for node in kwargs.get("startup_nodes") or ())

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            # SlotNotCoveredError once the retries are spent.
            raise _as_unavailable(exc) from exc


def _node_kwargs(spec: ClusterSpec, timeout: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "username": spec.username,
        "password": spec.password,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
    }
    if spec.ssl:
        kwargs["ssl"] = True
        kwargs.update({name: spec.options[name] for name in SSL_OPTIONS if name in spec.options})
    return kwargs


def _parse_info(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def probe_cluster(
    url: str, spec: ClusterSpec, timeout: float, *, setting: str = "REDIS_URL"
) -> dict[str, str]:
    """``CLUSTER INFO`` of the first startup node that answers. Raises
    ``RedisModeMismatch`` if that node is not in cluster mode, ``ConnectionError`` if no
    startup node answers, and lets ``AuthenticationError`` through. All the nodes together
    get ``timeout`` seconds: a frozen cluster must not cost one timeout per node."""
    last_error: Exception | None = None
    deadline = time.monotonic() + timeout
    for host, port in spec.nodes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        probe = redis.Redis(host=host, port=port, decode_responses=True, **_node_kwargs(spec, remaining))
        try:
            if not probe.info("cluster").get("cluster_enabled"):
                raise RedisModeMismatch(
                    f"{setting}={redact(url)} asks for Redis Cluster, but {host}:{port} is not in cluster "
                    "mode (cluster_enabled:0). Use a redis:// URL for a single Redis, or list the "
                    "cluster's nodes."
                )
            raw = probe.execute_command("CLUSTER INFO")
            return raw if isinstance(raw, dict) else _parse_info(str(raw))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            last_error = exc
        finally:
            probe.close()
    raise redis.exceptions.ConnectionError(
        f"no startup node of {setting}={redact(url)} answers: {last_error}"
    )


def cluster_state_problem(info: dict[str, Any]) -> str | None:
    """Why a ``CLUSTER INFO`` reply means the cluster cannot serve every slot, or None."""
    state = str(info.get("cluster_state", ""))
    if state != "ok":
        return f"cluster_state:{state or '?'}"
    slots_ok = str(info.get("cluster_slots_ok", ""))
    if slots_ok and slots_ok != str(CLUSTER_SLOTS):
        return f"only {slots_ok} of {CLUSTER_SLOTS} slots ok"
    return None


def cluster_client(
    url: str,
    spec: ClusterSpec,
    *,
    decode_responses: bool,
    timeout: float,
    max_connections: int,
    verify: bool,
    setting: str,
    cluster_class: type[QueueRedisCluster],
) -> QueueRedisCluster:
    """A ``cluster_class`` client for the cluster ``spec`` describes. With ``verify`` it
    first probes a startup node (``probe_cluster``) and refuses a cluster that cannot
    serve every slot (``ClusterUnavailable``). Options of the URL override the defaults."""
    options = dict(spec.options)
    timeout = options.pop("socket_timeout", timeout)
    connect_timeout = options.pop("socket_connect_timeout", timeout)
    if verify:
        problem = cluster_state_problem(probe_cluster(url, spec, connect_timeout, setting=setting))
        if problem:
            raise ClusterUnavailable(
                f"Redis Cluster at {setting}={redact(url)} cannot serve every slot: {problem}"
            )
    retries = options.pop("retries", CLUSTER_RETRIES)
    kwargs = _node_kwargs(spec, timeout)
    kwargs.update(
        decode_responses=decode_responses,
        socket_connect_timeout=connect_timeout,
        max_connections=options.pop("max_connections", max_connections),
        # Bounded backoff: redis-py 6.4's sync cluster client does not sleep it, but a
        # version that does must not stretch a request past a few socket timeouts.
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries),
        # Refresh the whole slot map on every MOVED (or connection error inside a MULTI
        # pipeline) instead of patching one slot: redis-py 6.4's transaction pipeline
        # hands a ConnectionError to the patching path, which then raises AttributeError
        # on every later command of the client (redis/redis-py#3815, same bug in the sync
        # client). MOVED only happens during a failover or a resharding, so the extra
        # CLUSTER SLOTS calls are rare.
        reinitialize_steps=1,
        **{name: value for name, value in options.items() if name not in SSL_OPTIONS},
    )
    # No health_check_interval: redis-py's cluster client does not pass it on to its node
    # connections. A dead pooled connection fails on use (a 503, or a retry with
    # ?retries=N) and the slot map is refreshed for the next command.
    return cluster_class(startup_nodes=[ClusterNode(host, port) for host, port in spec.nodes], **kwargs)
