"""The Redis Cluster drills: the master serving the event's slot SIGKILLed mid-sale (its
replica takes over), and one of its replicas SIGKILLed (nothing should notice).

Every key of an event shares the hash tag ``{ev:<id>}``, so the whole line, every pass,
hold and the seat map live on one master: killing it is the worst single failure the
cluster can have for that sale.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Any

import redis

from bench import invariants
from bench.drills import analysis
from bench.drills.harness import DrillSale
from bench.invariants import Check


def _node_client(node: Any) -> redis.Redis:
    return redis.Redis(host=node.host, port=node.port, decode_responses=True, socket_timeout=2)


def replication_lag(master: Any, replica: Any, replica_offset: int | None = None) -> dict[str, int]:
    """Bytes of the replication stream the replica had not applied just before the kill
    (what asynchronous replication could lose): the master's offset minus the replica's own
    (``slave_repl_offset``; the master's view of it is up to a second stale, replicas ack
    once a second). ``replica_offset``: all the replica can have when its link was cut."""
    master_offset = int(_node_client(master).info("replication").get("master_repl_offset", 0))
    if replica_offset is None:
        replica_offset = int(_node_client(replica).info("replication").get("slave_repl_offset", 0))
    return {"master_offset": master_offset, "replica_offset": replica_offset,
            "lag_bytes": max(0, master_offset - replica_offset)}  # fmt: skip


def cut_replication(cluster: Any, master: Any, replica: Any, seconds: float) -> int:
    """The replica stops receiving the master's writes for ``seconds`` before the kill, as
    if the link between them had been cut: the replica is frozen (SIGSTOP, so it cannot
    reconnect) and the master drops its replication connection (CLIENT KILL TYPE replica).
    Freezing alone is not enough on one machine: what the master already wrote to the
    socket would wait in the kernel and reach the replica after its SIGCONT. The caller
    sends SIGCONT after the master's SIGKILL; the writes of those seconds are then lost.
    Returns the master's replication offset at the cut (all the replica can have)."""
    cluster.kill(replica, signal.SIGSTOP)
    client = _node_client(master)
    offset = int(client.info("replication").get("master_repl_offset", 0))
    client.execute_command("CLIENT", "KILL", "TYPE", "replica")
    time.sleep(seconds)
    return offset


def reconcile_now() -> dict[int, int]:
    """One reconciler tick (``events.services.seat_map.seat_maps_reconcile``, what beat runs
    every 30 s), called directly; retried while this process's cluster client relearns
    the slot map after the failover."""
    from events.services.seat_map import seat_maps_reconcile

    for attempt in range(5):
        try:
            return seat_maps_reconcile()
        except redis.RedisError:
            if attempt == 4:
                raise
            time.sleep(1)
    return {}


def _event_master(sale: DrillSale) -> Any:
    from queueing.keys import EventKeys

    return sale.services.cluster.master_for_key(EventKeys(sale.event_id).waiting)


@dataclass
class Failover:
    """What happened between the SIGKILL and a healthy cluster, and what Redis had then."""

    master: Any
    replica: Any
    new_master: Any
    lag: dict[str, int]
    told_before: dict[str, tuple[str, float]]
    killed_at: float
    seconds: float
    healthy_at: float
    snapshot: dict[str, Any]
    map_at_failover: dict[str, int]


def kill_master(sale: DrillSale) -> Failover:
    cluster = sale.services.cluster
    ledger = sale.load.ledger if sale.load is not None else None
    assert ledger is not None
    master = _event_master(sale)
    replica = cluster.replica_of(master)
    frozen = sale.options.replica_lag > 0
    cut_at = cut_replication(cluster, master, replica, sale.options.replica_lag) if frozen else None
    lag = replication_lag(master, replica, cut_at)
    # Buyers still in the line by their last answer (not those already done).
    told_before = {buyer: told for buyer, told in ledger.state.items() if buyer not in ledger.finished}
    killed_at = time.time()
    cluster.kill(master, signal.SIGKILL)
    if frozen:
        cluster.kill(replica, signal.SIGCONT)
    print(f"  SIGKILL master {master.address} (pid {master.pid}); replica {replica.address} should take over",
          flush=True)  # fmt: skip
    seconds = cluster.wait_healthy(timeout=60)
    healthy_at = time.time()
    new_master = _event_master(sale)
    holds = analysis.live_holds(ledger.holds, killed_at, time.time())
    seats = [seat for hold in holds for seat in hold.seat_ids]
    snapshot = analysis.redis_snapshot(_node_client(new_master), sale.event_id, seats)
    map_at_failover = analysis.map_vs_database(_node_client(new_master), sale.event_id)
    print(f"  cluster healthy again after {seconds:.1f} s: {new_master.address} serves the slot", flush=True)
    return Failover(master, replica, new_master, lag, told_before, killed_at, seconds, healthy_at, snapshot,
                    map_at_failover)  # fmt: skip


