from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from events.api.urls import hot_urlpatterns
from ticketing import schema  # noqa: F401  (registers OpenAPI extensions)
from ticketing.health import healthz

api_patterns = [
    path("", include("events.api.urls")),
    path("", include("booking.api.urls")),
    path("auth/", include("accounts.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

# Django tries the patterns in order: the rush's two hot reads (the waiting-room poll and
# the seat map) come first, unnested (measured: 29 -> 7 µs to resolve the poll).
urlpatterns = [
    *hot_urlpatterns,
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
