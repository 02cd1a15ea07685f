"""The poll lane in front of Django (events/api/queue_lane.py), called as the WSGI
application gunicorn runs: the same answer as Django's view for a poll from behind the
cursor, no database and no per-buyer Redis round trip for it, and every other request
handed to Django unchanged."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.helpers import altered_tokens, odd_signed_tokens
from conftest import make_auth_client
from events.api import queue_lane
from events.tests.test_queue_api import sell_out
from queueing import scripts
from queueing.connection import get_redis
from queueing.keys import EventKeys
from queueing.line import line_admit, line_status
from ticketing.wsgi import application as gunicorns_application

# The real WSGI handler may close database connections between requests, which a test
# wrapped in one transaction would not survive: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


def call(
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    app: Any = gunicorns_application,
    body: bytes = b"",
) -> tuple[int, dict, Any]:
    """One request through the WSGI application; (status, headers, JSON body or None)."""
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": "testserver"}
    environ.update(headers or {})
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.setdefault("CONTENT_TYPE", "application/json")
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started["status"] = int(status.split()[0])
        started["headers"] = {name.lower(): value for name, value in response_headers}

    chunks = app(environ, start_response)
    body = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    is_json = started["headers"].get("content-type", "").startswith("application/json")
    return started["status"], started["headers"], json.loads(body) if body and is_json else None


@pytest.fixture
def waiting(user_factory, on_sale_event) -> dict[str, Any]:
    """Six buyers in line, two admitted: the last one polls from behind the cursor."""
    buyers = [user_factory() for _ in range(6)]
    tickets = [
        make_auth_client(buyer).post(f"/api/events/{on_sale_event.pk}/queue/").json()["queue_ticket"]
        for buyer in buyers
    ]
    line_admit(event_id=on_sale_event.pk, capacity=2, pass_seconds=600)
    token = str(RefreshToken.for_user(buyers[5]).access_token)
    return {"event": on_sale_event, "buyers": buyers, "tickets": tickets, "token": token}


def url(event) -> str:
    return f"/api/events/{event.pk}/queue/"


def test_the_lane_answers_like_the_django_view(waiting, monkeypatch, django_assert_num_queries):
    event, ticket = waiting["event"], waiting["tickets"][5]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {waiting['token']}", "HTTP_X_QUEUE_TICKET": ticket}
    django = make_auth_client(waiting["buyers"][5]).get(url(event), HTTP_X_QUEUE_TICKET=ticket).json()
    calls: list[str] = []
    real = scripts.run_script
    monkeypatch.setattr(
        "queueing.pulse.run_script", lambda name, **kw: calls.append(name) or real(name, **kw)
    )
    monkeypatch.setattr("queueing.line.run_script", lambda name, **kw: calls.append(name) or real(name, **kw))
    with django_assert_num_queries(0):
        status, response_headers, body = call(url(event), headers=headers)
    assert status == 200
    assert body == django
    assert (body["state"], body["position"], body["estimated"]) == ("waiting", 4, True)
    assert response_headers["cache-control"] == "private, no-store"
    assert response_headers["content-type"] == "application/json"
    assert response_headers["x-content-type-options"] == "nosniff"
    assert "queue_status" not in calls  # no per-buyer script
    # The page's way: the ticket alone.
    assert call(url(event), headers={"HTTP_X_QUEUE_TICKET": ticket})[2] == django


def test_the_lane_answers_nothing_but_the_estimate(waiting, monkeypatch):
    """Its own answers are only 200 "waiting" from the cursor; everything else is Django's."""
    answered: list[bytes | None] = []
    real = queue_lane.lane_answer
    monkeypatch.setattr(
        queue_lane, "lane_answer", lambda environ: answered.append(real(environ)) or answered[-1]
    )
    event, tickets = waiting["event"], waiting["tickets"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {waiting['token']}"}
    cases = [
        # (headers, path, method, expected status, expected code or state)
        ({**bearer, "HTTP_X_QUEUE_TICKET": tickets[0]}, url(event), "GET", 403, "queue_ticket_mismatch"),
        (bearer, "/api/events/999999/queue/", "GET", 404, "not_found"),
        (
            {"HTTP_X_QUEUE_TICKET": tickets[0]},
            url(event),
            "GET",
            401,
            "not_authenticated",
        ),  # admitted: exact path
        (
            {**bearer, "HTTP_X_QUEUE_TICKET": tickets[5][:-2] + "xx"},
            url(event),
            "GET",
            401,
            "queue_ticket_invalid",
        ),
        ({"HTTP_AUTHORIZATION": "Bearer forged"}, url(event), "GET", 401, None),
        ({**bearer, "HTTP_X_QUEUE_TICKET": tickets[5]}, "/api/events/999999/queue/", "GET", 404, "not_found"),
        ({"HTTP_X_QUEUE_TICKET": tickets[5]}, url(event), "POST", 401, None),  # a cookie join: Django
        (
            {**bearer, "HTTP_X_QUEUE_TICKET": tickets[5], "HTTP_HOST": "evil.example"},
            url(event),
            "GET",
            400,
            None,
        ),
    ]
    for headers, path, method, status, expected in cases:
        answered.clear()
        got_status, _headers, body = call(path, method=method, headers=headers)
        assert got_status == status, (headers, path, method, got_status, body)
        assert not any(answered), (headers, path)  # the lane gave none of these answers
        if expected and body is not None:
            assert expected in (body.get("code"), body.get("state")), body


def test_a_token_poll_without_a_ticket_is_exact_through_the_lane(waiting, monkeypatch):
    answered: list = []
    real = queue_lane.lane_answer
    monkeypatch.setattr(
        queue_lane, "lane_answer", lambda environ: answered.append(real(environ)) or answered[-1]
    )
    status, _headers, body = call(
        url(waiting["event"]), headers={"HTTP_AUTHORIZATION": f"Bearer {waiting['token']}"}
    )
    assert (status, body["position"], body["estimated"]) == (200, 4, False)
    assert answered[0] is not None


def test_the_estimate_rests_on_the_ticket_and_a_pass_on_the_token(waiting):
    """A poll from behind the cursor is answered on the strength of the queue ticket (as
    the waiting-room page's ticket-only polls are); the token sent along is only matched
    against it. Reading the line, the only way to a pass, takes a verified token."""
    event, tickets = waiting["event"], waiting["tickets"]
    status, _headers, body = call(
        url(event), headers={"HTTP_AUTHORIZATION": "Bearer not.a.token", "HTTP_X_QUEUE_TICKET": tickets[5]}
    )
    assert (status, body["state"], body["estimated"]) == (200, "waiting", True)
    # At the cursor (an admitted buyer's ticket) the same forged token gets nothing.
    status, _headers, body = call(
        url(event), headers={"HTTP_AUTHORIZATION": "Bearer not.a.token", "HTTP_X_QUEUE_TICKET": tickets[0]}
    )
    assert status == 401 and body["code"] in ("not_authenticated", "token_not_valid")


def test_an_admitted_buyer_still_learns_of_the_pass(waiting):
    event = waiting["event"]
    first = waiting["buyers"][0]
    token = str(RefreshToken.for_user(first).access_token)
    status, _headers, body = call(
        url(event),
        headers={"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_X_QUEUE_TICKET": waiting["tickets"][0]},
    )
    assert (status, body["state"], body["estimated"]) == (200, "active", False)


def test_with_an_https_redirect_the_lane_leaves_plain_http_to_django(waiting, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Django's middleware reads the setting when the handler is built.
    app = queue_lane.QueueLane(get_wsgi_application())
    event, ticket = waiting["event"], waiting["tickets"][5]
    assert call(url(event), headers={"HTTP_X_QUEUE_TICKET": ticket}, app=app)[0] == 301
    status, _headers, body = call(
        url(event), headers={"HTTP_X_QUEUE_TICKET": ticket, "HTTP_X_FORWARDED_PROTO": "https"}, app=app
    )
    assert (status, body["estimated"]) == (200, True)


def test_the_lane_joins_like_the_django_view(user_factory, on_sale_event, django_assert_num_queries):
    first, second = user_factory(), user_factory()
    make_auth_client(first).post(url(on_sale_event))
    make_auth_client(first).get(url(on_sale_event))  # warms the per-process event settings
    token = str(RefreshToken.for_user(second).access_token)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    with django_assert_num_queries(0):
        status, response_headers, body = call(url(on_sale_event), method="POST", headers=headers)
    assert (status, body["state"], body["position"], body["estimated"]) == (201, "waiting", 2, False)
    assert body["queue_ticket"] and response_headers["cache-control"] == "private, no-store"
    again = call(url(on_sale_event), method="POST", headers=headers)
    assert (again[0], again[2]["position"]) == (200, 2)
    # The Django view gives the same answer (joining again keeps the place).
    django = make_auth_client(second).post(url(on_sale_event))
    assert (django.status_code, django.json()["position"]) == (200, 2)


def test_no_altered_token_joins_through_the_lane(user_factory, on_sale_event):
    """The lane checks a newcomer's token quickly (accounts.tokens.OwnAccessTokens); a
    token it does not take goes to Django, which answers 401 with a code: never a place."""
    buyer = user_factory()
    issued = str(RefreshToken.for_user(buyer).access_token)
    for name, token in altered_tokens(issued).items():
        status, _headers, body = call(
            url(on_sale_event), method="POST", headers={"HTTP_AUTHORIZATION": f"Bearer {token}"}
        )
        assert (status, body["code"]) == (401, "token_not_valid"), name
    assert line_status(event_id=on_sale_event.pk, user_id=buyer.pk).state == "none"
    # Signed with the key but with a user id that is no number: refused too, not a 500.
    odd = odd_signed_tokens(issued)["user id not a number"]
    status, _headers, body = call(
        url(on_sale_event), method="POST", headers={"HTTP_AUTHORIZATION": f"Bearer {odd}"}
    )
    assert (status, body["code"]) == (401, "token_not_valid")
    # Control: the issued token itself joins (so the 401s above are the tokens' doing).
    assert (
        call(url(on_sale_event), method="POST", headers={"HTTP_AUTHORIZATION": f"Bearer {issued}"})[0] == 201
    )


@pytest.mark.parametrize("language", ["en", "ko"])
def test_a_refused_join_is_answered_by_the_lane_as_django_answers_it(user_factory, on_sale_event, language):
    """After a sell-out nearly every join is a refusal: the lane gives it, with Django's
    status, body (in the buyer's language), language headers and security headers."""
    sell_out(on_sale_event)
    token = str(RefreshToken.for_user(user_factory()).access_token)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_ACCEPT_LANGUAGE": language}
    django = call(url(on_sale_event), method="POST", headers=headers, app=get_wsgi_application())
    lane = call(url(on_sale_event), method="POST", headers=headers)
    assert lane[0] == django[0] == 409
    assert lane[2] == django[2] and lane[2]["code"] == "sold_out"
    assert lane[2]["detail"].startswith("All seats of this event are sold.") == (language == "en")
    # The language cookie (the site's language switch) wins over the header, as in Django.
    other = "ko" if language == "en" else "en"
    cookie = {**headers, "HTTP_COOKIE": f"{settings.LANGUAGE_COOKIE_NAME}={other}"}
    by_cookie = call(url(on_sale_event), method="POST", headers=cookie)
    assert by_cookie[1]["content-language"] == other
    assert (
        by_cookie[2] == call(url(on_sale_event), method="POST", headers=cookie, app=get_wsgi_application())[2]
    )
    for name in ("content-type", "cache-control", "vary", "content-language", "x-content-type-options"):
        assert lane[1][name] == django[1][name], name
    # Unknown event and closed sales too (a refused join changed nothing).
    assert call("/api/events/999999/queue/", method="POST", headers=headers)[2]["code"] == "not_found"
    on_sale_event.sales_close_at = timezone.now() - timedelta(seconds=1)
    on_sale_event.save()
    assert call(url(on_sale_event), method="POST", headers=headers)[2]["code"] == "sales_closed"


def test_the_lane_takes_joins_with_a_proof_of_work_answer_and_django_gets_other_bodies(
    user_factory, on_sale_event, monkeypatch
):
    import altcha

    from events.models import Event
    from events.services.proof_of_work import challenge_create

    Event.objects.filter(pk=on_sale_event.pk).update(pow_difficulty=500)
    buyer, other = user_factory(), user_factory()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(buyer).access_token}"}
    challenge = altcha.Challenge.from_dict(
        challenge_create(event_id=on_sale_event.pk, user_id=buyer.pk, difficulty=500)
    )
    answer = json.dumps(
        {"altcha": altcha.Payload(challenge, altcha.solve_challenge(challenge)).to_base64()}
    ).encode()
    answered: list[Any] = []
    real = queue_lane.lane_answer
    monkeypatch.setattr(
        queue_lane, "lane_answer", lambda environ: answered.append(real(environ)) or answered[-1]
    )

    required = call(url(on_sale_event), method="POST", headers=bearer)
    joined = call(url(on_sale_event), method="POST", headers=bearer, body=answer)
    call(url(on_sale_event), method="DELETE", headers=bearer)
    replayed = call(url(on_sale_event), method="POST", headers=bearer, body=answer)
    by_lane = [result is not None for result in answered]
    # Bodies the lane leaves to Django, which must still be able to read them.
    other_bearer = {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(other).access_token}"}
    not_a_string = call(url(on_sale_event), method="POST", headers=other_bearer, body=b'{"altcha": 5}')
    broken = call(url(on_sale_event), method="POST", headers=other_bearer, body=b'{"altcha": ')

    assert (required[0], required[2]["code"]) == (400, "pow_required")
    assert joined[0] == 201, joined
    assert (replayed[0], replayed[2]["code"]) == (400, "pow_replayed")
    assert by_lane[:2] == [True, True] and by_lane[-1] is True  # the DELETE went to Django
    assert (not_a_string[0], not_a_string[2]["code"]) == (400, "pow_invalid")
    assert (broken[0], broken[2]["code"]) == (400, "malformed")


def test_nginx_question_before_a_refused_join_is_answered_alike_by_the_lane_and_django(
    user_factory, on_sale_event, settings
):
    """``/queue/join-refusal/`` (nginx's question, deploy/nginx/queue_edge.js): "refusable"
    with the 409 body a join would get in every language, kept by nginx for
    QUEUE_EDGE_SECONDS and never past the token's expiry; not refusable (and not to be
    kept) for a pass holder; a sign of life of a buyer in line; 401 without a valid token."""
    path = f"/api/events/{on_sale_event.pk}/queue/join-refusal/"
    buyer, holder = user_factory(), user_factory()
    for user in (holder, buyer):
        make_auth_client(user).post(url(on_sale_event))
    line_admit(event_id=on_sale_event.pk, capacity=1, pass_seconds=600)
    sell_out(on_sale_event)
    token = RefreshToken.for_user(buyer).access_token
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    seen_key, ten_minutes_ago = EventKeys(on_sale_event.pk).seen, (time.time() - 600) * 1000
    get_redis().zadd(seen_key, {str(buyer.pk): ten_minutes_ago}, xx=True)
    lane = call(path, headers=headers)
    assert get_redis().zscore(seen_key, str(buyer.pk)) > ten_minutes_ago + 590_000  # seen now
    django = call(path, headers=headers, app=get_wsgi_application())
    assert lane[0] == django[0] == 200 and lane[2] == django[2]
    assert lane[1]["x-accel-expires"] == django[1]["x-accel-expires"] == str(settings.QUEUE_EDGE_SECONDS)
    assert lane[1]["cache-control"] == django[1]["cache-control"] == "private, no-store"
    assert lane[2]["refusable"] is True and set(lane[2]["refusals"]) == {"en", "ko"}
    for language in ("en", "ko"):
        joined = call(
            url(on_sale_event), method="POST", headers={**headers, "HTTP_ACCEPT_LANGUAGE": language}
        )
        assert json.loads(lane[2]["refusals"][language]) == joined[2] and joined[0] == 409
    # A token about to expire: kept no longer than it lives.
    short = RefreshToken.for_user(buyer).access_token
    short.set_exp(lifetime=timedelta(seconds=20))
    answer = call(path, headers={"HTTP_AUTHORIZATION": f"Bearer {short}"})
    assert 18 <= int(answer[1]["x-accel-expires"]) <= 20
    # The pass holder's join is answered otherwise: nothing to keep.
    holder_headers = {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(holder).access_token}"}
    for app in (gunicorns_application, get_wsgi_application()):
        status, answer_headers, body = call(path, headers=holder_headers, app=app)
        assert (status, body) == (200, {"refusable": False}) and "x-accel-expires" not in answer_headers
    # No valid token: Django's 401, never an answer.
    forged = altered_tokens(str(token))["another key"]
    assert call(path, headers={"HTTP_AUTHORIZATION": f"Bearer {forged}"})[0] == 401
    assert call(path)[0] == 401
