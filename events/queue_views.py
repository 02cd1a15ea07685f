"""Waiting-room and staff dashboard pages (being built)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def waiting_room(request: HttpRequest, event_id: int) -> HttpResponse:
    return HttpResponse("waiting room: coming soon")


def rush_dashboard(request: HttpRequest, event_id: int) -> HttpResponse:
    return HttpResponse("dashboard: coming soon")
