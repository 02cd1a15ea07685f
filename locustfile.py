"""The on-sale rehearsal: thousands of buyers hit the ticket open at once (DESIGN.md).

Each locust user is one buyer with a pre-created account and token (``create_buyers
--tokens``): event page → join the waiting room → poll at the interval the server asks
for (``poll_after_ms``), sending back the newest ``queue_ticket`` in ``X-Queue-Ticket``
(a refused ticket is dropped and the poll sent once more without it) → once admitted, read the seat map (``If-None-Match`` on repeats)
→ hold 1..N seats (a share of buyers crowd onto the front of the first section to make
contention) → on 409 re-read the map and choose again (bounded) → confirm with an
``Idempotency-Key`` → stop. A share abandons after joining or after holding, so passes and
holds expire. Everyone stops once the sale is sold out.

Expected refusals (409 seat_unavailable / sold_out / hold_missing, 404 not_in_queue,
403 not_admitted after a pass expired, 401 queue_ticket_invalid / _expired and 403
queue_ticket_mismatch on a poll, 429 on log-in) are successes counted per kind
("outcomes"); every 5xx, transport error and unexpected answer is a failure.

Run it through ``bench/loadtest.py`` (``make loadtest``), or by hand against a running
server::

    LOCUST_EVENT_ID=7 LOCUST_BUYERS_FILE=var/loadtest/buyers.csv \\
        locust -f locustfile.py --host http://127.0.0.1:8000 --headless -u 300 -r 50 -t 60s

Settings (``--option`` or the environment variable; all appear in the web UI):

=====================  ===========================  =====================================
option                 environment                  meaning
=====================  ===========================  =====================================
--event-id             LOCUST_EVENT_ID              the event on sale (required)
--buyers-file          LOCUST_BUYERS_FILE           ``email,token`` lines (create_buyers)
--buyer-password       LOCUST_BUYER_PASSWORD        lets a share log in via the API
--login-share          LOCUST_LOGIN_SHARE           that share (default 0.01)
--crowd-share          LOCUST_CROWD_SHARE           buyers crowding the first section (0.5)
--abandon-share        LOCUST_ABANDON_SHARE         buyers walking away mid-way (0.1)
--max-seats            LOCUST_MAX_SEATS             seats per buyer, at most (0 = event cap)
--hold-retries         LOCUST_HOLD_RETRIES          choose-again attempts after 409 (5)
--think-seconds        LOCUST_THINK_SECONDS         "min-max" pause before a hold (0.2-1.0)
--poll-factor          LOCUST_POLL_FACTOR           multiplies poll_after_ms (default 1.0)
--max-requests         LOCUST_MAX_REQUESTS          stop after this many requests (0 = off)
--quit-when-done       LOCUST_QUIT_WHEN_DONE        stop once every buyer finished (true)
--record-dir           LOCUST_RECORD_DIR            per-buyer journey records (JSON lines)
--outcomes-file        LOCUST_OUTCOMES_FILE         outcome counters (JSON), for invariants
--buyer-slice          LOCUST_BUYER_SLICE           "i/n": this process's share of buyers
--pow-browser-seconds  LOCUST_POW_BROWSER_SECONDS   a browser's proof-of-work time (0.3-1.0)
--pow-scale            LOCUST_POW_SCALE             event difficulty = modelled one / this (1)
--pow-prestart         LOCUST_POW_PRESTART          start the solvers with the test (false)
--script-poll-factor   LOCUST_SCRIPT_POLL_FACTOR    poll_after_ms factor of scripts (0.2)
--late-plan            LOCUST_LATE_PLAN             the late phase's plan (JSON lines)
--late-poll-seconds    LOCUST_LATE_POLL_SECONDS     a waiter's poll interval (2.0)
=====================  ===========================  =====================================

Proof-of-work (API.md "Waiting room"): a buyer learns that the event asks for it from a
join answered 400 ``pow_required`` (then every later join of that process brings one):
``GET …/queue/challenge/``, solved by a child process (``bench/macro.py solve``,
so the gevent loop never stalls), sent as ``{"altcha": …}``. The client's own time is
modelled, in proportion to the counter found (x ``--pow-scale`` when the event asks a
scaled-down difficulty to spare this machine): an honest browser takes
``--pow-browser-seconds`` (desktop-phone) for an average challenge of difficulty 50,000,
a script what ``altcha.solve_challenge`` takes on this machine (measured by the solver).

The macro scenario (``bench/macro.py``, ``bench/loadtest.py --macro``): the buyers file
may carry two more columns, ``email,token,role,address``. ``role`` is ``honest`` or
``script:<operator>``; ``address`` is sent as ``X-Forwarded-For`` on every request (the
server believes it with ``NUM_PROXIES``). A script account never thinks before a hold nor
walks away, wants the per-account cap of seats anywhere in the hall, polls at
``--script-poll-factor`` x ``poll_after_ms``, and solves the proof-of-work at full speed.
Staff taking an account off the line shows as a join answered 403
``removed_from_queue``: that journey ends ``removed``.

The late phase (``bench/late_phase.py``, ``bench/loadtest.py --waiting-list``, issue 14):
with ``--late-plan`` the accounts come from a plan, one JSON object a line (``email, token,
role, at, until`` and the role's own keys), instead of the buyers file, and each buyer
starts ``at`` seconds after the test started. A ``waiter`` joins the event's waiting list
with ``party_size``, polls it every ``--late-poll-seconds`` (x 0.75-1.25) and, when seats
are offered, after 1-5 s accepts (then confirms the hold like any buyer), declines, or
ignores the offer (``action``) until it runs out; a ``canceller`` cancels
``booking_code``; a ``sniper`` runs the sale's journey again every 3-6 s (join the
waiting room, read the map, hold what is free) until ``until``. Expected refusals (409
``not_sold_out`` on a join while seats are on sale, tried again for 30 s; 409 ``no_offer``
/ ``offer_expired`` / ``seat_unavailable`` on an answer; 409 ``not_cancellable``) are
counted like the sale's. The journey record of a late buyer carries ``late``: what it
did and saw (``offer_seen``: its first poll that showed the offer).

Distributed mode (``--master`` / ``--worker`` or ``--processes N``): the master hands each
worker a disjoint slice of the buyers file (every n-th line) when a test starts, so no
account is used by two workers; outcome counters travel with the workers' stats reports.
Journey records are written by each process into ``--record-dir`` (one file per process).
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, argument_parser, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

logger = logging.getLogger("rehearsal")

# locust (2.47) workers, on every spawn message, build a whole argument parser once per
# option the master sends ("k not in argument_parser.default_args_dict()" in runners.py):
# ~1 ms each for ~100 options, so each spawn message (one a second while users ramp up)
# froze a worker's event loop for ~0.1 s, and every answer arriving meanwhile was timed
# that much slower. The defaults do not change during a run: built once.
_LOCUST_DEFAULTS = argument_parser.default_args_dict()
argument_parser.default_args_dict = lambda: _LOCUST_DEFAULTS

# Request names: one stats row per endpoint, whatever the event id.
JOIN = "POST /api/events/[id]/queue/"
STATUS = "GET /api/events/[id]/queue/"
LEAVE = "DELETE /api/events/[id]/queue/"
EVENT = "GET /api/events/[id]/"
SEATS = "GET /api/events/[id]/seats/"
HOLD = "POST /api/events/[id]/holds/"
CONFIRM = "POST /api/bookings/"
LOGIN = "POST /api/auth/token/"
CHALLENGE = "GET /api/events/[id]/queue/challenge/"
# The late phase (the waiting list, issue 14).
WL_JOIN = "POST /api/events/[id]/waiting-list/"
WL_STATUS = "GET /api/events/[id]/waiting-list/"
WL_ACCEPT = "POST /api/events/[id]/waiting-list/offer/accept/"
WL_DECLINE = "POST /api/events/[id]/waiting-list/offer/decline/"
CANCEL = "POST /api/bookings/[code]/cancel/"
# Short names of the outcome counters ("hold 409 seat_unavailable").
KIND = {
    JOIN: "join",
    STATUS: "status",
    LEAVE: "leave",
    EVENT: "event",
    SEATS: "seats",
    HOLD: "hold",
    CONFIRM: "confirm",
    LOGIN: "login",
    CHALLENGE: "challenge",
    WL_JOIN: "wl join",
    WL_STATUS: "wl status",
    WL_ACCEPT: "wl accept",
    WL_DECLINE: "wl decline",
    CANCEL: "cancel",
}

DEFAULT_POLL_MS = 1000
# A status poll's expected refusals: not in line, or a queue ticket to drop.
POLL_EXPECTED: dict[int, tuple[str, ...] | None] = {
    404: ("not_in_queue",),
    401: ("queue_ticket_invalid", "queue_ticket_expired"),
    403: ("queue_ticket_mismatch",),
}
# Bounded patience: a person re-reads a full map a few times, then gives up.
MAX_FULL_MAP_WAITS = 10
# A crowd buyer tries the front of the best section this many times, then takes any seat.
CROWD_CONFLICTS = 2
MAX_REJOINS = 1
MAX_CONFIRM_RETRIES = 2
# Join attempts of one journey that may be refused for a proof-of-work reason or a join
# limit (then the journey ends "join_refused").
MAX_JOIN_ATTEMPTS = 4
# The counter an average challenge of difficulty 50,000 needs (drawn between half the
# difficulty and the difficulty): --pow-browser-seconds is a browser's time for it.
POW_REFERENCE_COUNTER = 37_500
# The late phase: a waiter's join refused because seats are still on sale is tried again
# this often, this far apart (the sale's last seats may still be selling).
LATE_JOIN_ATTEMPTS = 10
LATE_JOIN_RETRY_SECONDS = 3.0
# Reading the offer (the notice or the mail) before answering it.
LATE_THINK_SECONDS = (1.0, 5.0)
# A sniper looks again this long after a journey that got nothing.
SNIPER_RETRY_SECONDS = (3.0, 6.0)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    # parser.add_argument (not an argument group): only it knows locust's web-UI options.
    group = parser
    group.add_argument("--event-id", type=int, env_var="LOCUST_EVENT_ID", default=0, help="Event on sale.")
    group.add_argument("--buyers-file", env_var="LOCUST_BUYERS_FILE", default="", help="'email,token' lines.")
    group.add_argument("--buyer-password", env_var="LOCUST_BUYER_PASSWORD", default="", is_secret=True)
    group.add_argument("--login-share", type=float, env_var="LOCUST_LOGIN_SHARE", default=0.01)
    group.add_argument("--crowd-share", type=float, env_var="LOCUST_CROWD_SHARE", default=0.5)
    group.add_argument("--abandon-share", type=float, env_var="LOCUST_ABANDON_SHARE", default=0.1)
    group.add_argument("--max-seats", type=int, env_var="LOCUST_MAX_SEATS", default=0)
    group.add_argument("--hold-retries", type=int, env_var="LOCUST_HOLD_RETRIES", default=5)
    group.add_argument("--think-seconds", env_var="LOCUST_THINK_SECONDS", default="0.2-1.0")
    group.add_argument(
        "--poll-factor",
        type=float,
        env_var="LOCUST_POLL_FACTOR",
        default=1.0,
        help="Multiplies poll_after_ms (0.2: impatient refreshers polling 5x as often as asked).",
    )
    group.add_argument("--max-requests", type=int, env_var="LOCUST_MAX_REQUESTS", default=0)
    group.add_argument("--quit-when-done", env_var="LOCUST_QUIT_WHEN_DONE", default="true")
    group.add_argument("--record-dir", env_var="LOCUST_RECORD_DIR", default="")
    group.add_argument("--outcomes-file", env_var="LOCUST_OUTCOMES_FILE", default="")
    group.add_argument(
        "--buyer-slice", env_var="LOCUST_BUYER_SLICE", default="", help="'i/n' (manual override)"
    )
    group.add_argument(
        "--pow-browser-seconds",
        env_var="LOCUST_POW_BROWSER_SECONDS",
        default="0.3-1.0",
        help="An honest browser's proof-of-work time for an average difficulty-50,000 challenge (min-max).",
    )
    group.add_argument(
        "--pow-scale",
        type=int,
        env_var="LOCUST_POW_SCALE",
        default=1,
        help="The event asks difficulty/this: client times are modelled at x this the counter found.",
    )
    group.add_argument(
        "--pow-prestart",
        type=_truthy,
        env_var="LOCUST_POW_PRESTART",
        default=False,
        help="Start the proof-of-work solvers with the test (else on the first challenge).",
    )
    group.add_argument(
        "--script-poll-factor",
        type=float,
        env_var="LOCUST_SCRIPT_POLL_FACTOR",
        default=0.2,
        help="Multiplies poll_after_ms for script accounts (the macro scenario).",
    )
    group.add_argument(
        "--late-plan",
        env_var="LOCUST_LATE_PLAN",
        default="",
        help="The late phase (waiting list): a plan of JSON lines instead of the buyers file.",
    )
    group.add_argument(
        "--late-poll-seconds",
        type=float,
        env_var="LOCUST_LATE_POLL_SECONDS",
        default=2.0,
        help="A waiter's poll interval on the waiting list (the late phase).",
    )


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _think_range(text: str) -> tuple[float, float]:
    low, _, high = str(text).partition("-")
    low_s = float(low or 0)
    return low_s, float(high or low_s)


# --- Per-process state (recording only: correctness never depends on it) -----------------


@dataclass(frozen=True)
class Account:
    email: str
    token: str
    role: str = "honest"  # or "script:<operator>" (the macro scenario)
    address: str | None = None  # sent as X-Forwarded-For
    plan: dict[str, Any] | None = None  # the late phase: what this buyer does (bench/late_phase.py)


class BuyerPool:
    """This process's slice of the buyers file: every ``count``-th line from ``index``."""

    def __init__(self) -> None:
        self.index, self.count = 0, 1
        self.assigned = False  # a slice came from the master (or --buyer-slice)
        self._accounts: list[Account] = []
        self._next = 0

    def set_slice(self, index: int, count: int) -> None:
        self.index, self.count, self.assigned = index, max(1, count), True

    def load(self, path: str) -> None:
        accounts = []
        for line in Path(path).read_text().splitlines():
            # email,token[,role[,address]]: the macro scenario's buyers file adds the last two.
            email, token, role, address = [*line.strip().split(","), "", "", ""][:4]
            if email and token:
                accounts.append(Account(email, token, role or "honest", address or None))
        self._accounts = accounts[self.index :: self.count]
        self._next = 0
        logger.info("buyers %d/%d: %d accounts from %s", self.index, self.count, len(self._accounts), path)

    def load_plan(self, path: str) -> None:
        """The late phase: one JSON object a line, ``email``, ``token``, ``role`` and the rest."""
        accounts = []
        for line in Path(path).read_text().splitlines():
            if line.strip():
                plan = json.loads(line)
                accounts.append(Account(plan["email"], plan["token"], plan["role"], None, plan))
        self._accounts = accounts[self.index :: self.count]
        self._next = 0
        logger.info("late phase %d/%d: %d buyers from %s", self.index, self.count, len(self._accounts), path)

    def claim(self) -> Account | None:
        if self._next >= len(self._accounts):
            return None
        account = self._accounts[self._next]
        self._next += 1
        return account


