"""Reads of users."""

from __future__ import annotations

from accounts.models import User


def user_get(*, user_id: int) -> User | None:
    return User.objects.filter(pk=user_id).first()


def user_email_taken(*, email: str, exclude_user_id: int | None = None) -> bool:
    """Whether another user already has this address, ignoring case."""
    users = User.objects.filter(email__iexact=email.strip())
    if exclude_user_id is not None:
        users = users.exclude(pk=exclude_user_id)
    return users.exists()