def watch_map(sale: DrillSale, failover: Failover, seconds: float) -> float | None:
    """While the sale goes on after the failover: every 2 s, does the seat map agree with
    the database again? The seconds after the failover when it first did (None: never;
    0.0: it never disagreed). Only the reconciler (beat, every 30 s) can put right a seat
    whose sale committed while its map update was lost."""
    if failover.map_at_failover["total"] == 0:
        sale.hold_on(seconds)
        return 0.0
    matched = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sale.hold_on(min(2.0, max(0.0, deadline - time.monotonic())))
        if (
            matched is None
            and analysis.map_vs_database(_node_client(failover.new_master), sale.event_id)["total"] == 0
        ):
            matched = round(time.time() - failover.healthy_at, 1)
    return matched


def heal_map(sale: DrillSale, node: Any, wait_for_beat: float = 35.0) -> dict[str, Any]:
    """After the load: the map against the database once in-flight requests settled; if
    they disagree, how long until beat's reconciler (every 30 s) fixed it; and after one
    reconcile tick called directly."""
    time.sleep(2)  # confirms in flight when the load stopped finish their on-commit steps
    settled = analysis.map_vs_database(_node_client(node), sale.event_id)
    healed_by_beat_s: float | None = None
    if settled["total"]:
        started = time.monotonic()
        while time.monotonic() - started < wait_for_beat:
            time.sleep(1)
            if analysis.map_vs_database(_node_client(node), sale.event_id)["total"] == 0:
                healed_by_beat_s = round(time.monotonic() - started, 1)
                break
    reconcile_now()
    return {"after_load": settled, "healed_by_beat_s": healed_by_beat_s,
            "after_reconcile": analysis.map_vs_database(_node_client(node), sale.event_id)}  # fmt: skip


def redis_master(sale: DrillSale) -> tuple[list[tuple[str, Any]], list[Check], dict[str, Any]]:
    """SIGKILL the master of the event's slot; measure; heal; check."""
    load = sale.start_load()
    sale.hold_on(sale.options.before)
    failover = kill_master(sale)
    matched_after = watch_map(sale, failover, sale.options.after)
    cpu = sale.stop_load()
    healing = heal_map(sale, failover.new_master)
    rejoin = _restart_as_replica(sale.services.cluster, failover.master)
    waited = sale.drain_mail()
    outage = analysis.outage_figures(load.ledger, failover.killed_at)
    losses = analysis.redis_losses(load.ledger, failover.told_before, failover.snapshot, failover.killed_at)
    missing = [h for h in load.ledger.holds if h.outcome == "missing" and h.granted < failover.killed_at]
    lost_places = sum(1 for _, when in load.ledger.lost_places if when > failover.killed_at)
    # A seat sold while its map update was lost looks free: Redis may hold it for someone
    # else, and the database refuses that confirm.
    refused = sum(1 for when, step, status, code, _took in load.ledger.answers
                  if step == "confirm" and status == 409 and code == "seat_unavailable" and when > failover.killed_at)  # fmt: skip
    healing["confirms_refused_by_database"] = refused
    healing["matched_during_sale_s"] = matched_after
    rows = _master_rows(failover, outage, losses, len(missing), lost_places, healing, rejoin)
    final = healing["after_reconcile"]
    checks = [
        Check("reconciler healed the map (0 seats disagree)", final["total"] == 0, f"{final}"),
        *invariants.check_mail(sale.event_id, mail_dir=sale.mail_dir, waited=waited),
    ]
    details = {"lag": failover.lag, "outage": outage, "losses": losses, "map_at_failover": failover.map_at_failover,
               "healing": healing, "cpu": cpu, "killed_at": failover.killed_at, "healthy_at": failover.healthy_at,
               "failover_s": failover.seconds, "mail_wait": waited}  # fmt: skip
    return rows, checks, details


