"""What one simulated buyer of ``bench/crowd.py`` does, as a coroutine.

* ``crowd_journey``: a patient person in a big waiting room. Arrives at its moment of the
  burst, joins, polls when the server says (``poll_after_ms`` ± 10 %, sending back the
  newest ``X-Queue-Ticket``), and once admitted looks around for a while, then either
  buys (seat map → hold 1-2 available seats → confirm) or leaves (DELETE), so the line
  keeps moving.
* ``reference_journey``: the replaced system's JMeter user: no think time, the status
  polled back to back (``poll_after_ms`` ignored) until admitted or sold out, then seat
  map → hold → confirm.

Every request goes through ``Api.call``: one shared keep-alive pool, every answer
counted and timed in the ``Tally``; a buyer's timeline (join sent/answered, last told
"waiting", first told "active") goes into its ``Journey`` for the order invariant of
``bench/invariants.py``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.httpclient import HttpError, Pool
from bench.tally import Tally

DEFAULT_POLL_MS = 1000
HOLD_TRIES = 3  # a person picks other seats after a conflict, a couple of times


class Stop(Exception):
    """The run is over (time or request budget): the buyer stops where it is."""


def server_moment(body: dict[str, Any]) -> float | None:
    """A queue answer's ``as_of`` as Unix seconds (None when the server does not send it)."""
    try:
        return datetime.fromisoformat(body["as_of"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(slots=True)
class Journey:
    """One buyer's timeline (wall-clock seconds), the fields the order check reads."""

    buyer: str
    join_send: float | None = None
    join_recv: float | None = None
    join_position: int | None = None
    last_waiting_send: float | None = None  # latest poll answered "waiting" (sent at)
    last_waiting_exact_send: float | None = None  # ... with an exact (not estimated) place
    first_active_recv: float | None = None
    # The same two moments on the server's clock (the answers' ``as_of``): what the
    # answer described, which for an estimate is the pulse the server last read.
    last_waiting_as_of: float | None = None
    first_active_as_of: float | None = None
    polls: int = 0
    ticket_drops: int = 0
    outcome: str = "running"

    def as_record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class Buyer:
    email: str
    auth: str  # the ready-made "Authorization: Bearer …\r\n" header line
    ticket: str | None = None  # the newest queue_ticket the server gave
    journey: Journey | None = None
    waiting: bool = False  # the last answer said "waiting"


@dataclass(slots=True)
class Answer:
    status: int
    kind: str  # ok | expected | error
    body: Any
    headers: dict[str, str]
    sent: float  # wall clock when written
    received: float


@dataclass
class Api:
    """The requests of the journeys, on one pool, counted in one tally."""

    pool: Pool
    tally: Tally
    event_id: int
    max_requests: int = 0  # 0: no budget
    deadline: float = float("inf")  # time.monotonic()
    sent: int = 0
    joins_answered: int = 0
    # The crowd's size: once that many joins are answered, polls are counted apart as
    # "status_steady" (the crowd waiting at once, after the arrival burst).
    crowd_size: int = 0
    waiting_now: int = 0  # buyers whose last answer was "waiting"
    peak_waiting: int = 0
    wall_offset: float = field(default_factory=lambda: time.time() - time.perf_counter())
    map_etag: str | None = None  # the seat-map version parsed last, and its free seats
    map_free: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = f"/api/events/{self.event_id}"
        self.event_path, self.queue_path = f"{base}/", f"{base}/queue/"
        self.seats_path, self.holds_path = f"{base}/seats/", f"{base}/holds/"

    async def call(
        self, name: str, method: str, path: str, headers: str = "", body: Any = None, *, parse: bool = True
    ) -> Answer | None:
        """One request; None after a transport error (counted). Raises Stop when over."""
        if (self.max_requests and self.sent >= self.max_requests) or time.monotonic() >= self.deadline:
            raise Stop
        self.sent += 1
        payload = json.dumps(body).encode() if body is not None else b""
        started = time.perf_counter()
        try:
            response = await self.pool.request(method, path, headers=headers, body=payload)
        except HttpError as error:
            self.tally.transport_error(name, str(error))
            return None
        done = time.perf_counter()
        ok = 200 <= response.status < 300 or response.status == 304
        # Unparsed bodies (the seat map) are decoded by the caller; errors always here.
        parsed = _decode(response.body, response.headers) if parse or not ok else response.body
        code = parsed.get("code") if isinstance(parsed, dict) else None
        kind = self.tally.record(name, response.status, code, done - started, done - response.sent_at)
        offset = self.wall_offset
        return Answer(
            response.status, kind, parsed, response.headers, response.sent_at + offset, done + offset
        )

    # -- waiting room --

    def note_state(self, buyer: Buyer, answer: Answer, *, joined: bool = False) -> str | None:
        """Keeps the newest ticket and the timeline; the state the server told."""
        body = answer.body if isinstance(answer.body, dict) else {}
        if body.get("queue_ticket"):
            buyer.ticket = body["queue_ticket"]
        state = body.get("state")
        journey = buyer.journey
        assert journey is not None
        as_of = server_moment(body)
        if state == "waiting":
            journey.last_waiting_send = answer.sent
            journey.last_waiting_as_of = as_of
            if not body.get("estimated"):
                journey.last_waiting_exact_send = answer.sent
        elif state == "active" and journey.first_active_recv is None:
            journey.first_active_recv = answer.received
            journey.first_active_as_of = as_of
        if joined and journey.join_send is None:
            journey.join_send, journey.join_recv = answer.sent, answer.received
            journey.join_position = body.get("position")
        return state

    async def join(self, buyer: Buyer) -> Answer | None:
        try:
            return await self.call("join", "POST", self.queue_path, buyer.auth)
        finally:
            self.joins_answered += 1

    async def poll(self, buyer: Buyer) -> Answer | None:
        """A status poll with the newest ticket; a refused ticket is dropped and the poll
        sent once more without it (that answer carries a fresh one)."""
        assert buyer.journey is not None
        for _attempt in range(2):
            ticket = f"X-Queue-Ticket: {buyer.ticket}\r\n" if buyer.ticket else ""
            steady = self.crowd_size and self.joins_answered >= self.crowd_size
            answer = await self.call(
                "status_steady" if steady else "status", "GET", self.queue_path, buyer.auth + ticket
            )
            buyer.journey.polls += 1
            if answer is None or answer.status not in (401, 403) or not buyer.ticket:
                return answer
            buyer.ticket = None
            buyer.journey.ticket_drops += 1
        return answer

    async def leave(self, buyer: Buyer) -> None:
        await self.call("leave", "DELETE", self.queue_path, buyer.auth)

    # -- buying --

    async def seat_map(self) -> list[int]:
        """The ids of the available seats (empty after a failure); gzip, as browsers ask.
        Every buyer downloads the whole map; the driver parses one version only once
        (a 2,000-seat map is 200 kB of JSON, 3-4 ms of the driver's CPU)."""
        answer = await self.call("seats", "GET", self.seats_path, "Accept-Encoding: gzip\r\n", parse=False)
        if answer is None or answer.status != 200:
            return []
        etag = answer.headers.get("etag")
        if etag is None or etag != self.map_etag:
            body = _decode(answer.body, answer.headers)
            if not isinstance(body, dict):
                return []
            self.map_free = [
                seat["id"] for seat in body.get("seats", ()) if seat.get("status") == "available"
            ]
            self.map_etag = etag
        return list(self.map_free)

    async def buy(self, buyer: Buyer, rng: random.Random, max_seats: int = 2) -> str:
        """Seat map → hold 1..max_seats available seats → confirm; the outcome."""
        free = await self.seat_map()
        for _try in range(HOLD_TRIES):
            if not free:
                return "no_seat_left"
            seat_ids = rng.sample(free, min(len(free), rng.randint(1, max_seats)))
            hold = await self.call("hold", "POST", self.holds_path, buyer.auth, {"seat_ids": seat_ids})
            if hold is not None and hold.status == 201:
                return await self.confirm(buyer, seat_ids)
            code = hold.body.get("code") if hold is not None and isinstance(hold.body, dict) else None
            if code != "seat_unavailable":
                return f"hold {code or 'failed'}"
            taken = set(hold.body.get("seat_ids") or seat_ids)
            free = [seat for seat in free if seat not in taken]
            if len(free) < 2:
                free = await self.seat_map()
        return "gave_up"

    async def confirm(self, buyer: Buyer, seat_ids: list[int]) -> str:
        key = f"Idempotency-Key: {uuid.uuid4().hex}\r\n"  # one purchase, one key
        answer = await self.call(
            "confirm",
            "POST",
            "/api/bookings/",
            buyer.auth + key,
            {"event_id": self.event_id, "seat_ids": seat_ids},
        )
        if answer is not None and answer.status in (200, 201):
            return "booked"
        code = answer.body.get("code") if answer is not None and isinstance(answer.body, dict) else None
        return f"confirm {code or 'failed'}"


def _decode(body: bytes, headers: dict[str, str]) -> Any:
    if not body:
        return None
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    try:
        return json.loads(body)
    except ValueError:
        return None


# --- The crowd ----------------------------------------------------------------------------------


@dataclass
class CrowdPlan:
    buy_share: float = 0.3
    shop_seconds: tuple[float, float] = (2.0, 10.0)
    jitter: float = 0.1


def _set_waiting(api: Api, buyer: Buyer, waiting: bool) -> None:
    """Counts buyers whose last answer was "waiting" (the driver's view of the line)."""
    if waiting and not buyer.waiting:
        api.waiting_now += 1
        api.peak_waiting = max(api.peak_waiting, api.waiting_now)
    elif buyer.waiting and not waiting:
        api.waiting_now -= 1
    buyer.waiting = waiting


async def crowd_journey(
    api: Api, buyer: Buyer, arrive_in: float, plan: CrowdPlan, rng: random.Random
) -> None:
    await asyncio.sleep(arrive_in)
    buyer.journey = journey = Journey(buyer.email)
    try:
        journey.outcome = await _crowd_steps(api, buyer, plan, rng)
    except Stop:
        journey.outcome = "running"  # still in line (or shopping) when the run ended


async def _crowd_steps(api: Api, buyer: Buyer, plan: CrowdPlan, rng: random.Random) -> str:
    answer = await api.join(buyer)
    if answer is None or answer.kind == "error":
        return "error"
    if answer.status == 409:
        return f"join {answer.body.get('code', 'refused')}"
    state = api.note_state(buyer, answer, joined=True)
    poll_ms = answer.body.get("poll_after_ms") or DEFAULT_POLL_MS
    _set_waiting(api, buyer, state == "waiting")
    try:
        while state == "waiting":
            await asyncio.sleep(poll_ms / 1000 * rng.uniform(1 - plan.jitter, 1 + plan.jitter))
            answer = await api.poll(buyer)
            if answer is None or answer.kind == "error":
                poll_ms = DEFAULT_POLL_MS * 2  # a failed poll (counted): ask again a bit later
                continue
            if answer.status == 404:
                return "lost_place"
            state = api.note_state(buyer, answer)
            poll_ms = answer.body.get("poll_after_ms") or DEFAULT_POLL_MS
    finally:
        _set_waiting(api, buyer, False)
    if state != "active":
        return state or "error"
    await asyncio.sleep(rng.uniform(*plan.shop_seconds))  # looks at the seats, thinks
    if rng.random() < plan.buy_share:
        return await api.buy(buyer, rng)
    await api.leave(buyer)
    return "left"


# --- The reference rush ---------------------------------------------------------------------------


async def reference_journey(api: Api, buyer: Buyer, rng: random.Random) -> str:
    """Back to back, no think time; ``poll_after_ms`` ignored."""
    buyer.journey = Journey(buyer.email)
    buyer.ticket = None
    event = await api.call("event", "GET", api.event_path)
    if event is None or event.status != 200:
        return "error"
    answer = await api.join(buyer)
    if answer is None or answer.kind == "error":
        return "error"
    if answer.status == 409:
        return f"join {answer.body.get('code', 'refused')}"
    state = api.note_state(buyer, answer, joined=True)
    while state == "waiting":
        answer = await api.poll(buyer)
        if answer is None or answer.kind == "error":
            continue
        if answer.status == 404:
            return "lost_place"
        state = api.note_state(buyer, answer)
    if state != "active":
        return state or "error"
    outcome = await api.buy(buyer, rng)
    if outcome != "booked":
        await api.leave(buyer)  # gives the pass back so the next in line gets in
    return outcome
