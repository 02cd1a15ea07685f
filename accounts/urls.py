from django.contrib.auth.views import LogoutView
from django.urls import path

from accounts.views import LoginPageView, SignupView

app_name = "accounts"
urlpatterns = [
    path("signup/", SignupView.as_view(), name="signup"),
    path("login/", LoginPageView.as_view(), name="login"),
    # POST only (Django 5): a log-out link cannot be triggered by a cross-site GET.
    path("logout/", LogoutView.as_view(), name="logout"),
]
