"""Fixtures of the Redis Cluster tests (``-m cluster``): a real local cluster of 3 masters
and 3 replicas on spare loopback ports (``bench/redis_cluster.py``), started once per test
session when a test asks for it, and a single non-cluster Redis for the mode-mismatch
checks. Never the machine's Redis nor the embedded one."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bench.redis_cluster import ClusterError, LocalRedisCluster, find_binaries, free_base_port

# Short, so that the failover test takes seconds; loopback nodes answer pings in well
# under a millisecond, so this does not fail healthy masters over.
NODE_TIMEOUT_MS = 1000
START_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pytest_configure(config: pytest.Config) -> None:
    # Also in pyproject.toml; registered here too so that --strict-markers accepts the
    # cluster tests whichever of the two is read.
    config.addinivalue_line("markers", "cluster: needs a local Redis Cluster (started on demand)")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A healthy local Redis Cluster for the whole session, stopped (processes and files)
    at its end. Tests that kill nodes must leave it healthy again."""
    cluster: LocalRedisCluster | None = None
    for attempt in range(START_ATTEMPTS):
        candidate = LocalRedisCluster(
            base_port=free_base_port(6),
            directory=tmp_path_factory.mktemp(f"redis-cluster-{attempt}"),
            node_timeout_ms=NODE_TIMEOUT_MS,
        )
        try:
            candidate.start()
        except ClusterError:
            # Another process took one of the ports between the probe and the bind.
            if attempt == START_ATTEMPTS - 1:
                raise
            continue
        cluster = candidate
        break
    assert cluster is not None
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def on_cluster(settings: Any, redis_cluster: LocalRedisCluster) -> LocalRedisCluster:
    """Points the queue at the cluster: the next ``get_redis()`` builds a cluster client."""
    settings.REDIS_URL = redis_cluster.url
    return redis_cluster


@pytest.fixture(scope="session")
def single_redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A plain (non-cluster) redis-server on a spare loopback port."""
    server, _cli = find_binaries()
    port = free_port()
    directory: Path = tmp_path_factory.mktemp("single-redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=port, socket_timeout=0.5).ping():
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"redis-server on port {port} did not start")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
