"""Runs every query of the Grafana dashboard against a Prometheus and says which return
data: a check that the dashboard and the metrics agree, after a rehearsal has been
scraped for a minute or two.

    python deploy/prometheus/check_dashboard.py --prometheus http://127.0.0.1:9090 \
        [--dashboard deploy/grafana/ticketing.json] [--require-data]

Exit status 1 if Prometheus refuses a query (bad PromQL), or, with ``--require-data``,
if a query returns nothing. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_DASHBOARD = Path(__file__).resolve().parent.parent / "grafana" / "ticketing.json"
# What Grafana substitutes for the dashboard's variables with "All" selected.
VARIABLES = {
    "$__rate_interval": "1m",
    "${event:regex}": ".*",
    "$event": ".*",
    "${instance:regex}": ".*",
    "$instance": ".*",
}


def dashboard_queries(path: Path) -> list[tuple[str, str, str]]:
    """(panel title, legend, expression) of every query of the dashboard."""
    dashboard = json.loads(path.read_text())
    return [
        (panel["title"], target.get("legendFormat", ""), target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def as_promql(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def instant_query(prometheus: str, expr: str) -> dict[str, Any]:
    """Prometheus' answer to an instant query: {"status": ..., "data": ...} or the error."""
    url = f"{prometheus.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": as_promql(expr)})
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {prometheus}")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http(s) checked above)
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.loads(error.read() or b"{}") or {"status": "error", "error": str(error)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--dashboard", type=Path, default=DEFAULT_DASHBOARD)
    parser.add_argument("--require-data", action="store_true", help="fail when a query returns nothing")
    args = parser.parse_args()

    failed = empty = 0
    for title, legend, expr in dashboard_queries(args.dashboard):
        answer = instant_query(args.prometheus, expr)
        if answer.get("status") != "success":
            failed += 1
            verdict = f"ERROR {answer.get('error', answer)}"
        else:
            series = answer["data"]["result"]
            empty += not series
            verdict = f"data: {len(series)} series" if series else "no data"
        sys.stdout.write(f"{verdict:<18} {title} [{legend}]\n    {expr}\n")
    sys.stdout.write(f"\n{failed} refused, {empty} without data\n")
    return 1 if failed or (args.require_data and empty) else 0


if __name__ == "__main__":
    raise SystemExit(main())
