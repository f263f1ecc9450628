"""The failover drills of `python -m bench.chaos --ha` (`make chaos-ha`), on the HA topology
(bench/chaos/ha.py), with the same ledger and table as the other drills:

- redis-failover: SIGKILL of the Redis primary under a routed load; Sentinel promotes the replica
  and every worker, the router and the load's publisher follow it. Redis replicates
  asynchronously, so a write the primary acknowledged and the replica never got is lost: this
  drill measures that (its `lost` is reported, not a failure), with and without
  REDIS_PUBLISH_REPLICAS (`--publish-replicas 1`).
- nats-node-kill: SIGKILL of one node of the 3-node JetStream cluster under an event load through
  the bridge: nothing lost or run twice.
- postgres-failover: SIGKILL of the PostgreSQL primary, the standby promoted: the history writer
  reconnects (DATABASE_URL names both, `target_session_attrs=read-write`) and every id of the
  ledger is in task_results.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from bench.chaos import nats_faults
from bench.chaos.fleet import Fleet
from bench.chaos.ha import HATopology
from bench.chaos.ledger import Fault
from bench.chaos.probe import probe
from bench.chaos.scenarios import UP_SECONDS, Scenario

NATS_DOWN_SECONDS = (1.0, 5.0)
T = TypeVar("T")


def _topology(fleet: Fleet) -> HATopology:
    if fleet.topology is None:
        raise RuntimeError("the failover drills need the HA topology: python -m bench.chaos --ha")
    return fleet.topology


def settled_read(read: Callable[[], T], seconds: float = 30.0) -> T:
    """`read()` through the Sentinels, again while they still settle on the new master (a client
    meets MasterNotFoundError or a closed connection for a moment after the switch)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return read()
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def redis_failover(fleet: Fleet) -> Fault:
    """SIGKILL the Redis primary at a random moment; the replica is promoted; the old primary
    comes back as a replica of the new master before the next fault."""
    topology = _topology(fleet)
    fleet.wait_consuming()
    time.sleep(random.uniform(*UP_SECONDS))
    # In flight: what the workers held when the primary died, and what the new master says they
    # hold (an ack the replica never got puts a finished request back in that set).
    fault = Fault(time.time(), "SIGKILL of the Redis primary", fleet.held_by(None))
    old, new = topology.fail_redis_over()
    print(f"    Redis primary {old} killed, {new} promoted {time.time() - fault.at:.1f} s later", flush=True)
    fault.in_flight |= settled_read(lambda: fleet.held_by(None))
    probe(fault)
    topology.rejoin_redis(old, new)
    return fault


def nats_node_kill(fleet: Fleet) -> Fault:
    """SIGKILL one NATS node at random (the bridge's or another); it rejoins with its store."""
    from agents.stack.servers import restart

    topology = _topology(fleet)
    fleet.wait_consuming(("bridge",))
    time.sleep(random.uniform(*UP_SECONDS))
    index = random.randrange(len(topology.nats))
    node = topology.nats[index]
    fault = Fault(time.time(), f"SIGKILL of NATS node {index + 1} of {len(topology.nats)}")
    node.kill()
    time.sleep(random.uniform(*NATS_DOWN_SECONDS))
    topology.nats[index] = restart(node)
    return nats_faults.probe(fleet, fault)


def postgres_failover(fleet: Fleet) -> Fault:
    """SIGKILL the PostgreSQL primary and promote the standby (once: the old primary would need
    pg_rewind or a new base backup to follow, which docs/ha.md describes)."""
    topology = _topology(fleet)
    fleet.wait_consuming()
    time.sleep(random.uniform(*UP_SECONDS))
    fault = Fault(time.time(), "SIGKILL of the PostgreSQL primary, standby promoted")
    topology.fail_postgres_over()
    return probe(fault)


HA_SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "redis-failover", "SIGKILL of the Redis primary, Sentinel promotes the replica",
            redis_failover, 3, loss_measured=True,
        ),
        Scenario(
            "nats-node-kill", "SIGKILL of one node of the 3-node NATS cluster", nats_node_kill, 3,
            engines=("ledger",), workers=("bridge",), via="nats", after=nats_faults.settled,
        ),
        Scenario(
            "postgres-failover", "SIGKILL of the PostgreSQL primary, the standby promoted",
            postgres_failover, 1,
        ),
    )
}  # fmt: skip
