"""The "Get tickets" button while signed out (issue 16, item 1): one page to sign up (or
log in), then the event's waiting room with the buyer already in line, without another
press.

The join happens on the buyer's first arrival at the waiting room after a sign-up or
log-in whose ``next`` is that room: a one-time mark in the session, set only by those two
CSRF-checked POSTs (never by a URL), and only for a ``next`` that is safe (same host)."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.helpers import PASSWORD
from conftest import make_auth_client
from events.views.waiting_room import JOIN_ON_ARRIVAL_KEY, JOIN_ON_ARRIVAL_SECONDS

pytestmark = pytest.mark.django_db

SIGNUP = "/accounts/signup/"
LOGIN = "/accounts/login/"
NEW_PASSWORD = "Correct-Horse-Battery-42"


def room(event_id: int) -> str:
    return reverse("events:waiting_room", args=[event_id])


def queue_api(event_id: int) -> str:
    return f"/api/events/{event_id}/queue/"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def sign_up(client: Client, next_url: str, email: str = "new.buyer@example.com"):
    page = client.get(SIGNUP, {"next": next_url})
    return client.post(
        SIGNUP,
        {
            "csrfmiddlewaretoken": csrf_of(page.content.decode()),
            "name": "New Buyer",
            "email": email,
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
            "next": next_url,
        },
    )


def in_line(client: Client, event_id: int) -> bool:
    return client.get(queue_api(event_id)).status_code == 200


def test_get_tickets_signed_out_leads_to_sign_up_with_log_in_on_the_same_page(client, on_sale_event):
    response = client.get(room(on_sale_event.pk))

    assert response.status_code == 302
    assert response["Location"] == f"{SIGNUP}?next={room(on_sale_event.pk)}"
    html = client.get(response["Location"]).content.decode()
    assert f"Tickets for {on_sale_event.title}" in html
    # Sign-up first, then a compact log-in form for returning buyers, each with its ids.
    assert html.index('id="signup-heading"') < html.index('id="login-heading"')
    assert '<label for="id_email"' in html and '<label for="login_username"' in html
    assert '<label for="id_password"' in html and '<label for="login_password"' in html
    login_form = re.search(r'<form method="post" action="/accounts/login/".*?</form>', html, re.S).group(0)
    assert f'name="next" value="{room(on_sale_event.pk)}"' in login_form


def test_sign_up_puts_the_new_buyer_in_line_without_another_press(on_sale_event, user_factory):
    make_auth_client(user_factory()).post(queue_api(on_sale_event.pk))  # someone is ahead
    client = Client(enforce_csrf_checks=True)

    response = sign_up(client, room(on_sale_event.pk))

    assert response.status_code == 302
    assert response["Location"] == room(on_sale_event.pk)
    assert not in_line(client, on_sale_event.pk)  # not yet: on arrival
    html = client.get(room(on_sale_event.pk)).content.decode()
    assert 'data-state="waiting"' in html
    assert 'data-field="position">2<' in html
    assert "already in line" not in html
    assert in_line(client, on_sale_event.pk)

    # The mark is spent: after leaving, a reload does not join again.
    client.post(room(on_sale_event.pk), {"action": "leave", "csrfmiddlewaretoken": csrf_of(html)})
    assert 'data-state="none"' in client.get(room(on_sale_event.pk)).content.decode()
    assert not in_line(client, on_sale_event.pk)


def test_log_in_from_the_sign_up_page_puts_the_buyer_in_line(on_sale_event, user):
    client = Client(enforce_csrf_checks=True)
    page = client.get(SIGNUP, {"next": room(on_sale_event.pk)}).content.decode()

    response = client.post(
        LOGIN,
        {
            "csrfmiddlewaretoken": csrf_of(page),
            "username": user.email,
            "password": PASSWORD,
            "next": room(on_sale_event.pk),
        },
    )

    assert response.status_code == 302
    assert response["Location"] == room(on_sale_event.pk)
    html = client.get(room(on_sale_event.pk)).content.decode()
    assert 'data-state="waiting"' in html
    assert 'data-field="position">1<' in html


@pytest.mark.parametrize(
    "unsafe",
    [
        "https://evil.example{room}",
        "//evil.example{room}",
        "https:///evil.example{room}",
        "/\\evil.example{room}",
    ],
)
def test_an_off_site_next_is_neither_followed_nor_joined(client, on_sale_event, unsafe):
    next_url = unsafe.format(room=room(on_sale_event.pk))

    response = sign_up(client, next_url)

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert JOIN_ON_ARRIVAL_KEY not in client.session
    client.get(room(on_sale_event.pk))
    assert not in_line(client, on_sale_event.pk)


def test_another_next_joins_nothing_and_a_plain_visit_does_not_join(client, on_sale_event):
    response = sign_up(client, f"/events/{on_sale_event.pk}/")

    assert response["Location"] == f"/events/{on_sale_event.pk}/"
    assert JOIN_ON_ARRIVAL_KEY not in client.session
    html = client.get(room(on_sale_event.pk)).content.decode()
    assert 'data-state="none"' in html
    assert not in_line(client, on_sale_event.pk)


def test_the_mark_is_for_one_event_and_goes_stale(client, event_factory):
    first, second = event_factory(title="First"), event_factory(title="Second")
    sign_up(client, room(first.pk))

    client.get(room(second.pk))  # another room: joins nothing, keeps the mark
    assert not in_line(client, second.pk)
    session = client.session
    session[JOIN_ON_ARRIVAL_KEY] = {
        "event_id": first.pk,
        "at": int(time.time()) - JOIN_ON_ARRIVAL_SECONDS - 5,
    }
    session.save()
    client.get(room(first.pk))
    assert not in_line(client, first.pk)
    assert JOIN_ON_ARRIVAL_KEY not in client.session


def test_already_in_line_on_another_device_keeps_the_place_and_says_so(on_sale_event, user, user_factory):
    phone = make_auth_client(user)
    phone.post(queue_api(on_sale_event.pk))  # joined on the phone
    make_auth_client(user_factory()).post(queue_api(on_sale_event.pk))  # someone after
    laptop = Client()
    page = laptop.get(LOGIN, {"next": room(on_sale_event.pk)}).content.decode()
    laptop.post(
        LOGIN,
        {
            "csrfmiddlewaretoken": csrf_of(page),
            "username": user.email,
            "password": PASSWORD,
            "next": room(on_sale_event.pk),
        },
    )

    html = laptop.get(room(on_sale_event.pk)).content.decode()

    assert 'data-field="position">1<' in html  # the place from the phone
    assert "You were already in line for this event (on another device or in another tab)" in html
    assert "Your place is kept" in html
    # Said once: the next visit from this browser is an ordinary one.
    assert "already in line" not in laptop.get(room(on_sale_event.pk)).content.decode()


def test_already_in_line_is_said_in_korean(on_sale_event, user):
    make_auth_client(user).post(queue_api(on_sale_event.pk))
    client = Client()
    client.force_login(user)

    html = client.get(room(on_sale_event.pk), HTTP_ACCEPT_LANGUAGE="ko").content.decode()

    assert '<html lang="ko">' in html
    assert 'class="queue-notice queue-elsewhere"' in html


def test_with_proof_of_work_the_page_joins_once_the_browser_check_is_done(client, event_factory):
    event = event_factory(pow_difficulty=20_000)

    sign_up(client, room(event.pk))
    html = client.get(room(event.pk)).content.decode()

    # Not joined by the server (a proof is needed); the form sends itself when solved.
    assert not in_line(client, event.pk)
    assert re.search(r"<form [^>]*data-pow data-pow-autojoin", html)
    # Only on that arrival: a reload shows the ordinary form.
    assert "data-pow-autojoin" not in client.get(room(event.pk)).content.decode()


def test_a_head_request_neither_joins_nor_spends_the_mark(client, on_sale_event):
    sign_up(client, room(on_sale_event.pk))

    client.head(room(on_sale_event.pk))
    assert not in_line(client, on_sale_event.pk)

    client.get(room(on_sale_event.pk))
    assert in_line(client, on_sale_event.pk)
