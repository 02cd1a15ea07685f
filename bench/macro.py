"""The "macro" scenario of ``make loadtest`` (issue 15): script operators against honest
buyers, with the defences off and on.

    python bench/loadtest.py --macro both        # off, then on, in one session (~4 min)
    python bench/loadtest.py --macro all         # off, on, auto, review (~8 min)
    python bench/loadtest.py --macro on --users 600 --operator-share 0.05

``--users`` counts the honest buyers (600 by default here). ``--operator-share`` of all
*people* are script operators (5 %: 32 operators next to 600 honest buyers), each running
``--operator-accounts`` accounts (20) from one address with no think time. Everyone is a
locust user of ``locustfile.py`` (one per account); the buyers file says who is who
(``email,token,role,address``): people in a random order of arrival (``--macro-seed``;
every phase of a session gets the same order), an operator's accounts one after the other
(the script starts them together). Each simulated buyer sends ``X-Forwarded-For:
<address>`` and the web server believes one hop (``NUM_PROXIES=1``; 2 behind nginx or
HAProxy): an honest buyer has an address of their own (10.x.y.z), an operator one for
all its accounts (172.16.x.y).

What a script does differently (``locustfile.py``): no think time before a hold (nor
before choosing again), polls five times as often as asked (``--script-poll-factor``),
wants the per-account cap of seats anywhere in the hall, never walks away, and solves
the proof-of-work at a Python program's full speed.

Proof-of-work: solving 1,240 challenges of difficulty 50,000 for real would take ~20
core-seconds of this machine's 2 cores during the first seconds of the rush, time the
buyers' own devices would spend, not the servers. So the event asks difficulty /
``--pow-scale`` (50: 1,000), which the solver child processes find for real, and each
client's time is modelled at the full difficulty, in proportion to the counter found x
the scale: an honest browser takes ``--pow-browser-seconds`` (0.3 s on a desktop to 1 s
on a phone for an average challenge of 50,000), a script what ``altcha.solve_challenge``
(the library's Python solver) takes on this machine, ~1.5 us a counter (~55 ms).
``--pow-scale 1`` solves the full difficulty here. The server's "faster than a browser"
flag is not exercised when scaled: its threshold shrinks with the difficulty asked, the
modelled times do not (nor does the network time it also counts). Each run
prints how long buyers waited for this machine's solvers (p95): a simulation cost that
must stay small next to the modelled times (a busy machine makes it grow).

Defences off: ``pow_difficulty`` 0, every join limit 0, nobody watching. Defences on,
what an operator does with what the app offers: ``pow_difficulty`` (``--pow-difficulty``,
50,000), the join limits at the app's defaults (account 30, device 60, address 3,000
attempts a minute: the address limit stays *on*, at a level no NAT of honest buyers
reaches; it is also what records which accounts joined from which address, the
suspicious panel's input: with it at 0 the panel lists no address), and a staff member
(``StaffWatch``) who reads ``GET /api/staff/events/ID/suspicious/`` every
``--staff-interval`` seconds and takes every account of an address or device listed
there (5 or more accounts) off the line with ``POST /api/staff/events/ID/queue/remove/``
(all the accounts of one address or device in one request),
one request at a time. An office behind one address would be taken off too: the honest
buyers here all have addresses of their own, so the figures count the honest accounts
removed but cannot show that risk. ``auto``: on, and the event's automatic review
(``Event.review_threshold`` = ``--review-threshold``, 5): once that many accounts tried to
join from one address or device, the join itself holds all of them (out of the line,
passes taken back, places kept) until staff let them through or remove them; the staff
member above removes them. ``review``: on, and the staff pause admissions
(``PATCH /api/staff/events/ID/rush/ {"paused": true}``) from before the first arrival
until ``--review-seconds`` (20) later, clearing the panel meanwhile, as a pre-opening
waiting room would let them.

Figures (``macro_figures``, from the database): seats sold, the scripts' share, seats
per operator against seats per honest buyer (every person who came, booked or not), how
many operators got any seat, the staff's removals (script and honest accounts), how many
addresses the panel listed against how many had 5+ accounts, and the joins the app
flagged as faster than a browser.

``python bench/macro.py solve`` is the proof-of-work solver the locust processes start
(lines of challenge JSON in, solved ALTCHA payloads out): solving inside locust's gevent
loop would stall every other simulated buyer of that process.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import statistics
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODES = ("off", "on", "auto", "review")
MODE_SETS = {"both": ["off", "on"], "all": ["off", "on", "auto", "review"]}
# The app's default join limits (ticketing/settings.py): bench/system.py turns the
# address limit off for the ordinary rehearsals (every buyer there is 127.0.0.1).
APP_LIMITS = {
    "QUEUE_JOIN_LIMIT_ACCOUNT": "30",
    "QUEUE_JOIN_LIMIT_DEVICE": "60",
    "QUEUE_JOIN_LIMIT_ADDRESS": "3000",
}
LIMITS_OFF = dict.fromkeys(APP_LIMITS, "0")
# A browser's time for an average challenge of difficulty 50,000 (whose counter is
# ~37,500: drawn between half the difficulty and the difficulty).
BROWSER_REFERENCE_COUNTER = 37_500


def add_options(parser: Any) -> None:
    macro = parser.add_argument_group("macro scenario (bench/macro.py): script operators vs honest buyers")
    macro.add_argument(
        "--macro",
        type=macro_modes,
        help="defences off, on, auto (on + the event's automatic review of shared sources), review "
        "(on + admissions paused for --review-seconds at the opening while staff clear the panel), "
        "both (off,on), all (off,on,auto,review), or a comma list; --users then counts the honest buyers",
    )
    macro.add_argument(
        "--review-threshold",
        type=int,
        default=5,
        help="auto: accounts from one address or device before all of them wait for review",
    )
    macro.add_argument("--operator-share", type=float, default=0.05, help="share of people running scripts")
    macro.add_argument("--operator-accounts", type=int, default=20, help="accounts per script operator")
    macro.add_argument("--pow-difficulty", type=int, default=50_000, help="proof-of-work with defences on")
    macro.add_argument("--staff-interval", type=float, default=3.0, help="seconds between the staff's looks")
    macro.add_argument(
        "--review-seconds",
        type=float,
        default=20.0,
        help="review: admissions paused this long at the opening",
    )
    macro.add_argument(
        "--pow-scale",
        type=int,
        default=50,
        help="the event asks for difficulty / this (solved for real, cheaply); every client's time is "
        "modelled at the full difficulty (1: solve the full difficulty here)",
    )
    macro.add_argument(
        "--pow-browser-seconds",
        default="0.3-1.0",
        help="an honest browser's time for an average difficulty-50,000 challenge (desktop-phone)",
    )
    macro.add_argument(
        "--script-poll-factor", type=float, default=0.2, help="x poll_after_ms for script accounts"
    )
    macro.add_argument("--macro-seed", type=int, help="order of arrival (default: random)")


def macro_modes(text: str) -> list[str]:
    """``--macro``: one mode, ``both``, ``all`` or a comma list, in the order given."""
    modes = MODE_SETS.get(text) or [mode.strip() for mode in text.split(",") if mode.strip()]
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes:
        raise ValueError(f"unknown --macro mode(s) {unknown or text!r}: off, on, auto, review, both, all")
    return list(dict.fromkeys(modes))


def operator_count(honest: int, share: float) -> int:
    """Operators such that they are ``share`` of all people (honest + operators)."""
    if share <= 0:
        return 0
    return max(1, round(honest * share / (1 - share)))


def honest_address(index: int) -> str:
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255 or 1}"


def operator_address(index: int) -> str:
    return f"172.16.{index // 250}.{index % 250 + 1}"


# --- The people of one phase ------------------------------------------------------------


@dataclass
class Plan:
    """Who is who in one phase: honest buyers and operators, by e-mail."""

    honest: list[str] = field(default_factory=list)
    operators: list[list[str]] = field(default_factory=list)  # the accounts of each operator
    lines: list[str] = field(default_factory=list)  # the buyers file, in order of arrival

    @property
    def accounts(self) -> int:
        return len(self.lines)

    def role_of(self) -> dict[str, str]:
        roles = dict.fromkeys((email.lower() for email in self.honest), "honest")
        for number, accounts in enumerate(self.operators):
            roles.update(dict.fromkeys((email.lower() for email in accounts), f"script:{number}"))
        return roles


def build_plan(
    honest_accounts: list[tuple[str, str]],
    script_accounts: list[tuple[str, str]],
    *,
    per_operator: int,
    seed: int | None,
) -> Plan:
    """The buyers file: people shuffled, an operator's accounts next to each other."""
    rng = random.Random(seed)
    people: list[list[str]] = []
    plan = Plan()
    for index, (email, token) in enumerate(honest_accounts, start=1):
        plan.honest.append(email)
        people.append([f"{email},{token},honest,{honest_address(index)}"])
    for number in range(len(script_accounts) // per_operator):
        accounts = script_accounts[number * per_operator : (number + 1) * per_operator]
        plan.operators.append([email for email, _ in accounts])
        address = operator_address(number)
        people.append([f"{email},{token},script:{number},{address}" for email, token in accounts])
    rng.shuffle(people)
    plan.lines = [line for person in people for line in person]
    return plan


def create_staff(run: Any) -> tuple[int, str]:
    """A staff account of the run and an access token for it (the simulated staff member)."""
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    user = User.objects.create_user(
        email=f"staff-{run.run_id}@rehearsal.test".lower(),
        password=secrets.token_urlsafe(18),
        name="Rehearsal staff",
        is_staff=True,
    )
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(hours=4))
    return user.pk, str(token)


