"""The backing services of one rehearsal or drill, started (or carved out of the shared
ones) before the app and removed after: the multi-node shape of ``bench/loadtest.py``
(``--redis-cluster``, ``--broker rabbitmq``, ``--database mariadb``) and of the drills.

* ``--redis-cluster``: a local Redis Cluster (``bench/redis_cluster.LocalRedisCluster``,
  3 masters + 3 replicas) on free ports with its files under the run directory;
  ``REDIS_URL=redis+cluster://...``. The Django cache then needs a Redis of its own
  (``CACHE_REDIS_URL``: the plain Redis of the environment, else the embedded one), and
  Celery a broker that is not the cluster (kombu has no cluster transport).
* ``--broker rabbitmq``: a virtual host of the run's own on the machine's RabbitMQ
  (``CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/<vhost>``), or a whole RabbitMQ
  node of our own (``own-rabbitmq``, for the broker drill).
* ``--database mariadb``: a database of the run's own on the machine's MariaDB
  (``DATABASE_URL=mysql://root@127.0.0.1:3306/<db>``), or a MariaDB server of our own
  (``own-mariadb``, for the database drill). The driver migrates it.

``RunServices.start()`` returns the environment variables that point the app at them;
``stop()`` removes everything it created (cluster, vhost, database, own servers), also
after a failed start. ``cpu_roots()`` names their processes for the CPU split.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cpu import pid_listening


@dataclass
class ServiceOptions:
    redis_cluster: bool = False
    broker: str = "redis"  # redis (a private database of the plain Redis) | rabbitmq | own-rabbitmq
    database: str = "default"  # default (DATABASE_URL or SQLite) | mariadb | own-mariadb
    cluster_node_timeout_ms: int = 2000


LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def plain_redis_url() -> str:
    """A plain Redis for the cache next to a cluster: the environment's REDIS_URL if it is
    not a cluster, else the machine's Redis on 6379 if it answers, else the embedded one
    (which every ``make run`` / ``make test`` of this checkout shares: its CPU in the split
    would be theirs too)."""
    import redis

    url = os.environ.get("REDIS_URL", "")
    if url and "+cluster" not in url.partition("://")[0]:
        return url
    try:
        redis.Redis.from_url(LOCAL_REDIS, socket_timeout=1).ping()
        return LOCAL_REDIS
    except (redis.RedisError, OSError):
        pass
    from bench.system import VAR_DIR
    from ticketing.embedded_redis import ensure_running

    return ensure_running(VAR_DIR)


def redis_server_pid(url: str) -> int | None:
    """The pid of a Redis server on this machine (INFO server), for the CPU split."""
    import redis

    try:
        client = redis.Redis.from_url(url.replace("redis+socket://", "unix://", 1), socket_timeout=1)
        return int(client.info("server").get("process_id", 0)) or None
    except (redis.RedisError, OSError, ValueError):
        return None


@dataclass
class RunServices:
    options: ServiceOptions
    run_id: str
    run_dir: Path
    cluster: Any = None
    vhost: Any = None
    rabbit_node: Any = None
    database: Any = None
    mariadb: Any = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def safe_name(self) -> str:
        return "rehearsal_" + self.run_id.replace("-", "_")

    def start(self) -> dict[str, str]:
        """Starts or creates what the options ask for; the environment that points at it."""
        try:
            if self.options.redis_cluster:
                self._start_cluster()
            if self.options.broker != "redis":
                self._start_broker()
            if self.options.database != "default":
                self._start_database()
        except BaseException:
            self.stop()
            raise
        return dict(self.env)

    def _start_cluster(self) -> None:
        from bench.redis_cluster import LocalRedisCluster, free_base_port

        self.cluster = LocalRedisCluster(
            base_port=free_base_port(6),
            directory=self.run_dir / "redis-cluster",
            node_timeout_ms=self.options.cluster_node_timeout_ms,
        )
        self.env["REDIS_URL"] = self.cluster.start()
        # The cache on a plain Redis of its own (the cluster holds only the queue's keys).
        self.env["CACHE_REDIS_URL"] = os.environ.get("CACHE_REDIS_URL") or plain_redis_url()

    def _start_broker(self) -> None:
        from bench.rabbitmq import OwnRabbitMQ, RunVhost

        if self.options.broker == "own-rabbitmq":
            self.rabbit_node = OwnRabbitMQ(self.run_dir / "rabbitmq").start()
            self.env["CELERY_BROKER_URL"] = self.rabbit_node.url
        else:
            self.vhost = RunVhost(f"rehearsal-{self.run_id}").create()
            self.env["CELERY_BROKER_URL"] = self.vhost.url

    def _start_database(self) -> None:
        from bench.mariadb import OwnMariaDB, RunDatabase

        if self.options.database == "own-mariadb":
            self.mariadb = OwnMariaDB(self.run_dir / "mariadb").start()
            self.env["DATABASE_URL"] = self.mariadb.create_database("rehearsal")
        else:
            self.database = RunDatabase(self.safe_name).create()
            self.env["DATABASE_URL"] = self.database.url

    def stop(self) -> None:
        """Removes everything this object created; never anything else."""
        from django.db import connections

        with contextlib.suppress(Exception):
            connections.close_all()  # a database is not dropped under our own connection
        for resource, method in (
            (self.cluster, "stop"),
            (self.vhost, "delete"),
            (self.rabbit_node, "destroy"),
            (self.database, "drop"),
            (self.mariadb, "destroy"),
        ):
            if resource is None:
                continue
            try:
                getattr(resource, method)()
            except Exception as error:  # keep cleaning up; say what was left
                print(f"cleanup of {type(resource).__name__}: {error}", flush=True)
        self.cluster = self.vhost = self.rabbit_node = self.database = self.mariadb = None

    def cpu_roots(self, env: dict[str, str]) -> dict[str, list[int]]:
        """Process groups of the CPU split: our own servers, and the shared ones we use
        (their CPU then includes other users of the same server: labelled "shared")."""
        roots: dict[str, list[int]] = {}
        if self.cluster is not None:
            pids = [pid for port in self.cluster.ports if (pid := self.cluster.pid(port))]
            roots["redis cluster"] = pids
            cache_pid = redis_server_pid(env.get("CACHE_REDIS_URL", ""))
            if cache_pid:
                roots["redis (cache, shared)"] = [cache_pid]
        if self.rabbit_node is not None and self.rabbit_node.pid:
            roots["rabbitmq (own)"] = [self.rabbit_node.pid]
        elif self.vhost is not None and (pid := pid_listening(self.vhost.port)):
            roots["rabbitmq (shared)"] = [pid]
        if self.mariadb is not None and self.mariadb.pid:
            roots["mariadb (own)"] = [self.mariadb.pid]
        elif self.database is not None and (pid := pid_listening(self.database.port)):
            roots["mariadb (shared)"] = [pid]
        return roots
