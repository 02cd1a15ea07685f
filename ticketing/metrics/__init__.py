"""Prometheus metrics of the web nodes and the Celery workers (operators see every node).

- ``web``: the middleware that times every request by *route* (the URL pattern's name,
  never the raw path) and answers ``GET /metrics`` for a holder of ``METRICS_TOKEN``;
- ``counters``: the few counters other apps bump (Redis / database outages turned into
  503, waiting-room polls answered from the cursor or exactly);
- ``collectors``: the sale's figures (waiting, active, admitted, holds, sold, bookings,
  Celery queue depth), read from Redis, the database and the broker at scrape time;
- ``broker``: queue depth from the Celery broker (Redis or RabbitMQ) through kombu;
- ``celery``: task counters and durations of a worker, served on ``CELERY_METRICS_PORT``;
- ``exposition``: one scrape's text, whole-node in prometheus_client's multiprocess mode;
- ``multiprocess``: the per-node directory of that mode (``deploy/gunicorn.conf.py``);
- ``auth``: the constant-time bearer token check both endpoints share.

The package is import-light on purpose: nothing here touches Redis, the database or the
broker until a scrape asks for it. Importing it only makes sure that the multiprocess
directory exists, before any module of the package creates a metric.
"""

from ticketing.metrics.multiprocess import directory_ensure

directory_ensure()
