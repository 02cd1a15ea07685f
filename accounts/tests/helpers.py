"""Helpers shared by the accounts tests."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.test import APIClient

PASSWORD = "correct horse battery staple"  # the user_factory default


def obtain_token(client: APIClient, email: str, password: str, ip: str = "10.0.0.1") -> Response:
    return client.post(
        "/api/auth/token/", {"email": email, "password": password}, format="json", REMOTE_ADDR=ip
    )
