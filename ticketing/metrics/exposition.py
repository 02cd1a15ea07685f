"""One scrape's text: every process of the node (multiprocess mode) or this process
(single-process mode: ``make run``, the tests), plus collectors read at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ticketing.metrics import multiprocess

# The classic text format: what Prometheus 2 and 3 read without negotiation.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# A "_created" sample per counter and histogram child doubles the series for nothing
# Prometheus uses (multiprocess mode never has them; this makes both modes alike).
disable_created_metrics()


class _Together(Collector):
    def __init__(self, parts: Iterable[Collector]) -> None:
        self._parts = tuple(parts)

    def collect(self) -> Iterable[Metric]:
        for part in self._parts:
            yield from part.collect()


_node: Collector | None = None


def node_collector() -> Collector:
    """The samples of every process of this node (built once per process: the files are
    read at each collect)."""
    global _node
    if _node is None:
        path = multiprocess.directory()
        if path is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(path))
            _node = registry
        else:
            _node = REGISTRY
    return _node


def render(*extra: Collector) -> bytes:
    """The text exposition of the node's samples followed by ``extra`` collectors'."""
    return generate_latest(_Together((node_collector(), *extra)))
