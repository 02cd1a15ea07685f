"""``queueing.connection`` and ``queueing.redis_urls`` without a cluster: the URL forms it accepts and refuses, and a
plain URL still giving the plain client it always gave (the cluster itself is exercised
in test_cluster.py)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from queueing.checks import key_prefix_messages
from queueing.connection import HEALTH_CHECK_INTERVAL, MAX_CONNECTIONS, get_redis
from queueing.redis_urls import ClusterSpec, is_cluster, parse_cluster_url, redact


@pytest.mark.parametrize(
    ("url", "spec"),
    [
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3",
            ClusterSpec(nodes=(("10.0.0.1", 7000), ("10.0.0.2", 7001), ("10.0.0.3", 6379))),
        ),
        (
            "redis+cluster://:s%40cr%2Ft@redis-0.redis:6379,redis-1.redis:6379/0?retries=1&socket_timeout=0.5",
            ClusterSpec(
                nodes=(("redis-0.redis", 6379), ("redis-1.redis", 6379)),
                password="s@cr/t",
                options={"retries": 1, "socket_timeout": 0.5},
            ),
        ),
        (
            "rediss+cluster://app:pw@[::1]:7000?ssl_cert_reqs=none&require_full_coverage=no",
            ClusterSpec(
                nodes=(("::1", 7000),),
                username="app",
                password="pw",
                ssl=True,
                options={"ssl_cert_reqs": "none", "require_full_coverage": False},
            ),
        ),
    ],
)
def test_cluster_urls_are_parsed(url: str, spec: ClusterSpec) -> None:
    assert parse_cluster_url(url) == spec
    assert is_cluster(url)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/5", "rediss://h:6380/0", "unix:///tmp/redis.sock?db=2"]
)
def test_plain_urls_are_left_to_redis_py(url: str) -> None:
    assert parse_cluster_url(url) is None
    assert not is_cluster(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+cluster://", "no startup node"),
        ("redis+cluster://h:7000/3", "only database 0"),
        ("redis+cluster://h:port", "bad port"),
        ("redis+cluster://h:70000", "out of range"),
        ("redis+cluster://h:7000?retry=3", "unknown option 'retry'"),
        ("redis+cluster://h:7000?retries=many", "option retries"),
        ("redis+cluster://:secret@h:7000?require_full_coverage=maybe", "not a boolean"),
    ],
)
def test_impossible_cluster_urls_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=why) as caught:
        parse_cluster_url(url)
    assert "secret" not in str(caught.value)


def test_passwords_never_reach_messages() -> None:
    assert redact("redis+cluster://:hunter2@h:1,h:2?retries=1") == "redis+cluster://:***@h:1,h:2?retries=1"
    assert redact("redis://user:hunter2@h:6379/0") == "redis://user:***@h:6379/0"
    assert redact("unix:///tmp/r.sock?db=1&password=hunter2") == "unix:///tmp/r.sock?db=1&password=***"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"


def test_a_plain_url_still_gives_the_plain_client_with_the_same_options(settings: Any) -> None:
    if is_cluster():
        pytest.skip("REDIS_URL is a cluster URL in this run")
    client = get_redis()
    assert type(client) is redis.Redis
    assert get_redis() is client  # one client per process and URL
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["decode_responses"] is True
    assert kwargs["socket_timeout"] == settings.REDIS_SOCKET_TIMEOUT
    assert kwargs["socket_connect_timeout"] == settings.REDIS_SOCKET_TIMEOUT
    assert kwargs["health_check_interval"] == HEALTH_CHECK_INTERVAL
    assert client.connection_pool.max_connections == MAX_CONNECTIONS
    assert client.ping() is True

    settings.REDIS_SOCKET_TIMEOUT = 0.5
    settings.REDIS_URL = settings.REDIS_URL + ("&" if "?" in settings.REDIS_URL else "?") + "client_name=t"
    rebuilt = get_redis()
    assert rebuilt is not client
    assert rebuilt.connection_pool.connection_kwargs["socket_timeout"] == 0.5


def test_braces_in_the_key_prefix_are_refused_on_a_cluster(settings: Any) -> None:
    settings.QUEUE_KEY_PREFIX = "tq{eu}:"
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"  # only read, never connected to
    assert key_prefix_messages() == []  # a single Redis has no slots to break
    settings.REDIS_URL = "redis+cluster://127.0.0.1:7000"
    assert [message.id for message in key_prefix_messages()] == ["queueing.E008"]
    settings.QUEUE_KEY_PREFIX = "tq:"
    assert key_prefix_messages() == []
