"""gunicorn settings of a web node: prometheus_client's multiprocess mode, so that one
scrape of ``/metrics`` on any worker returns the whole node (ticketing/metrics/).

    gunicorn -c deploy/gunicorn.conf.py ticketing.wsgi:application --bind ... --workers ...

Only the metrics plumbing lives here; bind, workers, threads and timeouts stay on the
command line (docker-compose.yml, bench/). ``PROMETHEUS_MULTIPROC_DIR`` is honoured when
set (one directory per node, on local disk or tmpfs); else each start gets a fresh
directory under the system's temp dir.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

# Read by prometheus_client when it is first imported, i.e. in the workers (the app is not
# preloaded): setting it here, in the master, puts it in every worker's environment.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ticketing-metrics-")


def on_starting(server: Any) -> None:
    """Once per master start, before any worker: drop the files a previous run left."""
    from ticketing.metrics.multiprocess import directory_prepare

    directory_prepare()


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited (restart, crash, max-requests): its live-gauge files go, its
    counters stay in the node's totals."""
    from ticketing.metrics.multiprocess import process_dead

    process_dead(worker.pid)
