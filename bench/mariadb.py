"""MariaDB for rehearsals and drills: a database of one run's own on a running server
(``RunDatabase``: created, migrated by the driver, dropped after), and a MariaDB server
of the drill's own (``OwnMariaDB``: its own data directory and port, so that a drill can
stop and start it without touching the machine's shared server).

    database = RunDatabase("rehearsal_20260101_x1").create()   # on 127.0.0.1:3306
    database.url           # mysql://root@127.0.0.1:3306/rehearsal_...
    database.drop()

    server = OwnMariaDB(run_dir / "mariadb").start()   # mariadb-install-db + mariadbd
    server.stop(); server.start()                      # SIGTERM (clean shutdown), again
    server.destroy()                                   # stop and remove the data directory

Both are Debian's MariaDB 10.11 binaries (``mariadb-install-db``, ``mariadbd``); the
client side is mysqlclient, as Django uses it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SHARED_HOST = os.environ.get("REHEARSAL_MARIADB_HOST", "127.0.0.1")
SHARED_PORT = int(os.environ.get("REHEARSAL_MARIADB_PORT", "3306"))
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 60.0
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


class MariaDBError(RuntimeError):
    """The server is missing, did not start, or refused a statement."""


def _connect(host: str, port: int, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    import MySQLdb

    return MySQLdb.connect(host=host, port=port, user="root", connect_timeout=int(timeout))


def execute(host: str, port: int, statement: str) -> None:
    connection = _connect(host, port)
    try:
        connection.cursor().execute(statement)
    finally:
        connection.close()


@dataclass
class RunDatabase:
    """A database of one run on a server we may use but not stop (root, no password)."""

    name: str
    host: str = SHARED_HOST
    port: int = SHARED_PORT

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise MariaDBError(f"not a safe database name: {self.name!r}")

    @property
    def url(self) -> str:
        return f"mysql://root@{self.host}:{self.port}/{self.name}"

    def create(self) -> RunDatabase:
        execute(
            self.host,
            self.port,
            f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )
        return self

    def drop(self) -> None:
        execute(self.host, self.port, f"DROP DATABASE IF EXISTS `{self.name}`")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str:
    found = shutil.which(name) or f"/usr/sbin/{name}"
    if not os.access(found, os.X_OK):
        raise MariaDBError(f"{name} not found (apt-get install mariadb-server)")
    return found


class OwnMariaDB:
    """A mariadbd of our own under ``directory`` on a free loopback port. Root logs in
    without a password over TCP (``--auth-root-authentication-method=normal``); the
    server reads no my.cnf (``--no-defaults``), so the machine's settings never apply."""

    def __init__(self, directory: Path, *, port: int | None = None, buffer_pool_mb: int = 256) -> None:
        self.directory = Path(directory).resolve()
        self.port = port or free_port()
        self.buffer_pool_mb = buffer_pool_mb
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def install(self) -> None:
        """The system tables, once (mariadb-install-db)."""
        if (self.data_dir / "mysql").is_dir():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [_binary("mariadb-install-db"), "--no-defaults", f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal", "--user=root", "--skip-test-db"]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            raise MariaDBError(f"mariadb-install-db failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def start(self) -> OwnMariaDB:
        """Starts the server (installing it first if needed); returns once it answers."""
        self.install()
        argv = [_binary("mariadbd"), "--no-defaults", f"--datadir={self.data_dir}", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--socket={self.directory / 'mariadb.sock'}", "--user=root",
                f"--pid-file={self.directory / 'mariadb.pid'}", f"--log-error={self.directory / 'error.log'}",
                f"--innodb-buffer-pool-size={self.buffer_pool_mb}M", "--max-connections=500",
                # As the shared server runs: durable commits (a booking survives the stop).
                "--innodb-flush-log-at-trx-commit=1", "--skip-name-resolve"]  # fmt: skip
        output = (self.directory / "mariadbd.out").open("ab")
        self.process = subprocess.Popen(
            argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        output.close()
        self._wait_answering()
        return self

    def _wait_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise MariaDBError(f"mariadbd exited; see {self.directory / 'error.log'}")
            with contextlib.suppress(Exception):
                _connect("127.0.0.1", self.port, timeout=1).close()
                return
            time.sleep(0.2)
        raise MariaDBError(
            f"mariadbd did not answer on port {self.port} within {START_TIMEOUT_SECONDS:.0f} s"
        )

    def stop(self, sig: int = signal.SIGTERM) -> float:
        """SIGTERM is MariaDB's clean shutdown (InnoDB flushed); returns the seconds it took."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return 0.0
        started = time.monotonic()
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        return time.monotonic() - started

    def create_database(self, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise MariaDBError(f"not a safe database name: {name!r}")
        execute(
            "127.0.0.1",
            self.port,
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )
        return self.url(name)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