@dataclass
class Phase:
    """One macro rehearsal: ``mode`` "off" or "on"."""

    mode: str
    honest: int
    operators: int
    per_operator: int
    pow_difficulty: int  # the nominal difficulty (0: off)
    staff_interval: float
    browser_seconds: str
    script_poll_factor: float
    pow_scale: int = 1
    review_seconds: float = 0.0
    review_threshold: int = 0  # the event's automatic review (0: off)
    seed: int | None = None
    plan: Plan = field(default_factory=Plan)
    staff: StaffWatch | None = None
    staff_token: str = ""
    result: dict[str, Any] | None = None  # macro_figures, once the phase ran

    @classmethod
    def from_args(cls, args: Any, mode: str) -> Phase:
        return cls(
            mode=mode,
            honest=args.users,
            operators=operator_count(args.users, args.operator_share),
            per_operator=args.operator_accounts,
            pow_difficulty=args.pow_difficulty if mode != "off" else 0,
            staff_interval=args.staff_interval,
            browser_seconds=args.pow_browser_seconds,
            script_poll_factor=args.script_poll_factor,
            pow_scale=max(1, args.pow_scale),
            review_seconds=args.review_seconds if mode == "review" else 0.0,
            review_threshold=args.review_threshold if mode == "auto" else 0,
            seed=args.macro_seed,
        )

    @property
    def defences(self) -> bool:
        return self.mode != "off"

    @property
    def event_difficulty(self) -> int:
        """What the event asks: the nominal difficulty / ``pow_scale``."""
        return max(2, self.pow_difficulty // self.pow_scale) if self.pow_difficulty else 0

    @property
    def script_accounts(self) -> int:
        return self.operators * self.per_operator

    def system_env(self, front: str) -> dict[str, str]:
        """The web server believes the last X-Forwarded-For hop the buyers send (one more
        with a proxy of ours in front, which appends the address it saw)."""
        env = {"NUM_PROXIES": "1" if front == "none" else "2"}
        env.update(APP_LIMITS if self.defences else LIMITS_OFF)
        return env

    def prepare(self, run: Any, event: dict[str, Any]) -> None:
        """The accounts and the buyers file (``run_dir/buyers.csv``), the event's
        proof-of-work, and the staff account. Before the system starts."""
        from bench.sale import create_buyers, read_buyers
        from events.models import Event

        honest = read_buyers(create_buyers(run, self.honest, prefix=f"lt-{run.run_id}-h"))
        scripts = read_buyers(create_buyers(run, self.script_accounts, prefix=f"lt-{run.run_id}-s"))
        self.plan = build_plan(honest, scripts, per_operator=self.per_operator, seed=self.seed)
        (run.run_dir / "buyers.csv").write_text("\n".join(self.plan.lines) + "\n")
        (run.run_dir / "plan.json").write_text(
            json.dumps({"honest": self.plan.honest, "operators": self.plan.operators}, indent=1)
        )
        row = Event.objects.get(pk=event["id"])
        row.pow_difficulty = self.event_difficulty
        row.review_threshold = self.review_threshold
        row.save(update_fields=["pow_difficulty", "review_threshold"])  # post_save drops cached settings
        if self.defences:
            _, self.staff_token = create_staff(run)

    def describe(self) -> str:
        scaled = (
            f" (the event asks {self.event_difficulty:,}; client times modelled at {self.pow_difficulty:,})"
            if self.pow_scale > 1
            else ""
        )
        review = (
            f"; admissions paused for the first {self.review_seconds:g} s while staff review"
            if self.review_seconds
            else ""
        )
        if self.review_threshold:
            review += f"; automatic review from {self.review_threshold} accounts per address or device"
        defences = (
            f"defences {self.mode.upper()}: proof-of-work {self.pow_difficulty:,}{scaled}, join limits at the "
            f"app's defaults (account {APP_LIMITS['QUEUE_JOIN_LIMIT_ACCOUNT']}, device "
            f"{APP_LIMITS['QUEUE_JOIN_LIMIT_DEVICE']}, address {APP_LIMITS['QUEUE_JOIN_LIMIT_ADDRESS']} a minute), "
            f"staff every {self.staff_interval:g} s{review}"
            if self.defences
            else "defences OFF: no proof-of-work, no join limits, no staff"
        )
        return (
            f"Macro: {self.honest} honest buyers + {self.operators} script operators x {self.per_operator} "
            f"accounts ({self.plan.accounts} locust users); {defences}"
        )

    def locust_env(self) -> dict[str, str]:
        return {
            "LOCUST_POW_BROWSER_SECONDS": self.browser_seconds,
            "LOCUST_SCRIPT_POLL_FACTOR": str(self.script_poll_factor),
            "LOCUST_POW_SCALE": str(self.pow_scale),
            "LOCUST_POW_PRESTART": "true" if self.pow_difficulty else "false",
            "LOCUST_LOGIN_SHARE": "0",  # every log-in would be from a distinct address anyway
        }

    def start(self, url: str, event_id: int, run_dir: Path) -> None:
        if self.defences:
            self.staff = StaffWatch(
                url=url, event_id=event_id, token=self.staff_token, interval=self.staff_interval,
                roles=self.plan.role_of(), log=run_dir / "staff.jsonl", review_seconds=self.review_seconds,
            )  # fmt: skip
            if self.review_seconds:
                self.staff.pause(True)  # before the first buyer arrives
            self.staff.start()

    def stop(self) -> None:
        if self.staff is not None:
            self.staff.stop()

    def figures(self, event_id: int, run_dir: Path) -> dict[str, Any]:
        return macro_figures(self, event_id, run_dir)


# --- The staff member -------------------------------------------------------------------


class StaffWatch(threading.Thread):
    """Looks at the suspicious panel every ``interval`` seconds and takes every account of
    a listed address or device off the line (the API the panel's buttons call). With
    ``review_seconds``, admissions are paused (the rush dashboard's pause) from before the
    first arrival until that many seconds later."""

    def __init__(
        self,
        *,
        url: str,
        event_id: int,
        token: str,
        interval: float,
        roles: dict[str, str],
        log: Path,
        review_seconds: float = 0.0,
    ) -> None:
        super().__init__(name="staff-watch", daemon=True)
        self.url, self.event_id, self.interval = url.rstrip("/"), event_id, interval
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.roles = roles
        self.log = log
        self.stopping = threading.Event()
        self.started_at = time.time()
        self.looks = 0
        self.errors: Counter[str] = Counter()
        self.removed: dict[int, dict[str, Any]] = {}  # user id -> what and when
        self.look_ms: list[float] = []
        self.listed_max = 0  # most addresses the panel listed at once
        self.review_seconds = review_seconds
        self.paused = False
        self.resumed_s: float | None = None

    def pause(self, paused: bool) -> None:
        self._request("PATCH", f"/api/staff/events/{self.event_id}/rush/", {"paused": paused})
        self.paused = paused

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def look(self) -> None:
        started = time.monotonic()
        found = self._request("GET", f"/api/staff/events/{self.event_id}/suspicious/")
        self.look_ms.append((time.monotonic() - started) * 1000)
        self.looks += 1
        self.listed_max = max(self.listed_max, len(found.get("shared_addresses") or []))
        for kind in ("shared_addresses", "shared_devices"):
            for group in found.get(kind) or []:
                accounts = [
                    account
                    for account in group.get("accounts") or []
                    if not account.get("removed") and account["id"] not in self.removed
                ]
                if not accounts:
                    continue
                # Every account of the address or device in one request.
                answer = self._request(
                    "POST",
                    f"/api/staff/events/{self.event_id}/queue/remove/",
                    {
                        "user_ids": [account["id"] for account in accounts],
                        "reason": f"{len(group['accounts'])} accounts from one {kind}",
                    },
                )
                for account in accounts:
                    record = {
                        "t": round(time.time() - self.started_at, 2), "user_id": account["id"],
                        "email": account.get("email"), "source": group.get("source"), "kind": kind,
                        "role": self.roles.get(str(account.get("email", "")).lower(), "other"),
                        "was_in_line": bool(answer.get("was_in_line")),
                    }  # fmt: skip
                    self.removed[account["id"]] = record
                    with self.log.open("a") as handle:
                        handle.write(json.dumps(record) + "\n")

    def run(self) -> None:
        self.started_at = time.time()
        resume_at = self.started_at + self.review_seconds
        while True:
            wait = self.interval
            if self.paused:
                wait = max(0.0, min(wait, resume_at - time.time()))
            if self.stopping.wait(wait):
                return
            try:
                self.look()
            except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
                self.errors[type(error).__name__] += 1
            if self.paused and time.time() >= resume_at:
                try:
                    self.pause(False)
                    self.resumed_s = round(time.time() - self.started_at, 2)
                except (urllib.error.URLError, OSError, ValueError) as error:
                    self.errors[type(error).__name__] += 1  # tried again after the next look

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=15)

    def summary(self) -> dict[str, Any]:
        records = list(self.removed.values())
        scripts = [r for r in records if r["role"].startswith("script")]
        return {
            "looks": self.looks,
            "look_ms_median": round(statistics.median(self.look_ms), 1) if self.look_ms else None,
            "errors": dict(self.errors),
            "removed_script_accounts": len(scripts),
            "removed_honest_accounts": sum(1 for r in records if r["role"] == "honest"),
            "removed_in_line": sum(1 for r in records if r["was_in_line"]),
            "first_removal_s": min((r["t"] for r in records), default=None),
            "operators_caught": len({r["role"] for r in scripts}),
            "resumed_s": self.resumed_s,
            "addresses_listed_max": self.listed_max,
        }