def _master_rows(
    failover: Failover, outage: dict[str, Any], losses: dict[str, Any], missing: int, lost_places: int,
    healing: dict[str, Any], rejoin: str,
) -> list[tuple[str, Any]]:  # fmt: skip
    beat = healing["healed_by_beat_s"]
    return [
        ("killed", f"master {failover.master.address} -> {failover.new_master.address} took over"),
        ("replication stream not yet applied by the replica at the kill (bytes)", failover.lag["lag_bytes"]),
        ("seconds from SIGKILL to a healthy cluster", f"{failover.seconds:.1f}"),
        ("503 answers (count)", outage["answers_503"]),
        ("first / last 503 after the kill (s)", f"{outage.get('first_503_s', '-')} / {outage.get('last_503_s', '-')}"),
        ("seconds of 503", outage.get("seconds_of_503", 0)),
        ("503 by step", outage["503_by_step"] or "-"),
        ("requests failed (not ok, not expected, not 503)", f"{outage['failed']} {outage['failed_by_kind'] or ''}"),
        ("requests answered", outage["requests"]),
        ("buyers in line at the kill: waiting / with a pass", f"{losses['told_waiting']} / {losses['told_active']}"),
        ("queue entries lost (told waiting, gone after failover)", losses["lost_waiting"]),
        ("passes lost (told active, gone after failover)", losses["lost_passes"]),
        ("holds live at the kill / lost before their expiry", f"{losses['holds_checked']} / {losses['holds_lost']}"),
        ("confirms answered 409 hold_missing for a pre-kill hold", missing),
        ("polls answered 404 (place lost) after the kill", lost_places),
        ("map vs database at the failover (seats; live, racy)",
         f"{failover.map_at_failover['total']} {_breakdown(failover.map_at_failover)}"),
        ("... agreed again during the sale, s after the failover", _matched(healing["matched_during_sale_s"])),
        ("confirms refused by the database (409 seat_unavailable)", healing["confirms_refused_by_database"]),
        ("map vs database after the load (2 s settle)", healing["after_load"]["total"]),
        ("... healed by beat's 30 s reconciler within (s)", beat if beat is not None else "nothing to heal"),
        ("map vs database after one reconcile tick (called directly)", healing["after_reconcile"]["total"]),
        ("killed node back as a replica after (s)", rejoin),
    ]  # fmt: skip


def _breakdown(mismatch: dict[str, int]) -> str:
    parts = {name: n for name, n in mismatch.items() if name != "total" and n}
    return f"{parts}" if parts else ""


def _matched(seconds: float | None) -> str:
    if seconds is None:
        return "not during the sale"
    return "never disagreed" if seconds == 0.0 else f"{seconds}"


def _restart_as_replica(cluster: Any, node: Any) -> str:
    """The killed master started again with its nodes.conf: it rejoins as a replica."""
    started = time.monotonic()
    try:
        cluster.restart(node)
        cluster.wait_healthy(timeout=60, full=True)
    except Exception as error:  # reported, not fatal: the drill's figures are in
        return f"not healthy: {error}"[:80]
    return f"{time.monotonic() - started:.1f}"


def redis_replica(sale: DrillSale) -> tuple[list[tuple[str, Any]], list[Check], dict[str, Any]]:
    """SIGKILL a replica of the event's master: nothing should notice."""
    cluster, options = sale.services.cluster, sale.options
    load = sale.start_load()
    sale.hold_on(options.before)
    master = _event_master(sale)
    replica = cluster.replica_of(master)
    killed_at = time.time()
    cluster.kill(replica, signal.SIGKILL)
    print(f"  SIGKILL replica {replica.address} of {master.address}", flush=True)
    sale.hold_on(options.after)
    cpu = sale.stop_load()
    still_master = _event_master(sale)
    map_after = analysis.map_vs_database(_node_client(still_master), sale.event_id)
    rejoin = _restart_as_replica(cluster, replica)
    waited = sale.drain_mail()
    outage = analysis.outage_figures(load.ledger, killed_at)
    stall = sale.admission_stall(killed_at, killed_at + options.after)
    rows = [
        ("killed", f"replica {replica.address} of {master.address}"),
        ("master of the event's slot after", still_master.address),
        ("503 answers (count)", outage["answers_503"]),
        ("requests failed (not ok, not expected, not 503)", f"{outage['failed']} {outage['failed_by_kind'] or ''}"),
        ("requests answered", outage["requests"]),
        ("longest admission stall after the kill (s)", stall),
        ("map vs database after the load (seats)", map_after["total"]),
        ("killed replica back after (s)", rejoin),
    ]  # fmt: skip
    checks = [
        Check("no 503 and no failed request", outage["answers_503"] == 0 and outage["failed"] == 0,
              f"{outage['answers_503']} x 503, {outage['failed']} failed"),
        Check("the master kept its slot", still_master.port == master.port, still_master.address),
        *invariants.check_mail(sale.event_id, mail_dir=sale.mail_dir, waited=waited),
    ]  # fmt: skip
    details = {
        "outage": outage,
        "map_after": map_after,
        "cpu": cpu,
        "killed_at": killed_at,
        "mail_wait": waited,
    }
    return rows, checks, details
