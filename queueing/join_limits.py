"""Sliding-window limits on join attempts per account, device and address, and the record
of which accounts tried from which device and address (``queueing/lua/join_limit.lua``).

Separate thresholds (``settings.QUEUE_JOIN_LIMIT_*``, 0 = off) because the three mean
different things: an account is one person, a device cookie one browser, an address may
be a whole office or a mobile carrier's NAT.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings

from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.scripts import run_script


@dataclass(frozen=True)
class JoinRefusal:
    by: str  # "account" | "device" | "address"
    retry_after_ms: int


class JoinLimited(Exception):
    """Raised by ``queueing.line.line_join`` for an attempt over a join limit."""

    def __init__(self, refusal: JoinRefusal) -> None:
        super().__init__(refusal.by)
        self.refusal = refusal


def limit_spec(
    *, event_id: int, user_id: int, device: str | None, address: str | None
) -> tuple[list[str], list[str | int]]:
    """The keys and arguments of ``lib/join_limit.lua`` for one attempt (a window of 0
    when every limit is off: the script then does nothing)."""
    keys = EventKeys(event_id)
    account_limit = settings.QUEUE_JOIN_LIMIT_ACCOUNT
    device_limit = settings.QUEUE_JOIN_LIMIT_DEVICE if device else 0
    address_limit = settings.QUEUE_JOIN_LIMIT_ADDRESS if address else 0
    window_ms = (
        settings.QUEUE_JOIN_WINDOW_SECONDS * 1000 if (account_limit or device_limit or address_limit) else 0
    )
    device, address = device or "-", address or "-"
    return (
        [
            keys.join_attempts("account", str(user_id)),
            keys.join_attempts("device", device),
            keys.join_attempts("address", address),
            keys.accounts_of("device", device),
            keys.accounts_count("device"),
            keys.accounts_of("address", address),
            keys.accounts_count("address"),
        ],
        [
            window_ms,
            account_limit,
            int(user_id),
            device_limit,
            device,
            address_limit,
            address,
            uuid.uuid4().hex,
        ],
    )


def join_attempt(
    *, event_id: int, user_id: int, device: str | None, address: str | None
) -> JoinRefusal | None:
    """Counts one attempt that is not a join (a challenge fetch); a refusal when it is
    over one of the limits (then not counted). Joins are counted by the join's own script."""
    limit_keys, limit_args = limit_spec(event_id=event_id, user_id=user_id, device=device, address=address)
    if not limit_args[0]:
        return None
    refused_by, retry_after_ms = run_script("join_limit", keys=limit_keys, args=limit_args)
    return JoinRefusal(str(refused_by), int(retry_after_ms)) if refused_by else None


@dataclass(frozen=True)
class SharedSource:
    kind: str  # "device" | "address"
    source: str
    accounts: list[int]


def shared_sources(*, event_id: int, kind: str, min_accounts: int, limit: int = 20) -> list[SharedSource]:
    """Devices or addresses from which at least ``min_accounts`` accounts tried to join,
    most accounts first, with the accounts."""
    keys = EventKeys(event_id)
    client = get_redis()
    top = client.zrevrangebyscore(keys.accounts_count(kind), "+inf", min_accounts, start=0, num=limit)
    found = []
    for raw in top:
        source = raw.decode() if isinstance(raw, bytes) else str(raw)
        members = client.smembers(keys.accounts_of(kind, source))
        found.append(SharedSource(kind, source, sorted(int(member) for member in members)))
    return found


def fast_join_note(*, event_id: int, user_id: int, solve_ms: int) -> None:
    """Records a join whose proof-of-work came back faster than honest devices solve it."""
    get_redis().zadd(EventKeys(event_id).fast_joins, {str(int(user_id)): int(solve_ms)})


def fast_joins(*, event_id: int, limit: int = 50) -> list[tuple[int, int]]:
    """(user id, ms the solution took), fastest first."""
    rows = get_redis().zrange(EventKeys(event_id).fast_joins, 0, limit - 1, withscores=True)
    return [(int(member), int(score)) for member, score in rows]
