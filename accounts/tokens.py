"""The stateless JWT user: hot endpoints (queue join/status, holds) authenticate from
the token alone, with no database query per request."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from functools import cached_property

from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt import settings as simplejwt_settings
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.tokens import AccessToken, Token


def _user_id_of(claim: object) -> int | None:
    """The user id a token names: an int, or the digit string simplejwt writes ("42")."""
    if type(claim) is int:
        return claim
    if isinstance(claim, str) and claim.isascii() and claim.isdigit():
        return int(claim)
    return None


class TicketingTokenUser(TokenUser):
    def __init__(self, token: Token) -> None:
        # A user id that is not a number (only a token signed with our key can carry one)
        # is refused while authenticating, as simplejwt refuses a missing one, not a 500
        # later in the view.
        if _user_id_of(token.get(api_settings.USER_ID_CLAIM)) is None:
            raise InvalidToken(_("Token contained no recognizable user identification"))
        super().__init__(token)

    @cached_property
    def id(self) -> int:  # type: ignore[override]
        return int(self.token["user_id"])

    @cached_property
    def pk(self) -> int:  # type: ignore[override]
        return self.id


_SEGMENT = re.compile(rb"[A-Za-z0-9_-]+")


def _b64url(segment: bytes) -> bytes:
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


class OwnAccessTokens:
    """Checks an access token exactly as this site issues them (HS256, simplejwt's own
    header and claims, nothing else) in about 20 µs, where simplejwt + PyJWT take about
    150: PyJWT checks every character of each segment in a Python generator and tries the
    HMAC key as a DER public key and as a certificate on every call. In a rush every
    newcomer's join is a token seen for the first time: a join through the lane went from
    764 to 532 µs of CPU (in process, alternating runs).

    It only ever accepts, never refuses: ``user_id`` returns the user and expiry of a
    token that simplejwt would accept too (same key, same header bytes, a valid MAC, the
    access type, a jti, iat not in the future, exp not passed, no other claim), and None
    for anything else, which then goes through simplejwt unchanged and is refused or
    accepted there. Off (always None) unless the settings are simplejwt's HS256 defaults."""

    _CLAIMS = frozenset({"token_type", "exp", "iat", "jti", "user_id"})

    def __init__(self) -> None:
        jwt_settings = simplejwt_settings.api_settings  # as of now (tests change settings)
        self.enabled = (
            jwt_settings.ALGORITHM == "HS256"
            and not jwt_settings.VERIFYING_KEY
            and jwt_settings.AUDIENCE is None
            and jwt_settings.ISSUER is None
            and jwt_settings.JWK_URL is None
            and tuple(jwt_settings.AUTH_TOKEN_CLASSES) == (AccessToken,)
            and (jwt_settings.TOKEN_TYPE_CLAIM, jwt_settings.JTI_CLAIM, jwt_settings.USER_ID_CLAIM)
            == ("token_type", "jti", "user_id")
        )
        if self.enabled:
            self._key = str(jwt_settings.SIGNING_KEY).encode()
            self._leeway = token_backend.get_leeway().total_seconds()
            # The header segment simplejwt writes, byte for byte (any other header: simplejwt).
            self._header = str(AccessToken()).encode().partition(b".")[0]

    def user_id(self, raw_token: bytes) -> tuple[int, float] | None:
        if not self.enabled:
            return None
        header, _dot, rest = raw_token.partition(b".")
        payload, dot, signature = rest.partition(b".")
        if header != self._header or not dot or b"." in signature:
            return None
        if not (_SEGMENT.fullmatch(payload) and _SEGMENT.fullmatch(signature)):
            return None
        mac = hmac.new(self._key, header + b"." + payload, hashlib.sha256).digest()
        # The segment as simplejwt writes this MAC, byte for byte: decoding the given one
        # instead would also take the spellings whose last character differs only in the
        # bits base64 leaves unused (the same MAC; PyJWT refuses them).
        if not hmac.compare_digest(base64.urlsafe_b64encode(mac).rstrip(b"="), signature):
            return None
        try:
            claims = json.loads(_b64url(payload))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(claims, dict) or claims.keys() != self._CLAIMS:
            return None
        user_id, exp, iat = _user_id_of(claims["user_id"]), claims["exp"], claims["iat"]
        if claims["token_type"] != AccessToken.token_type or not isinstance(claims["jti"], str):
            return None
        if user_id is None or type(exp) is not int or type(iat) is not int:
            return None
        now = time.time()
        if exp <= now - self._leeway or iat > now + self._leeway:
            return None
        return user_id, float(exp)


class VerifiedAccessTokens:
    """Remembers, per process, the access tokens whose signature and claims were already
    verified, so that a buyer polling the waiting room every second pays for the HMAC and
    PyJWT's input checks once per token rather than on every poll (measured: the larger
    part of a status poll's CPU time). Safe because the same bytes always verify the same
    way; the expiry is still checked on every use. Bounded: cleared when full."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._user_by_token: dict[bytes, tuple[int, float]] = {}
        self._max_entries = max_entries
        self._authentication = JWTStatelessUserAuthentication()
        self._own = OwnAccessTokens()

    def user_id(self, raw_token: bytes) -> int | None:
        verified = self.user_and_expiry(raw_token)
        return verified[0] if verified is not None else None

    def user_and_expiry(self, raw_token: bytes) -> tuple[int, float] | None:
        """(user id, expiry as a Unix time) of a valid access token, else None."""
        entry = self._user_by_token.get(raw_token)
        if entry is not None:
            if entry[1] > time.time():
                return entry
            del self._user_by_token[raw_token]
            return None
        own = self._own.user_id(raw_token)
        if own is not None:
            user_id, expires_at = own
        else:
            try:
                token = self._authentication.get_validated_token(raw_token)
                user_id = int(token[api_settings.USER_ID_CLAIM])
                expires_at = float(token["exp"])
            except (InvalidToken, TokenError, KeyError, TypeError, ValueError):
                return None
        if len(self._user_by_token) >= self._max_entries:
            self._user_by_token.clear()
        self._user_by_token[raw_token] = (user_id, expires_at)
        return user_id, expires_at


verified_access_tokens = VerifiedAccessTokens()
