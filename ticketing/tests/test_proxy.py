"""The app behind a real nginx configured from ``deploy/nginx/`` (``bench/proxy.Nginx``):
public reads are micro-cached and shared, and nothing user-specific is ever cached.

Two kinds of upstream stand behind the proxy:

- Django's live server (``nginx_proxy``): the real app, real database and Redis. These
  tests show what a buyer sees through the proxy: two users' authenticated answers and
  pages are never shared, an anonymous visitor never gets someone's page, the public
  seat map is served from the cache, follows a change within about a second and
  answers 304 to its ETag, ``/metrics`` is refused, and the login guard sees the
  client's address through ``X-Forwarded-For``.
- ``ScriptedUpstream``: a small HTTP server that answers with the headers a test asks
  for and echoes what reached it. The app cannot be made to mislabel its answers (a
  public path setting a cookie, an authenticated path saying "public"), yet the proxy's
  promise is that even then nothing is stored; these tests hold the nginx configuration
  to that promise on its own.

No test here is skipped when nginx is missing: they fail, naming the package to install.
"""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from bench.proxy import Nginx

pytestmark = [pytest.mark.slow]

# $upstream_cache_status values meaning "answered from the cache, not by the app".
FROM_CACHE = {"HIT", "STALE", "UPDATING", "REVALIDATED"}
# The seat map may be served stale for max-age (1 s) + stale-while-revalidate (1 s):
# a change must show within that, plus a generous margin for a loaded CI machine.
SEAT_MAP_STALENESS_BOUND_SECONDS = 4.0
REQUEST_TIMEOUT_SECONDS = 10


# --- HTTP through the proxy -------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []

    @property
    def cache_status(self) -> str | None:
        return self.header("X-Cache-Status")

    @property
    def text(self) -> str:
        data = gzip.decompress(self.body) if self.header("Content-Encoding") == "gzip" else self.body
        return data.decode()

    def json(self) -> Any:
        return json.loads(self.text)


