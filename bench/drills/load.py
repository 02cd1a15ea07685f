"""The steady load of a drill: buyers arriving at a fixed rate, each doing the whole
journey (join → poll at ``poll_after_ms`` → seat map → hold → confirm), patient through an
outage (a 503 or a refused connection is retried after ``Retry-After``), and a ledger of
what every buyer was told, for the drill to compare with what the servers have after the
fault.

Runs in a thread of its own with its own asyncio loop (``DrillLoad.start`` / ``stop``),
so the drill's main thread can kill and restart servers meanwhile. Requests go through
``bench/journeys.Api`` on a ``bench/httpclient.Pool`` (cheap on the client side: the
machine's two cores are the system's), and each answer is also written to the ledger
with its wall-clock time (``Ledger.answers``), which is how the drill finds its first and
last 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench.httpclient import Pool
from bench.journeys import Answer, Api, Buyer, Journey, _decode
from bench.tally import Tally

POLL_CAP_MS = 2000  # a patient buyer in a short drill: never waits longer between polls
RETRY_CAP_SECONDS = 2.0


@dataclass
class Plan:
    rate: float = 8.0  # buyers arriving per second
    abandon_share: float = 0.15  # hold, then walk away: the hold lives until its expiry
    think: tuple[float, float] = (0.3, 1.5)  # seconds between hold and confirm
    patience: float = 60.0  # seconds a buyer keeps retrying one step through an outage
    pool: int = 64
    timeout: float = 15.0


@dataclass
class HoldRecord:
    buyer: str
    user_id: int
    seat_ids: list[int]
    granted: float  # wall clock: the 201 came back
    expires_at: float  # wall clock: the hold's deadline as the answer said
    ended: float | None = None  # confirmed, or the buyer saw it gone
    outcome: str = "live"  # live | booked | abandoned | missing (confirm 409 hold_missing)


@dataclass
class Ledger:
    """Append-only records of what the servers told the buyers (read by the drill)."""

    # (received, step, status, error code, seconds the request took); status 0: no answer
    answers: list[tuple[float, str, int, str | None, float]] = field(default_factory=list)
    joins: dict[str, tuple[int, float, str]] = field(default_factory=dict)  # buyer -> (user, recv, state)
    state: dict[str, tuple[str, float]] = field(default_factory=dict)  # buyer -> (last state, when)
    holds: list[HoldRecord] = field(default_factory=list)
    bookings: list[dict[str, Any]] = field(default_factory=list)  # code, buyer, seat ids, sent, recv
    lost_places: list[tuple[str, float]] = field(default_factory=list)  # poll 404 after joining
    passes_refused: list[tuple[str, float]] = field(default_factory=list)  # hold 403 while told active
    finished: dict[str, tuple[str, float]] = field(default_factory=dict)  # buyer -> (outcome, when)

    def answer(self, when: float, step: str, status: int, code: str | None, took: float) -> None:
        self.answers.append((when, step, status, code, took))


def _user_id(token: str) -> int:
    import base64
    import json

    payload = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["user_id"])


@dataclass
class DrillApi(Api):
    """``Api`` whose every answer also lands in the ledger with its wall-clock time."""

    ledger: Ledger = field(default_factory=Ledger)

    async def call(
        self, name: str, method: str, path: str, headers: str = "", body: Any = None, *, parse: bool = True
    ) -> Answer | None:
        started = time.time()
        answer = await super().call(name, method, path, headers, body, parse=parse)
        if answer is None:
            self.ledger.answer(time.time(), name, 0, "transport error", time.time() - started)
        else:
            code = answer.body.get("code") if isinstance(answer.body, dict) else None
            self.ledger.answer(answer.received, name, answer.status, code, answer.received - started)
        return answer

    async def free_seats(self) -> tuple[list[int], Answer | None]:
        """``Api.seat_map`` that also returns the answer (so an outage can be told from a
        full house): the available seat ids, parsed once per map version."""
        answer = await self.call("seats", "GET", self.seats_path, "Accept-Encoding: gzip\r\n", parse=False)
        if answer is None or answer.status != 200:
            return [], answer
        etag = answer.headers.get("etag")
        if etag is None or etag != self.map_etag:
            body = _decode(answer.body, answer.headers)
            seats = body.get("seats", ()) if isinstance(body, dict) else ()
            self.map_free = [seat["id"] for seat in seats if seat.get("status") == "available"]
            self.map_etag = etag
        return list(self.map_free), answer


def _retry_after(answer: Answer | None) -> float:
    if answer is None:
        return 1.0
    with contextlib.suppress(TypeError, ValueError):
        return min(RETRY_CAP_SECONDS, float(answer.headers.get("retry-after", 1)))
    return 1.0


def _outage(answer: Answer | None) -> bool:
    """An answer to try again later: 503 (a backend is down) or no answer at all."""
    return answer is None or answer.status in (502, 503, 504)


class Journeyer:
    """One buyer's journey, patient through outages; records into the ledger."""

    def __init__(self, api: DrillApi, plan: Plan, buyer: Buyer, user_id: int, rng: random.Random) -> None:
        self.api, self.plan, self.buyer, self.user_id, self.rng = api, plan, buyer, user_id, rng
        self.ledger = api.ledger

    async def patiently(self, step: Any) -> Answer | None:
        """``step()`` again while it meets an outage, up to ``plan.patience`` seconds."""
        deadline = time.monotonic() + self.plan.patience
        while True:
            answer = await step()
            if not _outage(answer) or time.monotonic() > deadline:
                return answer
            await asyncio.sleep(_retry_after(answer))

    async def free_seats(self) -> tuple[list[int], Answer | None]:
        deadline = time.monotonic() + self.plan.patience
        while True:
            free, answer = await self.api.free_seats()
            if free or not _outage(answer) or time.monotonic() > deadline:
                return free, answer
            await asyncio.sleep(_retry_after(answer))

    def told(self, state: str) -> None:
        self.ledger.state[self.buyer.email] = (state, time.time())

    async def run(self) -> str:
        self.buyer.journey = Journey(self.buyer.email)
        joined = await self.join()
        if joined is None:
            return "join failed"
        state = await self.wait_for_pass(joined)
        if state != "active":
            return state
        return await self.buy()

    async def join(self) -> Answer | None:
        answer = await self.patiently(lambda: self.api.join(self.buyer))
        if answer is None or answer.status not in (200, 201):
            return None
        state = self.api.note_state(self.buyer, answer, joined=True) or "?"
        self.ledger.joins.setdefault(self.buyer.email, (self.user_id, answer.received, state))
        self.told(state)
        return answer

    async def wait_for_pass(self, answer: Answer) -> str:
        state = answer.body.get("state") if isinstance(answer.body, dict) else None
        poll_ms = answer.body.get("poll_after_ms", 1000) if isinstance(answer.body, dict) else 1000
        rejoined = False
        while state == "waiting":
            await asyncio.sleep(min(POLL_CAP_MS, poll_ms) / 1000)
            polled = await self.patiently(lambda: self.api.poll(self.buyer))
            if polled is None or _outage(polled):
                continue
            if polled.status == 404:
                # Told "waiting" before, and the line no longer knows us: a lost place.
                self.ledger.lost_places.append((self.buyer.email, polled.received))
                if rejoined:
                    return "lost_place"
                rejoined = True
                rejoin = await self.join()
                if rejoin is None:
                    return "lost_place"
                polled = rejoin
            state = self.api.note_state(self.buyer, polled)
            self.told(state or "?")
            body = polled.body if isinstance(polled.body, dict) else {}
            poll_ms = body.get("poll_after_ms", 1000)
        return state or "error"

    async def buy(self) -> str:
        free: list[int] = []
        for _attempt in range(3):
            if not free:
                free, _answer = await self.free_seats()
            if not free:
                return "no_seat_left"
            seat_ids = self.rng.sample(free, min(len(free), self.rng.randint(1, 2)))
            hold = await self.patiently(
                lambda ids=seat_ids: self.api.call("hold", "POST", self.api.holds_path, self.buyer.auth,
                                                    {"seat_ids": ids})
            )  # fmt: skip
            if hold is not None and hold.status == 201:
                return await self.after_hold(seat_ids, hold)
            code = hold.body.get("code") if hold is not None and isinstance(hold.body, dict) else None
            if hold is not None and hold.status == 403:
                self.ledger.passes_refused.append((self.buyer.email, hold.received))
                return "pass refused"
            if code != "seat_unavailable":
                return f"hold {code or 'failed'}"
            taken = set(hold.body.get("seat_ids") or seat_ids) if hold is not None else set(seat_ids)
            free = [seat for seat in free if seat not in taken]
        return "gave_up"

    async def after_hold(self, seat_ids: list[int], hold: Answer) -> str:
        from datetime import datetime

        expires = hold.body.get("expires_at") if isinstance(hold.body, dict) else None
        expires_at = datetime.fromisoformat(expires).timestamp() if expires else hold.received + 60
        record = HoldRecord(self.buyer.email, self.user_id, sorted(seat_ids), hold.received, expires_at)
        self.ledger.holds.append(record)
        if self.rng.random() < self.plan.abandon_share:
            record.outcome = "abandoned"
            return "abandoned_after_hold"
        await asyncio.sleep(self.rng.uniform(*self.plan.think))
        return await self.confirm(record)

    async def confirm(self, record: HoldRecord) -> str:
        key = f"Idempotency-Key: {uuid.uuid4().hex}\r\n"  # one purchase, one key: retries are safe
        body = {"event_id": self.api.event_id, "seat_ids": record.seat_ids}
        sent = time.time()
        answer = await self.patiently(
            lambda: self.api.call("confirm", "POST", "/api/bookings/", self.buyer.auth + key, body)
        )
        record.ended = time.time()
        if answer is not None and answer.status in (200, 201) and isinstance(answer.body, dict):
            record.outcome = "booked"
            self.ledger.bookings.append(
                {"code": answer.body.get("code"), "buyer": self.buyer.email, "user_id": self.user_id,
                 "seat_ids": record.seat_ids, "sent": sent, "recv": answer.received}
            )  # fmt: skip
            return "booked"
        code = answer.body.get("code") if answer is not None and isinstance(answer.body, dict) else None
        if code == "hold_missing":
            record.outcome = "missing"
        return f"confirm {code or (answer.status if answer else 'no answer')}"


