"""Catalogue pages: home (on sale and upcoming) and event detail with its seat map."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from events import selectors
from events.models import EventStatus


def home(request: HttpRequest) -> HttpResponse:
    events = [(event, selectors.event_status(event)) for event in selectors.events_for_catalogue()]
    return render(
        request,
        "events/home.html",
        {
            "on_sale": [event for event, status in events if status in (EventStatus.ON_SALE, EventStatus.SOLD_OUT)],
            "upcoming": [event for event, status in events if status == EventStatus.SCHEDULED],
            "statuses": dict((event.pk, status) for event, status in events),
        },
    )


def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    event = selectors.event_detail_get(event_id)
    if event is None:
        raise Http404
    seat_map = selectors.seat_map_get(event_id)
    sections: dict[str, dict[str, list[dict]]] = {}
    for seat in seat_map.seats:
        sections.setdefault(seat["section"], {}).setdefault(seat["row"], []).append(seat)
    return render(
        request,
        "events/event_detail.html",
        {"event": event, "status": selectors.event_status(event), "sections": sections},
    )
