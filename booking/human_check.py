"""The human check before seat selection (optional per event, like the 보안문자 step of
Korean ticketing sites): an admitted buyer ticks ALTCHA's "I'm not a robot" box once per
pass; its answer is a small proof-of-work bound to the event, the buyer and this purpose
(events.services.proof_of_work). Passed, it is remembered in Redis until the pass ends;
until then, holding seats is refused with 403 ``human_check_required``.

It stops scripts that drive the plain HTTP API without running the check; a script that
runs a browser passes it, as it passes any checkbox captcha. It is keyboard- and
screen-reader-operable (a native checkbox), so there is no image or audio puzzle to
offer an alternative for.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from events.services import proof_of_work
from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import pass_expires_at_ms
from ticketing.errors import DomainError

PURPOSE = "human"
# About a quarter of a second in a desktop browser, a second on a phone: long enough to
# cost a script farm, short enough to be a tick.
DIFFICULTY = 20_000


def human_check_passed(*, event_id: int, user_id: int) -> bool:
    """Passed during the user's current pass: the mark names the pass it was made in (its
    expiry), so a later pass (after leaving, or a new admission) asks again."""
    keys = EventKeys(event_id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.get(keys.human(user_id))
    pipe.zscore(keys.active, int(user_id))
    mark, pass_ms = pipe.execute()
    return mark is not None and pass_ms is not None and int(mark) == int(float(pass_ms))


def human_check_challenge(*, event_id: int, user_id: int) -> dict[str, Any]:
    return proof_of_work.challenge_create(
        event_id=event_id, user_id=user_id, difficulty=DIFFICULTY, purpose=PURPOSE
    )


def human_check_pass(*, event_id: int, user_id: int, payload: str) -> None:
    """Checks the answer and remembers it until the pass expires. 403 ``not_admitted``
    without a live pass; the ``pow_*`` refusals for a bad answer."""
    expires_ms = pass_expires_at_ms(event_id=event_id, user_id=user_id)
    if expires_ms is None:
        raise DomainError(
            "not_admitted",
            _("You have no valid pass for this event. Please join the waiting room."),
            status=403,
        )
    proof_of_work.solution_verify(payload=payload, event_id=event_id, user_id=user_id, purpose=PURPOSE)
    get_redis().set(EventKeys(event_id).human(user_id), str(expires_ms), pxat=expires_ms)


def human_check_required_error() -> DomainError:
    return DomainError(
        "human_check_required",
        _("Please confirm you are not a robot before choosing seats."),
        status=403,
    )