@dataclass
class Journey:
    """What one buyer did and saw; the invariants read these (wall-clock seconds)."""

    buyer: str
    user_id: int | None
    process: str
    crowd: bool
    abandon: str | None  # "after_join" | "after_hold" | None
    logged_in: bool = False
    join_send: float | None = None  # first join: request sent
    join_recv: float | None = None  # first join: answer received
    join_position: int | None = None  # server position at the first join
    join_state: str | None = None
    last_waiting_send: float | None = None  # latest status request answered "waiting"
    last_waiting_exact_send: float | None = None  # ... with an exact place (not "estimated")
    first_active_recv: float | None = None  # first answer saying "active" (admission seen)
    # The same two moments on the server's clock (the answers' ``as_of``).
    last_waiting_as_of: float | None = None
    first_active_as_of: float | None = None
    rejoins: int = 0
    polls: int = 0
    ticket_drops: int = 0  # queue tickets the server refused (dropped, polled again without)
    hold_attempts: int = 0
    seat_conflicts: int = 0
    booking_code: str | None = None
    seat_ids: list[int] = field(default_factory=list)
    outcome: str = "running"  # booked, sold_out, abandoned_*, gave_up, pass_expired, error, ...
    finished: float | None = None
    role: str = "honest"  # "honest" or "script:<operator>"
    address: str | None = None
    pow_ms: float | None = None  # proof-of-work: challenge asked .. join sent (first join)
    pow_counter: int | None = None
    pow_solver_ms: float | None = None  # of which waiting for this machine's solver
    late: dict[str, Any] | None = None  # the late phase: role and what the buyer did and saw


