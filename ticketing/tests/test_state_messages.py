"""Every state says what is happening, in English and in Korean (issue 16, item 5): the
waiting room paused by staff, sold out (and what comes next), a pass that ran out, seats
no longer held, the server busy (503), the API's error texts (ours and Django REST
framework's), a body too large (413) and a refused CSRF check.

Pages are asked for in a language the way a browser asks (Accept-Language, or the
language cookie the switcher sets); JSON answers carry ``detail`` in that language. Texts
that only the page's script shows are checked in the page's ``data-msg-*`` attributes
here, and live in Chromium in ``test_state_messages_browser.py``."""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from django.utils import translation
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from booking.tests.conftest import admit_users, expire_hold, seat_ids_of
from conftest import make_auth_client
from events.models import Seat, SeatStatus
from events.services.rush_control import rush_control_update
from events.services.seat_map import seat_map_rebuild
from events.services.waiting_room import queue_join
from queueing.line import line_admit
from ticketing.middleware import ServiceUnavailableMiddleware

pytestmark = pytest.mark.django_db

KOREAN = "ko-KR,ko;q=0.9,en;q=0.5"
ENGLISH = "en-GB,en;q=0.9"


@pytest.fixture(autouse=True)
def _thread_language_restored() -> Any:
    """Some tests set this thread's language on purpose (what a previous request left)."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


def page_client(lang: str, user: Any = None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=KOREAN if lang == "ko" else ENGLISH)
    if user is not None:
        client.force_login(user)
    return client


def api_client(lang: str, user: Any = None) -> APIClient:
    client = make_auth_client(user) if user is not None else APIClient()
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = KOREAN if lang == "ko" else ENGLISH
    return client


def text_of(response: Any) -> str:
    return response.content.decode()


def paused_notice_hidden(html: str) -> bool:
    tag = re.search(r'<div class="queue-notice queue-paused"[^>]*>', html)
    assert tag is not None
    return " hidden" in tag.group(0)


def sell_out(event: Any) -> None:
    Seat.objects.filter(event=event).update(status=SeatStatus.SOLD)
    seat_map_rebuild(event.pk)
    assert line_admit(event_id=event.pk, capacity=10, pass_seconds=600).sold_out


# --- paused by the organiser ----------------------------------------------------------------

PAUSED = {
    "en": (
        "The sale is paused by the organiser.",
        "Your place in line is kept. The line moves again as soon as the sale resumes: keep this page open.",
        "You can still join the line now: your place is kept until the sale resumes.",
        "When the sale resumes",
    ),
    "ko": (
        "주최 측에서 예매를 일시 중지했습니다.",
        "대기 순서는 그대로 유지됩니다. 예매가 재개되면 바로 다시 진행되니 이 페이지를 닫지 말고 기다려 주세요.",
        "지금 대기열에 입장할 수 있으며, 예매가 재개될 때까지 순서가 유지됩니다.",
        "예매 재개 후 안내",
    ),
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_paused_sale_says_so_and_that_the_place_is_kept(lang, user_factory, staff_user, on_sale_event):
    first, second = user_factory(), user_factory()
    queue_join(event_id=on_sale_event.pk, user_id=first.pk)
    queue_join(event_id=on_sale_event.pk, user_id=second.pk)
    rush_control_update(event=on_sale_event, user=staff_user, paused=True)
    headline, kept, may_join, eta = PAUSED[lang]

    html = text_of(page_client(lang, second).get(f"/events/{on_sale_event.pk}/queue/"))
    assert headline in html and kept in html and eta in html
    assert not paused_notice_hidden(html)
    # The script follows the same state from the polls: the API says paused.
    status = api_client(lang, second).get(f"/api/events/{on_sale_event.pk}/queue/").json()
    assert (status["state"], status["position"], status["paused"]) == ("waiting", 2, True)

    # Not in line yet: joining is still open, and the place will be kept.
    newcomer = text_of(page_client(lang, user_factory()).get(f"/events/{on_sale_event.pk}/queue/"))
    assert headline in newcomer and may_join in newcomer

    rush_control_update(event=on_sale_event, user=staff_user, paused=False)
    assert api_client(lang, second).get(f"/api/events/{on_sale_event.pk}/queue/").json()["paused"] is False
    resumed = text_of(page_client(lang, second).get(f"/events/{on_sale_event.pk}/queue/"))
    assert paused_notice_hidden(resumed)


# --- sold out, and what comes next ---------------------------------------------------------

SOLD_OUT = {
    "en": (
        "Sold out: every seat of this event has been sold.",
        "Seats that come back are offered to the people on the waiting list, in the order they joined.",
        "Join the waiting list",
        "All seats of this event are sold. Join its waiting list: seats that come back are offered to "
        "the people on it, in the order they joined.",
    ),
    "ko": (
        "매진: 이 공연의 모든 좌석이 판매되었습니다.",
        "취소되어 돌아온 좌석은 신청한 순서대로 취소표 대기자에게 배정됩니다.",
        "취소표 대기 신청",
        "이 공연의 모든 좌석이 판매되었습니다. 취소표 대기를 신청하시면 취소되어 돌아온 좌석을 신청 순서대로 "
        "안내해 드립니다.",
    ),
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_sold_out_says_what_comes_next(lang, user, on_sale_event):
    sell_out(on_sale_event)
    headline, next_step, link, api_detail = SOLD_OUT[lang]

    html = text_of(page_client(lang, user).get(f"/events/{on_sale_event.pk}/queue/"))
    assert headline in html and next_step in html and link in html
    assert f'href="/events/{on_sale_event.pk}/waiting-list/"' in html

    refused = api_client(lang, user).post(f"/api/events/{on_sale_event.pk}/queue/")
    assert refused.status_code == 409
    assert refused.json() == {
        "code": "sold_out",
        "detail": api_detail,
        "waiting_list": f"/api/events/{on_sale_event.pk}/waiting-list/",
    }

    # The home page's card says it too, and leads to the event page (the waiting list).
    home = text_of(page_client(lang).get("/"))
    card = re.search(r'<li class="card">.*?</li>', home, re.S).group(0)
    badge = {"en": "Sold out", "ko": "매진"}[lang]
    assert f'<span class="badge sold">{badge}</span>' in card
    assert f'/events/{on_sale_event.pk}/queue/"' not in card


# --- the pass ran out, the seats are no longer held ------------------------------------------

PASS_AND_HOLD = {
    "en": (
        "You have no valid pass for this event. Please join the waiting room.",
        "You no longer hold these seats (the hold expired or was released). Please choose again.",
        "You are no longer in line: your turn came while this page was closed, or you left in another "
        "window. Join again to get a new place.",
    ),
    "ko": (
        "이 공연의 유효한 입장 순서가 없습니다. 대기실에 입장해 주세요.",
        "선점한 좌석이 더 이상 없습니다(선점 시간이 끝났거나 해제되었습니다). 좌석을 다시 선택해 주세요.",
        "대기열에서 나왔습니다. 순서가 되었을 때 이 페이지가 닫혀 있었거나 다른 창에서 나가셨습니다. "
        "다시 입장하면 새 순서를 받습니다.",
    ),
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_pass_expired_and_hold_lost(lang, user, on_sale_event):
    no_pass, hold_lost, left_line = PASS_AND_HOLD[lang]
    seats = seat_ids_of(on_sale_event, 1)
    buyer = api_client(lang, user)

    # No pass (never admitted, or it ran out): holding seats is refused, and why.
    refused = buyer.post(f"/api/events/{on_sale_event.pk}/holds/", {"seat_ids": seats}, format="json")
    assert (refused.status_code, refused.json()["detail"]) == (403, no_pass)

    # A pass, but the seats are not (or no longer) held: paying is refused, and why.
    admit_users(on_sale_event, user)
    lost = buyer.post("/api/bookings/", {"event_id": on_sale_event.pk, "seat_ids": seats}, format="json")
    assert lost.json() == {"code": "hold_missing", "detail": hold_lost}

    # The waiting room's script says it when a poll finds the buyer off the line.
    html = text_of(page_client(lang, user).get(f"/events/{on_sale_event.pk}/queue/"))
    assert f'data-msg-left-line="{left_line}"' in html


# What the pages (not the API) say when the turn or the time to pay is over, and what each
# clock says happens when it runs out. The clocks running out live: test_state_messages_browser.
PAGES_TIME_UP = {
    "en": {
        "turn_over": "Your turn to choose seats has not come yet, or it has ended. Please wait in the waiting room.",
        "paid_too_late": "The time to pay for these seats ran out, so they went back on sale. Please choose again.",
        "pick_clock": "Time left to choose seats:",
        "pick_clock_end": "Press Next before then. When the time runs out, your turn ends and you would have "
        "to wait in line again.",
        "pick_expired": "Time is up: your turn to choose seats has ended.",
        "pay_clock": "Time left to pay:",
        "pay_clock_end": "Your seats are kept for you until then. If time runs out, they go back on sale and "
        "you choose again.",
        "pay_expired": "Time is up: these seats are no longer kept for you. Please choose your seats again.",
    },
    "ko": {
        "turn_over": "아직 순서가 되지 않았거나 좌석 선택 시간이 끝났습니다. 대기실에서 기다려 주세요.",
        "paid_too_late": "결제 시간이 지나 좌석이 다시 판매되었습니다. 좌석을 다시 선택해 주세요.",
        "pick_clock": "남은 좌석 선택 시간:",
        "pick_clock_end": "그 전에 '다음'을 눌러 주세요. 시간이 지나면 차례가 끝나 대기열에 다시 서야 합니다.",
        "pick_expired": "시간이 끝나 좌석 선택 차례가 끝났습니다.",
        "pay_clock": "남은 결제 시간:",
        "pay_clock_end": "그때까지 좌석이 회원님 앞으로 잡혀 있습니다. 시간이 지나면 좌석이 다시 판매되고, "
        "좌석을 다시 선택해야 합니다.",
        "pay_expired": "시간이 지나 좌석이 풀렸습니다. 좌석을 다시 선택해 주세요.",
    },
}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_turn_over_and_time_to_pay_over_are_said_on_the_pages(lang, user, on_sale_event):
    texts = PAGES_TIME_UP[lang]
    browser = page_client(lang, user)

    # No pass (the turn has not come, or it ran out): the seat picker sends the buyer back
    # to the waiting room, which says why.
    response = browser.get(f"/events/{on_sale_event.pk}/pick/", follow=True)
    assert response.redirect_chain[-1][0] == f"/events/{on_sale_event.pk}/queue/"
    assert texts["turn_over"] in text_of(response)

    # Admitted: one clock on the seat picker, what happens when it runs out, and the words
    # its script says at zero.
    admit_users(on_sale_event, user)
    picker = text_of(browser.get(f"/events/{on_sale_event.pk}/pick/"))
    assert texts["pick_clock"] in picker and texts["pick_clock_end"] in picker
    assert f'data-msg-expired="{texts["pick_expired"]}"' in picker
    assert picker.count('role="timer"') == 1

    # Seats kept (the no-JavaScript path keeps a seat per press): the checkout's one clock.
    seat = seat_ids_of(on_sale_event, 1)
    browser.post(
        f"/events/{on_sale_event.pk}/pick/", {"seat_ids": seat, "csrfmiddlewaretoken": csrf_of(picker)}
    )
    checkout = text_of(browser.get(f"/events/{on_sale_event.pk}/checkout/"))
    assert texts["pay_clock"] in checkout and texts["pay_clock_end"] in checkout
    assert f'data-msg-expired="{texts["pay_expired"]}"' in checkout
    assert checkout.count('role="timer"') == 1

    # The seats are no longer kept when the buyer pays: the seat picker says so.
    expire_hold(on_sale_event, seat)
    paid = browser.post(
        f"/events/{on_sale_event.pk}/checkout/",
        {"csrfmiddlewaretoken": csrf_of(checkout), "seat_ids": seat},
        follow=True,
    )
    assert paid.redirect_chain[-1][0] == f"/events/{on_sale_event.pk}/pick/"
    assert texts["paid_too_late"] in text_of(paid)


ELSEWHERE = {
    "en": "You were already in line for this event (on another device or in another tab). Your place is "
    "kept: each account has one place in line.",
    "ko": "이미 이 공연의 대기열에 있습니다(다른 기기나 다른 탭에서 입장). 순서는 그대로 유지됩니다.",
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_already_in_line_on_another_device_is_said_and_the_place_kept(
    lang, user, user_factory, on_sale_event
):
    queue_join(event_id=on_sale_event.pk, user_id=user.pk)  # on the phone
    queue_join(event_id=on_sale_event.pk, user_id=user_factory().pk)  # someone after

    html = text_of(page_client(lang, user).get(f"/events/{on_sale_event.pk}/queue/"))  # the laptop

    assert ELSEWHERE[lang] in html
    assert 'data-field="position">1<' in html


# --- server busy ------------------------------------------------------------------------------

BUSY_JSON = {
    "en": "We are very busy right now. Your place in the queue and your bookings are kept; "
    "please try again in a few seconds.",
    "ko": "지금 접속이 많습니다. 대기 순서와 예매 내역은 그대로 유지되니 잠시 후 다시 시도해 주세요.",
}
BUSY_PAGE = {"en": "We are very busy right now", "ko": "지금 접속이 많습니다"}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_busy_server_in_the_buyers_language(lang, queue_on_spare_redis, user, on_sale_event):
    """Redis really gone (the spare server killed): the API's 503 body and the busy page
    are in the buyer's language; the page carries both languages, the buyer's first."""
    queue_on_spare_redis.kill()
    time.sleep(settings.QUEUE_PULSE_SECONDS + 0.05)

    response = api_client(lang, user).get(f"/api/events/{on_sale_event.pk}/queue/")
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert response.json() == {"code": "service_unavailable", "detail": BUSY_JSON[lang]}

    page = page_client(lang, user).get(f"/events/{on_sale_event.pk}/queue/")
    assert page.status_code == 503 and int(page["Retry-After"]) > 0
    html = text_of(page)
    assert f'<html lang="{lang}">' in html
    other = "ko" if lang == "en" else "en"
    assert html.index(BUSY_PAGE[lang]) < html.index(BUSY_PAGE[other])
    assert f'<div lang="{other}">' in html
    assert 'data-busy-retry data-seconds="5"' in html and "busy_retry.js" in html


def test_busy_page_uses_the_language_cookie_even_when_the_session_fails(rf: RequestFactory):
    """An outage raised before LocaleMiddleware ran (the session read failing): the page
    follows the request's language cookie, not the language the thread served last."""
    request = rf.get("/events/1/", HTTP_ACCEPT_LANGUAGE=ENGLISH)
    request.COOKIES[settings.LANGUAGE_COOKIE_NAME] = "ko"

    def session_read_fails(request: Any) -> Any:
        raise RedisConnectionError("gone")

    translation.activate("en")
    response = ServiceUnavailableMiddleware(session_read_fails)(request)
    assert response.status_code == 503
    assert response["Content-Language"] == "ko"
    html = text_of(response)
    assert '<html lang="ko">' in html and html.index("지금 접속이 많습니다") < html.index("We are very busy")


