"""Forms of the account pages and of the admin login."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.login_guard import LoginThrottled, client_ip, login_attempt_check


class LoginGuardFormMixin:
    """Refuses a log-in before the password is checked once ``accounts.login_guard`` has
    locked the e-mail or client address out, and says so. (The backend would refuse it
    too, but only as "wrong password".) Views answer 429 when ``retry_after`` is set."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    retry_after: int | None = None
    throttled_message = _("Too many failed log-in attempts. Please wait a few minutes and try again.")

    def clean(self) -> dict[str, Any]:
        try:
            login_attempt_check(email=self.cleaned_data.get("username"), ip=client_ip(self.request))
        except LoginThrottled as exc:
            self.retry_after = exc.retry_after
            raise ValidationError(self.throttled_message, code="throttled") from exc
        return super().clean()  # type: ignore[misc]


class LoginForm(LoginGuardFormMixin, AuthenticationForm):
    username = forms.EmailField(
        label=_("E-mail address"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The e-mail address or the password is not correct."),
    }


class AdminLoginForm(LoginGuardFormMixin, AdminAuthenticationForm):
    pass


class SignupForm(forms.Form):
    """Field names match the keyword arguments of ``accounts.services.user_register`` so
    that its field errors land next to the right input."""

    name = forms.CharField(
        label=_("Name"),
        max_length=150,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "name"}),
    )
    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password_confirm = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Enter the same password again, to catch typing mistakes."),
    )

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        password = cleaned_data.get("password")
        confirmation = cleaned_data.get("password_confirm")
        if password and confirmation and password != confirmation:
            self.add_error(
                "password_confirm",
                ValidationError(_("The two passwords do not match."), code="password_mismatch"),
            )
        return cleaned_data