class ProcessState:
    def __init__(self) -> None:
        self.pool = BuyerPool()
        self.outcomes: Counter[str] = Counter()  # since the last report to the master
        self.total_outcomes: Counter[str] = Counter()  # master/local: all of them
        self.journeys_started = 0
        self.journeys_finished = 0
        self.worker_progress: dict[str, tuple[int, int]] = {}  # master: client -> (started, finished)
        self.spawning_complete = False
        self.record_file: Any = None
        self.process_name = f"{socket.gethostname()}-{os.getpid()}"
        self.pow_on = False  # a join said pow_required: later joins bring a solution
        self.solver: PowSolver | None = None
        self.test_started = 0.0  # wall clock; the late phase's ``at`` counts from it

    def count(self, kind: str) -> None:
        self.outcomes[kind] += 1

    def record(self, journey: Journey, options: Any) -> None:
        if not options.record_dir:
            return
        if self.record_file is None:
            directory = Path(options.record_dir)
            directory.mkdir(parents=True, exist_ok=True)
            self.record_file = (directory / f"journeys-{self.process_name}.jsonl").open("a")
        self.record_file.write(json.dumps(asdict(journey)) + "\n")
        self.record_file.flush()

    def progress(self, runner: Any) -> tuple[int, int]:
        if isinstance(runner, MasterRunner):
            started = sum(s for s, _ in self.worker_progress.values())
            finished = sum(f for _, f in self.worker_progress.values())
            return started, finished
        return self.journeys_started, self.journeys_finished