# --- the API's error texts --------------------------------------------------------------------

API_TEXTS = {
    "en": {
        "not_authenticated": "Authentication credentials were not provided.",
        "token_not_valid": "Your sign-in has expired or is not valid. Please sign in again.",
        "no_active_account": "The e-mail address or password is not correct.",
        "invalid": "Some fields are invalid.",
        "required": "This field is required.",
        "malformed": "The request body is not valid JSON.",
        "csrf": "The security check of this page (CSRF) failed: the page was open too long, or your "
        "browser blocks this site's cookies. Reload the page and try again.",
        "not_found": "Not found.",
        "method": 'Method "PUT" not allowed.',
        "throttled": "Too many failed log-in attempts; please try again later.",
    },
    "ko": {
        "not_authenticated": "자격 인증 데이터가 제공되지 않았습니다.",
        "token_not_valid": "로그인이 만료되었거나 유효하지 않습니다. 다시 로그인해 주세요.",
        "no_active_account": "이메일 주소 또는 비밀번호가 일치하지 않습니다.",
        "invalid": "입력값에 문제가 있습니다.",
        "required": "이 필드는 필수 항목입니다.",
        "malformed": "요청 본문이 올바른 JSON 형식이 아닙니다.",
        "csrf": "보안 확인(CSRF)에 실패했습니다. 페이지를 너무 오래 열어 두었거나 브라우저가 이 사이트의 "
        "쿠키를 차단하고 있습니다. 페이지를 새로고침한 뒤 다시 시도해 주세요.",
        "not_found": "찾을 수 없습니다.",
        "method": '메서드 "PUT"는 허용되지 않습니다.',
        "throttled": "로그인 실패가 너무 많습니다. 잠시 후 다시 시도해 주세요.",
    },
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_api_error_texts_are_in_the_request_language(lang, user, on_sale_event, settings):
    texts = API_TEXTS[lang]
    anonymous = api_client(lang)

    def detail(response: Any, status: int, code: str) -> str:
        assert response.status_code == status, response.content
        body = response.json()
        assert body["code"] == code, body
        return body["detail"]

    assert detail(anonymous.get("/api/auth/me/"), 401, "not_authenticated") == texts["not_authenticated"]
    forged = api_client(lang)
    forged.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    assert detail(forged.get("/api/auth/me/"), 401, "token_not_valid") == texts["token_not_valid"]
    wrong = anonymous.post("/api/auth/token/", {"email": user.email, "password": "wrong"}, format="json")
    assert detail(wrong, 401, "no_active_account") == texts["no_active_account"]
    invalid = anonymous.post("/api/auth/register/", {"email": "someone@example.com"}, format="json")
    assert detail(invalid, 400, "invalid") == texts["invalid"]
    assert invalid.json()["errors"]["password"] == [texts["required"]]
    broken = anonymous.post("/api/auth/register/", data="{broken", content_type="application/json")
    assert detail(broken, 400, "malformed") == texts["malformed"]
    assert detail(anonymous.get("/api/bookings/NOSUCH/"), 401, "not_authenticated")
    assert detail(api_client(lang, user).get("/api/bookings/NOSUCH/"), 404, "not_found") == texts["not_found"]
    assert (
        detail(anonymous.put("/api/auth/register/", {}, format="json"), 405, "method_not_allowed")
        == texts["method"]
    )

    # A session-authenticated call without the CSRF header (the page's script forgot it).
    session = APIClient(
        enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE=anonymous.defaults["HTTP_ACCEPT_LANGUAGE"]
    )
    session.force_login(user)
    csrf = session.post(f"/api/events/{on_sale_event.pk}/queue/")
    assert detail(csrf, 403, "permission_denied") == texts["csrf"]

    # Throttled log-ins (the login guard, answered through DRF's Throttled).
    settings.LOGIN_FAILURE_LIMIT_ACCOUNT = 1
    anonymous.post("/api/auth/token/", {"email": user.email, "password": "wrong"}, format="json")
    throttled = anonymous.post("/api/auth/token/", {"email": user.email, "password": "wrong"}, format="json")
    assert detail(throttled, 429, "throttled").startswith(texts["throttled"])


def test_the_language_cookie_works_for_the_api_too(user):
    client = APIClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"
    assert client.get("/api/auth/me/").json()["detail"] == API_TEXTS["ko"]["not_authenticated"]


def test_domain_error_default_detail_is_translated():
    from ticketing.errors import DomainError

    with translation.override("ko"):
        assert DomainError("invalid").detail == "요청을 처리할 수 없습니다."
    with translation.override("en"):
        assert DomainError("invalid").detail == "The request cannot be completed."


def _literal_text(node: ast.AST | None) -> bool:
    """A text written in place and not marked for translation: "...", f"...",
    "..." % (...), "...".format(...)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        node = node.left
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        node = node.func.value
    return isinstance(node, ast.Constant | ast.JoinedStr)


def test_every_domain_error_text_goes_through_gettext():
    """A refusal's ``detail`` is what an API client shows its user: none is a literal
    left out of the catalogue (a variable is a text made elsewhere, translated there)."""
    untranslated = []
    for path in Path(settings.BASE_DIR).glob("*/**/*.py"):
        if {".venv", "tests", "migrations", "bench", "var"} & set(path.parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or getattr(node.func, "id", None) not in {
                "DomainError",
                "error_response",
                "error_body",
            }:
                continue
            given = [
                *node.args[1:2],
                *(keyword.value for keyword in node.keywords if keyword.arg == "detail"),
            ]
            if any(_literal_text(detail) for detail in given):
                untranslated.append(f"{path.relative_to(settings.BASE_DIR)}:{node.lineno}")
    assert not untranslated, untranslated


# --- 413: the request is too large ------------------------------------------------------------

TOO_LARGE = {
    "en": ("The request body is too large.", "That was too much to send"),
    "ko": ("요청 본문이 너무 큽니다.", "보낸 내용이 너무 큽니다"),
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_too_large_in_the_buyers_language(lang, settings, user):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    api_text, page_heading = TOO_LARGE[lang]
    other = "ko" if lang == "en" else "en"
    # The refusal comes before LocaleMiddleware: whatever the thread served last.
    translation.activate(other)

    body = json.dumps({"email": "a" * 4096 + "@example.com", "password": "x", "name": "y"})
    response = api_client(lang).post("/api/auth/register/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"code": "too_large", "detail": api_text}
    assert response["Content-Language"] == lang and "Accept-Language" in response["Vary"]

    # A form post to a page: a page, not JSON.
    page = page_client(lang).post("/accounts/login/", {"username": user.email, "password": "p" * 4096})
    assert page.status_code == 413 and page["Content-Type"].startswith("text/html")
    html = text_of(page)
    assert f'<html lang="{lang}">' in html and page_heading in html
    assert 'href="/accounts/login/"' in html


def test_too_large_follows_the_language_cookie(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 16
    client = APIClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"
    response = client.post("/api/auth/register/", data="x" * 64, content_type="application/json")
    assert response.json()["detail"] == TOO_LARGE["ko"][0]


# --- the CSRF failure page ---------------------------------------------------------------------

CSRF_PAGE = {
    "en": ("This form could not be sent", "Nothing was changed: your place in the queue and your bookings"),
    "ko": ("양식을 보내지 못했습니다", "변경된 내용은 없으며 대기 순서와 예매 내역도 그대로입니다."),
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_csrf_failure_page_is_translated(lang, user):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE=KOREAN if lang == "ko" else ENGLISH)
    client.get("/accounts/login/")  # the page, and its CSRF cookie; the form is sent without the token

    response = client.post("/accounts/login/?next=/my/tickets/", {"username": user.email, "password": "x"})

    assert response.status_code == 403
    html = text_of(response)
    heading, reassurance = CSRF_PAGE[lang]
    assert f'<html lang="{lang}">' in html and heading in html and reassurance in html
    assert 'href="/accounts/login/?next=/my/tickets/"' in html  # open the form again
    assert "CSRF verification failed" not in html  # not Django's technical page


def test_csrf_failure_on_the_api_is_json(user):
    from ticketing.error_pages import csrf_failure

    request = RequestFactory().post("/api/anything/", HTTP_ACCEPT_LANGUAGE=KOREAN)
    with translation.override("ko"):
        response = csrf_failure(request, reason="CSRF token missing.")
    assert response.status_code == 403
    assert json.loads(response.content) == {"code": "permission_denied", "detail": API_TEXTS["ko"]["csrf"]}


# --- the fast lane answers a refused join in the buyer's language -------------------------------


@pytest.mark.django_db(transaction=True)
def test_lane_refusal_is_in_the_request_language_whatever_the_thread_served_before(user, on_sale_event):
    from events.tests.test_queue_lane import call

    sell_out(on_sale_event)
    token = str(RefreshToken.for_user(user).access_token)
    for lang, other in (("ko", "en"), ("en", "ko")):
        translation.activate(other)  # the language of this thread's previous request
        status, headers, body = call(
            f"/api/events/{on_sale_event.pk}/queue/",
            method="POST",
            headers={"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_ACCEPT_LANGUAGE": lang},
        )
        assert (status, headers["content-language"]) == (409, lang)
        assert (body["code"], body["detail"]) == ("sold_out", SOLD_OUT[lang][3])


# --- no jargon on the buyer's pages -----------------------------------------------------------

JARGON = {"en": ("hold", "Hold", "pass ", "Pass "), "ko": ("선점",)}


def what_the_buyer_reads(html: str) -> str:
    """The main part's text and the texts its scripts show (data-msg-*, data-status-*)."""
    main = html.split('<main id="main">', 1)[1]
    said = re.findall(r'data-(?:msg|status)-[\w-]+="([^"]*)"', main)
    return " ".join([re.sub(r"<[^>]+>", " ", main), *said])


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_no_jargon_on_the_buyers_pages(
    lang, user, user_factory, on_sale_event, django_capture_on_commit_callbacks
):
    """ "Hold" / "선점" and "pass" are the system's words, not the buyer's (issue 16, item
    2): not on the waiting room, the seat picker, checkout, the ticket, nor in what their
    scripts say."""
    browser = page_client(lang, user)
    room = f"/events/{on_sale_event.pk}/queue/"
    pages = {"waiting room, not in line": text_of(browser.get(room))}
    queue_join(event_id=on_sale_event.pk, user_id=user_factory().pk)
    queue_join(event_id=on_sale_event.pk, user_id=user.pk)
    pages["waiting room, in line"] = text_of(browser.get(room))
    admit_users(on_sale_event, user)
    picker = text_of(browser.get(f"/events/{on_sale_event.pk}/pick/"))
    pages["seat picker"] = picker
    seat = seat_ids_of(on_sale_event, 1)
    browser.post(
        f"/events/{on_sale_event.pk}/pick/", {"seat_ids": seat, "csrfmiddlewaretoken": csrf_of(picker)}
    )
    checkout = text_of(browser.get(f"/events/{on_sale_event.pk}/checkout/"))
    pages["checkout"] = checkout
    with django_capture_on_commit_callbacks(execute=True):
        booked = browser.post(
            f"/events/{on_sale_event.pk}/checkout/",
            {"csrfmiddlewaretoken": csrf_of(checkout), "seat_ids": seat},
            follow=True,
        )
    pages["ticket"] = text_of(booked)
    assert 'class="ticket-qr"' in pages["ticket"]

    found = {
        name: word
        for name, html in pages.items()
        for word in JARGON[lang]
        if word in what_the_buyer_reads(html)
    }
    assert not found, found
