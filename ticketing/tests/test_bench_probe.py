"""bench/probe.py, the buyer ``make loadtest`` runs outside locust: against the live app
it joins, polls with the newest ticket, and when admitted gives the pass back and joins
again at the back."""

from __future__ import annotations

import time

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from bench.probe import PollProbe
from queueing.line import line_admit

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_probe_polls_and_gives_its_pass_back(live_server, user_factory, on_sale_event):
    user = user_factory()
    probe = PollProbe(live_server.url, on_sale_event.pk, token=str(AccessToken.for_user(user)), interval=0.05)
    probe.start()
    deadline = time.monotonic() + 5
    while len(probe.figures.polls) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert line_admit(event_id=on_sale_event.pk, capacity=1, pass_seconds=600).admitted == 1
    while len(probe.figures.polls) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    figures = probe.stop()
    assert len(figures.polls) >= 15 and figures.errors == 0
    assert all(0 < ms < 5000 for ms in figures.polls)
    # The pass was given back (capacity 1 is free again) and the probe is back in line.
    assert line_admit(event_id=on_sale_event.pk, capacity=1, pass_seconds=600).admitted == 1
    assert f"{len(figures.polls)} polls" in figures.line()
