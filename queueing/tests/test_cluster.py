"""The queue on a real Redis Cluster (3 masters + 3 replicas on loopback, see
``queueing/tests/conftest.py``): ``REDIS_URL=redis+cluster://...`` gives a cluster client,
one event's Lua scripts run on the master of its ``{ev:<id>}`` slot, a script survives a
failover to a replica that never saw it (NOSCRIPT, then reloaded), and a URL that does not
match the server's mode fails at once with a message saying so.

Run alone with ``.venv/bin/pytest queueing/tests/test_cluster.py -q -s`` (the failover
prints a ``CLUSTER-FIGURE`` line); ``-m "not cluster"`` leaves them out.
"""

from __future__ import annotations

import re
import signal
import time
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from bench.redis_cluster import LocalRedisCluster, Node, free_base_port
from queueing.checks import redis_urls_check
from queueing.cluster import ClusterUnavailable, RedisModeMismatch
from queueing.connection import get_redis, ping
from queueing.keys import EventKeys
from queueing.scripts import LUA_DIR, run_script

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SCRIPT = "queue_leave"
FAILOVER_TIMEOUT_S = 30.0


def script_keys(name: str, keys: EventKeys) -> list[str]:
    """The KEYS of a script in the order its header lists them (``KEYS[1] waiting``...),
    taken from ``EventKeys``: the test follows the script's contract, whatever it is."""
    header = (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")
    names = [
        match[1]
        for match in sorted(
            re.findall(r"^KEYS\[(\d+)\]\s+(\w+)", header, re.MULTILINE), key=lambda m: int(m[0])
        )
    ]
    assert names, f"no KEYS[n] lines in the header of {name}.lua"
    return [getattr(keys, attr) for attr in names]


def events_on_distinct_masters(cluster: LocalRedisCluster, count: int) -> list[int]:
    """Event ids whose ``{ev:<id>}`` slots are served by ``count`` different masters."""
    found: dict[int, int] = {}
    for event_id in range(1, 200):
        port = cluster.master_for_key(EventKeys(event_id).waiting).port
        found.setdefault(port, event_id)
        if len(found) == count:
            return sorted(found.values())
    raise AssertionError(f"no {count} events on distinct masters")


def restore(cluster: LocalRedisCluster, *nodes: Node) -> None:
    """Restarts the nodes a test killed and waits until the cluster is whole again, for
    the tests after it (force: a shard that lost master and replica comes back empty)."""
    for node in nodes:
        if cluster.pid(node.port) is None:
            cluster.restart(node, force=True)
    cluster.wait_healthy(60)


def is_member(client: RedisCluster, key: str, member: str) -> bool:
    return client.zscore(key, member) is not None


def cached_scripts(node: redis.Redis) -> int:
    return int(node.info("memory")["number_of_cached_scripts"])


def test_cluster_url_gives_a_cluster_client_and_scripts_run_on_every_master(
    on_cluster: LocalRedisCluster,
) -> None:
    client = get_redis()
    assert isinstance(client, RedisCluster)
    assert client.ping() is True

    events = events_on_distinct_masters(on_cluster, 3)
    for event_id in events:
        keys = EventKeys(event_id)
        client.zadd(keys.waiting, {"7": 1, "8": 2})
        client.zadd(keys.active, {"9": 10**13})
        removed = run_script(SCRIPT, keys=script_keys(SCRIPT, keys), args=[7])
        assert removed == 1
        # Only user 7 left; the other entries of this event (same slot, same master) stay.
        assert not is_member(client, keys.waiting, "7")
        assert is_member(client, keys.waiting, "8")
        assert is_member(client, keys.active, "9")
    masters = {on_cluster.master_for_key(EventKeys(event_id).waiting).port for event_id in events}
    assert len(masters) == 3


def test_a_script_over_keys_of_two_events_is_refused_loudly(on_cluster: LocalRedisCluster) -> None:
    first, second = events_on_distinct_masters(on_cluster, 2)
    keys = script_keys(SCRIPT, EventKeys(first))
    keys[-1] = script_keys(SCRIPT, EventKeys(second))[-1]
    # A programming error, not an outage: not a RedisError (which would be a quiet 503).
    with pytest.raises(RedisClusterException, match="all keys must map to the same key slot"):
        run_script(SCRIPT, keys=keys, args=[7])


def test_script_reloads_after_failover_to_a_replica_without_it(
    on_cluster: LocalRedisCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    event_id = events_on_distinct_masters(on_cluster, 1)[0]
    keys = EventKeys(event_id)
    client = get_redis()
    client.zadd(keys.waiting, {"1": 1, "2": 2, "3": 3})
    run_script(SCRIPT, keys=script_keys(SCRIPT, keys), args=[1])  # loaded on every master

    master = on_cluster.master_for_key(keys.waiting)
    replica = on_cluster.replica_of(master)
    # One connection, in READONLY mode: a replica answers reads only after READONLY.
    direct = redis.Redis(
        host=replica.host, port=replica.port, decode_responses=True, single_connection_client=True
    )
    direct.execute_command("READONLY")
    # The replica must not know the script, or the test would prove nothing. Redis 7
    # does not replicate SCRIPT LOAD; an older Redis may have, so forget it explicitly.
    direct.script_flush()
    assert cached_scripts(direct) == 0
    deadline = time.monotonic() + 5
    while direct.zscore(keys.waiting, "2") is None:  # the data above reached the replica
        assert time.monotonic() < deadline, "replication lag"
        time.sleep(0.02)

    started = time.monotonic()
    on_cluster.kill(master, signal.SIGKILL)
    refused: list[float] = []
    try:
        while True:
            call_started = time.monotonic()
            try:
                removed = run_script(SCRIPT, keys=script_keys(SCRIPT, keys), args=[2])
                break
            except redis.RedisError:
                # During the failover every call fails fast with a RedisError: a 503
                # with Retry-After for the client, never a hang nor a 500.
                refused.append(time.monotonic() - call_started)
            assert time.monotonic() - started < FAILOVER_TIMEOUT_S, "no failover"
            time.sleep(0.05)
        failover_s = time.monotonic() - started

        assert removed == 1
        new_master = on_cluster.master_for_key(keys.waiting)
        assert new_master.port == replica.port
        assert is_member(client, keys.waiting, "3")  # the replica had the data
        assert cached_scripts(direct) >= 1  # NOSCRIPT made redis-py load it there
        with capsys.disabled():
            print(
                f"\nCLUSTER-FIGURE master {master.port} SIGKILLed -> replica {replica.port} serving and "
                f"{SCRIPT} reloaded after {failover_s:.2f} s (cluster-node-timeout "
                f"{on_cluster.node_timeout_ms} ms); {len(refused)} calls refused meanwhile, slowest "
                f"{max(refused, default=0.0) * 1000:.0f} ms"
            )
    finally:
        direct.close()
        restore(on_cluster, master)


def test_cluster_url_at_a_single_redis_fails_fast(settings: Any, single_redis_port: int) -> None:
    settings.REDIS_URL = f"redis+cluster://127.0.0.1:{single_redis_port}"
    with pytest.raises(RedisModeMismatch, match="not in cluster mode"):
        get_redis()
    assert isinstance(RedisModeMismatch("x"), ImproperlyConfigured)
    messages = redis_urls_check(None)
    assert [m.id for m in messages if m.msg.startswith("REDIS_URL")] == ["queueing.E002"]
    assert all(isinstance(m, Error) for m in messages)


def test_plain_url_at_a_cluster_node_fails_fast(settings: Any, redis_cluster: LocalRedisCluster) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{redis_cluster.ports[0]}/0"
    with pytest.raises(RedisModeMismatch, match="points at a Redis Cluster node"):
        get_redis()
    messages = redis_urls_check(None)
    assert [m.id for m in messages if m.msg.startswith("REDIS_URL")] == ["queueing.E002"]


def test_a_cluster_that_lost_a_shard_is_unavailable_not_misconfigured(
    settings: Any, redis_cluster: LocalRedisCluster
) -> None:
    """A master and its replica both gone: the cluster says ``cluster_state:fail``. A
    process starting now gets ClusterUnavailable (a RedisError: 503 + Retry-After, and it
    tries again on the next call), and ``manage.py check`` says why."""
    settings.REDIS_URL = redis_cluster.url
    ping()  # a client built while the cluster is healthy
    master = redis_cluster.master_for_slot(0)
    replica = redis_cluster.replica_of(master)
    redis_cluster.kill(replica)
    redis_cluster.kill(master)
    try:
        survivor = next(port for port in redis_cluster.ports if port not in (master.port, replica.port))
        deadline = time.monotonic() + FAILOVER_TIMEOUT_S
        probe = redis.Redis(port=survivor, decode_responses=True)
        while probe.execute_command("CLUSTER INFO")["cluster_state"] != "fail":
            assert time.monotonic() < deadline, "the cluster never noticed"
            time.sleep(0.05)
        probe.close()
        with pytest.raises(redis.RedisError):
            ping()  # what /healthz would ask (ticketing/health.py): a 503 now
        # A URL this process has not used yet: get_redis() builds (and checks) a client.
        settings.REDIS_URL = f"redis+cluster://127.0.0.1:{survivor}"
        with pytest.raises(ClusterUnavailable, match="cluster_state:fail"):
            get_redis()
        assert [m.id for m in redis_urls_check(None) if m.msg.startswith("REDIS_URL")] == ["queueing.E003"]
    finally:
        restore(redis_cluster, master, replica)


def cluster_cache_settings(settings: Any, url: str) -> None:
    """The Django cache on ``url`` the way settings.py configures it for a cluster."""
    default = settings.CACHES["default"]
    settings.CACHES = {
        "default": {
            **default,
            "LOCATION": [url],
            "OPTIONS": {
                **default["OPTIONS"],
                "CONNECTION_FACTORY": "ticketing.cache_cluster.ClusterConnectionFactory",
            },
        }
    }


def test_django_cache_on_the_cluster_spans_slots(settings: Any, redis_cluster: LocalRedisCluster) -> None:
    cluster_cache_settings(settings, redis_cluster.url)
    values = {f"key-{n}": n for n in range(30)}  # no hash tags: many slots, all masters
    cache.set_many(values)
    assert cache.get("key-3") == 3
    assert cache.get_many([*values, "missing"]) == values  # MGET split per slot
    assert cache.add("counter", 1) and cache.incr("counter") == 2
    assert cache.delete_many(["key-1", "key-2"]) == 2
    assert cache.delete_pattern("key-*") == 28  # SCAN on every master
    assert cache.get_many(list(values)) == {}


def test_django_cache_fails_open_when_the_cluster_is_unreachable(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_base_port(2)
    cluster_cache_settings(settings, f"redis+cluster://127.0.0.1:{port},127.0.0.1:{port + 1}")
    assert cache.get("anything") is None
    assert cache.set("anything", 1) is None
    assert cache.get_many(["a", "b"]) == {}
    assert cache.delete_many(["a", "b"]) is None
    # Failing open is not failing silently: each miss is logged with its cause.
    assert any(
        "no startup node of CACHE_REDIS_URL" in str(record.exc_info[1])
        for record in caplog.records
        if record.exc_info
    )
