"""Catalogue pages: home (on sale and upcoming) and event detail with its seat map."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from booking.waiting_list_views import waiting_list_link
from events import selectors
from events.models import EventStatus
from events.services.seat_map import seat_map_current
from events.templatetags.money import won, won_amount

# Seat grades get colours in the order the map first shows them (static/css/booking.css
# and site.css: .tone-1 … .tone-6); a seventh grade starts over at the first colour.
GRADE_TONES = 6


@dataclass
class SectionView:
    """One section of a seat map as the pages draw it: its rows of seats, its grade and
    price range for the heading and the legend ("VIP · 99,000 KRW"), the colour of its
    grade, and how many of its seats are free."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    grades: list[str] = field(default_factory=list)
    prices: set[Decimal] = field(default_factory=set)
    tone: int = 1
    seats_total: int = 0
    seats_left: int = 0

    @property
    def summary(self) -> str:
        if not self.prices:
            return " / ".join(self.grades)
        low, high = min(self.prices), max(self.prices)
        price = won(low) if low == high else f"{won_amount(low)}\u2013{won(high)}"
        return " · ".join([*self.grades[:1], price]) if len(self.grades) == 1 else price


def seat_sections(seats: list[dict[str, Any]], *, mine: set[int] | None = None) -> dict[str, SectionView]:
    """Seat-map entries grouped by section and row; ``mine`` marks the buyer's own holds
    (seat picker). Sections come in the order they were made (their first seat id): the
    pages draw the stage above the first, so staff list the front section first (the
    seat map's API keeps its own order, by name). Each seat gets the colour of its grade
    (``tone``), given in that order too."""
    sections: dict[str, SectionView] = {}
    first_ids: dict[str, int] = {}
    for seat in seats:
        section = sections.setdefault(seat["section"], SectionView())
        first_ids[seat["section"]] = min(first_ids.get(seat["section"], seat["id"]), seat["id"])
        view = {**seat, "mine": seat["id"] in mine} if mine is not None else {**seat}
        section.rows.setdefault(seat["row"], []).append(view)
        section.seats_total += 1
        section.seats_left += seat.get("status") == "available"
        if seat.get("grade") and seat["grade"] not in section.grades:
            section.grades.append(seat["grade"])
        if seat.get("price") is not None:
            section.prices.add(Decimal(str(seat["price"])))
    ordered = dict(sorted(sections.items(), key=lambda item: first_ids[item[0]]))
    tones: dict[str, int] = {}
    for name, section in ordered.items():
        for row in section.rows.values():
            for view in row:
                grade = view.get("grade") or name
                view["tone"] = tones.setdefault(grade, len(tones) % GRADE_TONES + 1)
        section.tone = tones.get(section.grades[0] if section.grades else name, 1)
    return ordered


def home(request: HttpRequest) -> HttpResponse:
    events = [(event, selectors.event_status(event)) for event in selectors.events_for_catalogue()]
    return render(
        request,
        "events/home.html",
        {
            # Sold-out events stay in the "on sale now" list (marked sold out) until sales close.
            "on_sale": [
                event for event, status in events if status in (EventStatus.ON_SALE, EventStatus.SOLD_OUT)
            ],
            "upcoming": [event for event, status in events if status == EventStatus.SCHEDULED],
            "statuses": dict((event.pk, status) for event, status in events),
        },
    )


def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    event = selectors.event_detail_get(event_id)
    if event is None:
        raise Http404
    sections = seat_sections(seat_map_current(event_id).seats())
    status = selectors.event_status(event)
    return render(
        request,
        "events/event_detail.html",
        {
            "event": event,
            "status": status,
            "sections": sections,
            "waiting_list": waiting_list_link(event=event, user=request.user, status=status),
        },
    )
