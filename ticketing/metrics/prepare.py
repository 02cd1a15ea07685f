"""``python -m ticketing.metrics.prepare``: cleans the multiprocess metrics directory of
the files of processes that no longer run, before a web server that has no start hook of
its own (granian, in docker-compose) starts its workers. gunicorn does the same in
``deploy/gunicorn.conf.py``."""

from __future__ import annotations

from ticketing.metrics.multiprocess import ENV, directory_prepare

if __name__ == "__main__":
    print(f"{ENV}: removed {directory_prepare()} file(s) of processes that no longer run")  # noqa: T201
