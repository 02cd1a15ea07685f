"""``accounts.tokens.OwnAccessTokens``: the quick check of access tokens on the waiting
room's hot path accepts only what simplejwt accepts, with the same user and expiry, and
leaves everything else to simplejwt, which then refuses it. (Through the waiting room's
lane: events/tests/test_queue_lane.py.)"""

from __future__ import annotations

import base64
import string
import time

import pytest
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from accounts.tests.helpers import altered_tokens, odd_signed_tokens, signed_token, token_claims
from accounts.tokens import OwnAccessTokens, VerifiedAccessTokens


def _simplejwt(token: str) -> tuple[int, float] | None:
    try:
        validated = JWTStatelessUserAuthentication().get_validated_token(token.encode())
    except InvalidToken:
        return None
    return int(validated["user_id"]), float(validated["exp"])


@pytest.fixture
def issued() -> str:
    return str(AccessToken.for_user(User(pk=4242, email="buyer@example.com")))


def test_a_token_the_site_issued_gives_the_same_user_and_expiry_as_simplejwt(issued: str) -> None:
    own = OwnAccessTokens()
    assert own.enabled
    assert own.user_id(issued.encode()) == _simplejwt(issued) == (4242, float(token_claims(issued)["exp"]))


def test_negative_control_the_forging_here_is_right_so_each_refusal_below_is_the_checks(issued: str) -> None:
    # The construction of the altered tokens below, with the site's own key and the issued
    # claims: accepted by both checks. So a refusal below comes from the check, not from a
    # test token that was broken anyway.
    rebuilt = signed_token(token_claims(issued))
    assert rebuilt == issued
    assert OwnAccessTokens().user_id(rebuilt.encode()) == _simplejwt(rebuilt) is not None


def test_every_altered_token_is_left_to_simplejwt_and_simplejwt_refuses_it(issued: str) -> None:
    own = OwnAccessTokens()
    for name, token in altered_tokens(issued).items():
        assert own.user_id(token.encode()) is None, name
        assert _simplejwt(token) is None, name


def test_a_token_signed_with_the_key_but_shaped_otherwise_is_left_to_simplejwt(issued: str) -> None:
    own = OwnAccessTokens()
    for name, token in odd_signed_tokens(issued).items():
        accepted = own.user_id(token.encode())
        assert accepted is None or name == "user id an int", name
    assert own.user_id(odd_signed_tokens(issued)["user id an int"].encode()) == _simplejwt(issued)


def test_no_single_character_change_is_accepted_unless_simplejwt_accepts_it_too(issued: str) -> None:
    own = OwnAccessTokens()
    for index in range(len(issued)):
        for replacement in "A_-0.=":
            token = issued[:index] + replacement + issued[index + 1 :]
            accepted = own.user_id(token.encode())
            if token != issued:
                assert accepted is None or accepted == _simplejwt(token), (index, replacement)


def test_another_spelling_of_the_same_mac_is_left_to_simplejwt(issued: str) -> None:
    """The last character of a 32-byte MAC in base64 carries two bits nobody reads: the
    three other spellings decode to the same MAC. simplejwt (PyJWT) refuses them, so the
    quick check must too (a random MAC made this a one-in-a-few failure of the test above)."""
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    value = alphabet.index(issued[-1])
    for unused in (1, 2, 3):
        token = issued[:-1] + alphabet[value ^ unused]
        assert base64.urlsafe_b64decode(token.split(".")[2] + "=") == base64.urlsafe_b64decode(
            issued.split(".")[2] + "="
        )
        assert _simplejwt(token) is None
        assert OwnAccessTokens().user_id(token.encode()) is None, token


@pytest.mark.parametrize(
    "changed", [{"AUDIENCE": "tickets"}, {"ISSUER": "us"}, {"ALGORITHM": "HS512"}, {"USER_ID_CLAIM": "id"}]
)
def test_off_unless_the_settings_are_simplejwts_hs256_defaults(settings, issued: str, changed: dict) -> None:
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, **changed}  # simplejwt reloads its settings
    assert OwnAccessTokens().user_id(issued.encode()) is None


def test_the_per_process_cache_in_front_refuses_an_expired_token(issued: str) -> None:
    tokens = VerifiedAccessTokens()
    assert tokens.user_id(issued.encode()) == 4242
    expired = signed_token({**token_claims(issued), "exp": int(time.time()) - 1})
    assert tokens.user_id(expired.encode()) is None
