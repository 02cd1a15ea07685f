"""Every request of a crowd run, counted and timed: per endpoint, the answers by kind
(ok, expected refusal, error) and every latency sample (no sampling: percentiles come
from all of them, kept as 4-byte floats, about 4 MB per million requests)."""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Answers the contract gives under contention: counted, not errors.
EXPECTED = {
    "join": {409: ("sold_out", "sales_closed")},
    "status": {
        404: ("not_in_queue",),
        401: ("queue_ticket_invalid", "queue_ticket_expired"),
        403: ("queue_ticket_mismatch",),
    },
    "hold": {409: ("seat_unavailable", "sold_out", "sales_closed"), 403: ("not_admitted",)},
    "confirm": {409: ("hold_missing", "seat_unavailable"), 403: ("not_admitted",)},
}
# Polls once the whole crowd has joined (bench/journeys.py): the same answers as any poll.
EXPECTED["status_steady"] = EXPECTED["status"]


@dataclass
class Endpoint:
    name: str
    latencies_ms: array = field(default_factory=lambda: array("f"))  # from the buyer's intent
    server_ms: array = field(default_factory=lambda: array("f"))  # from the write on the socket
    answers: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    def percentiles(self, samples: array | None = None) -> dict[str, float]:
        ordered = sorted(self.latencies_ms if samples is None else samples)
        if not ordered:
            return {}

        def at(share: float) -> float:
            # Nearest rank: the smallest sample with at least ``share`` of them at or below.
            return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])

        return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": float(ordered[-1])}


class Tally:
    """One per run; ``record`` is on the hot path (a few hundred ns)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.transport_errors: Counter[str] = Counter()

    def endpoint(self, name: str) -> Endpoint:
        found = self.endpoints.get(name)
        if found is None:
            found = self.endpoints[name] = Endpoint(name)
        return found

    def record(self, name: str, status: int, code: str | None, latency_s: float, server_s: float) -> str:
        """Counts one answer; returns its class: "ok", "expected" or "error"."""
        endpoint = self.endpoint(name)
        endpoint.latencies_ms.append(latency_s * 1000)
        endpoint.server_ms.append(server_s * 1000)
        if 200 <= status < 300 or status == 304:
            endpoint.answers[str(status)] += 1
            return "ok"
        allowed = EXPECTED.get(name, {}).get(status)
        label = f"{status} {code or ''}".rstrip()
        endpoint.answers[label] += 1
        if allowed is not None and code in allowed:
            return "expected"
        endpoint.errors += 1
        return "error"

    def transport_error(self, name: str, reason: str) -> None:
        endpoint = self.endpoint(name)
        endpoint.errors += 1
        endpoint.answers["transport error"] += 1
        self.transport_errors[f"{name}: {reason[:80]}"] += 1

    @property
    def requests(self) -> int:
        return sum(sum(e.answers.values()) for e in self.endpoints.values())

    @property
    def errors(self) -> int:
        return sum(e.errors for e in self.endpoints.values())

    def rows(self, seconds: float) -> list[dict[str, Any]]:
        """Per endpoint, then all together: requests, errors, req/s, p50/p95/p99/max ms."""
        rows = []
        everything = array("f")
        for name in sorted(self.endpoints):
            endpoint = self.endpoints[name]
            everything.extend(endpoint.latencies_ms)
            rows.append(self._row(name, endpoint, seconds))
        total = Endpoint("all", latencies_ms=everything)
        total.answers = Counter({"n": self.requests})
        total.errors = self.errors
        rows.append(self._row("all endpoints", total, seconds, server=False))
        return rows

    @staticmethod
    def _row(name: str, endpoint: Endpoint, seconds: float, *, server: bool = True) -> dict[str, Any]:
        requests = sum(endpoint.answers.values())
        row: dict[str, Any] = {"endpoint": name, "requests": requests, "errors": endpoint.errors}
        row["req_per_s"] = requests / seconds if seconds else 0.0
        row.update(endpoint.percentiles())
        if server:
            row["server_p99"] = endpoint.percentiles(endpoint.server_ms).get("p99")
            row["answers"] = dict(endpoint.answers)
        return row
