"""Account pages: sign up, log in, log out (the last is Django's ``LogoutView``).

"Get tickets" sends a signed-out buyer to the sign-up page, which also carries a compact
log-in form for returning buyers; either one goes on to ``next`` (the event's waiting
room) and, when that is a waiting room, marks the session so that the waiting room joins
its line on arrival without another press (``events.views.waiting_room``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, RedirectURLMixin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView

from accounts.api.views import RegisterRateThrottle
from accounts.forms import LoginForm, SignupForm
from accounts.services import user_register
from events.views.waiting_room import join_on_arrival_mark, waiting_room_event


def _next_event_context(request: HttpRequest, next_url: str) -> dict[str, Any]:
    """The event whose waiting room ``next_url`` is (already checked as safe), for the
    pages' "Get tickets for …" line; empty for any other destination."""
    event = waiting_room_event(next_url) if next_url else None
    return {"next_event": event} if event is not None else {}


class LoginPageView(LoginView):
    authentication_form = LoginForm
    template_name = "accounts/login.html"

    def form_valid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_valid(form)  # logs in (a new session key, same data)
        join_on_arrival_mark(self.request, self.get_redirect_url())
        return response

    def form_invalid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_invalid(form)
        if form.retry_after is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(_next_event_context(self.request, self.get_redirect_url()))
        return context


@method_decorator([login_not_required, sensitive_post_parameters(), never_cache], name="dispatch")
class SignupView(RedirectURLMixin, FormView):
    """Creates the account, logs the new user in and sends them to ``next`` (when it
    is a safe URL on this site) or to ``LOGIN_REDIRECT_URL``. The page also shows the
    log-in form (posting to the log-in page) for buyers who already have an account."""

    form_class = SignupForm
    template_name = "accounts/signup.html"
    throttle_scope = "register"  # the API's sign-up rate per client address, shared

    def form_valid(self, form: SignupForm) -> HttpResponse:  # type: ignore[override]
        throttle = RegisterRateThrottle()
        if not throttle.allow_request(self.request, self):
            form.add_error(
                None, _("Too many accounts were made from this network in the last hour. Please try later.")
            )
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = str(int(throttle.wait() or 60))
            return response
        try:
            user = user_register(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                name=form.cleaned_data["name"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)  # keyed by field name: shown next to each input
            return self.form_invalid(form)
        login(self.request, user)
        join_on_arrival_mark(self.request, self.get_redirect_url())
        return super().form_valid(form)

    def get_default_redirect_url(self) -> str:
        return resolve_url(settings.LOGIN_REDIRECT_URL)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        next_url = self.get_redirect_url()
        context[self.redirect_field_name] = next_url
        # Its own ids (login_username, login_password): the sign-up form has id_password.
        login_form = LoginForm(self.request, auto_id="login_%s")
        login_form.fields["username"].widget.attrs.pop("autofocus", None)  # the sign-up form has it
        context["login_form"] = login_form
        context.update(_next_event_context(self.request, next_url))
        return context
