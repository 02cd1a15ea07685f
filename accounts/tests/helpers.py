"""Helpers shared by the accounts tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import jwt
from django.conf import settings
from rest_framework.response import Response
from rest_framework.test import APIClient

PASSWORD = "correct horse battery staple"  # the user_factory default


def obtain_token(client: APIClient, email: str, password: str, ip: str = "10.0.0.1") -> Response:
    return client.post(
        "/api/auth/token/", {"email": email, "password": password}, format="json", REMOTE_ADDR=ip
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def signed_token(claims: dict[str, Any] | bytes, *, key: str | None = None, alg: str = "HS256") -> str:
    """A token signed the way simplejwt signs (HS256 under SIMPLE_JWT's key, its header),
    with these claims (or this raw payload): what a forger with the key would write."""
    key = settings.SIMPLE_JWT["SIGNING_KEY"] if key is None else key
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = claims if isinstance(claims, bytes) else json.dumps(claims, separators=(",", ":")).encode()
    body = _b64(payload)
    mac = (
        hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest() if alg == "HS256" else b""
    )
    return f"{head}.{body}.{_b64(mac)}"


def altered_tokens(issued: str) -> dict[str, str]:
    """Tokens made from an issued access token that simplejwt refuses, by name: forged
    (no key, a MAC that does not match) or signed with the key but invalid."""
    claims = token_claims(issued)
    now = int(time.time())
    head, body, mac = issued.split(".")
    other_user = signed_token({**claims, "user_id": str(int(claims["user_id"]) + 1)}).split(".")[1]
    without = {name: {k: v for k, v in claims.items() if k != name} for name in ("jti", "token_type")}
    return {
        "another key": signed_token(claims, key="another-key-" + "x" * 40),
        "another user, same MAC": f"{head}.{other_user}.{mac}",
        "alg none": signed_token(claims, alg="none"),
        "padded signature": f"{issued}==",
        "junk in the signature": f"{head}.{body}.{mac[:-2]}!!",
        "four segments": f"{issued}.{mac}",
        "two segments": f"{head}.{body}",
        "HS512 with the same key": _hs512(claims),
        "a refresh token": signed_token({**claims, "token_type": "refresh"}),
        "expired": signed_token({**claims, "exp": now - 1, "iat": now - 301}),
        "issued in the future": signed_token({**claims, "iat": now + 120}),
        "not before, later": signed_token({**claims, "nbf": now + 120}),
        "no jti": signed_token(without["jti"]),
        "no token type": signed_token(without["token_type"]),
        "payload not JSON": signed_token(b"not json"),
        "payload a list": signed_token(b"[1,2]"),
    }


def _hs512(claims: dict[str, Any]) -> str:
    with warnings.catch_warnings():  # the test key is short for SHA-512: no matter here
        warnings.simplefilter("ignore")
        return jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512")


def odd_signed_tokens(issued: str) -> dict[str, str]:
    """Tokens signed with the site's key but not shaped as the site issues them: only the
    key's holder could write one; what simplejwt makes of them is simplejwt's business."""
    claims = token_claims(issued)
    return {
        "an extra claim": signed_token({**claims, "role": "staff"}),
        "user id not a number": signed_token({**claims, "user_id": "abc"}),
        "user id an int": signed_token({**claims, "user_id": int(claims["user_id"])}),
        "exp as a string": signed_token({**claims, "exp": str(claims["exp"])}),
        "exp a float": signed_token({**claims, "exp": claims["exp"] + 0.5}),
    }
