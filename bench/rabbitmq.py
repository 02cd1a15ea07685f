"""RabbitMQ for rehearsals and drills: a virtual host of one run's own on the machine's
RabbitMQ (``RunVhost``: the Celery broker of ``--broker rabbitmq``, deleted after), and
a RabbitMQ node of the drill's own (``OwnRabbitMQ``: own node name, ports, Mnesia and
log directories) that the ``rabbitmq-restart`` drill stops and starts mid-sale.

    vhost = RunVhost("lt-20260101-x1").create()
    vhost.url              # amqp://guest:guest@127.0.0.1:5672/lt-20260101-x1
    vhost.delete()

    node = OwnRabbitMQ(run_dir / "rabbitmq").start()
    node.url               # amqp://guest:guest@127.0.0.1:<port>/  (guest: loopback only)
    node.stop(); node.start()   # SIGTERM: a clean stop; durable queues and their
                                # persistent messages are there again after the start
    node.destroy()

The own node runs the Debian package's ``/usr/lib/rabbitmq/bin/rabbitmq-server`` directly
as the current user (the ``/usr/sbin`` wrapper would switch to the ``rabbitmq`` user),
with ``HOME`` in its directory holding a copy of the system node's Erlang cookie, so that
``rabbitmqctl -n <node>`` can talk to it. No plugins (an empty enabled-plugins file): the
management plugin would want the system node's port 15672.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
PORT = int(os.environ.get("REHEARSAL_RABBITMQ_PORT", "5672"))
SERVER_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
SYSTEM_COOKIE = Path("/var/lib/rabbitmq/.erlang.cookie")
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 60.0
_VHOST = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


class RabbitMQError(RuntimeError):
    """rabbitmqctl failed, or the node did not come up."""


def rabbitmqctl(*args: str, node: str | None = None, home: Path | None = None, timeout: float = 60) -> str:
    """``rabbitmqctl -s`` (no banner) against the system node, or ``node``."""
    binary = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    env = dict(os.environ)
    argv = [binary, "-s"]
    if node is not None:
        # Our own node: the real script with our HOME (its cookie), not the wrapper.
        binary, env["HOME"] = str(CTL_SCRIPT), str(home)
        argv = [binary, "-s", "-n", node]
    result = subprocess.run(
        [*argv, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RabbitMQError(f"rabbitmqctl {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


@dataclass
class RunVhost:
    """A virtual host on the shared RabbitMQ for the guest user; nothing else is touched."""

    name: str
    host: str = HOST
    port: int = PORT

    def __post_init__(self) -> None:
        if not _VHOST.fullmatch(self.name):
            raise RabbitMQError(f"not a safe vhost name: {self.name!r}")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/{self.name}"

    def create(self) -> RunVhost:
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        rabbitmqctl("delete_vhost", self.name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg: look for a member that is not one.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


class OwnRabbitMQ:
    """A RabbitMQ node of our own under ``directory`` (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).resolve()
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"drill-{uuid.uuid4().hex[:6]}@localhost"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{self.port}//"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def _prepare(self) -> dict[str, str]:
        home = self.directory / "home"
        for path in (home, self.directory / "mnesia", self.directory / "log"):
            path.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            shutil.copyfile(SYSTEM_COOKIE, cookie)
            cookie.chmod(0o400)
        (self.directory / "rabbitmq.conf").write_text(f"listeners.tcp.default = {HOST}:{self.port}\n")
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's NODENAME
        return {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": HOST,
        }

    def start(self) -> OwnRabbitMQ:
        """Starts the node (same name, ports and Mnesia directory every time); returns once
        it accepts AMQP connections."""
        if not SERVER_SCRIPT.exists():
            raise RabbitMQError("rabbitmq-server not installed (apt-get install rabbitmq-server)")
        env = self._prepare()
        output = (self.directory / "rabbitmq.out").open("ab")
        self.process = subprocess.Popen(
            [str(SERVER_SCRIPT)], cwd=self.directory, env=env, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        output.close()
        self._wait_accepting()
        return self

    def _wait_accepting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RabbitMQError(f"rabbitmq-server exited; see {self.directory / 'rabbitmq.out'}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RabbitMQError(f"RabbitMQ node did not accept connections within {START_TIMEOUT_SECONDS:.0f} s")

    def stop(self) -> float:
        """A clean stop (SIGTERM to the node's process group: the Erlang VM shuts RabbitMQ
        down in order); the seconds it took."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return 0.0
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        # The script (our child) and the Erlang VM it started share the process group:
        # stopped means every member is gone, not just the script.
        deadline = started + STOP_TIMEOUT_SECONDS
        while _group_alive(process.pid) and time.monotonic() < deadline:
            process.poll()
            time.sleep(0.1)
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return time.monotonic() - started

    def queue_depths(self) -> dict[str, tuple[int, int]]:
        """Queue -> (ready, unacknowledged) on the node's default vhost."""
        text = rabbitmqctl(
            "list_queues", "name", "messages_ready", "messages_unacknowledged",
            node=self.node, home=self.directory / "home",
        )  # fmt: skip
        depths = {}
        for line in text.splitlines():
            fields = line.split("\t")
            if len(fields) == 3 and fields[1].isdigit():
                depths[fields[0]] = (int(fields[1]), int(fields[2]))
        return depths

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
