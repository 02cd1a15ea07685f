"""``/api/auth/``: register, JWT obtain/refresh, logout, me (API.md "Auth")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.login_guard import LoginThrottled, client_ip, login_attempt_check
from accounts.selectors import user_get
from accounts.services import user_logout, user_register

TAGS = ["auth"]


@extend_schema_serializer(component_name="AuthError")
class ErrorSerializer(serializers.Serializer):
    """The error body of API.md, for the schema only."""

    code = serializers.CharField()
    detail = serializers.CharField()


@extend_schema_serializer(component_name="AuthValidationError")
class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


UNAUTHENTICATED = OpenApiResponse(ErrorSerializer, description="Missing, invalid or expired token.")
THROTTLED = OpenApiResponse(ErrorSerializer, description="Too many attempts; see `Retry-After`.")
INVALID = OpenApiResponse(ValidationErrorSerializer, description="`code: invalid`, field errors in `errors`.")


class RegisterRateThrottle(ScopedRateThrottle):
    """The ``register`` rate, keyed by the same client address as the login guard."""

    def get_ident(self, request: Request) -> str:
        return client_ip(request) or ""


class RegisterApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (RegisterRateThrottle,)
    throttle_scope = "register"

    @extend_schema_serializer(component_name="RegisterInput")
    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(
            write_only=True, trim_whitespace=False, style={"input_type": "password"}
        )
        name = serializers.CharField(max_length=150)

    @extend_schema_serializer(component_name="RegisterOutput")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        email = serializers.EmailField()
        name = serializers.CharField()

    @extend_schema(
        tags=TAGS,
        summary="Create an account",
        request=InputSerializer,
        responses={201: OutputSerializer, 400: INVALID, 429: THROTTLED},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = user_register(**serializer.validated_data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from exc
        return Response(self.OutputSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenObtainApi(TokenObtainPairView):
    """simplejwt's obtain-pair view behind the brute-force guard. The password itself is
    checked by ``authenticate()``, i.e. by ``ThrottledModelBackend``, which counts the
    failures; this view only turns a lock-out into 429 + ``Retry-After``."""

    @extend_schema_serializer(component_name="TokenObtainInput")
    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        password = serializers.CharField(write_only=True, style={"input_type": "password"})

    @extend_schema_serializer(component_name="TokenPair")
    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField()

    @extend_schema(
        tags=TAGS,
        summary="Log in: obtain an access and a refresh token",
        description=(
            "Failed attempts are counted per e-mail address and per client address; past the "
            "limit the endpoint answers 429 with `Retry-After`, without checking the password."
        ),
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: INVALID,
            401: OpenApiResponse(ErrorSerializer, description="Wrong e-mail address or password."),
            429: THROTTLED,
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = request.data if isinstance(request.data, Mapping) else {}
        email = data.get("email")
        try:
            login_attempt_check(email=email if isinstance(email, str) else None, ip=client_ip(request))
        except LoginThrottled as exc:
            raise exceptions.Throttled(wait=exc.retry_after, detail=exc.detail) from exc
        return super().post(request, *args, **kwargs)


class SingleUseRefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh with rotation, made single-use under concurrency.

    The stock serializer checks the blacklist, then blacklists with ``get_or_create``
    and ignores whether it was this request that created the row: N concurrent
    refreshes of one token all passed the check and all got a new pair (a stolen
    refresh token could be forked). Here the blacklist row is the arbiter: its token
    column is unique, so exactly one request creates it; every other one is refused."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])  # signature, expiry, not yet blacklisted
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        if user_id:
            # A deleted user raises DoesNotExist: TokenRefreshApi answers 401.
            user = get_user_model().objects.get(**{jwt_settings.USER_ID_FIELD: user_id})
            if not jwt_settings.USER_AUTHENTICATION_RULE(user):
                raise exceptions.AuthenticationFailed(
                    self.error_messages["no_active_account"], "no_active_account"
                )
        _blacklisted, created = refresh.blacklist()
        if not created:
            raise InvalidToken(_("Token is blacklisted"))
        data = {"access": str(refresh.access_token)}
        refresh.set_jti()
        refresh.set_exp()
        refresh.set_iat()
        refresh.outstand()
        data["refresh"] = str(refresh)
        return data


class TokenRefreshApi(TokenRefreshView):
    """Rotates: answers a new refresh token and blacklists the one sent (settings
    ``ROTATE_REFRESH_TOKENS``, ``BLACKLIST_AFTER_ROTATION``), so a refresh token works
    once, even when sent twice at the same instant; reusing it answers 401."""

    serializer_class = SingleUseRefreshSerializer

    @extend_schema_serializer(component_name="TokenRefreshInput")
    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField()

    @extend_schema(
        tags=TAGS,
        summary="Exchange a refresh token for a new pair",
        description="The refresh token sent is blacklisted: each refresh token works once.",
        request=InputSerializer,
        responses={200: TokenObtainApi.OutputSerializer, 400: INVALID, 401: UNAUTHENTICATED},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ObjectDoesNotExist as exc:  # the token's user has been deleted
            raise exceptions.AuthenticationFailed(
                _("No active account found for the given token."), code="no_active_account"
            ) from exc


class LogoutApi(APIView):
    @extend_schema_serializer(component_name="LogoutInput")
    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField()

    @extend_schema(
        tags=TAGS,
        summary="Log out: blacklist the refresh token",
        request=InputSerializer,
        responses={205: OpenApiResponse(description="Refresh token blacklisted."), 401: UNAUTHENTICATED},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user_logout(user_id=request.user.pk, refresh=serializer.validated_data["refresh"])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return Response(status=status.HTTP_205_RESET_CONTENT)


class MeApi(APIView):
    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        email = serializers.EmailField()
        name = serializers.CharField()
        is_staff = serializers.BooleanField()

    @extend_schema(
        tags=TAGS, summary="The logged-in user", responses={200: OutputSerializer, 401: UNAUTHENTICATED}
    )
    def get(self, request: Request) -> Response:
        # The JWT user is stateless (accounts.tokens): load the row for the profile.
        user = user_get(user_id=request.user.pk)
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(_("User not found."), code="user_not_found")
        return Response(self.OutputSerializer(user).data)
