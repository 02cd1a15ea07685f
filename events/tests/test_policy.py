"""An event's fees and cancellation policy (events/policy.py): the fee table's rules and
its reading at the boundaries between its rows, the admin refusing bad tables with a
clear message, the event detail API's ``policy``, and the policy on the event page and
at checkout in both languages."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from booking.tests.conftest import admit_users, seat_ids_of
from events.models import Event
from events.policy import CancellationPolicy, FeeBand, fee_table_parse
from events.tests.test_admin import _event_form_data
from queueing.holds import seats_hold

pytestmark = pytest.mark.django_db

# Korea's usual steps for concerts: free until 10 days before, then 10 / 20 / 30 %.
TABLE = [
    {"days_before": 9, "fee_percent": 10},
    {"days_before": 6, "fee_percent": 20},
    {"days_before": 2, "fee_percent": 30},
]


def show_policy(*, deadline_hours: int = 24, rows: list[dict[str, int]] | None = None) -> CancellationPolicy:
    """A show on 9 December 2026 at 19:00 (Seoul)."""
    return CancellationPolicy(
        starts_at=timezone.make_aware(datetime(2026, 12, 9, 19, 0)),
        booking_fee=Decimal("2000"),
        deadline_hours=deadline_hours,
        rows=tuple(fee_table_parse(TABLE if rows is None else rows)),
    )


def seoul(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime(2026, 12, day, hour, minute))


@pytest.mark.parametrize(
    ("at", "days_before", "percent"),
    [
        (seoul(1, 23, 59), 8, 10),  # 9 December - 1 December: 8 days before
        (seoul(1, 0, 0), 8, 10),
        (timezone.make_aware(datetime(2026, 11, 29, 23, 59)), 10, 0),  # 10 days before: free
        (seoul(1, 0, 0) - timedelta(minutes=1), 9, 10),  # 30 Nov 23:59 is already 9 days before
        (seoul(3, 0, 0), 6, 20),  # first day of the 20 % row
        (seoul(2, 23, 59), 7, 10),  # last minute of the 10 % row
        (seoul(6, 12), 3, 20),
        (seoul(7, 0, 0), 2, 30),
        (seoul(8, 18, 59), 1, 30),
        (seoul(9, 18, 0), 0, 30),  # the show's day (staff only: after the deadline)
    ],
)
def test_the_fee_follows_the_table_at_its_boundaries(at, days_before, percent):
    policy = show_policy()

    quote = policy.quote(total=Decimal("110000"), at=at)

    assert (quote.days_before, quote.fee_percent) == (days_before, percent)
    assert quote.cancellation_fee == Decimal("110000") * percent / 100
    assert quote.refund == Decimal("110000") - quote.cancellation_fee


def test_the_fee_is_rounded_down_to_whole_won():
    quote = show_policy().quote(total=Decimal("55555.00"), at=seoul(1))
    assert (quote.cancellation_fee, quote.refund) == (Decimal("5555"), Decimal("50000.00"))


def test_online_cancellation_closes_at_the_deadline():
    policy = show_policy(deadline_hours=24)
    assert policy.deadline == seoul(8, 19, 0)
    assert policy.self_service_open(seoul(8, 18, 59))
    assert not policy.self_service_open(seoul(8, 19, 0))
    # Without a deadline of its own: until the show starts.
    assert show_policy(deadline_hours=0).deadline == seoul(9, 19, 0)


def test_no_table_means_free_cancellation():
    policy = show_policy(rows=[])
    assert policy.quote(total=Decimal("55000"), at=seoul(8)).refund == Decimal("55000")
    assert policy.bands() == []


def test_the_table_reads_as_ranges_of_days():
    assert show_policy().bands() == [
        FeeBand(days_from=None, days_to=10, fee_percent=0),
        FeeBand(days_from=9, days_to=7, fee_percent=10),
        FeeBand(days_from=6, days_to=3, fee_percent=20),
        FeeBand(days_from=2, days_to=0, fee_percent=30),
    ]
    # A free first row covers every earlier day; a row of one day reads as that day.
    rows = [
        {"days_before": 5, "fee_percent": 0},
        {"days_before": 1, "fee_percent": 50},
        {"days_before": 0, "fee_percent": 100},
    ]
    assert show_policy(rows=rows).bands() == [
        FeeBand(days_from=None, days_to=2, fee_percent=0),
        FeeBand(days_from=1, days_to=1, fee_percent=50),
        FeeBand(days_from=0, days_to=0, fee_percent=100),
    ]


BAD_TABLES = [
    ('{"days_before": 3, "fee_percent": 10}', "The fee table must be a list of rows"),
    ('[{"days_before": 3}]', 'Row 1: each row needs "days_before" and "fee_percent", and nothing else.'),
    ('[{"days_before": 3, "fee_percent": 10, "note": "x"}]', "Row 1: each row needs"),
    (
        '[{"days_before": -1, "fee_percent": 10}]',
        'Row 1: "days_before" must be a whole number of days from 0 to 365.',
    ),
    ('[{"days_before": 2.5, "fee_percent": 10}]', 'Row 1: "days_before" must be a whole number'),
    (
        '[{"days_before": 3, "fee_percent": 150}]',
        'Row 1: "fee_percent" must be a whole number from 0 to 100.',
    ),
    ('[{"days_before": 3, "fee_percent": true}]', 'Row 1: "fee_percent" must be a whole number'),
    (
        '[{"days_before": 3, "fee_percent": 10}, {"days_before": 3, "fee_percent": 20}]',
        "Row 2: 3 days before the show is already in the table.",
    ),
    (
        '[{"days_before": 9, "fee_percent": 30}, {"days_before": 2, "fee_percent": 10}]',
        "The fee may not go down as the show gets closer: 10% from 2 days before is less than 30% from 9 "
        "days before.",
    ),
    ("not json", "Enter a valid JSON."),
]


@pytest.mark.parametrize(("table", "message"), BAD_TABLES)
def test_the_admin_refuses_a_bad_fee_table_with_a_clear_message(admin_client, on_sale_event, table, message):
    url = reverse("admin:events_event_change", args=[on_sale_event.pk])

    response = admin_client.post(url, _event_form_data(on_sale_event, cancellation_fees=table))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["cancellation_fees"]
    assert any(error.startswith(message) for error in errors), errors
    on_sale_event.refresh_from_db()
    assert on_sale_event.cancellation_fees == []


def test_the_admin_saves_a_policy_in_order(admin_client, on_sale_event):
    url = reverse("admin:events_event_change", args=[on_sale_event.pk])
    unordered = [TABLE[2], TABLE[0], TABLE[1]]

    response = admin_client.post(
        url,
        _event_form_data(
            on_sale_event,
            cancellation_fees=json.dumps(unordered),
            cancellation_deadline_hours=24,
            booking_fee="2000",
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    on_sale_event.refresh_from_db()
    assert on_sale_event.cancellation_fees == TABLE
    assert (on_sale_event.cancellation_deadline_hours, on_sale_event.booking_fee) == (24, Decimal("2000"))


def test_model_validation_names_the_row():
    event = Event(
        cancellation_fees=[{"days_before": 3, "fee_percent": 10}, {"days_before": "x", "fee_percent": 1}]
    )
    with pytest.raises(ValidationError) as refused:
        event.clean_fields(exclude=[f.name for f in Event._meta.fields if f.name != "cancellation_fees"])
    assert refused.value.message_dict["cancellation_fees"] == [
        'Row 2: "days_before" must be a whole number of days from 0 to 365.'
    ]


def with_policy(event: Event, **fields: Any) -> Event:
    fields = {
        "cancellation_fees": TABLE,
        "cancellation_deadline_hours": 24,
        "booking_fee": Decimal("2000"),
    } | fields
    for name, value in fields.items():
        setattr(event, name, value)
    event.save()
    return event


def test_the_event_detail_api_has_the_policy(client, on_sale_event):
    with_policy(on_sale_event)

    body = client.get(f"/api/events/{on_sale_event.pk}/").json()

    policy = body["policy"]
    assert (policy["booking_fee"], policy["cancellation_fees"]) == ("2000.00", TABLE)
    assert datetime.fromisoformat(policy["cancel_until"]) == on_sale_event.starts_at - timedelta(hours=24)
    # The same for every language: the public, cacheable answer stays one copy.
    assert (
        client.get(f"/api/events/{on_sale_event.pk}/", HTTP_ACCEPT_LANGUAGE="ko").json()["policy"]
        == body["policy"]
    )


POLICY_TEXTS = {
    "en": [
        "Fees and cancellation",
        "Booking fee",
        "2,000 KRW per ticket",
        "Cancel online until",
        "After that, only the organiser can cancel a booking.",
        "Cancellation fee (share of the ticket price)",
        "Up to 10 days before the show",
        "9 to 7 days before the show",
        "6 to 3 days before the show",
        "From 2 days before to the day of the show",
        "Free",
    ],
    "ko": [
        "수수료 및 취소 안내",
        "예매수수료",
        "장당 2,000원",
        "온라인 취소 마감",
        "마감 이후에는 주최 측을 통해서만 취소할 수 있습니다.",
        "취소수수료 (티켓 금액 기준)",
        "관람일 10일 전까지",
        "관람일 9일 전 ~ 7일 전",
        "관람일 6일 전 ~ 3일 전",
        "관람일 2일 전 ~ 당일",
        "없음",
    ],
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_policy_is_on_the_event_page(lang, on_sale_event):
    with_policy(on_sale_event)

    html = Client(HTTP_ACCEPT_LANGUAGE=lang).get(f"/events/{on_sale_event.pk}/").content.decode()

    for text in POLICY_TEXTS[lang]:
        assert text in html, text
    for percent in ("10%", "20%", "30%"):
        assert f'<td class="num">{percent}</td>' in html


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_policy_is_at_checkout_with_the_fee_for_these_seats(lang, user, on_sale_event):
    with_policy(on_sale_event)
    seats = seat_ids_of(on_sale_event, 2)
    admit_users(on_sale_event, user)
    seats_hold(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=seats, hold_seconds=60, cap=4)
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(user)

    html = client.get(f"/events/{on_sale_event.pk}/checkout/").content.decode()

    for text in POLICY_TEXTS[lang]:
        assert text in html, text
    assert ("Booking fee for 2 tickets" if lang == "en" else "2매 예매수수료") in html
    assert ("4,000 KRW" if lang == "en" else "4,000원") in html


def test_an_event_without_a_policy_says_cancelling_is_free(client, on_sale_event):
    html = client.get(f"/events/{on_sale_event.pk}/").content.decode()
    assert "You can cancel online until the show starts." in html
    assert "Cancelling online is free: the whole ticket price is refunded." in html
    assert "Booking fee</dt><dd>None" in html


def test_a_moment_ends_a_sentence_with_one_full_stop():
    from django.utils import translation

    from events.policy import moment_before_full_stop

    evening = timezone.make_aware(datetime(2026, 12, 14, 22, 35))
    with translation.override("en"):
        assert moment_before_full_stop(evening).endswith("10:35 p.m")
    with translation.override("ko"):
        assert moment_before_full_stop(evening).endswith("오후 10:35")


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_demo_shows_an_event_with_a_policy_an_upcoming_one_and_a_sold_out_one(lang, settings, tmp_path):
    """``make run``'s demo data (seed_demo): what issue 16 asks the demo to show."""
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    words = {
        "en": ("On sale now", "Coming soon", "Get tickets", "Sold out", "Fees and cancellation", "2,000 KRW"),
        "ko": ("지금 예매 중", "오픈 예정", "예매하기", "매진", "수수료 및 취소 안내", "2,000원"),
    }[lang]
    on_sale_heading, coming_heading, get_tickets, sold_out, policy_heading, fee = words

    home = client.get("/").content.decode()
    on_sale, coming = home.split(f"<h2>{coming_heading}</h2>")
    assert on_sale_heading in on_sale
    cards = dict(
        re.findall(r'<li class="card">\s*<h3><a href="[^"]+">([^<]+)</a></h3>(.*?)</li>', on_sale, re.S)
    )
    assert get_tickets in cards["IU Live — The Golden Hour"]
    assert f'<span class="badge sold">{sold_out}</span>' in cards["Jazz Night at Blue Square"]
    assert "Seoul Philharmonic — New Year Concert" in coming

    event = Event.objects.get(title="IU Live — The Golden Hour")
    page = client.get(f"/events/{event.pk}/").content.decode()
    assert policy_heading in page and fee in page
    assert len(re.findall(r"<tr><td>", page.split('class="policy-fees"')[1].split("</table>")[0])) == 4
