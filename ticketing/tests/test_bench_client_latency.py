"""What ``make loadtest`` reports of the latency clients see, beside locust's own table:
bench/probe.py, the buyer it runs outside locust (against the live app it joins, polls
with the newest ticket, and when admitted gives the pass back and joins again at the
back), and locust's 10-second windows read apart while users arrive and after."""

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


def test_locusts_windows_are_split_at_the_end_of_the_arrivals(tmp_path):
    """``make loadtest`` reads locust's 10-second windows (its full stats history) apart:
    while users arrive and after; the aggregated rows and other endpoints do not count."""
    from bench.report import STATUS_ENDPOINT, windowed_status_p99

    history = tmp_path / "locust_stats_history.csv"
    rows = ["Timestamp,User Count,Type,Name,99%", "1000,0,,Aggregated,N/A"]
    rows += [
        f"{1000 + t},100,GET,{STATUS_ENDPOINT},{p99}" for t, p99 in ((5, 400), (25, 650), (41, 30), (60, 12))
    ]
    rows += ["1061,100,GET,GET /api/events/[id]/seats/,900", "1062,100,,Aggregated,990"]
    history.write_text("\n".join(rows) + "\n")
    assert windowed_status_p99(history, ramp_up_s=30) == (650.0, 30.0)
    assert windowed_status_p99(tmp_path / "missing.csv", ramp_up_s=30) is None
