"""HAProxy configured from ``deploy/haproxy/`` (``bench/balancer.HAProxy``) in front of
small scripted web nodes: requests are spread and counted per node, the buyer's address
reaches the node in ``X-Forwarded-For``, a node whose ``/healthz`` says 503 (Redis or the
database down: shared by every node) stays in rotation, and a dead node is taken out
without a failed request.

No test here is skipped when haproxy is missing: they fail, naming the package to install.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.balancer import HAProxy, server_lines

pytestmark = [pytest.mark.slow]


class Node(ThreadingHTTPServer):
    """A web node stand-in: counts requests, answers /healthz with ``health``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.health = 200
        self.requests = 0
        self.forwarded_for: list[str] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        node: Node = self.server  # type: ignore[assignment]
        status = node.health if self.path == "/healthz" else 200
        if self.path != "/healthz":
            node.requests += 1
            node.forwarded_for.append(self.headers.get("X-Forwarded-For", ""))
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started = [Node(), Node()]
    yield started
    for node in started:
        with contextlib.suppress(OSError):
            node.stop()


@pytest.fixture
def balancer(nodes: list[Node], tmp_path: Path) -> Iterator[HAProxy]:
    with HAProxy(servers=[n.address for n in nodes], run_dir=tmp_path / "lb", balance="roundrobin") as lb:
        yield lb


def get(balancer: HAProxy, path: str = "/api/events/") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", balancer.port, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_requests_are_spread_and_counted_per_node(balancer: HAProxy, nodes: list[Node]) -> None:
    assert all(get(balancer) == 200 for _ in range(20))
    stats = balancer.server_stats()
    assert [stats[f"web{i}"].requests for i in (1, 2)] == [n.requests for n in nodes]
    assert sorted(n.requests for n in nodes) == [10, 10]  # round robin
    assert all(value == "127.0.0.1" for n in nodes for value in n.forwarded_for)


def test_a_node_whose_dependencies_are_down_stays_in(balancer: HAProxy, nodes: list[Node]) -> None:
    nodes[0].health = 503  # /healthz: "database unavailable", as on every node at once
    time.sleep(3)  # fall 2 x inter 1 s, and a margin
    assert {s.status for s in balancer.server_stats().values()} == {"UP"}
    assert all(get(balancer) == 200 for _ in range(10))
    assert nodes[0].requests > 0


def test_a_dead_node_is_taken_out_without_a_failed_request(balancer: HAProxy, nodes: list[Node]) -> None:
    nodes[1].stop()  # connections refused from now on
    statuses = [get(balancer) for _ in range(20)]  # retried on the other node (redispatch)
    assert statuses == [200] * 20
    deadline = time.monotonic() + 10
    while balancer.server_stats()["web2"].status != "DOWN" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert balancer.server_stats()["web2"].status == "DOWN"


def test_addresses_that_could_inject_directives_are_refused() -> None:
    with pytest.raises(ValueError):
        server_lines(["127.0.0.1:8000\n    stats admin if TRUE"])
    with pytest.raises(ValueError):
        server_lines([])


def test_haproxys_own_503_has_the_api_shape_and_retry_after(balancer: HAProxy, nodes: list[Node]) -> None:
    for node in nodes:
        node.stop()
    deadline = time.monotonic() + 10
    while {s.status for s in balancer.server_stats().values()} != {"DOWN"} and time.monotonic() < deadline:
        time.sleep(0.2)
    connection = http.client.HTTPConnection("127.0.0.1", balancer.port, timeout=10)
    try:
        connection.request("GET", "/api/events/")
        response = connection.getresponse()
        assert response.status == 503
        assert response.getheader("Retry-After") == "5"
        assert json.loads(response.read())["code"] == "service_unavailable"
    finally:
        connection.close()