# --- Figures -------------------------------------------------------------------------------


def macro_figures(phase: Phase, event_id: int, run_dir: Path) -> dict[str, Any]:
    """Seats per role from the database, the staff's removals, the flagged fast joins, and
    per-role journey outcomes and proof-of-work times from the locust records."""
    from django.db.models import Count

    from booking.models import BookingStatus, Ticket
    from queueing.connection import get_redis
    from queueing.join_limits import fast_joins
    from queueing.keys import EventKeys
    from queueing.line import review_state

    roles = phase.plan.role_of()
    per_email = dict(
        Ticket.objects.filter(booking__event_id=event_id, booking__status=BookingStatus.CONFIRMED)
        .values("booking__user__email")
        .annotate(n=Count("id"))
        .values_list("booking__user__email", "n")
    )
    seats_by_role: Counter[str] = Counter()
    per_operator: Counter[str] = Counter()
    honest_booked = 0
    for email, seats in per_email.items():
        role = roles.get(email.lower(), "other")
        if role == "honest":
            seats_by_role["honest"] += seats
            honest_booked += 1
        elif role.startswith("script"):
            seats_by_role["script"] += seats
            per_operator[role] += seats
        else:
            seats_by_role["other"] += seats
    sold = sum(seats_by_role.values())
    honest_per_person = seats_by_role["honest"] / phase.honest if phase.honest else 0.0
    operator_per_person = seats_by_role["script"] / phase.operators if phase.operators else 0.0
    ids = _user_ids(roles)
    fast = fast_joins(event_id=event_id, limit=100_000)
    review = review_state(event_id=event_id)
    fast_roles = Counter(_role_group(roles.get(ids.get(user_id, ""), "other")) for user_id, _ in fast)
    figures: dict[str, Any] = {
        "mode": phase.mode,
        "honest_buyers": phase.honest,
        "operators": phase.operators,
        "accounts_per_operator": phase.per_operator,
        "pow_difficulty": phase.pow_difficulty,
        "pow_difficulty_asked": phase.event_difficulty,
        "review_seconds": phase.review_seconds,
        "review_threshold": phase.review_threshold,
        # Sources the automatic review held, and the accounts still waiting in it at the end.
        "review_sources_held": len(review.sources),
        "review_waiting_at_end": dict(
            Counter(_role_group(roles.get(ids.get(user_id, ""), "other")) for user_id in review.held)
        ),
        "seats_sold": sold,
        "seats_honest": seats_by_role["honest"],
        "seats_script": seats_by_role["script"],
        "script_share": round(seats_by_role["script"] / sold, 3) if sold else None,
        "seats_per_honest_buyer": round(honest_per_person, 3),
        "seats_per_operator": round(operator_per_person, 2),
        "ratio": _ratio_of(operator_per_person, honest_per_person),
        "honest_buyers_booked": honest_booked,
        "operators_with_seats": len(per_operator),
        "most_seats_one_operator": max(per_operator.values(), default=0),
        "fast_joins_flagged": dict(fast_roles),
        # Addresses 5+ accounts tried to join from, as recorded (the panel lists some of them).
        "shared_addresses_recorded": int(
            get_redis().zcount(EventKeys(event_id).accounts_count("address"), 5, "+inf")
        ),
        "staff": phase.staff.summary() if phase.staff is not None else None,
    }
    figures.update(_journey_figures(run_dir / "journeys"))
    return figures