class DrillLoad:
    """Buyers arriving at ``plan.rate`` per second from ``accounts`` until ``stop()``."""

    def __init__(self, url: str, event_id: int, accounts: list[tuple[str, str]], plan: Plan) -> None:
        self.url, self.event_id, self.accounts, self.plan = url, event_id, list(accounts), plan
        self.ledger = Ledger()
        self.tally = Tally()
        self.started = 0.0
        self.seconds = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="drill-load", daemon=True)
        self._ready = threading.Event()

    def start(self) -> DrillLoad:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        try:
            import uvloop

            uvloop.run(self._main())
        except ImportError:
            asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        host, _, port = self.url.removeprefix("http://").partition(":")
        pool = Pool(host, int(port or 80), size=self.plan.pool, timeout=self.plan.timeout)
        api = DrillApi(pool, self.tally, self.event_id, ledger=self.ledger)
        rng = random.Random()
        tasks: set[asyncio.Task[None]] = set()
        self.started = time.monotonic()
        self._ready.set()
        try:
            while not self._stop.is_set() and self.accounts:
                email, token = self.accounts.pop()
                task = asyncio.create_task(self._journey(api, Buyer(email, f"Authorization: Bearer {token}\r\n"),
                                                         _user_id(token), rng))  # fmt: skip
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=1 / self.plan.rate)
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.seconds = time.monotonic() - self.started
            pool.close()

    async def _journey(self, api: DrillApi, buyer: Buyer, user_id: int, rng: random.Random) -> None:
        outcome = "running"  # cancelled when the drill ends
        try:
            outcome = await Journeyer(api, self.plan, buyer, user_id, rng).run()
        except Exception as error:  # a bug here, or an answer off the contract: counted
            outcome = f"crashed {type(error).__name__}: {error}"[:120]
        finally:
            self.ledger.finished[buyer.email] = (outcome, time.time())
