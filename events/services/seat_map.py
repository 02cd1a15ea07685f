"""The seat map as buyers see it: built from the database into Redis, published per
version, and kept honest by the reconciler.

Redis holds each seat's live state (``queueing.seatmap``); the database stays the judge
(a sold seat is one with a live ticket). A published map is the same for every buyer (a
buyer's own holds come from ``/holds/``), so each web process encodes it once per
version, identity and gzip, and serves those bytes to everyone until the version moves;
checking the version costs nothing per request (``queueing.pulse``).
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from events.caching import invalidate_event
from events.models import Seat, SeatStatus
from events.selectors import event_ids_on_sale, seat_layout
from queueing import holds as hold_store
from queueing.pulse import pulse_get
from queueing.seatmap import SeatMapSnapshot, seatmap_load, seatmap_snapshot
from ticketing.local_cache import local_cache

logger = logging.getLogger(__name__)

# The layout (sections, rows, prices) does not change during a sale: each process keeps
# its encoded form this long; a change made in this process clears it at once.
ENCODED_LAYOUT_TTL_SECONDS = 60.0
# Level 1: the map is compressed once per version and process, and under a rush the
# version moves with nearly every hold and sale. On a 2,000-seat map (196 kB) level 1
# takes 0.6 ms for 14.6 kB, level 6 2.7 ms for 12.4 kB: a sixth more bytes for a
# quarter of the CPU.
GZIP_LEVEL = 1
_STATUS_BYTES = {"available": b"available", "held": b"held", "sold": b"sold"}


def seat_map_rebuild(event_id: int) -> int:
    """Rebuilds the Redis seat map from the database (the source of truth); live holds
    survive. Returns the map's version."""
    statuses = {
        # An offered seat's Redis hold (the waiting list's) survives the rebuild; without
        # it the next waiting-list tick takes the seat back (booking.waiting_list).
        seat_id: SeatStatus.AVAILABLE if status == SeatStatus.OFFERED else status
        for seat_id, status in Seat.objects.filter(event_id=event_id).values_list("pk", "status")
    }
    return seatmap_load(event_id=event_id, statuses=statuses)


def seats_changed(event_id: int) -> None:
    """After seats were added, edited or removed: fresh caches and a fresh seat map."""
    invalidate_event(event_id)
    local_cache.delete(("seat_map_layout", event_id))
    try:
        seat_map_rebuild(event_id)
    except RedisError:
        # The reconciler rebuilds it once Redis answers again.
        logger.warning("seat map of event %s not rebuilt: Redis unavailable", event_id)


def seat_maps_reconcile() -> dict[int, int]:
    """For every event on sale: force-drop holds on seats the database says are sold,
    then rebuild the seat map from the database (live holds survive the rebuild; the
    version moves only if something was wrong). Returns event id -> sold seat count.
    Runs every 30 s (Celery beat)."""
    result: dict[int, int] = {}
    for event_id in event_ids_on_sale():
        sold = list(
            Seat.objects.filter(event_id=event_id, status=SeatStatus.SOLD).values_list("pk", flat=True)
        )
        hold_store.holds_drop_for_seats(event_id=event_id, seat_ids=sold)
        seat_map_rebuild(event_id)
        result[event_id] = len(sold)
    return result


@dataclass(frozen=True)
class _EncodedLayout:
    """Each seat's whole JSON object in each of its states, ``{"id":1,...,"status":
    "held"}`` (built once per layout): a new version of the map only picks one per seat."""

    layout: list[dict[str, Any]]
    seats: list[tuple[int, dict[str, bytes]]]


def _encoded_layout(event_id: int) -> _EncodedLayout:
    def build() -> _EncodedLayout:
        layout = seat_layout(event_id)
        seats = []
        for seat in layout:
            head = json.dumps({**seat, "status": ""}, separators=(",", ":"), ensure_ascii=False)
            prefix = head[: -len('"}')].encode()
            seats.append(
                (seat["id"], {status: prefix + raw + b'"}' for status, raw in _STATUS_BYTES.items()})
            )
        return _EncodedLayout(layout=layout, seats=seats)

    return local_cache.get_or_set(("seat_map_layout", event_id), ENCODED_LAYOUT_TTL_SECONDS, build)


@dataclass
class PublishedSeatMap:
    """One version of an event's seat map, as every buyer gets it."""

    event_id: int
    version: int
    statuses: dict[int, str]
    layout: list[dict[str, Any]]
    body: bytes
    _gzipped: bytes | None = field(default=None, repr=False)

    @property
    def etag(self) -> str:
        # Weak: the identity and the gzip bodies are the same representation.
        return f'W/"seats-{self.event_id}-{self.version}"'

    @property
    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=GZIP_LEVEL, mtime=0)
        return self._gzipped

    def seats(self) -> list[dict[str, Any]]:
        """Layout plus status, for pages that draw the map."""
        return [{**seat, "status": self.statuses.get(seat["id"], SeatStatus.SOLD)} for seat in self.layout]


_published: dict[int, PublishedSeatMap] = {}
_publish_lock = threading.Lock()


def _publish(event_id: int, snapshot: SeatMapSnapshot) -> PublishedSeatMap:
    encoded = _encoded_layout(event_id)
    # A seat missing from Redis (added after the map was built) reads as sold until the
    # next rebuild: never offered by mistake.
    status_of = snapshot.statuses.get
    parts = [variants[status_of(seat_id, "sold")] for seat_id, variants in encoded.seats]
    body = b'{"event":%d,"version":%d,"seats":[%b]}' % (event_id, snapshot.version, b",".join(parts))
    return PublishedSeatMap(
        event_id=event_id,
        version=snapshot.version,
        statuses=snapshot.statuses,
        layout=encoded.layout,
        body=body,
    )


def seat_map_current(event_id: int) -> PublishedSeatMap:
    """The event's seat map at its current version (at most ``QUEUE_PULSE_SECONDS``
    behind the latest change made elsewhere; this process's own changes show at once).
    O(1) while the version holds; on a new version one snapshot round trip and one
    encoding per process. A missing Redis map is rebuilt from the database."""
    version = pulse_get(event_id).seat_version
    current = _published.get(event_id)
    # Versions only grow (they restart from the clock after a Redis wipe), so a copy at
    # least as new as the pulse's is current.
    if current is not None and version and current.version >= version:
        return current
    snapshot = seatmap_snapshot(event_id=event_id)
    if snapshot is None:
        seat_map_rebuild(event_id)
        snapshot = seatmap_snapshot(event_id=event_id)
        if snapshot is None:  # pragma: no cover  (an event without seats)
            snapshot = SeatMapSnapshot(version=0, statuses={})
    with _publish_lock:
        current = _published.get(event_id)
        if current is None or current.version < snapshot.version or not snapshot.version:
            current = _publish(event_id, snapshot)
            _published[event_id] = current
    return current


def seat_map_published_clear() -> None:
    """Forget every published map of this process (tests)."""
    with _publish_lock:
        _published.clear()
