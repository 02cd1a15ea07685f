"""Admin for the e-mail-login user, and the brute-force guard on the admin login."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm as DjangoAdminUserCreationForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.forms import AdminLoginForm
from accounts.login_guard import email_normalise
from accounts.models import User
from accounts.selectors import user_email_taken
from accounts.services import EMAIL_TAKEN_MESSAGE

# The admin login form refuses locked-out attempts with a message before the password is
# checked; the count itself happens in ThrottledModelBackend, as for every other log-in.
admin.site.login_form = AdminLoginForm


class _EmailFormMixin:
    """Stores the address lower-cased, as ``UserManager.create_user`` does, and refuses
    one that differs from an existing one only in case."""

    cleaned_data: dict
    instance: User

    def clean_email(self) -> str:
        email = email_normalise(self.cleaned_data["email"])
        if user_email_taken(email=email, exclude_user_id=self.instance.pk):
            raise ValidationError(EMAIL_TAKEN_MESSAGE, code="unique")
        return email


class UserCreationForm(_EmailFormMixin, DjangoAdminUserCreationForm):
    # Staff create users through the admin's ModelForm rather than the
    # ``user_register`` service: the admin needs the unusable-password option and the
    # permission fields, which self-registration must never offer.
    class Meta(DjangoAdminUserCreationForm.Meta):
        model = User
        fields = ("email", "name")
        field_classes = {}


class UserChangeForm(_EmailFormMixin, DjangoUserChangeForm):
    class Meta(DjangoUserChangeForm.Meta):
        model = User
        fields = "__all__"
        field_classes = {}


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("name",)}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "name", "usable_password", "password1", "password2"),
            },
        ),
    )
    list_display = ("email", "name", "is_staff", "is_active")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "name")
    ordering = ("email",)
