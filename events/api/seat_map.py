"""The live seat map (docs/API.md "Events"): ``GET /api/events/<id>/seats/``.

The second-hottest read of a rush: every admitted buyer's page re-checks it every two
seconds. A plain Django view rather than DRF (the same reason as the queue's fast lane):
an unchanged map is a 304 decided from the process's pulse with no Redis round trip,
and a changed one is bytes encoded once per version and process, gzip-compressed once
when the client accepts it. The body is the same for every buyer, so it is
``Cache-Control: public``: a proxy or CDN in front answers the crowd (deploy/nginx).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from events.api.catalogue import SeatOutputSerializer
from events.selectors import event_settings_get
from events.services.seat_map import seat_map_current
from ticketing.errors import error_response

CACHE_CONTROL = "public, max-age=1, stale-while-revalidate=1"


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2) over a comma-separated If-None-Match."""
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    return any(
        candidate.strip() == "*" or candidate.strip().removeprefix("W/") == wanted
        for candidate in header.split(",")
    )


def seat_map_endpoint(request: HttpRequest, event_id: int) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return error_response(
            "method_not_allowed",
            _('Method "%(method)s" not allowed.') % {"method": request.method},
            status=405,
            headers={"Allow": "GET, HEAD"},
        )
    if event_settings_get(event_id) is None:
        return error_response("not_found", _("Not found."), status=404)
    published = seat_map_current(event_id)
    headers = {"ETag": published.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if _etag_matches(request.META.get("HTTP_IF_NONE_MATCH", ""), published.etag):
        return HttpResponse(status=304, headers=headers)
    if "gzip" in request.META.get("HTTP_ACCEPT_ENCODING", ""):
        response = HttpResponse(published.gzipped, content_type="application/json", headers=headers)
        response["Content-Encoding"] = "gzip"
        return response
    return HttpResponse(published.body, content_type="application/json", headers=headers)


class SeatMapApi(APIView):
    """Documents ``seat_map_endpoint`` in the OpenAPI schema (drf-spectacular reads DRF
    views); the endpoint itself answers without DRF."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema_serializer(component_name="SeatMap")
    class OutputSerializer(serializers.Serializer):
        event = serializers.IntegerField()
        version = serializers.IntegerField(help_text="Moves on every change of a seat's state.")
        seats = SeatOutputSerializer(many=True)

    @extend_schema(
        responses={
            200: OutputSerializer,
            304: OpenApiResponse(description="Unchanged since the ETag sent in If-None-Match."),
            404: OpenApiResponse(description="`not_found`: unknown event."),
        },
        operation_id="events_seats",
    )
    def get(self, request: Request, event_id: int) -> HttpResponse:  # pragma: no cover  (documentation only)
        return seat_map_endpoint(request._request, event_id)


seat_map_endpoint.cls = SeatMapApi  # type: ignore[attr-defined]
seat_map_endpoint.initkwargs = {}  # type: ignore[attr-defined]
