"""Korean and English: pages, messages, e-mails, prices and dates in the buyer's language,
and a Korean catalogue that is complete and compiled."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.template.loader import render_to_string
from django.test import Client
from django.utils import translation

from booking.emails import cancellation_email_send, ticket_email_send
from booking.services import booking_cancel, booking_confirm
from booking.tests.conftest import admit_users, seat_ids_of
from queueing.holds import seats_hold

pytestmark = pytest.mark.django_db

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "ko" / "LC_MESSAGES"


def korean_client() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9,en;q=0.5")


def test_home_page_in_korean_with_prices_in_won(on_sale_event, event_factory):
    event_factory(title="Upcoming show", open_now=False)

    html = korean_client().get("/").content.decode()

    assert '<html lang="ko">' in html
    for text in ("지금 예매 중", "오픈 예정", "로그인", "회원가입", "공연 보기", "잔여 10석 / 전체 10석"):
        assert text in html, text
    assert "55,000원" in html
    assert "KRW" not in html
    assert "On sale now" not in html


def test_home_page_in_english_by_default(on_sale_event):
    html = Client().get("/").content.decode()

    assert '<html lang="en">' in html
    assert "On sale now" in html
    assert "55,000 KRW" in html


def test_language_switcher_remembers_the_choice(client, on_sale_event):
    response = client.post("/i18n/setlang/", {"language": "ko", "next": "/"})

    assert response.status_code == 302
    assert "지금 예매 중" in client.get("/").content.decode()


def test_seat_picker_labels_seats_in_korean(user, on_sale_event):
    admit_users(on_sale_event, user)
    client = korean_client()
    client.force_login(user)

    html = client.get(f"/events/{on_sale_event.pk}/pick/").content.decode()

    # The seat number as a word of its own (its button shows just the number: WCAG 2.5.3).
    assert 'aria-label="A구역 A열 1 번, 55,000원, 선택 가능"' in html
    assert "좌석 배치도" in html
    assert 'data-price-template="{price}원"' in html
    assert 'data-held-template="{section}구역 {row}열 {number}번"' in html


def test_domain_error_details_are_translated(user, on_sale_event):
    client = korean_client()
    client.force_login(user)

    response = client.get(f"/api/events/{on_sale_event.pk}/queue/")

    assert response.status_code == 404
    assert response.json()["detail"] == "이 공연의 대기실에 입장해 있지 않습니다."


def test_page_messages_are_translated(user, on_sale_event):
    client = korean_client()
    client.force_login(user)

    response = client.get(f"/events/{on_sale_event.pk}/pick/", follow=True)

    assert "아직 순서가 되지 않았거나 좌석 선택 시간이 끝났습니다" in response.content.decode()


def test_error_pages(client):
    not_found = korean_client().get("/no/such/page/")
    assert not_found.status_code == 404
    assert "페이지를 찾을 수 없습니다" in not_found.content.decode()
    assert "We couldn't find that page" in client.get("/no/such/page/").content.decode()

    # 500 and 503 are static (they must render with the database or Redis down): bilingual.
    for name, english, korean in (
        ("500.html", "Something went wrong on our side", "일시적인 오류가 발생했습니다"),
        ("503.html", "We are very busy right now", "지금 접속이 많습니다"),
    ):
        html = render_to_string(name)
        assert english in html and korean in html, name
        assert "{%" not in html and "{{" not in html, name


def test_forbidden_page_is_friendly(user, on_sale_event):
    client = korean_client()
    client.force_login(user)

    response = client.get(f"/staff/events/{on_sale_event.pk}/rush/")

    assert response.status_code == 403
    assert "이 계정으로는 볼 수 없는 페이지입니다" in response.content.decode()


@pytest.fixture
def ko_booking(user, on_sale_event, django_capture_on_commit_callbacks):
    seats = seat_ids_of(on_sale_event, 2)
    admit_users(on_sale_event, user)
    seats_hold(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=seats, hold_seconds=60, cap=4)
    with django_capture_on_commit_callbacks(execute=False):  # the e-mail is sent below
        booking, _created = booking_confirm(
            user_id=user.pk, event_id=on_sale_event.pk, seat_ids=seats, language="ko"
        )
    return booking


def test_ticket_email_in_the_buyers_language(ko_booking):
    assert ticket_email_send(booking_id=ko_booking.pk)

    message = mail.outbox[-1]
    html = message.alternatives[0][0]
    assert message.subject == f"Test concert 티켓 (예매 번호 {ko_booking.code})"
    assert "안녕하세요" in message.body
    assert "예매가 완료되었습니다." in message.body
    assert "A구역 A열 1번 · 55,000원" in message.body
    assert "합계: 110,000원" in message.body
    assert '<html lang="ko">' in html
    assert "입장할 때 티켓마다 QR 코드를 보여 주세요." in html
    assert "KRW" not in message.body + html


def test_booking_made_in_korean_is_mailed_in_korean(user, on_sale_event, django_capture_on_commit_callbacks):
    """The language of the request that books (Accept-Language: ko) is the e-mail's."""
    from conftest import make_auth_client
    from ticketing.celery import app

    buyer = make_auth_client(user)
    seats = seat_ids_of(on_sale_event, 1)
    admit_users(on_sale_event, user)
    held = buyer.post(f"/api/events/{on_sale_event.pk}/holds/", {"seat_ids": seats}, format="json")
    assert held.status_code == 201, held.content

    previous, app.conf.task_always_eager = app.conf.task_always_eager, True  # mail sent in-process
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = buyer.post(
                "/api/bookings/",
                {"event_id": on_sale_event.pk, "seat_ids": seats},
                format="json",
                HTTP_ACCEPT_LANGUAGE="ko",
            )
    finally:
        app.conf.task_always_eager = previous

    assert response.status_code == 201, response.content
    assert response.json()["code"] in mail.outbox[-1].subject
    assert "티켓" in mail.outbox[-1].subject
    assert "55,000원" in mail.outbox[-1].body


