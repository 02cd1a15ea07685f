"""A minimal keep-alive HTTP/1.1 client for the crowd driver: a bounded pool of
connections to one host, shared by every simulated buyer.

Why not aiohttp: measured on this machine against a static nginx answer (``python
bench/client_cost.py``), this client costs about a third of aiohttp's CPU per request
(see the README, "Rehearsing a sale"), and the driver shares two cores with the system it
measures. It does only what the driver needs: one origin, requests with a small body,
answers with ``Content-Length`` or ``chunked`` bodies, keep-alive with a reconnect after
``Connection: close`` (gunicorn's sync workers close every connection), a timeout per
request. Everything else (redirects, cookies, TLS, proxies, compression) is absent on
purpose.

Why a pool and not one socket per buyer: 50,000 buyers each polling every 20-30 s send a
few thousand requests a second, which a few hundred connections carry; 50,000 sockets
from one address to one port would exhaust the ephemeral ports (about 28,000 on Linux),
hold 50,000 file descriptors and kernel buffers in the driver and the server, and measure
the kernel's connection handling rather than the application. Browsers behind a CDN or a
proxy share upstream connections the same way.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass

HEADER_END = b"\r\n\r\n"


class HttpError(Exception):
    """A transport failure: connect refused, connection lost, malformed answer, timeout."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; the last value of a repeated header
    body: bytes
    sent_at: float  # perf_counter() when the request was written (after the pool wait)
    queued_for: float  # seconds spent waiting for a free connection


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight (no pipelining)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.head: tuple[int, dict[str, str], int] | None = None  # status, headers, body start
        self.open = False
        self.requests = 0  # answered on this connection
        self.stale = False  # closed by the server before a byte of the current answer came

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.waiter is not None and not self.waiter.done():
            self.stale = not self.buffer
            self.waiter.set_exception(HttpError(f"connection lost: {exc or 'closed by the server'}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            try:
                self._parse()
            except (ValueError, IndexError) as error:
                self.waiter.set_exception(HttpError(f"malformed answer: {error}"))
                self.close()

    # -- use --

    def send(self, request: bytes) -> asyncio.Future[tuple[int, dict[str, str], bytes]]:
        self.waiter = self.loop.create_future()
        self.head = None
        assert self.transport is not None
        self.transport.write(request)
        return self.waiter

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    # -- parsing --

    def _parse(self) -> None:
        if self.head is None:
            end = self.buffer.find(HEADER_END)
            if end < 0:
                return
            self.head = _parse_head(bytes(self.buffer[:end]), end + 4)
        status, headers, start = self.head
        length = headers.get("content-length")
        if length is not None:
            stop = start + int(length)
            if len(self.buffer) < stop:
                return
            body = bytes(self.buffer[start:stop])
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parsed = _parse_chunked(self.buffer, start)
            if parsed is None:
                return
            body, stop = parsed
        elif status in (204, 304) or 100 <= status < 200:
            body, stop = b"", start
        else:
            raise ValueError("an answer without Content-Length or chunked encoding")
        del self.buffer[:stop]
        assert self.waiter is not None
        self.waiter.set_result((status, headers, body))


def _parse_head(head: bytes, body_start: int) -> tuple[int, dict[str, str], int]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body_start


def _parse_chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """(body, end offset) once the whole chunked body is in ``buffer``, else None."""
    body = bytearray()
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end == line_end:  # no trailers: "0\r\n\r\n"
                return bytes(body), line_end + 4
            return (bytes(body), trailer_end + 4) if trailer_end >= 0 else None
        chunk_start = line_end + 2
        if len(buffer) < chunk_start + size + 2:
            return None
        body += buffer[chunk_start : chunk_start + size]
        position = chunk_start + size + 2


class Pool:
    """Up to ``size`` keep-alive connections to ``host:port``, handed out one request at a
    time in arrival order (waiters queue FIFO, so no buyer starves)."""

    def __init__(self, host: str, port: int, *, size: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.size, self.timeout = host, port, size, timeout
        self.host_header = f"{host}:{port}"
        self.idle: list[_Connection] = []
        self.opened = 0  # connections open or being opened
        self.waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self.connects = 0  # new connections made (a rising count means the server closes them)
        self.retries = 0  # requests sent again after the keep-alive race (see ``request``)
        self.loop = asyncio.get_running_loop()

    async def _acquire(self) -> _Connection:
        while self.idle:
            connection = self.idle.pop()
            if connection.open:
                return connection
            self.opened -= 1
        if self.opened < self.size:
            self.opened += 1
            return await self._connect()
        waiter: asyncio.Future[_Connection | None] = self.loop.create_future()
        self.waiters.append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over, then cancelled: pass it on
                handed = waiter.result()
                if handed is not None:
                    self._release(handed, reusable=True)
                else:
                    self._give_back_slot()
            raise
        # None: a connection closed and its slot came to us; open a fresh one in it.
        return handed if handed is not None else await self._connect()

    async def _connect(self) -> _Connection:
        try:
            _, protocol = await self.loop.create_connection(
                lambda: _Connection(self.loop), self.host, self.port
            )
        except OSError as error:
            self._give_back_slot()
            raise HttpError(f"connect failed: {error}") from error
        except asyncio.CancelledError:
            self._give_back_slot()
            raise
        self.connects += 1
        return protocol

    def _give_back_slot(self) -> None:
        if not self._wake(None):
            self.opened -= 1

    def _wake(self, connection: _Connection | None) -> bool:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    def _release(self, connection: _Connection, *, reusable: bool) -> None:
        if reusable and connection.open:
            if not self._wake(connection):
                self.idle.append(connection)
            return
        connection.close()
        # Its slot goes to the next waiter, which opens a fresh connection.
        self._give_back_slot()

    async def request(
        self, method: str, path: str, *, headers: str = "", body: bytes = b"", timeout: float | None = None
    ) -> Response:
        """One request; ``headers`` are ready-made "Name: value\r\n" lines.

        A reused connection that the server closed while it sat idle (its keep-alive
        timeout) fails before a byte of the answer arrives; the server never read that
        request, so it is sent once more on a fresh connection, as browsers do."""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host_header}\r\n{headers}"
        if body or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        request = (head + "\r\n").encode("latin-1") + body
        queued = time.perf_counter()
        for attempt in range(2):
            connection = await self._acquire()
            reused = connection.requests > 0
            sent_at = time.perf_counter()
            try:
                status, response_headers, response_body = await self._exchange(connection, request, timeout)
            except HttpError:
                if attempt == 0 and reused and connection.stale:
                    self.retries += 1
                    continue
                raise
            return Response(status, response_headers, response_body, sent_at, sent_at - queued)
        raise AssertionError("unreachable")

    async def _exchange(
        self, connection: _Connection, request: bytes, timeout: float | None
    ) -> tuple[int, dict[str, str], bytes]:
        future = connection.send(request)
        timer = self.loop.call_later(timeout or self.timeout, _expire, future)
        try:
            status, headers, body = await future
        except BaseException:
            self._release(connection, reusable=False)
            raise
        finally:
            timer.cancel()
        connection.requests += 1
        self._release(connection, reusable=headers.get("connection", "").lower() != "close")
        return status, headers, body

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


def _expire(future: asyncio.Future[object]) -> None:
    if not future.done():
        future.set_exception(HttpError("timed out"))
