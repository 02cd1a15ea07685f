"""Tables and verdict lines of the rehearsal drivers (``loadtest.py``, ``crowd.py``), and
the report.json they leave behind."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Targets of the reference scenario (DESIGN.md: ~3,000 requests/s; polls must stay fast).
TARGET_RPS = 3000
TARGET_STATUS_P99_MS = 100
TARGET_WAITING = 50_000


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, first_width: int = 34) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned (each
    at least as wide as its longest cell, plus a space)."""
    widths = [first_width] + [
        max(9, len(h) + 2, *(len(str(row[i])) + 2 for row in rows if row and row[0] != "-" and len(row) > i))
        for i, h in enumerate(headers[1:], start=1)
    ]
    lines = [
        "".join(
            f"{h:<{w}}" if i == 0 else f"{h:>{w}}"
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    for row in rows:
        if row and row[0] == "-":
            lines.append("-" * sum(widths))
            continue
        lines.append(
            "".join(
                f"{v!s:<{w}}" if i == 0 else f"{v!s:>{w}}"
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def verdict(name: str, ok: bool | None, detail: str) -> str:
    """One line per target: ``target  met|MISSED|n/a  detail``."""
    result = "n/a" if ok is None else ("met" if ok else "MISSED")
    return f"  {name:<40}{result:<8}{detail}"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=1, default=str))


# --- locust's CSV (bench/loadtest.py) -------------------------------------------------------


def stats_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def locust_table(rows: list[dict[str, str]]) -> str:
    body: list[Sequence[Any]] = []
    for row in rows:
        if row["Name"] == "Aggregated":
            body.append(["-"])
        name = row["Name"] if row["Name"] != "Aggregated" else "all endpoints"
        body.append(
            [name, int(row["Request Count"]), int(row["Failure Count"]), f"{float(row['Requests/s']):.0f}",
             row["50%"], row["95%"], row["99%"]]
        )  # fmt: skip
    # The endpoint column fits the longest name (GET …/queue/challenge/ is 37 characters).
    width = max([34, *(len(str(row[0])) + 2 for row in body)])
    return table(
        ["endpoint", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms"], body, first_width=width
    )


STATUS_ENDPOINT = "GET /api/events/[id]/queue/"


def locust_targets(rows: list[dict[str, str]]) -> tuple[dict[str, float], list[str]]:
    """The two targets read from locust's aggregated and status-poll rows."""
    aggregated = next((row for row in rows if row["Name"] == "Aggregated"), None)
    # Exactly the status poll (not GET …/queue/challenge/ or …/queue/cursor/).
    status_row = next((row for row in rows if row["Name"] == STATUS_ENDPOINT), None)
    targets: dict[str, float] = {}
    lines = []
    if aggregated:
        rps = float(aggregated["Requests/s"])
        targets["requests_per_s"] = rps
        lines.append(
            f"target ≥ {TARGET_RPS} requests/s overall: {rps:.0f} "
            f"({'met' if rps >= TARGET_RPS else 'MISSED'}; {int(aggregated['Request Count'])} requests)"
        )
    if status_row:
        p99 = float(status_row["99%"])
        targets["status_p99_ms"] = p99
        lines.append(
            f"target status-poll p99 < {TARGET_STATUS_P99_MS} ms: {p99:.0f} ms "
            f"({'met' if p99 < TARGET_STATUS_P99_MS else 'MISSED'})"
        )
    return targets, lines


def windowed_status_p99(history_csv: Path, ramp_up_s: float) -> tuple[float, float] | None:
    """The worst status-poll p99 of locust's 10-second windows (its stats history, written
    with ``--csv-full-history``) while users were still arriving and after: (during,
    after), or None without a history. A tail that only the arrival shows is the load
    generator starting users on the cores the sale is using."""
    if not history_csv.exists():
        return None
    during: list[float] = []
    after: list[float] = []
    started = None
    with history_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            started = started if started is not None else int(row["Timestamp"])
            if row["Name"] != STATUS_ENDPOINT or row["99%"] in ("N/A", "", "0"):
                continue
            # A window ends at its timestamp: it is "after" once it started after the ramp-up.
            (after if int(row["Timestamp"]) - started >= ramp_up_s + 10 else during).append(float(row["99%"]))
    if not during and not after:
        return None
    return max(during, default=0.0), max(after, default=0.0)


def outcomes_lines(outcomes: dict[str, int], title: str) -> list[str]:
    if not outcomes:
        return []
    return [f"\n{title}", *(f"  {kind:<44}{number:>8}" for kind, number in sorted(outcomes.items()))]


_ACCESS_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[^"]*" (?P<status>\d+) \d+ cache=\S+ rt=(?P<rt>[\d.]+)'
)


def proxy_latencies(access_log: Path) -> dict[str, list[float]]:
    """Per endpoint (locust's names: ids as [id], no query), the request times nginx logged
    (``rt``: from the request's first byte read to its last byte sent), in ms, sorted."""
    found: dict[str, list[float]] = {}
    if not access_log.exists():
        return found
    for line in access_log.read_text(errors="replace").splitlines():
        match = _ACCESS_LINE.search(line)
        if match is None:
            continue
        path = re.sub(r"/\d+/", "/[id]/", match["path"].split("?", 1)[0])
        found.setdefault(f"{match['method']} {path}", []).append(float(match["rt"]) * 1000)
    for times in found.values():
        times.sort()
    return found


_QUEUE_LINE = re.compile(
    r'"(?P<method>GET|POST) /api/events/\d+/queue/(?:\?\S*)? HTTP/[^"]*" (?P<status>\d+) .* edge=(?P<edge>\S*)'
)


def edge_answers(access_log: Path, method: str = "GET") -> tuple[int, int]:
    """(waiting-room polls, or with ``method="POST"`` joins, nginx answered itself, all of
    them) in nginx's access log: the ``edge`` field is the X-Queue-Edge header of
    deploy/nginx/queue_edge.js's answers."""
    answered = total = 0
    if not access_log.exists():
        return 0, 0
    for line in access_log.read_text(errors="replace").splitlines():
        match = _QUEUE_LINE.search(line)
        if match is not None and match["method"] == method:
            total += 1
            answered += match["edge"] == "1"
    return answered, total


def percentile(times: list[float], share: float) -> float:
    return times[min(len(times) - 1, int(len(times) * share))]


def proxy_table(latencies: dict[str, list[float]], names: Sequence[str]) -> str:
    """The server's side of the locust table: the same endpoints as nginx timed them, so
    that time the load generator itself lost (its own CPU on the same cores, connecting)
    is told apart from the system's."""
    rows = [
        [
            name,
            len(times),
            *(f"{percentile(times, share):.0f}" for share in (0.5, 0.95, 0.99)),
            f"{times[-1]:.0f}",
        ]
        for name in names
        if (times := latencies.get(name))
    ]
    width = max([34, *(len(str(row[0])) + 2 for row in rows)])
    return table(
        ["endpoint (as nginx timed it)", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        rows,
        first_width=width,
    )
