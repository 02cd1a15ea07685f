"""The proof-of-work challenge a buyer solves before joining a waiting room that asks for
one (API.md "Waiting room"; events.services.proof_of_work)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

from events.services import proof_of_work
from events.services.join_clients import join_client
from events.services.waiting_room import event_for_queue, join_limit_check
from ticketing.errors import DomainError


class QueueChallengeApi(APIView):
    """An ALTCHA v2 challenge for this event and buyer: valid 5 minutes, single use.

    Solve it (the ALTCHA widget or `altcha.solve_challenge` in Python: find the counter
    whose iterated SHA-256 key starts with `parameters.keyPrefix`) and send the payload
    `base64(JSON {challenge, solution: {counter, derivedKey}})` as `altcha` in the join's
    body. Counts as a join attempt for the limits."""

    authentication_classes = [JWTStatelessUserAuthentication, SessionAuthentication]

    @extend_schema(
        operation_id="events_queue_challenge",
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="`{parameters: {algorithm, cost, keyLength, keyPrefix, keySignature, nonce, salt, "
                "expiresAt, data: {event, user, issued}}, signature}`",
            ),
            404: OpenApiResponse(description="`not_found`"),
            409: OpenApiResponse(description="`pow_not_required`: the event asks for no proof-of-work now."),
            429: OpenApiResponse(description="`too_many_attempts`"),
        },
    )
    def get(self, request: Request, event_id: int) -> Response:
        event = event_for_queue(event_id)
        if not event.pow_difficulty:
            raise DomainError(
                "pow_not_required",
                _("This waiting room asks for no proof-of-work now: just join."),
                status=409,
            )
        join_limit_check(event_id=event_id, user_id=request.user.id, client=join_client(request))
        challenge = proof_of_work.challenge_create(
            event_id=event_id, user_id=request.user.id, difficulty=event.pow_difficulty
        )
        return Response(challenge, headers={"Cache-Control": "private, no-store"})
