"""Writes of users and their tokens."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.login_guard import email_normalise
from accounts.models import User
from accounts.selectors import user_email_taken

EMAIL_TAKEN_MESSAGE = _("A user with this e-mail address already exists.")


def user_register(*, email: str, password: str, name: str) -> User:
    """Create a buyer account.

    Raises ``ValidationError`` keyed by field (``email``, ``password``, ``name``) for a
    malformed or already registered address (case-insensitive), a blank name, or a
    password the configured validators reject (too short, too common, ...).
    """
    user = User(email=email_normalise(email), name=name.strip())
    errors: dict[str, list[ValidationError]] = {}
    try:
        user.full_clean(exclude=["password"], validate_unique=False)
    except ValidationError as exc:
        errors.update(exc.error_dict)
    if "email" not in errors and user_email_taken(email=user.email):
        errors["email"] = [ValidationError(EMAIL_TAKEN_MESSAGE, code="unique")]
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        errors["password"] = exc.error_list
    if errors:
        raise ValidationError(errors)

    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        # Two sign-ups with the same address at once: the unique index decides.
        raise ValidationError({"email": [ValidationError(EMAIL_TAKEN_MESSAGE, code="unique")]}) from exc
    return user


def user_logout(*, user_id: int, refresh: str) -> None:
    """Blacklist the caller's refresh token so that it can no longer be refreshed.

    Raises ``TokenError`` when the token is malformed, expired, already blacklisted or
    belongs to another user. Access tokens already issued stay valid until they expire
    (``ACCESS_TOKEN_LIFETIME``): they are checked without a database query.
    """
    token = RefreshToken(refresh)  # type: ignore[arg-type]
    if str(token.payload.get(jwt_settings.USER_ID_CLAIM)) != str(user_id):
        raise TokenError(_("Token belongs to another user."))
    token.blacklist()