def fetch(
    base: Nginx | str,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | dict[str, Any] | None = None,
    source: str = "127.0.0.1",
) -> Reply:
    """One request on a fresh connection, bytes as they came (no decompression, no
    proxy settings from the environment); ``source`` is the client's own address, any
    127.x.y.z on Linux, so that the app can tell clients apart behind the proxy."""
    url = base.url if isinstance(base, Nginx) else base
    host, _, port = url.removeprefix("http://").partition(":")
    headers = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    connection = http.client.HTTPConnection(
        host, int(port), timeout=REQUEST_TIMEOUT_SECONDS, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Reply(status=response.status, headers=response.headers, body=response.read())
    finally:
        connection.close()


def bearer(user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def session_cookie(user: Any) -> dict[str, str]:
    """A real session of ``user`` (saved in the test database, which the live server
    reads), sent the way a browser sends it."""
    client = Client()
    client.force_login(user)
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}


def assert_not_from_cache(reply: Reply, what: str) -> None:
    assert reply.cache_status not in FROM_CACHE, (
        f"{what} answered from the proxy cache ({reply.cache_status})"
    )


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def nginx_proxy(live_server: Any, tmp_path: Path) -> Iterator[Nginx]:
    """A real nginx (deploy/nginx/ticketing.conf.template) in front of Django's live
    server, with an empty cache for each test."""
    upstream = live_server.url.removeprefix("http://").replace("localhost", "127.0.0.1")
    with Nginx(upstreams=[upstream], run_dir=tmp_path / "nginx") as proxy:
        yield proxy


@dataclass
class ScriptedUpstream:
    """An HTTP server that answers every request with ``{"n": <count>, "path": ...,
    "version": ..., "headers": {...}}`` and the response headers ``script(path)`` returns (default:
    none), and remembers what reached it."""

    script: Callable[[str, dict[str, str]], dict[str, str]] = field(default=lambda path, headers: {})
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                upstream.seen.append((self.command, self.path, headers))
                body = json.dumps(
                    {
                        "n": len(upstream.seen),
                        "path": self.path,
                        "version": self.request_version,
                        "headers": headers,
                    }
                ).encode()
                extra = upstream.script(self.path, headers)
                if extra.get("Content-Encoding") == "gzip":
                    body = gzip.compress(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test output is for the assertions

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1})
        self.thread.daemon = True
        self.thread.start()

    def requests_to(self, path: str) -> int:
        return sum(1 for _, seen_path, _ in self.seen if seen_path == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted_upstream() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream()
    yield upstream
    upstream.close()


@pytest.fixture
def scripted_proxy(scripted_upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[Nginx]:
    with Nginx(upstreams=[scripted_upstream.address], run_dir=tmp_path / "nginx") as proxy:
        yield proxy


PUBLIC_FOR_A_MINUTE = {"Cache-Control": "public, max-age=60"}


# --- the app behind the proxy -------------------------------------------------------------


@dataclass
class Sale:
    """An on-sale event, buyer A (admitted, with a booking) and buyer B (still waiting),
    set up through the proxy the way their browsers would."""

    event: Any
    a: Any
    b: Any
    booking_code: str


def unique_name(first: str) -> str:
    return f"{first} Proxytest{uuid.uuid4().hex[:6]}"


@pytest.fixture
def sale(nginx_proxy: Nginx, event_factory: Any, user_factory: Any, eager_celery: None) -> Sale:
    from events.tasks import admit_on_sale_events

    event = event_factory(capacity=1)
    a = user_factory(name=unique_name("Alice"))
    b = user_factory(name=unique_name("Bob"))
    path = f"/api/events/{event.pk}/queue/"
    assert fetch(nginx_proxy, path, method="POST", headers=bearer(a)).status == 201
    assert fetch(nginx_proxy, path, method="POST", headers=bearer(b)).status == 201
    admit_on_sale_events()  # capacity 1: A (first in line) is admitted, B keeps waiting
    seat = event.seats.order_by("pk").first().pk
    held = fetch(
        nginx_proxy,
        f"/api/events/{event.pk}/holds/",
        method="POST",
        headers=bearer(a),
        body={"seat_ids": [seat]},
    )
    assert held.status == 201, held.body
    booked = fetch(
        nginx_proxy,
        "/api/bookings/",
        method="POST",
        headers=bearer(a),
        body={"event_id": event.pk, "seat_ids": [seat]},
    )
    assert booked.status == 201, booked.body
    return Sale(event=event, a=a, b=b, booking_code=booked.json()["code"])


@pytest.mark.django_db(transaction=True)
def test_two_users_authenticated_api_answers_are_never_shared(nginx_proxy: Nginx, sale: Sale) -> None:
    event_id, code = sale.event.pk, sale.booking_code
    for round_number in range(3):  # back to back, well within any micro-cache lifetime
        me_a = fetch(nginx_proxy, "/api/auth/me/", headers=bearer(sale.a))
        me_b = fetch(nginx_proxy, "/api/auth/me/", headers=bearer(sale.b))
        assert (me_a.json()["email"], me_b.json()["email"]) == (sale.a.email, sale.b.email)

        list_a = fetch(nginx_proxy, "/api/bookings/", headers=bearer(sale.a))
        list_b = fetch(nginx_proxy, "/api/bookings/", headers=bearer(sale.b))
        assert code in list_a.text and code not in list_b.text

        detail_a = fetch(nginx_proxy, f"/api/bookings/{code}/", headers=bearer(sale.a))
        detail_b = fetch(nginx_proxy, f"/api/bookings/{code}/", headers=bearer(sale.b))
        assert (detail_a.status, detail_b.status) == (200, 404)

        # The waiting-room status poll: B still waits; A was admitted and has booked
        # (whether A's pass still shows after the booking is the app's business).
        poll = f"/api/events/{event_id}/queue/"
        status_a = fetch(nginx_proxy, poll, headers=bearer(sale.a))
        status_b = fetch(nginx_proxy, poll, headers=bearer(sale.b))
        assert status_b.status == 200 and status_b.json()["state"] == "waiting", status_b.body
        assert status_b.json()["position"] == 1
        assert status_a.json().get("state") == "active" or status_a.json().get("code") == "not_in_queue"

        for reply in (me_a, me_b, list_a, list_b, detail_a, detail_b, status_a, status_b):
            assert reply.cache_status is None, f"round {round_number}: went through the cache"


@pytest.mark.django_db(transaction=True)
def test_every_authenticated_api_read_bypasses_the_cache(
    nginx_proxy: Nginx, sale: Sale, staff_user: Any
) -> None:
    """Every GET operation of the API schema, asked by A, again by A, then by B: never
    answered from the cache; only the public reads go through it at all (BYPASS)."""
    schema = fetch(nginx_proxy, "/api/schema/?format=json", headers=bearer(staff_user))
    assert schema.status == 200, schema.body[:200]
    paths = [path for path, operations in schema.json()["paths"].items() if "get" in operations]
    assert len(paths) >= 8, paths
    public = {
        "/api/events/",
        "/api/events/{event_id}/",
        "/api/events/{event_id}/seats/",
        "/api/events/{event_id}/queue/cursor/",
    }
    for template in paths:
        path = template.replace("{event_id}", str(sale.event.pk)).replace("{code}", sale.booking_code)
        assert "{" not in path, f"no value for a parameter of {template}"
        for who in (sale.a, sale.a, sale.b, staff_user):
            reply = fetch(nginx_proxy, path, headers=bearer(who))
            assert_not_from_cache(reply, f"GET {path} with a bearer token")
            if template in public:
                assert reply.cache_status == "BYPASS", (path, reply.cache_status)
            else:
                assert reply.cache_status is None, (path, reply.cache_status)


@pytest.mark.django_db(transaction=True)
def test_authenticated_api_answers_say_private(nginx_proxy: Nginx, sale: Sale) -> None:
    """The app's half of the contract: what is not a public read says so, so that no
    cache between the buyer and us (a corporate proxy, a CDN) may keep it either."""
    paths = [
        "/api/auth/me/",
        "/api/bookings/",
        f"/api/bookings/{sale.booking_code}/",
        f"/api/events/{sale.event.pk}/queue/",
        f"/api/events/{sale.event.pk}/holds/",
    ]
    unmarked = {}
    for path in paths:
        reply = fetch(nginx_proxy, path, headers=bearer(sale.a))
        cache_control = (reply.header("Cache-Control") or "").replace(" ", "").split(",")
        if not {"private", "no-store"} <= set(cache_control):
            unmarked[path] = reply.header("Cache-Control")
    assert not unmarked, f"authenticated answers without 'private, no-store': {unmarked}"


@pytest.mark.django_db(transaction=True)
def test_pages_never_show_one_users_session_to_another(nginx_proxy: Nginx, sale: Sale) -> None:
    """A, B and an anonymous visitor, in turn and twice, on each page: everyone gets
    their own page (the header names the logged-in user), never someone else's."""
    cookies = {"A": session_cookie(sale.a), "B": session_cookie(sale.b), "anonymous": {}}
    names = {"A": sale.a.name, "B": sale.b.name}
    without_own_name = set()
    for path in ["/", f"/events/{sale.event.pk}/", f"/events/{sale.event.pk}/queue/", "/my/tickets/"]:
        for _ in range(2):
            pages = {who: fetch(nginx_proxy, path, headers=headers) for who, headers in cookies.items()}
            for who, page in pages.items():
                assert page.cache_status is None, f"{path} for {who} went through the cache"
            for who in ("A", "B"):
                assert pages[who].status == 200, (path, who, pages[who].status)
                other = "B" if who == "A" else "A"
                assert names[other] not in pages[who].text, f"{who} saw {other}'s name on {path}"
                assert "Log out" in pages[who].text, f"{who} is not logged in on {path}"
                if names[who] not in pages[who].text:
                    without_own_name.add(path)
            anonymous = pages["anonymous"]
            assert names["A"] not in anonymous.text and names["B"] not in anonymous.text
            assert "Log out" not in anonymous.text, f"an anonymous visitor got a logged-in {path}"
            if path == "/my/tickets/":
                assert anonymous.status == 302  # to the log-in page
                assert sale.booking_code in pages["A"].text and sale.booking_code not in pages["B"].text
    # Checked last, so that the isolation above is proven even where the page does not
    # show the name yet: without it, "B never sees A's name" would prove nothing.
    assert not without_own_name, f"pages not showing the logged-in user's name: {sorted(without_own_name)}"


@pytest.mark.django_db(transaction=True)
def test_an_answer_setting_a_cookie_is_never_served_from_the_cache(nginx_proxy: Nginx) -> None:
    """The log-in page sets a fresh CSRF cookie for every new visitor."""
    first, second = (fetch(nginx_proxy, "/accounts/login/") for _ in range(2))
    cookies = [reply.header("Set-Cookie") for reply in (first, second)]
    assert all(cookie and cookie.startswith("csrftoken=") for cookie in cookies), cookies
    assert cookies[0] != cookies[1], "two visitors were given the same CSRF cookie"
    for reply in (first, second):
        assert_not_from_cache(reply, "the log-in page")


def seat_map(proxy: Nginx, event_id: int, **headers: str) -> Reply:
    return fetch(proxy, f"/api/events/{event_id}/seats/", headers={"Accept-Encoding": "gzip", **headers})


@pytest.mark.django_db(transaction=True)
def test_public_seat_map_is_served_from_the_cache(nginx_proxy: Nginx, event_factory: Any, user: Any) -> None:
    event = event_factory()
    first = seat_map(nginx_proxy, event.pk)
    second = seat_map(nginx_proxy, event.pk)
    assert first.status == second.status == 200
    assert first.header("Cache-Control") and "public" in first.header("Cache-Control"), first.header(
        "Cache-Control"
    )
    assert second.cache_status == "HIT", (first.cache_status, second.cache_status)
    assert second.body == first.body  # the same bytes, not just the same map
    assert first.header("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in (first.header("Vary") or "")
    etag = first.header("ETag") or ""
    assert etag.startswith(f'W/"seats-{event.pk}-'), etag

    # Vary is honoured: a client that does not accept gzip never gets the gzip copy.
    plain = fetch(nginx_proxy, f"/api/events/{event.pk}/seats/")
    assert plain.status == 200 and plain.header("Content-Encoding") is None
    assert json.loads(plain.body) == first.json()

    revalidated = seat_map(nginx_proxy, event.pk, **{"If-None-Match": etag})
    assert revalidated.status == 304 and revalidated.body == b""

    with_token = seat_map(nginx_proxy, event.pk, **bearer(user))
    assert with_token.cache_status == "BYPASS" and with_token.json() == first.json()


@pytest.mark.django_db(transaction=True)
def test_a_changed_seat_map_shows_within_about_a_second(
    nginx_proxy: Nginx, event_factory: Any, user: Any, eager_celery: None
) -> None:
    from events.tasks import admit_on_sale_events

    event = event_factory()
    seat = event.seats.order_by("pk").first().pk
    before = seat_map(nginx_proxy, event.pk)
    assert seat_map(nginx_proxy, event.pk).cache_status == "HIT"
    assert (
        fetch(nginx_proxy, f"/api/events/{event.pk}/queue/", method="POST", headers=bearer(user)).status
        == 201
    )
    admit_on_sale_events()
    held = fetch(
        nginx_proxy,
        f"/api/events/{event.pk}/holds/",
        method="POST",
        headers=bearer(user),
        body={"seat_ids": [seat]},
    )
    assert held.status == 201, held.body
    changed_at = time.monotonic()
    while True:
        current = seat_map(nginx_proxy, event.pk)
        statuses = {entry["id"]: entry["status"] for entry in current.json()["seats"]}
        if statuses[seat] == "held":
            break
        assert time.monotonic() - changed_at < SEAT_MAP_STALENESS_BOUND_SECONDS, "the hold never showed"
        time.sleep(0.05)
    elapsed = time.monotonic() - changed_at
    print(f"PROXY-FIGURE seat map change visible through the proxy after {elapsed:.2f} s")
    assert current.header("ETag") != before.header("ETag")
    assert (
        fetch(
            nginx_proxy, f"/api/events/{event.pk}/seats/", headers={"If-None-Match": before.header("ETag")}
        ).status
        == 200
    )


@pytest.mark.django_db(transaction=True)
def test_public_reads_are_shared_and_credentials_bypass_the_cache(
    nginx_proxy: Nginx, event_factory: Any, user: Any
) -> None:
    event = event_factory()
    for path in [
        "/api/events/",
        f"/api/events/{event.pk}/",
        f"/api/events/{event.pk}/seats/",
        f"/api/events/{event.pk}/queue/cursor/",
    ]:
        first, second = (fetch(nginx_proxy, path) for _ in range(2))
        assert first.status == 200, (path, first.status, first.body[:200])
        assert second.cache_status == "HIT" and second.body == first.body, (path, second.cache_status)
        for credentials in (bearer(user), session_cookie(user)):
            reply = fetch(nginx_proxy, path, headers=credentials)
            assert reply.cache_status == "BYPASS", (path, reply.cache_status)
        # An answer to a request with credentials was not stored in place of the shared one.
        assert fetch(nginx_proxy, path).body == first.body


@pytest.mark.django_db(transaction=True)
def test_metrics_are_not_reachable_through_the_proxy(nginx_proxy: Nginx) -> None:
    for path in ["/metrics", "/metrics/", "/metrics/anything"]:
        reply = fetch(nginx_proxy, path)
        assert reply.status in (403, 404), (path, reply.status)
        assert reply.json()["code"] == "not_found"


@pytest.mark.django_db(transaction=True)
def test_the_login_guard_sees_the_client_address_through_the_proxy(nginx_proxy: Nginx, settings: Any) -> None:
    """nginx appends the address the connection came from to X-Forwarded-For, and
    Django (NUM_PROXIES = 1) counts failed log-ins against that address: not against
    nginx's own, and not against whatever the client wrote in the header."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.LOGIN_FAILURE_LIMIT_IP = 2
    settings.LOGIN_FAILURE_LIMIT_ACCOUNT = 100

    def log_in(source: str, n: int) -> int:
        forged = {"X-Forwarded-For": f"198.51.100.{n}"}  # a fresh "address" each try
        body = {"email": f"nobody{n}-{uuid.uuid4().hex[:6]}@example.com", "password": "guess"}
        return fetch(
            nginx_proxy, "/api/auth/token/", method="POST", headers=forged, body=body, source=source
        ).status

    assert [log_in("127.0.0.2", n) for n in range(2)] == [401, 401]
    assert log_in("127.0.0.2", 3) == 429  # the forged header did not hide the address
    assert log_in("127.0.0.3", 4) == 401  # another client behind the same proxy is not locked out


# --- the proxy's own guarantees (scripted upstream) --------------------------------------------


def test_nothing_outside_the_public_reads_is_cached_even_if_labelled_public(
    scripted_upstream: ScriptedUpstream, scripted_proxy: Nginx
) -> None:
    scripted_upstream.script = lambda path, headers: PUBLIC_FOR_A_MINUTE
    paths = [
        "/",
        "/events/1/",
        "/my/tickets/",
        "/api/auth/me/",
        "/api/bookings/",
        "/api/bookings/ABC123/",
        "/api/events/1/queue/",
        "/api/events/1/holds/",
        "/api/staff/events/1/rush/",
        "/api/events/1/seats/extra/",
        "/api/events/x/seats/",
    ]
    for path in paths:
        replies = [fetch(scripted_proxy, path) for _ in range(3)]
        assert [reply.cache_status for reply in replies] == [None, None, None], path
        assert scripted_upstream.requests_to(path) == 3, path


def test_public_reads_are_stored_only_as_the_upstream_allows(
    scripted_upstream: ScriptedUpstream, scripted_proxy: Nginx
) -> None:
    answers = {
        "/api/events/1/": {},  # no Cache-Control: no blanket validity in the proxy
        "/api/events/2/": {"Cache-Control": "private, max-age=60"},
        "/api/events/3/": {"Cache-Control": "no-store"},
        "/api/events/4/": {"Cache-Control": "no-cache"},
        "/api/events/5/": {**PUBLIC_FOR_A_MINUTE, "Set-Cookie": "sessionid=someone; HttpOnly"},
        "/api/events/6/": {**PUBLIC_FOR_A_MINUTE, "Vary": "*"},
        "/api/events/7/": PUBLIC_FOR_A_MINUTE,
    }
    scripted_upstream.script = lambda path, headers: answers[path]
    for path, headers in answers.items():
        replies = [fetch(scripted_proxy, path) for _ in range(3)]
        if path == "/api/events/7/":
            assert [reply.cache_status for reply in replies] == ["MISS", "HIT", "HIT"]
            assert scripted_upstream.requests_to(path) == 1
        else:
            assert [reply.cache_status for reply in replies] == ["MISS"] * 3, (path, headers)
            assert scripted_upstream.requests_to(path) == 3, (path, headers)
    cookies = [reply.header("Set-Cookie") for reply in [fetch(scripted_proxy, "/api/events/5/")]]
    assert cookies == ["sessionid=someone; HttpOnly"]  # passed on to its requester, never stored


def test_requests_with_credentials_are_neither_served_nor_stored(
    scripted_upstream: ScriptedUpstream, scripted_proxy: Nginx
) -> None:
    scripted_upstream.script = lambda path, headers: PUBLIC_FOR_A_MINUTE
    path = "/api/events/1/seats/"
    for credentials in (
        {"Authorization": "Bearer a"},
        {"Cookie": "sessionid=a"},
        {"Cookie": "x=1; sessionid=b"},
    ):
        reply = fetch(scripted_proxy, path, headers=credentials)
        assert reply.cache_status == "BYPASS"
        assert reply.json()["headers"].get("authorization") == credentials.get("Authorization")
    assert fetch(scripted_proxy, path).cache_status == "MISS"  # nothing was stored for them
    assert fetch(scripted_proxy, path).cache_status == "HIT"
    # A cookie that is not the session does not bypass the shared copy.
    assert fetch(scripted_proxy, path, headers={"Cookie": "csrftoken=x"}).cache_status == "HIT"


def test_vary_accept_encoding_keeps_gzip_for_clients_that_asked_for_it(
    scripted_upstream: ScriptedUpstream, scripted_proxy: Nginx
) -> None:
    def script(path: str, headers: dict[str, str]) -> dict[str, str]:
        answer = {**PUBLIC_FOR_A_MINUTE, "Vary": "Accept-Encoding"}
        if "gzip" in headers.get("accept-encoding", ""):
            answer["Content-Encoding"] = "gzip"
        return answer

    scripted_upstream.script = script
    path = "/api/events/1/seats/"
    zipped = [fetch(scripted_proxy, path, headers={"Accept-Encoding": "gzip"}) for _ in range(2)]
    assert [reply.cache_status for reply in zipped] == ["MISS", "HIT"]
    assert zipped[1].header("Content-Encoding") == "gzip" and zipped[1].body == zipped[0].body
    plain = [fetch(scripted_proxy, path) for _ in range(2)]
    assert plain[0].header("Content-Encoding") is None and plain[0].cache_status == "MISS"
    assert plain[1].cache_status == "HIT" and json.loads(plain[1].body)["path"] == path
    assert (
        fetch(scripted_proxy, path, headers={"Accept-Encoding": "gzip"}).header("Content-Encoding") == "gzip"
    )


def test_query_strings_cannot_push_past_the_cache_but_catalogue_pages_are_kept_apart(
    scripted_upstream: ScriptedUpstream, scripted_proxy: Nginx
) -> None:
    scripted_upstream.script = lambda path, headers: PUBLIC_FOR_A_MINUTE
    busted = [fetch(scripted_proxy, f"/api/events/1/seats/?nocache={n}").cache_status for n in range(3)]
    assert busted == ["MISS", "HIT", "HIT"]
    assert scripted_upstream.requests_to("/api/events/1/seats/") == 1  # asked without the query
    pages = [fetch(scripted_proxy, f"/api/events/?page={n}") for n in (1, 2, 1)]
    assert [reply.cache_status for reply in pages] == ["MISS", "MISS", "HIT"]
    assert [reply.json()["path"] for reply in pages] == [f"/api/events/?page={n}" for n in (1, 2, 1)]


def test_forwarded_headers_and_the_queue_ticket_reach_the_app(
    scripted_upstream: ScriptedUpstream, scripted_proxy: Nginx
) -> None:
    reply = fetch(
        scripted_proxy,
        "/api/events/1/queue/",
        headers={"X-Queue-Ticket": "t-123", "X-Forwarded-For": "203.0.113.5", "Authorization": "Bearer x"},
        source="127.0.0.2",
    )
    seen = reply.json()["headers"]
    assert seen["x-queue-ticket"] == "t-123"
    assert seen["authorization"] == "Bearer x"
    assert seen["x-forwarded-for"] == "203.0.113.5, 127.0.0.2"  # the real client appended last
    assert seen["x-forwarded-proto"] == "http"
    assert seen["host"] == scripted_proxy.url.removeprefix("http://")
    # HTTP/1.1 without "Connection: close": the connection to the app is kept alive.
    assert reply.json()["version"] == "HTTP/1.1" and "connection" not in seen


def test_errors_of_the_proxy_itself_are_in_the_buyers_language(
    scripted_upstream: ScriptedUpstream, scripted_proxy: Nginx
) -> None:
    """nginx's own answers (a body over its limit, the app unreachable) pick the language
    as the app does: the language cookie, else Accept-Language."""
    big = b"x" * (256 * 1024 + 1)
    for headers, language, detail in (
        ({"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"}, "ko", "요청 본문이 너무 큽니다."),
        ({"Accept-Language": "en-GB,en;q=0.9,ko;q=0.5"}, "en", "The request body is too large."),
        ({"Accept-Language": "en-GB", "Cookie": "django_language=ko"}, "ko", "요청 본문이 너무 큽니다."),
        ({"Accept-Language": "ko", "Cookie": "django_language=en"}, "en", "The request body is too large."),
        ({}, "en", "The request body is too large."),
    ):
        reply = fetch(scripted_proxy, "/api/bookings/", method="POST", body=big, headers=headers)
        assert (reply.status, reply.header("Content-Language")) == (413, language), headers
        assert reply.json() == {"code": "too_large", "detail": detail}
    scripted_upstream.close()
    down = fetch(scripted_proxy, "/api/bookings/", headers={"Accept-Language": "ko"})
    assert (down.status, down.header("Retry-After")) == (503, "5")
    assert down.json()["detail"].startswith("지금 접속이 많습니다.")


def test_errors_of_the_proxy_itself_keep_the_api_shape(
    scripted_upstream: ScriptedUpstream, scripted_proxy: Nginx
) -> None:
    scripted_upstream.script = lambda path, headers: {"Cache-Control": "public, max-age=1"}
    too_large = fetch(scripted_proxy, "/api/bookings/", method="POST", body=b"x" * (256 * 1024 + 1))
    assert too_large.status == 413 and too_large.json()["code"] == "too_large"
    assert fetch(scripted_proxy, "/api/bookings/", method="POST", body=b"x" * (256 * 1024)).status == 200

    cached = fetch(scripted_proxy, "/api/events/1/seats/")
    scripted_upstream.close()
    # nginx counts max-age in whole seconds from the second the answer came in: after 2 s
    # the entry has expired, the app is asked again and cannot answer.
    time.sleep(2.05)
    stale = fetch(scripted_proxy, "/api/events/1/seats/")
    assert stale.status == 200 and stale.cache_status == "STALE" and stale.body == cached.body
    down = fetch(scripted_proxy, "/api/bookings/")
    assert down.status == 503 and down.header("Retry-After") == "5"
    assert down.json()["code"] == "service_unavailable"


def test_the_waiting_rooms_requests_go_to_their_own_web_processes(tmp_path: Path) -> None:
    """The bulkhead: with queue upstreams named, nginx sends the join, the polls and the
    leave there and everything else (the cursor included) to the web nodes; nothing of
    the queue's is cached."""
    web, queue = ScriptedUpstream(), ScriptedUpstream()
    queue.script = lambda path, headers: PUBLIC_FOR_A_MINUTE
    try:
        with Nginx(
            upstreams=[web.address], queue_upstreams=[queue.address], run_dir=tmp_path / "nginx"
        ) as proxy:
            polls = [fetch(proxy, "/api/events/7/queue/") for _ in range(2)]
            join = fetch(proxy, "/api/events/7/queue/", method="POST", body={})
            for path in (
                "/api/events/7/queue/cursor/",
                "/api/events/7/holds/",
                "/api/events/7/",
                "/events/7/queue/",
            ):
                fetch(proxy, path)
    finally:
        web.close()
        queue.close()

    assert [reply.status for reply in [*polls, join]] == [200, 200, 200]
    assert [reply.cache_status for reply in polls] == [None, None]
    assert [(method, path) for method, path, _ in queue.seen] == [
        ("GET", "/api/events/7/queue/"),
        ("GET", "/api/events/7/queue/"),
        ("POST", "/api/events/7/queue/"),
    ]
    assert [path for _, path, _ in web.seen] == [
        "/api/events/7/queue/cursor/",
        "/api/events/7/holds/",
        "/api/events/7/",
        "/events/7/queue/",
    ]