def test_cancellation_email_in_korean(ko_booking, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        booking_cancel(booking=ko_booking, by_user=ko_booking.user)

    assert cancellation_email_send(booking_id=ko_booking.pk)

    message = mail.outbox[-1]
    assert "취소되었습니다" in message.subject
    assert "취소된 좌석" in message.body


def test_english_email_keeps_english(user, on_sale_event, django_capture_on_commit_callbacks):
    seats = seat_ids_of(on_sale_event, 1)
    admit_users(on_sale_event, user)
    seats_hold(event_id=on_sale_event.pk, user_id=user.pk, seat_ids=seats, hold_seconds=60, cap=4)
    with django_capture_on_commit_callbacks(execute=False):
        booking, _created = booking_confirm(
            user_id=user.pk, event_id=on_sale_event.pk, seat_ids=seats, language="en"
        )

    ticket_email_send(booking_id=booking.pk)

    assert "Your booking is confirmed." in mail.outbox[-1].body
    assert "55,000 KRW" in mail.outbox[-1].body


@pytest.fixture
def project_formats(settings):
    """The project's format modules (FORMAT_MODULE_PATH = ["ticketing.formats"]); Django
    caches format modules and does not reset that cache when this setting changes."""
    from django.utils.formats import reset_format_cache

    settings.FORMAT_MODULE_PATH = ["ticketing.formats"]
    reset_format_cache()
    yield
    settings.FORMAT_MODULE_PATH = None
    reset_format_cache()


def test_date_formats_with_the_weekday(project_formats):
    from datetime import datetime

    from django.template import Context, Template
    from django.utils import timezone

    when = timezone.make_aware(datetime(2026, 12, 9, 19, 0))
    template = Template('{{ when|date:"DATETIME_FORMAT" }}')

    with translation.override("ko"):
        assert template.render(Context({"when": when})) == "2026년 12월 9일 수요일 오후 7:00"
    with translation.override("en"):
        assert template.render(Context({"when": when})) == "Wed, Dec. 9, 2026, 7 p.m."


# --- the catalogue ------------------------------------------------------------------------


def _po_entries(path: Path) -> list[dict[str, object]]:
    """Minimal .po reader: msgid, msgid_plural, msgstr / msgstr[n], flags."""
    entries: list[dict[str, object]] = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip() and not line.startswith("#~")]
        if not lines:
            continue
        entry: dict[str, object] = {"flags": set()}
        key = None
        for line in lines:
            if line.startswith("#,"):
                entry["flags"] = {flag.strip() for flag in line[2:].split(",")}
                continue
            if line.startswith("#"):
                continue
            match = re.match(r'^(msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$', line)
            if match:
                key = match.group(1)
                entry[key] = ast.literal_eval(match.group(2))
            else:
                entry[key] += ast.literal_eval(line)  # type: ignore[operator]
        if "msgid" in entry:
            entries.append(entry)
    return entries


def _translation(entry: dict[str, object]) -> str:
    return str(entry.get("msgstr") or entry.get("msgstr[0]") or "")


def test_korean_catalogue_is_complete_and_compiled():
    po_path = LOCALE_DIR / "django.po"
    mo_path = LOCALE_DIR / "django.mo"
    entries = [entry for entry in _po_entries(po_path) if entry["msgid"]]
    assert len(entries) > 250

    untranslated = [entry["msgid"] for entry in entries if not _translation(entry)]
    fuzzy = [entry["msgid"] for entry in entries if "fuzzy" in entry["flags"]]  # type: ignore[operator]
    assert not untranslated, f"untranslated: {untranslated}"
    assert not fuzzy, f"fuzzy: {fuzzy}"

    # The committed .mo is the .po compiled (run compilemessages after editing the .po).
    with mo_path.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for entry in entries:
        if "msgid_plural" in entry:
            got = compiled.ngettext(entry["msgid"], entry["msgid_plural"], 1)  # type: ignore[arg-type]
            want = entry["msgstr[0]"]
        else:
            got, want = compiled.gettext(entry["msgid"]), entry["msgstr"]  # type: ignore[arg-type]
        if got != want:
            stale.append(entry["msgid"])
    assert not stale, f"django.mo is older than django.po for: {stale[:5]}"


def test_placeholders_survive_translation():
    """A translation that drops or renames a {brace} placeholder breaks the page's script."""
    for entry in _po_entries(LOCALE_DIR / "django.po"):
        if not entry["msgid"] or "python-brace-format" not in entry["flags"]:  # type: ignore[operator]
            continue
        source = set(re.findall(r"\{(\w+)\}", entry["msgid"]))  # type: ignore[arg-type]
        if not _translation(entry):
            continue  # reported by the completeness test
        target = set(re.findall(r"\{(\w+)\}", _translation(entry)))
        assert source == target, entry["msgid"]
