"""The baseline for ``make bench``: the cheapest JSON answer Django can give on the same
server, so that our endpoints are reported as a ratio of it (the machine is noisy).
Mounted only when BENCH_ENDPOINTS is on."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def bare_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})
