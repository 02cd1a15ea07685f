from __future__ import annotations

from queueing.keys import EventKeys


def test_every_key_of_an_event_shares_one_hash_tag(settings) -> None:
    settings.QUEUE_KEY_PREFIX = "p:"
    keys = EventKeys(7)
    names = [keys.seq, keys.waiting, keys.active, keys.ctl, keys.seatmap, keys.admissions]
    names += [keys.seat(12), keys.holds(3)]
    assert all(name.startswith("p:{ev:7}:") for name in names)
    assert keys.seat(12) == "p:{ev:7}:seat:12" == keys.seat_prefix + "12"
    assert keys.holds(3) == "p:{ev:7}:holds:3"
    assert len(set(names)) == len(names)


def test_prefix_is_read_when_keys_are_built_not_at_import(settings) -> None:
    settings.QUEUE_KEY_PREFIX = "one:"
    first = EventKeys(1).waiting
    settings.QUEUE_KEY_PREFIX = "two:"
    assert first == "one:{ev:1}:waiting"
    assert EventKeys(1).waiting == "two:{ev:1}:waiting"
