"""Bad input: generated requests against every operation of the OpenAPI schema, bodies
too large, injection strings, odd unicode, empty and huge values. Whatever arrives, the
answer is a 4xx with the error body of API.md, never a 500; text is stored verbatim and
shown escaped.

The generated part uses schemathesis against the WSGI application in-process (no
server): for each operation, positive cases (valid by the schema) and negative cases
(violating it), each with path parameters left to the generator and, where the path
has any, pinned to a real event / booking so that the deeper code runs too. Scale with
``SCHEMATHESIS_MAX_EXAMPLES`` (per operation, mode and pinning; default 25);
``SCHEMATHESIS_RANDOM=1`` explores new cases on every run instead of a fixed seed. The
figure is printed as a line starting with ``SCHEMATHESIS-FIGURE`` (shown with ``-s``).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core import mail
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis import GenerationMode

from accounts.models import User
from booking.services import booking_confirm, seats_hold
from booking.tests.conftest import admit_users, seat_ids_of
from conftest import make_auth_client
from events.models import Event

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
RANDOM = os.environ.get("SCHEMATHESIS_RANDOM", "") == "1"

SQL_INJECTION = "Robert'); DROP TABLE accounts_user;-- \" OR 1=1 --"
SCRIPT_INJECTION = "<script>alert('x')</script><img src=x onerror=alert(1)>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
ODD_UNICODE = "이름 \u202etxt.exe 🎫 Z\u0351\u0300a\u0489l\u0308go e\u0301"


# --- generated cases against every operation ------------------------------------------------


@pytest.fixture
def api_schema() -> Any:
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


def _pinned_path_parameters(operation: Any, *, event_id: int, booking_code: str) -> dict[str, Any] | None:
    names = {parameter.name for parameter in operation.path_parameters}
    if not names:
        return None
    known = {"event_id": event_id, "code": booking_code}
    return {name: known[name] for name in names if name in known} or None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_generated_requests_to_every_operation_never_get_a_server_error(
    api_schema, user_factory, event_factory, django_capture_on_commit_callbacks, eager_celery
):
    # A staff buyer: every operation is reachable (staff endpoints too), with a live pass,
    # a held seat and a booking whose code the pinned cases use.
    user = user_factory(is_staff=True)
    event = event_factory(rows=4, seats_per_row=10)
    seats = seat_ids_of(event)
    admit_users(event, user)
    seats_hold(event_id=event.pk, user_id=user.pk, seat_ids=seats[:1])
    with django_capture_on_commit_callbacks(execute=True):
        booking, _ = booking_confirm(user_id=user.pk, event_id=event.pk, seat_ids=seats[:1])
    admit_users(event, user)
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}

    operations = [result.ok() for result in api_schema.get_all_operations()]
    calls: Counter[str] = Counter()
    per_mode: Counter[str] = Counter()
    server_errors: list[tuple[str, int, str, str]] = []
    unsatisfiable: list[str] = []
    current = {"mode": ""}
    by_status: Counter[int] = Counter()
    started = time.monotonic()
    for operation in operations:
        pinned = _pinned_path_parameters(operation, event_id=event.pk, booking_code=booking.code)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in [None, pinned] if pinned else [None]:
                strategy = operation.as_strategy(mode, headers=headers, path_parameters=path_parameters)

                @hypothesis_settings(
                    max_examples=MAX_EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=not RANDOM,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate],
                )
                @given(case=strategy)
                def call(case: Any) -> None:
                    response = case.call()
                    calls[case.operation.label] += 1
                    per_mode[current["mode"]] += 1
                    by_status[response.status_code] += 1
                    if response.status_code >= 500:
                        server_errors.append(
                            (
                                case.operation.label,
                                response.status_code,
                                case.as_curl_command(),
                                response.text[:300],
                            )
                        )

                current["mode"] = mode.value
                try:
                    call()
                except Unsatisfiable:
                    # Nothing negative to say about an operation without inputs (or with
                    # every input pinned): no case can be generated in that mode.
                    unsatisfiable.append(
                        f"{operation.label} {mode.value} pinned={path_parameters is not None}"
                    )
    total = sum(calls.values())
    print(
        f"\nSCHEMATHESIS-FIGURE {len(server_errors)} server errors in {total} generated requests "
        f"({per_mode['positive']} positive, {per_mode['negative']} negative) over {len(calls)} "
        f"operations in {time.monotonic() - started:.0f} s"
    )
    print("SCHEMATHESIS answers by status:", dict(sorted(by_status.items())))
    print("SCHEMATHESIS no case could be generated for:", unsatisfiable)
    assert not server_errors, server_errors[:10]
    # Every operation of the schema was exercised.
    assert set(calls) == {operation.label for operation in operations}
    assert len(operations) >= 20


# --- oversized bodies -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/auth/register/"),
        ("post", "/api/auth/token/"),
        ("post", "/api/auth/token/refresh/"),
        ("post", "/api/bookings/"),
        ("post", "/api/events/1/holds/"),
        ("patch", "/api/staff/events/1/rush/"),
    ],
)
def test_a_body_over_the_limit_is_413_before_anything_reads_it(method, path, settings, user):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    client = make_auth_client(user)
    body = json.dumps({"seat_ids": [1] * 40_000, "name": "x" * 1000})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = getattr(client, method)(path, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


@pytest.mark.django_db
def test_oversized_form_posts_to_pages_are_refused_not_500(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    response = client.post("/accounts/login/", {"username": "a@example.com", "password": "p" * 100_000})
    assert response.status_code in (400, 413)


# --- injection strings: stored verbatim, shown escaped --------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", [SQL_INJECTION, SCRIPT_INJECTION, ODD_UNICODE])
def test_register_stores_hostile_names_verbatim(api_client, name):
    response = api_client.post(
        "/api/auth/register/",
        {"email": "hostile@example.com", "password": "a long enough passphrase", "name": name},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == name.strip()
    assert User.objects.get(email="hostile@example.com").name == name.strip()
    assert User.objects.count() == 1  # the SQL did not run


@pytest.mark.django_db
def test_a_script_in_an_event_title_from_the_admin_is_escaped_on_every_page(
    client, staff_user, user_factory, django_capture_on_commit_callbacks, eager_celery
):
    """Staff type the title in the admin; buyers see it on the catalogue, the event page,
    the seat picker, their tickets and in the ticket mail: escaped everywhere."""
    _check_title_everywhere(client, staff_user, user_factory, django_capture_on_commit_callbacks)


def _check_title_everywhere(client: Any, staff_user: Any, user_factory: Any, capture: Any) -> None:
    now = timezone.localtime()
    title = f"{SCRIPT_INJECTION} {SQL_INJECTION}"
    client.force_login(staff_user)
    created = client.post(
        "/admin/events/event/add/",
        {
            "title": title,
            "venue": SCRIPT_INJECTION,
            "description": SCRIPT_INJECTION,
            "starts_at_0": (now + timedelta(days=30)).strftime("%Y-%m-%d"),
            "starts_at_1": "19:00:00",
            "sales_open_at_0": (now - timedelta(days=1)).strftime("%Y-%m-%d"),
            "sales_open_at_1": "10:00:00",
            "sales_close_at_0": (now + timedelta(days=29)).strftime("%Y-%m-%d"),
            "sales_close_at_1": "10:00:00",
            "hold_seconds": 300,
            "max_tickets_per_user": 4,
            "queue_capacity": 100,
            "queue_pass_seconds": 600,
            "pow_difficulty": 0,
            "review_threshold": 0,
            "waiting_list_offer_minutes": 15,
            "waiting_list_gather_seconds": 30,
            "booking_fee": "0",
            "cancellation_deadline_hours": 0,
            "cancellation_fees": "[]",
            "is_published": "on",
        },
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    event = Event.objects.get()
    assert event.title == title and event.venue == SCRIPT_INJECTION
    from events.services.catalogue import SectionSpec, seats_generate

    with capture(execute=True):
        seats_generate(
            event=event, sections=[SectionSpec(name="A", grade="R", price="1000")], rows=1, seats_per_row=2
        )

    buyer = user_factory(name=SCRIPT_INJECTION)
    client.force_login(buyer)
    admit_users(event, buyer)
    seat = seat_ids_of(event, 1)[0]
    seats_hold(event_id=event.pk, user_id=buyer.pk, seat_ids=[seat])
    with capture(execute=True):
        booking, _ = booking_confirm(user_id=buyer.pk, event_id=event.pk, seat_ids=[seat])
    admit_users(event, buyer)
    for path in (
        "/",
        f"/events/{event.pk}/",
        f"/events/{event.pk}/pick/",
        "/my/tickets/",
        f"/my/tickets/{booking.code}/",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        html = page.content.decode()
        assert "<script>alert" not in html, path
        assert "onerror=alert(1)>" not in html, path
        assert ESCAPED_SCRIPT in html, path
    api_event = APIClient().get(f"/api/events/{event.pk}/").json()
    assert api_event["title"] == title  # JSON carries it verbatim; escaping is the page's job
    assert api_event["description"] == SCRIPT_INJECTION
    (message,) = mail.outbox
    html_mail = message.alternatives[0][0]
    assert "<script>alert" not in html_mail
    assert ESCAPED_SCRIPT in html_mail
    assert SCRIPT_INJECTION in message.body  # the text part is plain text: verbatim
    assert "\n" not in message.subject and "&lt;" not in message.subject
    assert SCRIPT_INJECTION in message.subject


# --- unicode, empty and huge values: 400, never 500 -----------------------------------------


HUGE = "x" * 10_000

REGISTER_CASES = [
    {"email": "", "password": "", "name": ""},
    {"email": "a@example.com", "password": "a long enough passphrase", "name": ""},
    {"email": "a@example.com", "password": "a long enough passphrase", "name": "   "},
    {"email": "a@example.com", "password": "a long enough passphrase", "name": HUGE},
    {"email": HUGE + "@example.com", "password": "a long enough passphrase", "name": "n"},
    {"email": "이메일@예시.한국", "password": "a long enough passphrase", "name": "n"},
    {"email": "a\x00b@example.com", "password": "a long enough passphrase", "name": "n"},
    {"email": "a@example.com", "password": "a long enough passphrase", "name": "nul\x00byte"},
    {"email": "a@example.com", "password": "\ud800", "name": "n"},
    {"email": ["a@example.com"], "password": {"x": 1}, "name": 7},
    {"email": None, "password": None, "name": None},
]


@pytest.mark.django_db
@pytest.mark.parametrize("body", REGISTER_CASES)
def test_register_refuses_bad_values_with_400(api_client, body):
    response = api_client.post(
        "/api/auth/register/", data=json.dumps(body), content_type="application/json", REMOTE_ADDR="10.9.9.9"
    )
    assert response.status_code == 400, (body, response.content[:300])
    assert response.json()["code"] in ("invalid", "malformed")


@pytest.mark.django_db
def test_register_accepts_a_huge_password(api_client):
    # A 10,000-character password is a valid one; the hashing cost stays bounded (PBKDF2
    # pre-hashes long keys, and the body limit caps the length).
    response = api_client.post(
        "/api/auth/register/", {"email": "long@example.com", "password": HUGE, "name": "Long"}, format="json"
    )
    assert response.status_code == 201


BODY_CASES: list[Any] = [
    {},
    {"event_id": "", "seat_ids": []},
    {"event_id": None, "seat_ids": None},
    {"event_id": -1, "seat_ids": [-1, 0]},
    {"event_id": 1.5, "seat_ids": ["1e309"]},
    {"event_id": 1, "seat_ids": list(range(1, 5000))},
    {"event_id": 1, "seat_ids": [{"id": 1}]},
    {"event_id": 1, "seat_ids": "1,2,3"},
    {"event_id": HUGE, "seat_ids": [HUGE]},
    [1, 2, 3],
    "a string",
    None,
]


@pytest.mark.django_db
@pytest.mark.parametrize("body", BODY_CASES)
def test_booking_and_hold_bodies_that_make_no_sense_are_400(user, on_sale_event, body):
    client = make_auth_client(user)
    admit_users(on_sale_event, user)
    for path in ("/api/bookings/", f"/api/events/{on_sale_event.pk}/holds/"):
        response = client.post(path, data=json.dumps(body), content_type="application/json")
        assert response.status_code == 400, (path, body, response.content[:300])
        assert response.json()["code"] in ("invalid", "malformed")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        # Past 64 bits: no such event / seat (SQLite cannot even bind such an integer).
        ("bookings", {"event_id": 2**70, "seat_ids": [1]}),
        ("bookings", {"event_id": "event", "seat_ids": [2**70]}),
        ("holds", {"seat_ids": [2**70]}),
        # Other scripts' digits are digits to Python's int(): "٣" is seat 3, a real one.
        ("bookings", {"event_id": "event", "seat_ids": ["٣"]}),
    ],
)
def test_numbers_out_of_range_or_in_other_scripts_are_4xx(user, on_sale_event, endpoint, body):
    client = make_auth_client(user)
    admit_users(on_sale_event, user)
    if body.get("event_id") == "event":
        body = {**body, "event_id": on_sale_event.pk}
    path = "/api/bookings/" if endpoint == "bookings" else f"/api/events/{on_sale_event.pk}/holds/"
    response = client.post(path, data=json.dumps(body), content_type="application/json")
    assert 400 <= response.status_code < 500, (path, body, response.content[:300])
    assert "code" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/bookings/%00/",
        "/api/bookings/" + "x" * 5000 + "/",
        "/api/bookings/%F0%9F%8E%AB/",
        "/api/bookings/'%20OR%201=1--/",
        "/api/events/99999999999999999999999999/",
        "/api/events/99999999999999999999999999/seats/",
        "/api/events/99999999999999999999999999/queue/",
        "/api/events/99999999999999999999999999/holds/",
        "/api/staff/events/99999999999999999999999999/rush/",
        "/events/99999999999999999999999999/",
        "/my/tickets/%00/",
    ],
)
def test_odd_paths_are_404_never_500(staff_user, path, client):
    if path.startswith("/api/"):
        response = make_auth_client(staff_user).get(path)
    else:
        client.force_login(staff_user)
        response = client.get(path)
    assert response.status_code == 404, (path, response.status_code, response.content[:300])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("HTTP_IDEMPOTENCY_KEY", ""),
        ("HTTP_IDEMPOTENCY_KEY", "k" * 65),
        ("HTTP_IDEMPOTENCY_KEY", "   "),
        ("HTTP_AUTHORIZATION", "Bearer " + "a" * 10_000),
        ("HTTP_AUTHORIZATION", "Bearer \u00e9\u00e9"),
        ("HTTP_AUTHORIZATION", "Basic Zm9vOmJhcg=="),
        ("HTTP_ACCEPT_LANGUAGE", "xx-" + "y" * 500),
        ("CONTENT_TYPE", "application/json; charset=utf-7"),
    ],
)
def test_odd_headers_on_confirm_are_4xx(user, on_sale_event, header, value):
    client = make_auth_client(user)
    response = client.post(
        "/api/bookings/",
        data=json.dumps({"event_id": on_sale_event.pk, "seat_ids": [1]}),
        content_type="application/json",
        **{header: value},
    )
    assert 400 <= response.status_code < 500, (header, response.status_code, response.content[:300])
    assert "code" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"paused": "maybe"},
        {"capacity": 2**70},
        {"capacity": -5},
        {"pass_seconds": "ten"},
        {"capacity": None},
        {},
        {"unknown": 1},
    ],
)
def test_staff_controls_refuse_bad_values_with_400(staff_user, on_sale_event, body):
    response = make_auth_client(staff_user).patch(
        f"/api/staff/events/{on_sale_event.pk}/rush/", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400, (body, response.content[:300])
    assert response.json()["code"] == "invalid"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", " ", HUGE, "nul\x00byte"])
def test_signup_page_refuses_bad_names_with_the_form_not_500(client, name):
    response = client.post(
        "/accounts/signup/",
        {
            "name": name,
            "email": "page@example.com",
            "password": "a long enough passphrase",
            "password_confirm": "a long enough passphrase",
        },
    )
    assert response.status_code == 200  # the form again, with the error next to the field
    assert not User.objects.filter(email="page@example.com").exists()


@pytest.mark.django_db
def test_a_line_break_or_ampersand_in_a_title_still_gives_a_plain_one_line_subject(
    user, event_factory, eager_celery, django_capture_on_commit_callbacks
):
    """A title pasted with a line break used to make the ticket mail unsendable (a header
    with a newline raises BadHeaderError on every retry), and "&" arrived as "&amp;"."""
    event = event_factory(title="Rock & Roll\nNight <live>")
    admit_users(event, user)
    seat = seat_ids_of(event, 1)
    seats_hold(event_id=event.pk, user_id=user.pk, seat_ids=seat)
    with django_capture_on_commit_callbacks(execute=True):
        booking, _ = booking_confirm(user_id=user.pk, event_id=event.pk, seat_ids=seat)
    (message,) = mail.outbox
    assert message.subject == f"Your tickets for Rock & Roll Night <live> (booking {booking.code})"
    message.message()  # the headers serialise: no BadHeaderError
    assert "Rock &amp; Roll" in message.alternatives[0][0]  # the HTML part stays escaped