def _ratio_of(operator: float, honest: float) -> float | None:
    """Seats per operator over seats per honest buyer (None: honest buyers got none)."""
    return round(operator / honest, 2) if honest else None


def _user_ids(roles: dict[str, str]) -> dict[int, str]:
    from accounts.models import User

    emails = list(roles)
    ids: dict[int, str] = {}
    for start in range(0, len(emails), 500):
        ids.update(User.objects.filter(email__in=emails[start : start + 500]).values_list("pk", "email"))
    return {pk: email.lower() for pk, email in ids.items()}


def _role_group(role: str) -> str:
    return "script" if role.startswith("script") else role


def _journey_figures(records: Path) -> dict[str, Any]:
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    pow_ms: dict[str, list[float]] = defaultdict(list)
    solver_ms: dict[str, list[float]] = defaultdict(list)
    for path in sorted(records.glob("*.jsonl")) if records.is_dir() else []:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            journey = json.loads(line)
            role = _role_group(journey.get("role") or "honest")
            outcomes[role][journey.get("outcome") or "?"] += 1
            if journey.get("pow_ms") is not None:
                pow_ms[role].append(journey["pow_ms"])
            if journey.get("pow_solver_ms") is not None:
                solver_ms[role].append(journey["pow_solver_ms"])
    return {
        "outcomes": {role: dict(counts.most_common()) for role, counts in outcomes.items()},
        "pow_ms_median": {
            role: round(statistics.median(values)) for role, values in pow_ms.items() if values
        },
        # The part of it spent waiting for this machine's solver (a simulation cost, not
        # the client's): it must stay well under the modelled times to mean nothing.
        "pow_solver_ms_p95": {role: round(_p95(values)) for role, values in solver_ms.items() if values},
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def figure_lines(figures: dict[str, Any]) -> list[str]:
    f = figures
    lines = [
        f"Macro, defences {f['mode'].upper()}: {f['seats_sold']} seats sold, {f['seats_script']} to script "
        f"accounts ({_percent(f['script_share'])}), {f['seats_honest']} to honest buyers",
        f"  seats per operator {f['seats_per_operator']:.2f} ({f['operators']} operators x "
        f"{f['accounts_per_operator']} accounts; {f['operators_with_seats']} got seats, the most "
        f"{f['most_seats_one_operator']}) vs per honest buyer {f['seats_per_honest_buyer']:.3f} "
        f"({f['honest_buyers_booked']} of {f['honest_buyers']} booked): ratio {_ratio(f['ratio'])}",
    ]
    for role, counts in sorted(f.get("outcomes", {}).items()):
        lines.append(f"  journeys ({role}): " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    if f.get("pow_ms_median"):
        lines.append(
            "  proof-of-work, challenge asked to join sent (median ms): "
            + ", ".join(f"{role} {ms}" for role, ms in sorted(f["pow_ms_median"].items()))
            + "; of which waiting for this machine's solver (p95 ms): "
            + ", ".join(f"{role} {ms}" for role, ms in sorted(f.get("pow_solver_ms_p95", {}).items()))
        )
    if f.get("staff"):
        s = f["staff"]
        lines.append(
            f"  staff: {s['looks']} looks (median {s['look_ms_median']} ms), removed {s['removed_script_accounts']} "
            f"script accounts of {s['operators_caught']} operators and {s['removed_honest_accounts']} honest ones "
            f"({s['removed_in_line']} were in line or admitted), first removal at +{s['first_removal_s']} s"
            + (f"; admissions resumed at +{s['resumed_s']} s" if s.get("resumed_s") is not None else "")
            + f"; the panel listed at most {s['addresses_listed_max']} addresses, "
            f"{f['shared_addresses_recorded']} had 5+ accounts"
            + (f"; errors {s['errors']}" if s["errors"] else "")
        )
    if f.get("review_threshold"):
        lines.append(
            f"  automatic review from {f['review_threshold']} accounts: {f['review_sources_held']} sources held; "
            f"still waiting for review at the end: {f['review_waiting_at_end'] or 'nobody'}"
        )
    if f.get("fast_joins_flagged"):
        lines.append(f"  joins flagged faster than a browser: {f['fast_joins_flagged']}")
    return lines


def comparison_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """Off against on, one row per figure."""
    modes = [mode for mode in MODES if mode in results]
    rows = [
        ("seats sold", "seats_sold", str),
        ("seats to script accounts", "seats_script", str),
        ("script share of seats", "script_share", _percent),
        ("seats per operator", "seats_per_operator", lambda v: f"{v:.2f}"),
        ("seats per honest buyer", "seats_per_honest_buyer", lambda v: f"{v:.3f}"),
        ("operator / honest (target <= 1)", "ratio", _ratio),
        ("operators with seats", "operators_with_seats", str),
        ("honest buyers booked", "honest_buyers_booked", str),
    ]
    width = max(len(label) for label, _, _ in rows)
    lines = [f"{'':<{width}}  " + "  ".join(f"{'defences ' + m:>14}" for m in modes)]
    for label, key, fmt in rows:
        cells = [fmt(results[m][key]) if results[m].get(key) is not None else "n/a" for m in modes]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{c:>14}" for c in cells))
    for mode in modes:
        if mode == "off":
            continue
        ratio = results[mode].get("ratio")
        met = ratio is not None and ratio <= 1.0
        lines.append(
            f"Target with defences {mode} (an operator gets no more seats per person than an honest buyer): "
            f"{'met' if met else 'NOT met'} (ratio {_ratio(ratio)})"
        )
    return lines


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}x"


# --- The proof-of-work solver (a child process of each locust process) ------------------------


def solve(challenge: dict[str, Any]) -> tuple[str, int]:
    """An ALTCHA v2 challenge solved: (the join's ``altcha`` payload, the counter found).
    SHA-256 with cost 1 (what the app asks, events/services/proof_of_work.py) runs a
    tight loop over a copied hash state, about 4x the speed of ``altcha.solve_challenge``
    (a script would use the fastest solver it has); anything else goes to the library."""
    import altcha

    parsed = altcha.Challenge.from_dict(challenge)
    parameters = parsed.parameters
    prefix_hex = parameters.key_prefix.lower()
    if parameters.algorithm == "SHA-256" and parameters.cost == 1 and len(prefix_hex) % 2 == 0:
        prefix = bytes.fromhex(prefix_hex)
        width = len(prefix)
        base = hashlib.sha256(bytes.fromhex(parameters.salt) + bytes.fromhex(parameters.nonce))
        pack = struct.Struct(">I").pack
        for counter in range(1 << 32):
            state = base.copy()
            state.update(pack(counter))
            digest = state.digest()
            if digest[:width] == prefix:
                solution = altcha.Solution(counter, digest[: parameters.key_length].hex())
                return altcha.Payload(parsed, solution).to_base64(), counter
        raise ValueError("no counter solves this challenge")
    solved = altcha.solve_challenge(parsed)
    if solved is None:
        raise ValueError("the challenge was not solved in time")
    return altcha.Payload(parsed, solved).to_base64(), solved.counter


def library_seconds_per_counter(counter: int = 20_000, tries: int = 3) -> float:
    """What ``altcha.solve_challenge`` (the library's Python solver, the one API.md names)
    takes per counter on this machine: a script's speed at full tilt (best of ``tries``)."""
    import altcha

    best = float("inf")
    for _ in range(tries):
        challenge = altcha.create_challenge("SHA-256", 1, counter=counter)
        started = time.perf_counter()
        altcha.solve_challenge(challenge)
        best = min(best, (time.perf_counter() - started) / (counter + 1))
    return best


def solver_main() -> int:
    """One JSON challenge per line in; ``{"payload", "counter", "ms", "library_s_per_counter"}``
    (or ``{"error"}``) out."""
    per_counter = library_seconds_per_counter()
    for line in sys.stdin:
        if not line.strip():
            continue
        started = time.perf_counter()
        try:
            payload, counter = solve(json.loads(line))
            answer: dict[str, Any] = {"payload": payload, "counter": counter}
        except (ValueError, KeyError, TypeError) as error:
            answer = {"error": repr(error)[:200]}
        answer["ms"] = round((time.perf_counter() - started) * 1000, 1)
        answer["library_s_per_counter"] = per_counter
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["solve"]:
        raise SystemExit(solver_main())
    raise SystemExit("usage: python bench/macro.py solve   (the rest runs through bench/loadtest.py --macro)")
