"""Staff against macros: who looks suspicious in a waiting room, and taking a buyer off
the line or blocking an account (both audited in ``QueueModeration``).

A removed buyer is in the event's blocked set (all the accounts of one address can go
in one step), which the join script checks: they never
get back in line, so never get a pass. Blocking an account also deactivates it, ends its
sessions' refresh tokens, and removes it from every line of an event still on sale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from events.models import Event, QueueModeration
from events.services.proof_of_work import FAST_MS_PER_1000
from queueing.connection import get_redis
from queueing.holds import holds_release
from queueing.join_limits import fast_joins, shared_sources
from queueing.keys import EventKeys
from queueing.line import line_blocked, line_remove, review_release, review_state

if TYPE_CHECKING:
    from accounts.models import User

# An address or device is listed once this many accounts tried to join from it.
SHARED_SOURCE_MIN_ACCOUNTS = 5
# Accounts made this long before the opening (or after it) count as new.
NEW_ACCOUNT_MINUTES = 60
LISTED = 50
# How many of the busiest devices or addresses are looked at to find LISTED open ones.
SOURCES_SCANNED = 500


def queue_entries_remove(*, event: Event, user_ids: list[int], by: User, reason: str = "") -> int:
    """Takes the buyers off the event's line for good, in one step (all the accounts of
    one address at once); holds released; one audit row each. Returns how many were in
    line or admitted."""
    user_ids = sorted(set(user_ids))
    with transaction.atomic():
        QueueModeration.objects.bulk_create(
            [
                QueueModeration(
                    event=event, user_id=user_id, action=QueueModeration.Action.REMOVED, reason=reason, by=by
                )
                for user_id in user_ids
            ]
        )
        was_in = line_remove(event_id=event.pk, user_ids=user_ids) if user_ids else 0
    for user_id in user_ids:
        holds_release(event_id=event.pk, user_id=user_id)
    return was_in


def account_block(*, user: User, by: User, reason: str = "") -> int:
    """Deactivates the account, blacklists its refresh tokens and takes it off the line of
    every event whose sale has not closed; returns how many lines it was in."""
    events = list(Event.objects.filter(sales_close_at__gt=timezone.now()).values_list("pk", flat=True))
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        for token in OutstandingToken.objects.filter(user=user):
            BlacklistedToken.objects.get_or_create(token=token)
        QueueModeration.objects.create(user=user, action=QueueModeration.Action.BLOCKED, reason=reason, by=by)
        removed = sum(line_remove(event_id=event_id, user_ids=[user.pk]) for event_id in events)
    for event_id in events:
        holds_release(event_id=event_id, user_id=user.pk)
    return removed


def review_let_through(*, event: Event, kind: str, source: str, by: User, reason: str = "") -> int:
    """Staff let the accounts of one address or device (``kind``) through the automatic
    review: back in line where they were, the source never held again for this event;
    one audit row per account let through (exactly those the release moved, which it
    reports from the same atomic step). Returns how many went back in line."""
    with transaction.atomic():
        released = review_release(event_id=event.pk, kind=kind, source=source)
        QueueModeration.objects.bulk_create(
            [
                QueueModeration(
                    event=event,
                    user_id=user_id,
                    action=QueueModeration.Action.RELEASED,
                    reason=reason or f"{kind} {source}",
                    by=by,
                )
                for user_id in released
            ]
        )
    return len(released)


@dataclass(frozen=True)
class Suspect:
    id: int
    email: str
    name: str
    date_joined: Any
    is_active: bool
    in_line: bool
    removed: bool
    held: bool = False  # waiting for staff review (the automatic review of shared sources)


@dataclass(frozen=True)
class _Moderated:
    """The event's removed accounts and those held for review, read once per panel."""

    removed: set[int]
    held: set[int]

    @classmethod
    def read(cls, event: Event) -> _Moderated:
        return cls(removed=line_blocked(event_id=event.pk), held=review_state(event_id=event.pk).held)


def _suspects(event: Event, user_ids: list[int], moderated: _Moderated) -> list[Suspect]:
    if not user_ids:
        return []
    keys = EventKeys(event.pk)
    pipe = get_redis().pipeline(transaction=False)
    for user_id in user_ids:
        pipe.zscore(keys.waiting, user_id)
        pipe.zscore(keys.active, user_id)
    scores = pipe.execute()
    in_line = {
        user_id for index, user_id in enumerate(user_ids) if scores[2 * index] or scores[2 * index + 1]
    }
    removed, held = moderated.removed, moderated.held
    users = get_user_model().objects.filter(pk__in=user_ids).order_by("date_joined")
    return [
        Suspect(
            u.pk, u.email, u.name, u.date_joined, u.is_active, u.pk in in_line, u.pk in removed, u.pk in held
        )
        for u in users
    ]


def _open_groups(event: Event, kind: str, moderated: _Moderated) -> list[dict[str, Any]]:
    """The devices or addresses with enough accounts that staff have not dealt with yet
    (an account removed from this line or blocked no longer counts), most first, with
    what the automatic review did with each ("held", "cleared" or None)."""
    sources = review_state(event_id=event.pk).sources
    # A source the automatic review holds is listed even below the usual bar.
    least = min(SHARED_SOURCE_MIN_ACCOUNTS, event.review_threshold or SHARED_SOURCE_MIN_ACCOUNTS)
    groups = []
    for found in shared_sources(event_id=event.pk, kind=kind, min_accounts=least, limit=SOURCES_SCANNED):
        suspects = _suspects(event, found.accounts, moderated)
        if sum(1 for s in suspects if s.is_active and not s.removed) >= least:
            groups.append(
                {
                    "source": found.source,
                    "accounts": suspects[:LISTED],
                    "review": sources.get(f"{kind}:{found.source}"),
                    "held": sum(1 for s in suspects if s.held),
                }
            )
        if len(groups) == LISTED:
            break
    return groups


def suspicious_get(*, event: Event) -> dict[str, Any]:
    """What the staff's "suspicious" panel shows: addresses and devices many accounts
    tried to join from, joins whose proof-of-work came back faster than honest devices
    manage, and accounts made shortly before the opening that are in line."""
    moderated = _Moderated.read(event)
    shared = {kind: _open_groups(event, kind, moderated) for kind in ("address", "device")}
    fast = fast_joins(event_id=event.pk, limit=LISTED)
    solve_ms = dict(fast)
    new_ids = list(
        get_user_model()
        .objects.filter(date_joined__gte=event.sales_open_at - timedelta(minutes=NEW_ACCOUNT_MINUTES))
        .order_by("-date_joined")
        .values_list("pk", flat=True)[: LISTED * 4]
    )
    new_in_line = [suspect for suspect in _suspects(event, new_ids, moderated) if suspect.in_line][:LISTED]
    return {
        "shared_addresses": shared["address"],
        "shared_devices": shared["device"],
        "fast_joins": [
            {"suspect": suspect, "solve_ms": solve_ms[suspect.id]}
            for suspect in _suspects(event, [user_id for user_id, _ in fast], moderated)
        ],
        "fast_ms_per_1000": FAST_MS_PER_1000,
        "new_accounts": new_in_line,
        "new_account_minutes": NEW_ACCOUNT_MINUTES,
        "min_accounts": SHARED_SOURCE_MIN_ACCOUNTS,
        "review_threshold": event.review_threshold,
    }
