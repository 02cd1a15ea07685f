"""One more buyer, outside the load generator: what a single waiting buyer sees.

Locust times a request from inside its own event loop, on the same two cores as the
system: an answer that arrived is only read once the loop gets to it, so its figures carry
the load generator's own delays (``make loadtest`` prints the server's side, from nginx's
log, for the same reason). This probe polls the waiting room through the same front door
on a keep-alive connection of its own, from a thread of the harness (otherwise idle), and
times each answer from the write to the last byte: the latency a buyer's phone would see
on this machine, with the load generator's work still competing for the cores.

The probe joins, polls every ``interval`` seconds with the newest queue ticket, and when
admitted gives the pass back and joins again at the back (so it never holds a seat's turn
for long and always measures the waiting room's poll).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProbeFigures:
    polls: list[float] = field(default_factory=list)  # ms, in the order sent
    at_edge: int = 0  # answered by nginx itself (X-Queue-Edge)
    errors: int = 0

    def line(self) -> str:
        if not self.polls:
            return f"one buyer polling outside locust (bench/probe.py): no answer ({self.errors} errors)"
        times = sorted(self.polls)

        def at(share: float) -> float:
            return times[min(len(times) - 1, int(len(times) * share))]

        return (
            f"one buyer polling outside locust (bench/probe.py, its own connection): {len(times)} polls, "
            f"p50 {at(0.5):.0f} ms, p95 {at(0.95):.0f} ms, p99 {at(0.99):.0f} ms, max {times[-1]:.0f} ms "
            f"({self.at_edge} answered by nginx itself, {self.errors} errors)"
        )


class PollProbe(threading.Thread):
    def __init__(self, url: str, event_id: int, token: str, interval: float = 0.25) -> None:
        super().__init__(name="poll-probe", daemon=True)
        host, _, port = url.removeprefix("http://").partition(":")
        self.address = (host, int(port or 80))
        self.path = f"/api/events/{event_id}/queue/"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.interval = interval
        self.figures = ProbeFigures()
        self._stopping = threading.Event()
        self._connection: http.client.HTTPConnection | None = None

    def stop(self) -> ProbeFigures:
        self._stopping.set()
        self.join(timeout=10)
        return self.figures

    def _call(self, method: str, headers: dict[str, str]) -> tuple[int, dict[str, Any] | None, bool, float]:
        """(status, JSON body, answered by nginx, ms from the write to the last byte)."""
        if self._connection is None:
            self._connection = http.client.HTTPConnection(*self.address, timeout=30)
        started = time.perf_counter()
        try:
            self._connection.request(method, self.path, headers=headers)
            response = self._connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self._connection.close()
            self._connection = None
            raise
        elapsed = (time.perf_counter() - started) * 1000
        answer = (
            json.loads(body) if body and response.headers.get_content_type() == "application/json" else None
        )
        return response.status, answer, response.headers.get("X-Queue-Edge") == "1", elapsed

    def run(self) -> None:
        ticket: str | None = None
        while not self._stopping.wait(self.interval):
            try:
                if ticket is None:
                    status, answer, _edge, _ms = self._call("POST", self.headers)
                    ticket = (answer or {}).get("queue_ticket") if status in (200, 201) else None
                    if ticket is None and status not in (200, 201):
                        self.figures.errors += status >= 500
                        if status == 409:  # sold out or closed: nothing left to wait for
                            return
                    continue
                status, answer, edge, ms = self._call("GET", {**self.headers, "X-Queue-Ticket": ticket})
            except (OSError, http.client.HTTPException, ValueError):
                self.figures.errors += 1
                continue
            if status != 200 or answer is None:
                self.figures.errors += status >= 500
                ticket = None
                continue
            self.figures.polls.append(ms)
            self.figures.at_edge += edge
            ticket = answer.get("queue_ticket") or ticket
            if answer.get("state") == "active":  # give the turn back, join again at the back
                self._call("DELETE", self.headers)
                ticket = None
            elif answer.get("state") == "sold_out":
                return
