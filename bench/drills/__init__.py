"""Failover drills in a short multi-node sale (``python -m bench.drills --help``,
``make drill DRILL=<name>``): ``harness`` (the sale), ``load`` (the buyers and the ledger of
what they were told), ``analysis`` (what the figures are), ``redis_drills`` and
``service_drills`` (the faults)."""