class PowSolver:
    """Child processes (``bench/macro.py solve``) solving this process's proof-of-work
    challenges, so that no hashing runs in the gevent loop; a script's challenge goes
    before an honest buyer's (whose browser time is simulated, not the solver's)."""

    PROCESSES = 2
    BATCH = 16

    def __init__(self) -> None:
        from gevent import subprocess as gevent_subprocess
        from gevent.queue import PriorityQueue

        self.jobs: Any = PriorityQueue()
        self.order = itertools.count()
        self.children = [
            gevent_subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve().parent / "bench" / "macro.py"), "solve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            for _ in range(self.PROCESSES)
        ]
        for child in self.children:
            gevent.spawn(self._serve, child)

    def _serve(self, child: Any) -> None:
        """Hands the child every waiting job at once (up to BATCH), then reads the answers:
        one trip through the gevent loop per batch, not per challenge, which matters when
        that loop is busy with a thousand buyers."""
        from gevent.queue import Empty

        while True:
            batch = [self.jobs.get()]
            while len(batch) < self.BATCH:
                try:
                    batch.append(self.jobs.get_nowait())
                except Empty:
                    break
            try:
                child.stdin.write(b"".join(json.dumps(job[2]).encode() + b"\n" for job in batch))
                child.stdin.flush()
                for job in batch:
                    line = child.stdout.readline()
                    if not line:
                        raise RuntimeError("the proof-of-work solver exited")
                    job[3].set(json.loads(line))
            except Exception as error:
                for job in batch:
                    if not job[3].ready():
                        job[3].set_exception(error)
                if child.poll() is not None:
                    return

    def solve(self, challenge: dict[str, Any], *, urgent: bool) -> dict[str, Any]:
        """``{"payload", "counter", "ms"}`` or ``{"error"}``."""
        from gevent.event import AsyncResult

        result = AsyncResult()
        self.jobs.put((0 if urgent else 1, next(self.order), challenge, result))
        return result.get(timeout=120)

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()


def pow_solver() -> PowSolver:
    if STATE.solver is None:
        STATE.solver = PowSolver()
    return STATE.solver


STATE = ProcessState()


def _write_outcomes(environment: Environment) -> None:
    options = environment.parsed_options
    if not options or not options.outcomes_file:
        return
    started, finished = STATE.progress(environment.runner)
    payload = {
        "outcomes": dict(STATE.total_outcomes),
        "journeys_started": started,
        "journeys_finished": finished,
    }
    path = Path(options.outcomes_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=1, sort_keys=True))
    temporary.replace(path)


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):

        def on_slice(msg: Any, **_kw: Any) -> None:
            STATE.pool.set_slice(int(msg.data["index"]), int(msg.data["count"]))

        runner.register_message("buyer_slice", on_slice)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    options = environment.parsed_options
    runner = environment.runner
    STATE.spawning_complete = False
    # Named here, not at import: ``--processes`` forks after importing this file.
    STATE.process_name = f"{socket.gethostname()}-{os.getpid()}"
    if isinstance(runner, MasterRunner):
        # Disjoint buyer slices, sent before the spawn messages (same ordered channel).
        nodes = sorted(runner.clients.values(), key=lambda node: node.id)
        for index, node in enumerate(nodes):
            runner.send_message("buyer_slice", {"index": index, "count": len(nodes)}, client_id=node.id)
        gevent.spawn(_watchdog, environment)
        return
    if options.buyer_slice:
        index, _, count = options.buyer_slice.partition("/")
        STATE.pool.set_slice(int(index), int(count or 1))
    elif isinstance(runner, WorkerRunner) and not STATE.pool.assigned:
        logger.warning(
            "no buyer slice from the master: this worker uses every buyer (accounts may be shared)"
        )
    STATE.test_started = time.time()
    if options.event_id and options.late_plan:
        STATE.pool.load_plan(options.late_plan)
    elif not options.event_id or not options.buyers_file:
        logger.error("set LOCUST_EVENT_ID and LOCUST_BUYERS_FILE (or --event-id / --buyers-file)")
    else:
        STATE.pool.load(options.buyers_file)
    if not isinstance(runner, WorkerRunner):
        gevent.spawn(_watchdog, environment)
    if options.pow_prestart:
        # Ready before the first challenge: starting Python and measuring the library's
        # speed takes a moment, which would otherwise fall on the first buyers.
        pow_solver()


@events.spawning_complete.add_listener
def _on_spawning_complete(**_kwargs: Any) -> None:
    STATE.spawning_complete = True


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    data["rehearsal_outcomes"] = dict(STATE.outcomes)
    data["rehearsal_progress"] = [STATE.journeys_started, STATE.journeys_finished]
    STATE.outcomes.clear()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    STATE.total_outcomes.update(data.get("rehearsal_outcomes") or {})
    if "rehearsal_progress" in data:
        STATE.worker_progress[client_id] = tuple(data["rehearsal_progress"])  # type: ignore[assignment]


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    if not isinstance(environment.runner, MasterRunner | WorkerRunner):
        STATE.total_outcomes.update(STATE.outcomes)
        STATE.outcomes.clear()
    if not isinstance(environment.runner, WorkerRunner):
        _write_outcomes(environment)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    if STATE.solver is not None:
        STATE.solver.close()
    if isinstance(environment.runner, WorkerRunner):
        return
    STATE.total_outcomes.update(STATE.outcomes)
    STATE.outcomes.clear()
    _write_outcomes(environment)
    if STATE.total_outcomes:
        print("\nRehearsal outcomes (expected refusals are successes, counted here):")
        for kind, number in sorted(STATE.total_outcomes.items()):
            print(f"  {kind:<44}{number:>8}")


