from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ticketing import schema  # noqa: F401  (registers OpenAPI extensions)
from ticketing.health import healthz

# Django tries the patterns in order, so the rush's hot reads (the waiting-room poll, the
# seat map: events.api.urls lists them first) are reached with the fewest failed matches.
api_patterns = [
    path("", include("events.api.urls")),
    path("", include("booking.api.urls")),
    path("auth/", include("accounts.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("api/", include(api_patterns)),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("accounts.urls")),
    path("", include("booking.urls")),
    path("", include("events.urls")),
]

if settings.BENCH_ENDPOINTS:
    from ticketing.bench_views import bare_json

    urlpatterns.insert(0, path("bench/bare/", bare_json))

handler404 = "ticketing.error_pages.not_found"
handler500 = "ticketing.error_pages.server_error"
