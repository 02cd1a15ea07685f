"""prometheus_client's multiprocess mode: each process of a node (gunicorn's workers, a
Celery worker's pool processes) writes its samples to memory-mapped files in the
directory named by ``PROMETHEUS_MULTIPROC_DIR``, and a scrape of any one of them reads
every file, so one scrape returns the whole node.

The variable must be set before ``prometheus_client`` is first imported (it picks the
value store at import): ``deploy/gunicorn.conf.py`` sets it in the gunicorn master for
the web nodes; a Celery worker gets it from its environment. One directory per process
tree: a web node and a worker sharing one would each export the other's series.

No Django here: gunicorn's master imports this module in its hooks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_FILE = re.compile(r"_(\d+)\.db$")


def directory() -> Path | None:
    """The multiprocess directory, or None in single-process mode."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def directory_ensure() -> None:
    """Creates the directory if the mode is on: a metric's first value opens its file
    there, and some are made at import (unlabelled counters, series created at 0), in a
    Celery worker before any hook of ours has run (Django's checks import the middleware)."""
    path = directory()
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def directory_prepare() -> int:
    """Creates the directory and removes the files of processes that no longer run (a
    previous run of this node). Called once by the tree's main process before it starts
    its children. Files of live processes are kept, so a directory shared by mistake
    with a running process tree is not pulled from under it. Returns how many files
    were removed."""
    path = directory()
    if path is None:
        return 0
    directory_ensure()
    removed = 0
    for file in path.glob("*.db"):
        match = _FILE.search(file.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            file.unlink(missing_ok=True)
            removed += 1
    return removed


def process_dead(pid: int) -> None:
    """A child of this node exited (gunicorn's ``child_exit``, a pool process's
    shutdown): drops its live-gauge files. Its counters and histograms stay, so the
    node's totals never go backwards."""
    if directory() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
