"""Queue tickets: what a buyer's client keeps while waiting, so that a status poll from
behind the serving cursor can be answered without asking Redis where the buyer stands.

A ticket says "user U is in line for event E with arrival number N (pre-opening or not),
as of time T (when the line itself was last read), last seen by us at time S", signed with HMAC-SHA256 under ``QUEUE_TICKET_KEY`` (derived from
SECRET_KEY unless set). HMAC rather than a public-key signature: only our own web
servers issue and check tickets, they share the key like they share SECRET_KEY, and an
HMAC check costs about a microsecond on a path polled thousands of times a second.

A ticket is never a way in: it only lets a poll from behind the cursor be answered
"still waiting" with an estimate; the exact Lua step stays the only way to a pass.
Format (URL- and header-safe):
``v2.<event>.<user>.<arrival>.<preopen>.<issued>.<seen>.<mac>``, the MAC in unpadded
base64url over everything before it.

``seen`` is for nginx, which answers such polls itself (``deploy/nginx/queue_edge.js``,
checking the same MAC): it answers only while ``seen`` is recent, so a buyer who keeps
polling reaches the app, which notes them present and signs a newer ``seen``, at least
every QUEUE_EDGE_SECONDS (the silent-waiter rule needs that). The app re-signs it on every
answer from the cursor; ``issued`` moves only with the exact Lua step.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.utils.translation import gettext as _

from ticketing.errors import DomainError

VERSION = "v2"
MAC_BYTES = 16  # 128 bits: forging one is out of reach; keeps the header short


@dataclass(frozen=True)
class QueueTicket:
    event_id: int
    user_id: int
    arrival: int  # the arrival number (score in the line) when the ticket was issued
    preopen: bool  # the opening shuffle will re-deal that number
    issued_at: int  # Unix seconds (web server clock) of the exact step that issued it
    seen_at: int | None = None  # Unix seconds the app last answered with it (issued_at if None)


@cache
def _keyed_hmac(secret: str) -> hmac.HMAC:
    """An HMAC already keyed (derived from the setting): each MAC is a copy of it, which
    skips the key schedule on a path checked thousands of times a second."""
    return hmac.new(hashlib.sha256(b"queue-ticket:" + secret.encode()).digest(), digestmod=hashlib.sha256)


def _mac(body: str) -> str:
    mac = _keyed_hmac(settings.QUEUE_TICKET_KEY).copy()
    mac.update(body.encode())
    return base64.urlsafe_b64encode(mac.digest()[:MAC_BYTES]).rstrip(b"=").decode()


def queue_ticket_sign(ticket: QueueTicket) -> str:
    body = (
        f"{VERSION}.{ticket.event_id}.{ticket.user_id}.{ticket.arrival}."
        f"{int(ticket.preopen)}.{ticket.issued_at}.{ticket.issued_at if ticket.seen_at is None else ticket.seen_at}"
    )
    return f"{body}.{_mac(body)}"


def _invalid() -> DomainError:
    return DomainError(
        "queue_ticket_invalid",
        _("This queue ticket is not valid. Ask for your status without it to get a new one."),
        status=401,
    )


def queue_ticket_verify(text: str, *, event_id: int, user_id: int | None, now_s: int) -> QueueTicket:
    """The ticket's claims, if its signature holds, it is for this event (and this user,
    when the caller is authenticated) and it is not older than QUEUE_TICKET_MAX_AGE_SECONDS.

    401 ``queue_ticket_invalid`` (malformed, forged or edited), 401 ``queue_ticket_expired``,
    403 ``queue_ticket_mismatch`` (another event's or another user's ticket)."""
    body, _sep, mac = text.strip().rpartition(".")
    parts = body.split(".")
    if len(parts) != 7 or parts[0] != VERSION or not hmac.compare_digest(mac, _mac(body)):
        raise _invalid()
    try:
        ticket = QueueTicket(
            event_id=int(parts[1]),
            user_id=int(parts[2]),
            arrival=int(parts[3]),
            preopen=parts[4] == "1",
            issued_at=int(parts[5]),
            seen_at=int(parts[6]),
        )
    except ValueError:
        raise _invalid() from None
    if ticket.event_id != int(event_id) or (user_id is not None and ticket.user_id != int(user_id)):
        raise DomainError(
            "queue_ticket_mismatch", _("This queue ticket belongs to another event or buyer."), status=403
        )
    if now_s - ticket.issued_at > settings.QUEUE_TICKET_MAX_AGE_SECONDS:
        raise DomainError(
            "queue_ticket_expired",
            _("This queue ticket has expired. Ask for your status without it to get a new one."),
            status=401,
        )
    return ticket
