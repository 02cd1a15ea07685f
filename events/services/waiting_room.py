"""The waiting room as buyers and API clients see it: join, status, leave, and the
public serving cursor (docs/ARCHITECTURE.md, "The waiting room").

Two ways to answer "where am I?":

- **Exact** (``queueing.line.line_status``, one Lua step): position from the line itself,
  the only way to learn of a pass. Taken on a join, on every poll without a queue ticket,
  for a ticket at or below the serving cursor (the buyer may have been admitted), for a
  pre-opening ticket once the opening shuffle re-dealt the numbers, and for a ticket older
  than ``QUEUE_TICKET_RECHECK_SECONDS`` (so the estimate is re-synchronised now and then).
- **From the cursor** (no Redis round trip): a ticket whose arrival number is beyond the
  serving cursor belongs to someone who cannot have been admitted (admission takes the
  line in arrival order and the cursor is the highest number it took), so the answer is
  "waiting" with an *estimated* place: the arrival numbers between the cursor and the
  buyer, scaled by the share of them still in line. ``estimated: true`` says so.

Each exact answer carries a fresh ticket; clients keep the newest. A stale cursor only
delays the news of a pass by a fraction of a second, it can never admit anyone.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from events.queue_tickets import QueueTicket, queue_ticket_sign, queue_ticket_verify
from events.selectors import EventSettings, event_settings_get
from events.services import proof_of_work
from queueing.join_limits import JoinLimited, JoinRefusal, fast_join_note, join_attempt, limit_spec
from queueing.keys import EventKeys
from queueing.line import LineEntry, line_join, line_join_refusable, line_join_stamp, line_leave, line_status
from queueing.pulse import Pulse, heartbeat_note, pulse_get
from queueing.rates import eta_seconds
from ticketing.errors import COMPACT_JSON, DomainError, error_body
from ticketing.metrics.counters import count_queue_status
from ticketing.time import iso_from_ms

# Polling interval suggested to clients (``poll_after_ms``): every second near the front
# and while admitted; further back each person ahead adds a little, up to
# QUEUE_POLL_MAX_MS (30 s by default, as Cloudflare's waiting room does), so a crowd of
# 50,000 polls at a rate one box answers.
POLL_MIN_MS = 1000
POLL_MS_PER_PERSON_AHEAD = 10
# Held for review: staff may let the buyer through any moment, and then the place may be
# at the head of the line.
POLL_REVIEW_MS = 5000


@dataclasses.dataclass(frozen=True)
class QueueAnswer:
    """What the buyer is told (API.md "Queue status" plus our additions)."""

    state: str  # "waiting" | "active" | "sold_out" | "review" | "none"
    position: int | None
    ahead: int | None
    eta_seconds: int | None
    pass_expires_at_ms: int | None
    estimated: bool  # position, ahead and ETA come from the serving cursor
    ticket: str | None  # the queue ticket to send with the next poll
    as_of_ms: int  # the moment (Redis clock) the answer describes: the line, or the pulse


def _now_s() -> int:
    return int(time.time())


def event_for_queue(event_id: int) -> EventSettings:
    """The cached settings of a published event; 404 ``not_found`` otherwise."""
    event = event_settings_get(event_id)
    if event is None:
        raise DomainError("not_found", _("Not found."), status=404)
    return event


def _ticket_for(entry: LineEntry, *, event_id: int, user_id: int) -> str | None:
    if entry.arrival is None:
        return None
    return queue_ticket_sign(
        QueueTicket(
            event_id=event_id,
            user_id=user_id,
            arrival=entry.arrival,
            preopen=entry.preopen,
            issued_at=_now_s(),
        )
    )


def _exact_answer(entry: LineEntry, *, event_id: int, user_id: int) -> QueueAnswer:
    in_line = entry.state in ("waiting", "sold_out") and entry.position is not None
    eta = None
    if entry.state == "waiting":
        eta = eta_seconds(ahead=entry.ahead, rate=pulse_get(event_id).admitted_per_second)
    return QueueAnswer(
        state=entry.state,
        position=entry.position if in_line else None,
        ahead=entry.ahead if in_line else None,
        eta_seconds=eta,
        pass_expires_at_ms=entry.pass_expires_at_ms,
        estimated=False,
        ticket=_ticket_for(entry, event_id=event_id, user_id=user_id) if in_line else None,
        as_of_ms=entry.now_ms,
    )


@dataclasses.dataclass(frozen=True)
class JoinClient:
    """Where a join comes from, for the limits per device and address (either may be
    unknown: an API client has no device cookie)."""

    address: str | None = None
    device: str | None = None


def _join_refused(refusal: JoinRefusal) -> DomainError:
    seconds = max(1, -(-refusal.retry_after_ms // 1000))
    return DomainError(
        "too_many_attempts",
        _("Too many attempts to join from this %(source)s. Please wait %(seconds)d seconds.")
        % {"source": _LIMIT_SOURCES.get(refusal.by, refusal.by), "seconds": seconds},
        status=429,
        retry_after=seconds,
        limit=refusal.by,
    )


def join_limit_check(*, event_id: int, user_id: int, client: JoinClient) -> None:
    """Counts a join attempt (or a challenge fetch); 429 ``too_many_attempts`` over a limit."""
    refusal = join_attempt(event_id=event_id, user_id=user_id, device=client.device, address=client.address)
    if refusal is not None:
        raise _join_refused(refusal)


_LIMIT_SOURCES = {"account": _lazy("account"), "device": _lazy("device"), "address": _lazy("network address")}


def queue_join(
    *, event_id: int, user_id: int, solution: str | None = None, client: JoinClient | None = None
) -> tuple[QueueAnswer, EventSettings, bool]:
    """Puts the user in line (idempotent: a second join keeps the first place).

    Joining before sales open is allowed: the order among early arrivals is drawn at
    the opening. Returns the answer, the event settings and whether this call joined.

    Refusals besides sold out and closed: 429 ``too_many_attempts`` (the limits per
    account, device and address), 403 ``removed_from_queue`` (staff took the buyer off
    this line), and, while the event asks for proof-of-work, the ``pow_*`` codes
    (events.services.proof_of_work): a newcomer needs a solution, spent by this join.
    With the event's ``review_threshold`` on, a join can answer "review": this account
    and the others from its address or device wait for staff (the place kept)."""
    event = event_for_queue(event_id)
    if event.sales_closed(int(time.time() * 1000)):
        raise DomainError("sales_closed", _("Sales for this event are closed."), status=409)
    client = client or JoinClient()
    verified = None
    if event.pow_difficulty and solution:
        verified = proof_of_work.solution_verify(payload=solution, event_id=event_id, user_id=user_id)
    try:
        entry, newly_joined = line_join(
            event_id=event_id,
            user_id=user_id,
            sales_open_at_ms=event.sales_open_at_ms,
            pow_required=bool(event.pow_difficulty),
            pow_marker=EventKeys(event_id).pow_used(verified.marker) if verified else None,
            pow_ttl_ms=verified.ttl_ms if verified else 0,
            limits=limit_spec(
                event_id=event_id, user_id=user_id, device=client.device, address=client.address
            ),
            review_threshold=event.review_threshold,
        )
    except JoinLimited as limited:
        raise _join_refused(limited.refusal) from None
    if entry.state == "sold_out":
        raise sold_out_refusal(event_id)
    if entry.state in _JOIN_REFUSALS:
        raise _JOIN_REFUSALS[entry.state]()
    if (
        verified
        and newly_joined
        and proof_of_work.too_fast(solve_ms=verified.solve_ms, difficulty=event.pow_difficulty)
    ):
        fast_join_note(event_id=event_id, user_id=user_id, solve_ms=verified.solve_ms)
    return _exact_answer(entry, event_id=event_id, user_id=user_id), event, newly_joined


def sold_out_refusal(event_id: int) -> DomainError:
    """A join's answer after the sell-out (409 ``sold_out``, with the event's waiting list),
    in the active language."""
    refusal = DomainError(
        "sold_out",
        _(
            "All seats of this event are sold. Join its waiting list: seats that come back are "
            "offered to the people on it, in the order they joined."
        ),
        status=409,
    )
    refusal.extra["waiting_list"] = f"/api/events/{event_id}/waiting-list/"
    return refusal


def queue_join_refusal(*, event_id: int, user_id: int, token_expires_at: float) -> tuple[dict[str, Any], int]:
    """nginx's question before it refuses a buyer's joins itself after the sell-out
    (``deploy/nginx/queue_edge.js``): would ``queue_join`` refuse this user's join as sold
    out right now? Returns the answer and how many seconds nginx may keep it (0: not at
    all): ``{"refusable": true, "refusals": {<language>: <the 409 body as JSON text>}}``
    for QUEUE_EDGE_SECONDS, never past the expiry of the token it was asked with, or
    ``{"refusable": false}`` (a pass, blocked, held for review, not sold out, sales
    closed). Asking counts as a sign of life of a buyer in line, as a join does, so a
    buyer whose joins nginx refuses is still seen by the app every QUEUE_EDGE_SECONDS.
    404 ``not_found`` for an unknown event."""
    event = event_for_queue(event_id)
    lifetime = min(settings.QUEUE_EDGE_SECONDS, int(token_expires_at - time.time()))
    refusable = line_join_refusable(event_id=event_id, user_id=user_id)
    if not refusable or lifetime < 1 or event.sales_closed(int(time.time() * 1000)):
        return {"refusable": False}, 0
    refusals = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            refusal = sold_out_refusal(event_id)
            refusals[language] = json.dumps(
                error_body(refusal.code, refusal.detail, **refusal.extra), **COMPACT_JSON
            )
    return {"refusable": True, "refusals": refusals}, lifetime


_JOIN_REFUSALS: dict[str, Any] = {
    "blocked": lambda: DomainError(
        "removed_from_queue", _("The organiser has removed you from this waiting room."), status=403
    ),
    "pow_required": lambda: DomainError(
        "pow_required",
        _(
            "This sale asks your browser to solve a short puzzle before joining. Please turn on JavaScript "
            "and try again (programs: see GET /api/events/ID/queue/challenge/)."
        ),
        status=400,
    ),
    "pow_replayed": lambda: DomainError(
        "pow_replayed", _("This proof-of-work answer has already been used. Please try again."), status=400
    ),
}


def _not_in_queue() -> DomainError:
    return DomainError("not_in_queue", _("You are not in the waiting room of this event."), status=404)


def queue_status_get(
    *, event_id: int, user_id: int, ticket: str | None = None
) -> tuple[QueueAnswer, EventSettings]:
    """The user's place in line: from the cursor when ``ticket`` allows it, else exact.
    404 ``not_in_queue`` when the user is not in line; a bad ticket is refused (401/403,
    see ``events.queue_tickets``)."""
    event = event_for_queue(event_id)
    if ticket:
        claims = queue_ticket_verify(ticket, event_id=event_id, user_id=user_id, now_s=_now_s())
        answer = _answer_from_cursor(claims, ticket=ticket)
        if answer is not None:
            return answer, event
    count_queue_status("exact")
    entry = line_status(event_id=event_id, user_id=user_id)
    if entry.state == "none":
        raise _not_in_queue()
    return _exact_answer(entry, event_id=event_id, user_id=user_id), event


def queue_status_from_ticket(
    *, event_id: int, ticket: str, user_id: int | None = None
) -> tuple[QueueAnswer, EventSettings] | None:
    """For a poll carrying a queue ticket: the estimate when the ticket allows one, else
    None (the caller then authenticates the request the usual way and asks
    ``queue_status_get``). Without ``user_id`` (the waiting-room page, which sends no
    bearer token) the ticket's signature stands for the buyer: it can only ever yield
    "still waiting". A bad ticket raises as in ``queue_status_get``."""
    event = event_for_queue(event_id)
    claims = queue_ticket_verify(ticket, event_id=event_id, user_id=user_id, now_s=_now_s())
    answer = _answer_from_cursor(claims, ticket=ticket)
    return (answer, event) if answer is not None else None


def _answer_from_cursor(claims: QueueTicket, *, ticket: str) -> QueueAnswer | None:
    now_s = _now_s()
    if now_s - claims.issued_at >= settings.QUEUE_TICKET_RECHECK_SECONDS:
        return None
    pulse = pulse_get(claims.event_id)
    if claims.arrival <= pulse.serving or (claims.preopen and pulse.shuffled):
        return None
    heartbeat_note(event_id=claims.event_id, user_id=claims.user_id)
    count_queue_status("cursor")
    if claims.seen_at != now_s:
        # Seen now: nginx may answer this buyer's next polls for QUEUE_EDGE_SECONDS.
        ticket = queue_ticket_sign(dataclasses.replace(claims, seen_at=now_s))
    ahead = estimated_ahead(arrival=claims.arrival, pulse=pulse)
    return QueueAnswer(
        state="sold_out" if pulse.sold_out else "waiting",
        position=ahead + 1,
        ahead=ahead,
        eta_seconds=None if pulse.sold_out else eta_seconds(ahead=ahead, rate=pulse.admitted_per_second),
        pass_expires_at_ms=None,
        estimated=True,
        ticket=ticket,
        as_of_ms=pulse.now_ms,
    )


def estimated_ahead(*, arrival: int, pulse: Pulse) -> int:
    """People ahead of ``arrival`` (beyond the cursor): the arrival numbers between the
    cursor and it, times the share of the numbers beyond the cursor still in line (the
    rest left or were never used). Exact when nobody left; never more than the line."""
    beyond_cursor = max(1, pulse.last_arrival - pulse.serving)
    share_in_line = min(1.0, pulse.waiting / beyond_cursor)
    ahead = round((arrival - pulse.serving - 1) * share_in_line)
    return max(0, min(ahead, pulse.waiting - 1))


def queue_leave(*, event_id: int, user_id: int) -> None:
    """Leaves the line (or gives up an admission pass). Idempotent; no event check, so
    leaving never fails even for an event that was unpublished meanwhile. A ticket kept
    by the client after leaving still reads "waiting" until its next exact check."""
    line_leave(event_id=event_id, user_id=user_id)


def queue_cursor_get(*, event_id: int) -> dict[str, Any]:
    """The public serving cursor (same for everyone, cacheable for a second): lets a
    client with a ticket see the line move, and staff screens follow it."""
    event = event_for_queue(event_id)
    pulse = pulse_get(event_id)
    return {
        "event": event_id,
        "serving": pulse.serving,
        "waiting": pulse.waiting,
        "admitted_per_second": pulse.admitted_per_second,
        "sold_out": pulse.sold_out,
        "paused": pulse.paused,
        "updated_at": iso_from_ms(pulse.now_ms),
        # What nginx needs to answer a poll from behind the cursor exactly as the app
        # would (deploy/nginx/queue_edge.js): the estimate's inputs and the poll rule.
        "last_arrival": pulse.last_arrival,
        "shuffled": pulse.shuffled,
        "sales_open_at": event.sales_open_at_iso,
        "edge": {
            # The two moments in ms, so nginx never parses a date: updated_at, sales_open_at.
            "as_of_ms": pulse.now_ms,
            "sales_open_at_ms": event.sales_open_at_ms,
            "edge_seconds": settings.QUEUE_EDGE_SECONDS,
            "ticket_recheck_seconds": settings.QUEUE_TICKET_RECHECK_SECONDS,
            "poll_min_ms": POLL_MIN_MS,
            "poll_max_ms": settings.QUEUE_POLL_MAX_MS,
            "poll_ms_per_person_ahead": POLL_MS_PER_PERSON_AHEAD,
            "user_id_claim": jwt_settings.USER_ID_CLAIM,
            # What nginx needs to refuse a join after the sell-out as the app would: when
            # sales close, the key of its copies of each buyer's "refusable" (changes with
            # every admission, block or review hold), the languages and how they are picked.
            "sales_close_at_ms": event.sales_close_at_ms,
            "join_stamp": line_join_stamp(event_id=event_id),
            "languages": [code for code, _name in settings.LANGUAGES],
            "language_code": settings.LANGUAGE_CODE,
            "language_cookie": settings.LANGUAGE_COOKIE_NAME,
        },
    }


def poll_after_ms(answer: QueueAnswer, *, sales_open_at_ms: int, now_ms: int) -> int:
    """How long a client should wait before asking again.

    Near the front (few ahead, or a short ETA) and while admitted: every second. Far
    back: up to QUEUE_POLL_MAX_MS. Before the opening the order is not drawn yet, so
    polling faster than a quarter of the time left to the opening helps nobody."""
    poll_max = settings.QUEUE_POLL_MAX_MS
    if answer.state == "active":
        return POLL_MIN_MS
    if answer.state == "review":
        return POLL_REVIEW_MS
    if answer.state != "waiting":
        return poll_max
    interval = POLL_MIN_MS + max(answer.ahead or 0, 0) * POLL_MS_PER_PERSON_AHEAD
    if answer.eta_seconds is not None:
        # About four polls over the remaining wait.
        interval = min(interval, answer.eta_seconds * 1000 // 4)
    if now_ms < sales_open_at_ms:
        interval = max(interval, (sales_open_at_ms - now_ms) // 4)
    return int(min(max(interval, POLL_MIN_MS), poll_max))


def queue_answer_payload(answer: QueueAnswer, *, event: EventSettings) -> dict[str, Any]:
    """The queue status body of API.md, plus ``poll_after_ms``, ``sales_open_at``,
    ``estimated``, ``queue_ticket``, ``as_of`` and ``paused``."""
    waiting = answer.state == "waiting"
    return {
        "state": answer.state,
        "position": answer.position if waiting else None,
        "ahead": answer.ahead if waiting else None,
        "eta_seconds": answer.eta_seconds if waiting else None,
        "pass_expires_at": (
            iso_from_ms(answer.pass_expires_at_ms)
            if answer.state == "active" and answer.pass_expires_at_ms
            else None
        ),
        "poll_after_ms": poll_after_ms(
            answer, sales_open_at_ms=event.sales_open_at_ms, now_ms=int(time.time() * 1000)
        ),
        "sales_open_at": event.sales_open_at_iso,
        "estimated": answer.estimated,
        "queue_ticket": answer.ticket,
        "as_of": iso_from_ms(answer.as_of_ms),
        # Staff paused admission: the line stands still and every place is kept. Only
        # while waiting, and from the pulse the answer was made with (no extra read).
        "paused": waiting and pulse_get(event.id).paused,
    }
