"""A real Prometheus for one rehearsal (``bench/loadtest.py --prometheus``): the repo's own
``deploy/prometheus/prometheus.yml``, copied into the run directory with the three files it
expects next to it (``metrics-token``, ``targets/web.json`` listing every gunicorn node,
``targets/celery.json`` every worker's metrics port), Debian's ``prometheus`` on a free
loopback port with its TSDB under the run directory. After the sale the driver asks it a
few questions over its HTTP API (requests/s per node, p99 of the status poll, Celery tasks,
which targets were up) and prints the answers; ``prometheus.json`` keeps them.

It needs the app side of the metrics (``ticketing/metrics/``: the middleware and
``METRICS_TOKEN`` in settings, the worker hook for ``CELERY_METRICS_PORT``). When a node
does not serve ``/metrics`` to the token, Prometheus is not started and the run says so.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench.system import ROOT, System, free_port

CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
QUERIES = {
    "targets up (job, instance)": "up",
    "series scraped per job": 'count by (job) ({{job=~"ticketing.*"}})',
    "requests/s per web node": "sum by (instance) (rate(ticketing_http_request_duration_seconds_count[{w}]))",
    "status poll p99 (s)": 'histogram_quantile(0.99, sum by (le) (rate(ticketing_http_request_duration_seconds_bucket{{route=~".*queue.*",method="GET"}}[{w}])))',
    "5xx answers per route": "sum by (route) (increase(ticketing_http_server_errors_total[{w}]))",
    "Celery tasks succeeded per task": "sum by (task) (increase(ticketing_celery_tasks_succeeded_total[{w}]))",
}


def metrics_served(system: System) -> bool:
    """Does the first web node answer ``GET /metrics`` to the run's token?"""
    token = system.env.get("METRICS_TOKEN", "")
    request = urllib.request.Request(
        f"http://127.0.0.1:{system.web_ports[0]}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


class Prometheus:
    def __init__(self, directory: Path, targets: dict[str, list[str]], token: str) -> None:
        self.directory, self.targets, self.token = directory, targets, token
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def start(self) -> Prometheus:
        (self.directory / "targets").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CONFIG, self.directory / "prometheus.yml")
        (self.directory / "metrics-token").write_text(self.token + "\n")
        for job, addresses in self.targets.items():
            (self.directory / "targets" / f"{job}.json").write_text(json.dumps([{"targets": addresses}]))
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        argv = [binary, f"--config.file={self.directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.directory / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d"]  # fmt: skip
        output = (self.directory / "prometheus.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        output.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer,
            ):
                if answer.status == 200:
                    self.started = time.time()
                    return self
            time.sleep(0.3)
        raise RuntimeError(f"Prometheus did not become ready; see {self.directory / 'prometheus.log'}")

    def query(self, expression: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())["data"]["result"]

    def report(self, run_dir: Path) -> dict[str, Any]:
        """Asks the questions of ``QUERIES`` over the run so far; prints and keeps them."""
        window = f"{max(30, int(time.time() - self.started))}s"
        answers: dict[str, Any] = {}
        print(f"\nPrometheus ({self.url}, scraping {sum(len(t) for t in self.targets.values())} targets):")
        for title, template in QUERIES.items():
            try:
                result = self.query(template.format(w=window))
            except (OSError, KeyError, ValueError) as error:
                result = [{"error": str(error)}]
            answers[title] = result
            values = ", ".join(
                f"{','.join(v for k, v in r.get('metric', {}).items() if k != '__name__') or 'all'}="
                f"{float(r['value'][1]):.3g}"
                for r in result
                if "value" in r
            )
            print(f"  {title:<34}{values or 'no data'}")
        (run_dir / "prometheus.json").write_text(json.dumps(answers, indent=1))
        return answers

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def start_for(system: System) -> Prometheus | None:
    """A Prometheus scraping every node and worker of ``system``, or None (said why)."""
    if not metrics_served(system):
        print(
            "Prometheus NOT started: the web nodes do not serve /metrics to METRICS_TOKEN "
            "(ticketing/metrics/ is not wired into settings.py in this checkout yet)."
        )
        return None
    token = system.env["METRICS_TOKEN"]
    prometheus = Prometheus(system.run.run_dir / "prometheus", system.metrics_targets, token).start()
    print(f"Prometheus on {prometheus.url} scraping {system.metrics_targets}")
    return prometheus
