"""Staff admin for events and seats: bulk seat generation (sections by rows by seats
per row, grade and price per section), a seat list filtered by event and status, and the
read-only audit log of live-sale control changes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, QuerySet
from django.forms import formset_factory
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from events.models import Event, QueueModeration, RushControlChange, Seat
from events.services.catalogue import SectionSpec, seats_generate
from events.services.rush_control import rush_control_update

# One generation may not create more seats than this (a typo like 1000 rows would
# otherwise lock the seat table for a long while).
MAX_SEATS_PER_GENERATION = 100_000


class SeatBlockForm(forms.Form):
    rows = forms.IntegerField(label=_("Rows per section"), min_value=1, max_value=500, initial=10)
    seats_per_row = forms.IntegerField(label=_("Seats per row"), min_value=1, max_value=500, initial=20)


class SectionForm(forms.Form):
    name = forms.CharField(label=_("Section"), max_length=20)
    grade = forms.CharField(label=_("Grade"), max_length=20)
    price = forms.DecimalField(label=_("Price"), max_digits=10, decimal_places=2, min_value=Decimal("0"))


class BaseSectionFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        names = [form.cleaned_data["name"] for form in self.forms if form.cleaned_data]
        if len(names) != len(set(names)):
            raise forms.ValidationError(_("Each section name may appear only once."))


SectionFormSet = formset_factory(
    SectionForm, formset=BaseSectionFormSet, extra=4, min_num=1, validate_min=True, max_num=50
)

# The page's template (its texts reach the translation catalogue through makemessages).
GENERATE_SEATS_TEMPLATE = "admin/events/event/generate_seats.html"


def _parse_ids(raw: str) -> list[int]:
    return [int(part) for part in raw.split(",") if part.strip().isdigit()]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "venue",
        "sales_open_at",
        "sales_close_at",
        "is_published",
        "queue_capacity",
        "queue_pass_seconds",
        "seat_count",
        "staff_links",
    )
    # Date filters, not date_hierarchy: the latter needs MySQL's time zone tables
    # (CONVERT_TZ), which a stock MariaDB does not have loaded.
    list_filter = ("is_published", "sales_open_at")
    search_fields = ("title", "venue")
    readonly_fields = ("created_at", "updated_at")
    autocomplete_fields = ("door_staff",)
    actions = ["generate_seats_action"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if isinstance(db_field, models.DateTimeField) and field is not None:
            # The admin splits a date and time into two inputs under one caption that
            # labels neither (axe: "label", critical): each says what it is.
            name = capfirst(db_field.verbose_name)
            for widget, part in zip(field.widget.widgets, (gettext("Date:"), gettext("Time:")), strict=False):
                widget.attrs["aria-label"] = f"{name}, {part.rstrip(':')}"
        return field

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return super().get_queryset(request).annotate(seat_count=Count("seats"))

    @admin.display(description=_("seats"), ordering="seat_count")
    def seat_count(self, event: Event) -> int:
        return event.seat_count

    @admin.display(description=_("staff"))
    def staff_links(self, event: Event) -> str:
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a>',
            self._generate_url([event.pk]),
            gettext("Generate seats"),
            reverse("events:rush_dashboard", args=[event.pk]),
            gettext("Rush dashboard"),
            reverse("booking:scanner", args=[event.pk]),
            gettext("Door scanner"),
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "generate-seats/",
                self.admin_site.admin_view(self.generate_seats_view),
                name="events_event_generate_seats",
            ),
            *super().get_urls(),
        ]

    def _generate_url(self, event_ids: list[int]) -> str:
        query = urlencode({"ids": ",".join(str(pk) for pk in event_ids)})
        return f"{reverse('admin:events_event_generate_seats')}?{query}"

    @admin.action(description=_("Generate seats for the selected events…"))
    def generate_seats_action(self, request: HttpRequest, queryset: QuerySet[Event]) -> HttpResponseRedirect:
        return redirect(self._generate_url(list(queryset.values_list("pk", flat=True))))

    def generate_seats_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        ids = _parse_ids(source.get("ids", ""))
        events = list(self.get_queryset(request).filter(pk__in=ids).order_by("pk"))
        if not events:
            messages.error(request, gettext("Choose at least one event first."))
            return redirect("admin:events_event_changelist")

        if request.method == "POST":
            block_form = SeatBlockForm(request.POST)
            sections = SectionFormSet(request.POST, prefix="sections")
            if block_form.is_valid() and sections.is_valid():
                specs = [
                    SectionSpec(name=data["name"], grade=data["grade"], price=data["price"])
                    for data in sections.cleaned_data
                    if data
                ]
                rows, per_row = block_form.cleaned_data["rows"], block_form.cleaned_data["seats_per_row"]
                total = len(specs) * rows * per_row * len(events)
                if total > MAX_SEATS_PER_GENERATION:
                    block_form.add_error(
                        None,
                        gettext("That is %(total)s seats; at most %(max)s can be generated at once.")
                        % {"total": total, "max": MAX_SEATS_PER_GENERATION},
                    )
                else:
                    for event in events:
                        created = seats_generate(
                            event=event, sections=specs, rows=rows, seats_per_row=per_row
                        )
                        messages.success(
                            request,
                            ngettext(
                                "%(event)s: %(count)d seat created.",
                                "%(event)s: %(count)d seats created.",
                                created,
                            )
                            % {"event": event, "count": created},
                        )
                    return redirect("admin:events_event_changelist")
        else:
            block_form = SeatBlockForm()
            sections = SectionFormSet(
                prefix="sections", initial=[{"name": "A", "grade": "R", "price": "55000"}]
            )

        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Generate seats"),
            "events": events,
            "ids": ",".join(str(event.pk) for event in events),
            "block_form": block_form,
            "sections": sections,
        }
        return TemplateResponse(request, GENERATE_SEATS_TEMPLATE, context)

    def save_model(self, request: HttpRequest, obj: Event, form: forms.ModelForm, change: bool) -> None:
        """A capacity or pass-length edit here goes through the same path as the rush
        dashboard: applied to the live queue at once and audit-logged."""
        changed = set(form.changed_data) & {"queue_capacity", "queue_pass_seconds"}
        if change and changed:
            stored = Event.objects.get(pk=obj.pk)
            try:
                rush_control_update(
                    event=stored,
                    user=request.user,
                    capacity=obj.queue_capacity if "queue_capacity" in changed else None,
                    pass_seconds=obj.queue_pass_seconds if "queue_pass_seconds" in changed else None,
                )
            except RedisError:
                messages.warning(
                    request,
                    gettext(
                        "Saved, but the live queue could not be updated (Redis is unavailable). "
                        "Apply the change again from the rush dashboard once it is back."
                    ),
                )
        super().save_model(request, obj, form, change)


@admin.register(Seat)
class SeatAdmin(admin.ModelAdmin):
    list_display = ("__str__", "event", "section", "row", "number", "grade", "price", "status")
    list_filter = ("event", "status", "grade")
    search_fields = ("event__title", "section", "row", "grade")
    list_select_related = ("event",)
    autocomplete_fields = ("event",)
    list_per_page = 200
    # Counting every seat of a large venue on each page view is slow and not needed.
    show_full_result_count = False
    # Selling and cancelling go through bookings (the database is the judge of who owns a
    # seat); flipping the status here would break that, so it is shown, not edited.
    readonly_fields = ("status",)


@admin.register(RushControlChange)
class RushControlChangeAdmin(admin.ModelAdmin):
    """The audit log: read-only for everyone, superusers included."""

    list_display = ("changed_at", "event", "changed_by", "changes_summary")
    list_filter = ("event", "changed_at")
    search_fields = ("event__title", "changed_by__email")
    list_select_related = ("event", "changed_by")

    @admin.display(description=_("changes"))
    def changes_summary(self, change: RushControlChange) -> str:
        return ", ".join(f"{field}: {old} → {new}" for field, (old, new) in sorted(change.changes.items()))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RushControlChange | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RushControlChange | None = None) -> bool:
        return False


@admin.register(QueueModeration)
class QueueModerationAdmin(admin.ModelAdmin):
    """Who took which buyer off a line or blocked which account: read-only."""

    list_display = ("at", "action", "user", "event", "by", "reason")
    list_filter = ("action", "event")
    search_fields = ("user__email", "by__email", "reason")
    list_select_related = ("user", "event", "by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: QueueModeration | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: QueueModeration | None = None) -> bool:
        return False
