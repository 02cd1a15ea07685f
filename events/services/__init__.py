"""Writes of the events app, one module per feature (catalogue, seat map, waiting room,
admission, rush control); reads are in ``events.selectors``."""
