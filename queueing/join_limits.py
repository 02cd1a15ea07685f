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


def join_attempt(
    *, event_id: int, user_id: int, device: str | None, address: str | None
) -> JoinRefusal | None:
    """Counts one join attempt; a refusal when it is over one of the limits (not counted)."""
    keys = EventKeys(event_id)
    account_limit = settings.QUEUE_JOIN_LIMIT_ACCOUNT
    device_limit = settings.QUEUE_JOIN_LIMIT_DEVICE if device else 0
    address_limit = settings.QUEUE_JOIN_LIMIT_ADDRESS if address else 0
    if not (account_limit or device_limit or address_limit):
        return None
    device, address = device or "-", address or "-"
    refused_by, retry_after_ms = run_script(
        "join_limit",
        keys=[
            keys.join_attempts("account", str(user_id)),
            keys.join_attempts("device", device),
            keys.join_attempts("address", address),
            keys.accounts_of("device", device),
            keys.accounts_count("device"),
            keys.accounts_of("address", address),
            keys.accounts_count("address"),
        ],
        args=[
            settings.QUEUE_JOIN_WINDOW_SECONDS * 1000,
            account_limit,
            int(user_id),
            device_limit,
            device,
            address_limit,
            address,
            uuid.uuid4().hex,
        ],
    )
    refused_by = refused_by.decode() if isinstance(refused_by, bytes) else str(refused_by)
    return JoinRefusal(refused_by, int(retry_after_ms)) if refused_by else None


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