def _watchdog(environment: Environment) -> None:
    """Master/local: ends the test at --max-requests, or once every buyer finished."""
    options = environment.parsed_options
    runner = environment.runner
    quit_when_done = _truthy(options.quit_when_done)
    headless = bool(getattr(options, "headless", False))
    while runner.state not in ("stopped", "quitting", "cleanup"):
        gevent.sleep(0.5)
        if not isinstance(runner, MasterRunner):
            STATE.total_outcomes.update(STATE.outcomes)
            STATE.outcomes.clear()
        else:
            _write_outcomes(environment)
        reason = None
        if options.max_requests and environment.stats.total.num_requests >= options.max_requests:
            reason = f"--max-requests {options.max_requests} reached"
        started, finished = STATE.progress(runner)
        if quit_when_done and STATE.spawning_complete and started and started == finished:
            reason = f"every buyer finished ({finished} journeys)"
        if reason:
            logger.warning("stopping the test: %s", reason)
            if headless:
                runner.quit()
            else:
                runner.stop()
            return


# --- The buyer -----------------------------------------------------------------------------


class Outcome(Exception):
    """Ends a journey with this outcome (booked, sold_out, ...)."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def _server_moment(body: dict[str, Any]) -> float | None:
    """A queue answer's ``as_of`` as Unix seconds (None when the server does not send it)."""
    try:
        return datetime.fromisoformat(body["as_of"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


# A join's expected refusals: sold out / closed; a proof-of-work answer missing or
# lapsed (400: fetch a challenge and join again); taken off the line by staff (403);
# over a join limit (429: wait Retry-After).
JOIN_EXPECTED: dict[int, tuple[str, ...] | None] = {
    409: ("sold_out", "sales_closed"),
    400: ("pow_required", "pow_expired", "pow_replayed"),
    403: ("removed_from_queue",),
    429: ("too_many_attempts",),
}


def _retry_after(body: Any, headers: Any) -> float:
    value = (body or {}).get("retry_after") if isinstance(body, dict) else None
    if value is None and headers:
        value = headers.get("Retry-After")
    try:
        return min(max(float(value), 0.5), 60.0)
    except (TypeError, ValueError):
        return 5.0


def _user_id_from_token(token: str) -> int | None:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["user_id"])
    except (IndexError, KeyError, ValueError):
        return None


class Buyer(FastHttpUser):
    """One person at the ticket open, from the event page to a confirmed booking."""

    # The journey paces itself (poll_after_ms, think time); no wait between tasks.
    wait_time = staticmethod(lambda: 0)  # type: ignore[assignment]
    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.options = options
        self.event_id = int(options.event_id)
        self.rng = random.Random()
        self.journey: Journey | None = None
        self.recorded = False
        account = STATE.pool.claim()
        if account is None or not self.event_id:
            # Out of accounts (finished users are replaced during ramp-up): stand by idle
            # instead of stopping, which would only make locust spawn another one.
            STATE.count("journey no_account" if self.event_id else "journey misconfigured")
            while True:
                gevent.sleep(3600)
        email, token = account.email, account.token
        # A script account (the macro scenario): no think time, never walks away, takes
        # the cap of seats anywhere, polls more often than asked.
        self.script = account.role.startswith("script")
        self.late = account.plan  # the late phase: waiter, canceller or sniper
        abandon = None
        if not self.script and self.late is None and self.rng.random() < options.abandon_share:
            abandon = self.rng.choice(["after_join", "after_hold"])
        self.journey = Journey(
            buyer=email,
            user_id=_user_id_from_token(token),
            process=STATE.process_name,
            crowd=not self.script and self.rng.random() < options.crowd_share,
            abandon=abandon,
            role=account.role,
            address=account.address,
            late={"role": account.role} if self.late is not None else None,
        )
        STATE.journeys_started += 1
        self.email, self.token = email, token
        self.headers = {"Authorization": f"Bearer {token}"}
        # Every request, with or without credentials, comes from the buyer's address.
        self.base_headers = {"X-Forwarded-For": account.address} if account.address else {}
        self.poll_factor = options.script_poll_factor if self.script else options.poll_factor
        self.seat_etag: str | None = None
        self.seats: list[dict[str, Any]] = []
        self.queue_ticket: str | None = None  # the newest one the server gave
        if (
            not self.script
            and self.late is None
            and options.buyer_password
            and self.rng.random() < options.login_share
        ):
            self._log_in(email, options.buyer_password)

    def on_stop(self) -> None:
        self._finish()

    def _finish(self, outcome: str | None = None) -> None:
        journey = self.journey
        if journey is None or self.recorded:
            return
        if outcome is not None:
            journey.outcome = outcome
        journey.finished = time.time()
        self.recorded = True
        STATE.journeys_finished += 1
        STATE.count(f"journey {journey.outcome}")
        STATE.record(journey, self.options)

    @task
    def buy(self) -> None:
        try:
            if self.late is not None:
                self._late_journey()
            else:
                self._journey()
        except Outcome as end:
            self._finish(end.outcome)
        except Exception:
            # A bug in this file or an answer off the contract: counted as a failure
            # (the invariants report it), and this buyer does not start over.
            logger.exception("buyer %s crashed", self.email)
            STATE.count("unexpected client exception")
            self._finish("crashed")
        raise StopUser

    # --- HTTP ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        name: str,
        ok: tuple[int, ...],
        expected: dict[int, tuple[str, ...] | None] | None = None,
        auth: bool = True,
        **kwargs: Any,
    ) -> tuple[int, Any, Any]:
        """One request. ``ok`` statuses and ``expected`` (status → allowed error codes,
        None = any) are successes; the expected ones are counted by kind. Everything else
        (5xx above all) is a failure. Returns (status, JSON body or None, headers)."""
        headers = {**self.base_headers, **(kwargs.pop("headers", None) or {})}
        if auth:
            headers.update(self.headers)
        label = KIND.get(name, name)
        with self.client.request(
            method, path, name=name, headers=headers, catch_response=True, **kwargs
        ) as resp:
            status = resp.status_code or 0
            body = None
            if resp.content:
                try:
                    body = resp.json()
                except ValueError:
                    body = None
            code = body.get("code") if isinstance(body, dict) else None
            if status in ok:
                resp.success()
            elif expected and status in expected and (expected[status] is None or code in expected[status]):
                resp.success()
                STATE.count(f"{label} {status} {code or ''}".rstrip())
            elif status >= 500:
                STATE.count("5xx")
                STATE.count(f"{label} {status} {code or ''}".rstrip())
                resp.failure(f"{status} {code or ''}".rstrip())
            elif status == 0:
                STATE.count("transport error")
                resp.failure(f"transport error: {resp.error!r}"[:200])
            else:
                STATE.count(f"unexpected {label} {status} {code or ''}".rstrip())
                resp.failure(f"unexpected {status} {code or ''}".rstrip())
            return status, body, resp.headers

    def _log_in(self, email: str, password: str) -> None:
        status, body, _ = self._call(
            "POST",
            "/api/auth/token/",
            name=LOGIN,
            ok=(200,),
            expected={429: None},
            auth=False,
            json={"email": email, "password": password},
        )
        if status == 200 and isinstance(body, dict) and body.get("access"):
            self.headers = {"Authorization": f"Bearer {body['access']}"}
            assert self.journey is not None
            self.journey.logged_in = True

    # --- The journey ----------------------------------------------------------------------

    def _journey(self) -> None:
        journey = self.journey
        assert journey is not None
        base = f"/api/events/{self.event_id}"
        status, event, _ = self._call("GET", f"{base}/", name=EVENT, ok=(200,), auth=False)
        if status != 200:
            raise Outcome("error")
        cap = int(event.get("max_tickets_per_user") or 4)
        max_seats = min(cap, self.options.max_seats) if self.options.max_seats > 0 else cap
        self.wanted = max(1, max_seats) if self.script else self.rng.randint(1, max(1, max_seats))

        poll_ms = self._join(base)
        if journey.abandon == "after_join":
            # Watches the line for a moment, then walks away: their place (or pass) lapses.
            gevent.sleep(self.rng.uniform(0, 5))
            raise Outcome("abandoned_after_join")
        for _pass_attempt in range(1 + MAX_REJOINS):
            self._wait_for_admission(base, poll_ms)
            try:
                self._choose_hold_confirm(base)
            except Outcome as end:
                if end.outcome != "pass_expired" or journey.rejoins >= MAX_REJOINS:
                    raise
                journey.rejoins += 1
                poll_ms = self._join(base)
        raise Outcome("pass_expired")

    def _join(self, base: str) -> int:
        journey = self.journey
        assert journey is not None
        for _attempt in range(MAX_JOIN_ATTEMPTS):
            extra: dict[str, Any] = {}
            if STATE.pow_on:
                solution = self._pow_solution(base)
                if solution:
                    extra["json"] = {"altcha": solution}
            sent = time.time()
            status, body, headers = self._call(
                "POST", f"{base}/queue/", name=JOIN, ok=(200, 201), expected=JOIN_EXPECTED, **extra
            )
            received = time.time()
            code = body.get("code") if isinstance(body, dict) else None
            if status == 400:  # pow_required (now we know), or a solution that lapsed
                STATE.pow_on = True
                continue
            if status == 429:
                gevent.sleep(_retry_after(body, headers))
                continue
            break
        else:
            raise Outcome("join_refused")
        if status == 403:
            raise Outcome("removed")  # staff took this account off the line
        if status == 409:
            raise Outcome("sold_out" if code == "sold_out" else "sales_closed")
        if status not in (200, 201) or not isinstance(body, dict):
            raise Outcome("error")
        if journey.join_send is None:
            journey.join_send, journey.join_recv = sent, received
            journey.join_position, journey.join_state = body.get("position"), body.get("state")
        self._note_state(body, sent, received)
        return int(body.get("poll_after_ms") or DEFAULT_POLL_MS)

    def _pow_solution(self, base: str) -> str | None:
        """A solved challenge for the join (None: the event asks for none now). An honest
        buyer takes a browser's time, however fast the solver was; a script no longer
        than its solver."""
        journey = self.journey
        assert journey is not None
        for _attempt in range(MAX_JOIN_ATTEMPTS):
            asked = time.time()
            status, body, headers = self._call(
                "GET",
                f"{base}/queue/challenge/",
                name=CHALLENGE,
                ok=(200,),
                expected={409: ("pow_not_required",), 429: ("too_many_attempts",)},
            )
            if status == 409:
                STATE.pow_on = False
                return None
            if status == 429:
                gevent.sleep(_retry_after(body, headers))
                continue
            if status != 200 or not isinstance(body, dict):
                raise Outcome("error")
            received = time.time()
            solved = pow_solver().solve(body, urgent=self.script)
            solver_ms = (time.time() - received) * 1000
            if "payload" not in solved:
                STATE.count("unexpected pow solver error")
                raise Outcome("error")
            # The client's own time for the counter it had to find (at the nominal
            # difficulty: x --pow-scale): a browser's, or the Python library's at full speed.
            counter = solved["counter"] * max(1, self.options.pow_scale)
            if self.script:
                modelled = counter * float(solved["library_s_per_counter"])
            else:
                low, high = _think_range(self.options.pow_browser_seconds)
                modelled = counter / POW_REFERENCE_COUNTER * self.rng.uniform(low, high)
            gevent.sleep(max(0.0, received + modelled - time.time()))
            if journey.pow_ms is None:
                journey.pow_ms = round((time.time() - asked) * 1000, 1)
                journey.pow_solver_ms = round(solver_ms, 1)
                journey.pow_counter = solved["counter"]
            return str(solved["payload"])
        raise Outcome("join_refused")

    def _note_state(self, body: dict[str, Any], sent: float, received: float) -> None:
        """Keeps the newest queue ticket and the buyer's timeline (for the order check)."""
        journey = self.journey
        assert journey is not None
        if body.get("queue_ticket"):
            self.queue_ticket = body["queue_ticket"]
        state = body.get("state")
        as_of = _server_moment(body)
        if state == "waiting" and journey.rejoins == 0:
            # Only the first time in line: a re-join has a new, later arrival number.
            journey.last_waiting_send = sent
            journey.last_waiting_as_of = as_of
            if not body.get("estimated"):
                journey.last_waiting_exact_send = sent
        elif state == "active" and journey.first_active_recv is None:
            journey.first_active_recv = received
            journey.first_active_as_of = as_of

    def _poll(self, base: str) -> tuple[int, Any, float, float]:
        """One status poll with the newest queue ticket. A refused ticket (401
        queue_ticket_invalid / _expired, 403 queue_ticket_mismatch) is dropped and the
        poll sent once more without it: that answer carries a fresh ticket."""
        journey = self.journey
        assert journey is not None
        while True:
            headers = {"X-Queue-Ticket": self.queue_ticket} if self.queue_ticket else {}
            sent = time.time()
            status, body, _ = self._call(
                "GET", f"{base}/queue/", name=STATUS, ok=(200,), headers=headers, expected=POLL_EXPECTED
            )
            received = time.time()
            journey.polls += 1
            if status in (401, 403) and self.queue_ticket:
                self.queue_ticket = None
                journey.ticket_drops += 1
                continue
            return status, body, sent, received

    def _wait_for_admission(self, base: str, poll_ms: int) -> None:
        journey = self.journey
        assert journey is not None
        if journey.first_active_recv is not None and journey.rejoins == 0:
            return
        while True:
            gevent.sleep(max(poll_ms * self.poll_factor, 100) / 1000)
            status, body, sent, received = self._poll(base)
            if status == 404:
                # Our place is gone (a pass that lapsed while we looked away): join again.
                if journey.rejoins >= MAX_REJOINS:
                    raise Outcome("lost_place")
                journey.rejoins += 1
                poll_ms = self._join(base)
                continue
            if status != 200 or not isinstance(body, dict):
                poll_ms = DEFAULT_POLL_MS  # a failed poll (already counted): try again
                continue
            state = body.get("state")
            self._note_state(body, sent, received)
            if state == "active":
                return
            if state == "sold_out":
                raise Outcome("sold_out")
            poll_ms = int(body.get("poll_after_ms") or DEFAULT_POLL_MS)

    def _read_map(self, base: str) -> bool:
        """Refreshes the cached seat map; False when the request failed."""
        headers = {"If-None-Match": self.seat_etag} if self.seat_etag else {}
        status, body, headers_in = self._call(
            "GET", f"{base}/seats/", name=SEATS, ok=(200, 304), auth=False, headers=headers
        )
        if status == 200 and isinstance(body, dict):
            self.seats = body.get("seats") or []
            self.seat_etag = headers_in.get("ETag") or headers_in.get("etag")
            return True
        return status == 304

    def _choose(self, avoid: set[int]) -> list[int]:
        available = [s for s in self.seats if s.get("status") == "available" and s["id"] not in avoid]
        if not available:
            return []
        count = min(self.wanted, len(available))
        assert self.journey is not None
        if self.journey.crowd and self.journey.seat_conflicts < CROWD_CONFLICTS:
            # The front of the best (first) section: everyone wants those seats.
            best_section = self.seats[0].get("section")
            front = sorted(
                (s for s in available if s.get("section") == best_section),
                key=lambda s: (str(s.get("row")), int(s.get("number") or 0)),
            )[: max(count * 3, 8)]
            if len(front) >= count:
                start = self.rng.randrange(0, len(front) - count + 1)
                return [s["id"] for s in front[start : start + count]]
        return [s["id"] for s in self.rng.sample(available, count)]

    def _choose_hold_confirm(self, base: str) -> None:
        journey = self.journey
        assert journey is not None
        avoid: set[int] = set()
        full_map_waits = 0
        if not self._read_map(base):
            raise Outcome("error")
        tries = 0
        while tries <= self.options.hold_retries:
            seat_ids = self._choose(avoid)
            if not seat_ids:
                if not any(s.get("status") == "held" for s in self.seats):
                    raise Outcome("sold_out")  # nothing available, nothing held: gone
                full_map_waits += 1
                if full_map_waits > MAX_FULL_MAP_WAITS:
                    raise Outcome("gave_up")
                # Everything left is held by others: some holds will lapse. Look again.
                gevent.sleep(self.rng.uniform(0.5, 1.0) if self.script else self.rng.uniform(2.0, 4.0))
                avoid.clear()
                self._read_map(base)
                continue
            if not self.script:
                gevent.sleep(self.rng.uniform(*_think_range(self.options.think_seconds)))
            tries += 1
            journey.hold_attempts += 1
            status, body, _ = self._call(
                "POST",
                f"{base}/holds/",
                name=HOLD,
                ok=(201,),
                expected={409: ("seat_unavailable", "sold_out", "sales_closed"), 403: ("not_admitted",)},
                json={"seat_ids": seat_ids},
            )
            if status == 201:
                if journey.abandon == "after_hold":
                    raise Outcome("abandoned_after_hold")  # the hold and the pass lapse
                if self._confirm(seat_ids):
                    raise Outcome("booked")
                # hold_missing / seat_unavailable at confirm: choose again.
                avoid.update(seat_ids)
                self._read_map(base)
                continue
            if status == 403:
                raise Outcome("pass_expired")
            if status == 409 and isinstance(body, dict):
                if body.get("code") in ("sold_out", "sales_closed"):
                    raise Outcome(body["code"])
                journey.seat_conflicts += 1
                avoid.update(int(seat) for seat in body.get("seat_ids") or seat_ids)
                self._read_map(base)
                continue
            gevent.sleep(0.5)  # a failed request (already counted): try once more
        raise Outcome("gave_up")

    def _confirm(self, seat_ids: list[int]) -> bool:
        """True when booked; False when the seats must be chosen again."""
        journey = self.journey
        assert journey is not None
        key = uuid.uuid4().hex  # one purchase, one key: a retry after an error is safe
        for attempt in range(1 + MAX_CONFIRM_RETRIES):
            status, body, headers = self._call(
                "POST",
                "/api/bookings/",
                name=CONFIRM,
                ok=(200, 201),
                expected={409: ("hold_missing", "seat_unavailable"), 403: ("not_admitted",)},
                json={"event_id": self.event_id, "seat_ids": seat_ids},
                headers={"Idempotency-Key": key},
            )
            if status in (200, 201) and isinstance(body, dict):
                journey.booking_code = body.get("code")
                journey.seat_ids = sorted(seat_ids)
                return True
            if status == 409:
                journey.seat_conflicts += 1
                return False
            if status == 403:
                raise Outcome("pass_expired")
            if attempt < MAX_CONFIRM_RETRIES:
                retry_after = headers.get("Retry-After") if headers else None
                gevent.sleep(min(float(retry_after or 1), 5.0))
        raise Outcome("error")

    # --- The late phase: after the sell-out (bench/late_phase.py) -----------------------

    def _late_journey(self) -> None:
        plan = self.late
        assert plan is not None
        gevent.sleep(max(0.0, STATE.test_started + float(plan["at"]) - time.time()))
        role = plan["role"]
        if role == "canceller":
            self._cancel(str(plan["booking_code"]))
        elif role == "waiter":
            self._wait_on_list(plan)
        elif role == "sniper":
            self._snipe(plan)
        raise Outcome("misconfigured")

    def _cancel(self, code: str) -> None:
        late = self._late_record()
        late["cancel_code"], late["cancel_send"] = code, time.time()
        status, _body, _ = self._call(
            "POST",
            f"/api/bookings/{code}/cancel/",
            name=CANCEL,
            ok=(200,),
            expected={409: ("not_cancellable",)},
        )
        late["cancel_recv"] = time.time()
        raise Outcome("cancelled" if status == 200 else "cancel_refused" if status == 409 else "error")

    def _late_record(self) -> dict[str, Any]:
        assert self.journey is not None and self.journey.late is not None
        return self.journey.late

    def _wait_on_list(self, plan: dict[str, Any]) -> None:
        """Joins the waiting list, polls it, and answers the offer as planned."""
        journey = self.journey
        assert journey is not None
        late = self._late_record()
        late.update(party_size=plan["party_size"], action=plan["action"], polls=0)
        base = f"/api/events/{self.event_id}/waiting-list/"
        for attempt in range(LATE_JOIN_ATTEMPTS):
            late["join_send"] = time.time()
            status, body, _ = self._call(
                "POST",
                base,
                name=WL_JOIN,
                ok=(200, 201),
                expected={409: ("not_sold_out", "sales_closed", "offer_out"), 400: ("limit_exceeded",)},
                json={"party_size": plan["party_size"]},
            )
            code = body.get("code") if isinstance(body, dict) else None
            if status == 409 and code == "not_sold_out" and attempt + 1 < LATE_JOIN_ATTEMPTS:
                gevent.sleep(LATE_JOIN_RETRY_SECONDS)  # the last seats are still selling
                continue
            break
        if status not in (200, 201) or not isinstance(body, dict):
            raise Outcome(f"wl_join_{code or status}")
        late.update(join_recv=time.time(), position=body.get("position"), join_state=body.get("state"))
        journey.outcome = "wl_still_waiting"  # what is recorded if the test ends first
        until = STATE.test_started + float(plan["until"])
        while time.time() < until:
            gevent.sleep(self.options.late_poll_seconds * self.rng.uniform(0.75, 1.25))
            status, body, _ = self._call("GET", base, name=WL_STATUS, ok=(200,))
            late["polls"] += 1
            if status != 200 or not isinstance(body, dict):
                continue  # a failed poll (already counted): look again
            state, offer = body.get("state"), body.get("offer")
            if state == "waiting":
                late["last_position"] = body.get("position")
            elif state == "offered" and offer:
                if late.get("offer_seen") is None:
                    late.update(
                        offer_seen=time.time(),
                        offer_seat_ids=sorted(offer.get("seat_ids") or []),
                        offer_together=offer.get("together"),
                        offer_expires_at=offer.get("expires_at"),
                    )
                if plan["action"] != "ignore":
                    self._answer_offer(base, plan["action"])
            elif state in ("accepted", "declined", "expired", "left", "removed"):
                raise Outcome(f"wl_{state}")
        raise Outcome("wl_still_waiting")

    def _answer_offer(self, base: str, action: str) -> None:
        late = self._late_record()
        gevent.sleep(self.rng.uniform(*LATE_THINK_SECONDS))
        late["answer_send"] = time.time()
        if action == "decline":
            status, _body, _ = self._call(
                "POST",
                f"{base}offer/decline/",
                name=WL_DECLINE,
                ok=(200,),
                expected={409: ("no_offer",)},
                json={},
            )
            raise Outcome("wl_declined" if status == 200 else "wl_decline_refused")
        status, body, _ = self._call(
            "POST",
            f"{base}offer/accept/",
            name=WL_ACCEPT,
            ok=(200,),
            expected={409: ("no_offer", "offer_expired", "seat_unavailable")},
        )
        if status != 200 or not isinstance(body, dict):
            code = body.get("code") if isinstance(body, dict) else status
            raise Outcome(f"wl_accept_{code}")
        late["accepted_recv"] = time.time()
        # The offered seats are now this buyer's holds: the booking is the sale's own step.
        if self._confirm([int(seat) for seat in body.get("seat_ids") or late.get("offer_seat_ids") or []]):
            raise Outcome("wl_booked")
        raise Outcome("wl_booking_refused")

    def _snipe(self, plan: dict[str, Any]) -> None:
        """The sale's journey again and again, each time as a fresh visit, until ``until``."""
        first = self.journey
        assert first is not None
        until = STATE.test_started + float(plan["until"])
        attempts, outcome = 0, "sold_out"
        while time.time() < until:
            attempts += 1
            self.journey = dataclasses.replace(
                first, outcome="sniper_still_looking", late={"role": "sniper", "attempts": attempts}
            )
            try:
                self._journey()
            except Outcome as end:
                outcome = end.outcome
            if outcome == "booked":
                break
            gevent.sleep(self.rng.uniform(*SNIPER_RETRY_SECONDS))
        raise Outcome(f"sniper_{outcome}")
