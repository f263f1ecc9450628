"""The faults of the chaos drills. Each injection returns a Fault (with the requests its target
held at that moment, or, for a server, when a probe routed after it came back had finished)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.chaos import breaker_faults, limits_faults, nats_faults, partition
from bench.chaos.engine import BREAKER_CAPABILITY, CAPABILITY, LIMITS_CAPABILITY
from bench.chaos.fleet import Fleet
from bench.chaos.ledger import Fault
from bench.chaos.probe import probe

# How long a killed worker stays down before it is started again (at random in this range).
DOWN_SECONDS = (0.2, 3.0)
# How long a (re)started worker consumes before the next fault (at random in this range).
UP_SECONDS = (0.3, 3.0)
# How long Redis stays down when it is restarted (at random in this range).
REDIS_DOWN_SECONDS = (0.5, 4.0)

Inject = Callable[[Fleet], Fault | None]


@dataclass
class Scenario:
    """A named fault injected `count` times at random moments, under a load of `capability`
    (routed, or `via` "nats": events the bridge turns into tasks). `workers` are started before the
    load and stopped after the drain; `engines` are the queues that must be empty by then;
    `prepare` readies the fleet (None) or says why the scenario cannot run here; `after` checks
    what the ledger cannot see (problems) once the drain is over; `loss_measured`: see there."""

    name: str
    describe: str
    inject: Inject
    count: int
    capability: str = CAPABILITY
    engines: tuple[str, ...] = ("ledger",)
    workers: tuple[str, ...] = ()
    via: str = "route"
    max_rate: float | None = None  # engines slower than the ledger's get a lighter load
    prepare: Callable[[Fleet], str | None] | None = None
    after: Callable[[Fleet], list[str]] | None = None
    loss_measured: bool = False  # what it loses is the figure sought, reported but not a failure


def _kill(worker: str, sig: signal.Signals) -> Inject:
    def inject(fleet: Fleet) -> Fault:
        fleet.wait_consuming()
        time.sleep(random.uniform(*UP_SECONDS))
        at = time.time()
        fleet.kill(worker, sig)
        # Dead now (or shut down): its owned set is what it held, until a sweep claims it.
        fault = Fault(at, f"{sig.name} {worker}", fleet.held_by(worker))
        time.sleep(random.uniform(*DOWN_SECONDS))
        fleet.start(worker)
        return fault

    return inject


def _kill_pool_process(fleet: Fleet) -> Fault | None:
    fleet.wait_consuming()
    time.sleep(random.uniform(*UP_SECONDS))
    children = fleet.pool_children("ledger")
    if not children:
        return None
    held = fleet.held_by("ledger")  # the worker lives: what it held when one process died
    at = time.time()
    os.kill(random.choice(children), signal.SIGKILL)
    return Fault(at, "SIGKILL ledger pool process", held)


def _restart_redis(kill: bool) -> Inject:
    def inject(fleet: Fleet) -> Fault:
        fleet.wait_consuming()
        time.sleep(random.uniform(*UP_SECONDS))
        # In flight: whatever any worker held when Redis went away (its owned sets, read before,
        # and again from the AOF after): a worker's connection drops with its acks unsent.
        fault = Fault(time.time(), f"Redis {'SIGKILL' if kill else 'SIGTERM'}", fleet.held_by(None))
        fleet.restart_server("redis", kill=kill, down=random.uniform(*REDIS_DOWN_SECONDS))
        fault.in_flight |= fleet.held_by(None)
        return probe(fault)

    return inject


def _client_kill(fleet: Fleet) -> Fault:
    fleet.wait_consuming()
    time.sleep(random.uniform(*UP_SECONDS))
    at = time.time()
    return probe(Fault(at, "CLIENT KILL of every connection", fleet.kill_connections()))


def _postgres_down(fleet: Fleet) -> Fault:
    fleet.wait_consuming()
    time.sleep(random.uniform(*UP_SECONDS))
    fault = Fault(time.time(), f"PostgreSQL down {fleet.postgres_down:g} s")
    fleet.restart_server("postgres", kill=False, down=fleet.postgres_down)
    return probe(fault)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "engine-sigkill", "SIGKILL of the engine worker and its pool", _kill("ledger", signal.SIGKILL), 30
        ),
        Scenario("router-sigkill", "SIGKILL of the router worker", _kill("intelligence", signal.SIGKILL), 20),
        Scenario("pool-sigkill", "SIGKILL of one engine pool process", _kill_pool_process, 10),
        Scenario("engine-sigterm", "warm shutdown of the engine worker", _kill("ledger", signal.SIGTERM), 5),
        Scenario("redis-sigterm", "Redis stopped and started again", _restart_redis(kill=False), 3),
        Scenario("redis-sigkill", "Redis killed and started again (AOF)", _restart_redis(kill=True), 3),
        Scenario("redis-client-kill", "CLIENT KILL of every Redis connection", _client_kill, 3),
        Scenario("postgres-down", "PostgreSQL down, then back", _postgres_down, 1),
        Scenario(
            "breaker", f"{breaker_faults.GREEN} slow, then failing, then healthy",
            breaker_faults.breaker_fault, 3,
            capability=BREAKER_CAPABILITY, engines=(breaker_faults.BLUE, breaker_faults.GREEN),
            workers=(breaker_faults.BLUE, breaker_faults.GREEN), prepare=breaker_faults.prepare,
            max_rate=breaker_faults.MAX_RATE,
        ),
        Scenario(
            "time-limits", "a request over its soft, then one over its hard time limit",
            limits_faults.over_limits, 3,
            capability=LIMITS_CAPABILITY, engines=(limits_faults.ENGINE,), workers=(limits_faults.ENGINE,),
        ),
        Scenario(
            "nats-restart", "nats-server stopped and started on its store", nats_faults.restart_nats, 3,
            engines=("ledger",), workers=("bridge",), via="nats", after=nats_faults.settled,
        ),
        Scenario(
            "bridge-sigkill", "SIGKILL of the bridge, also between its publish and its ack",
            nats_faults.kill_bridge, 10,
            engines=("ledger",), workers=("bridge",), via="nats", after=nats_faults.settled,
        ),
        Scenario(
            "partition", "the engine worker's link to Redis cut ~20 s", partition.cut_link, 2,
            prepare=partition.prepare, after=partition.restore,
        ),
    )
}  # fmt: skip


def inject_all(scenario: Scenario, fleet: Fleet, faults: list[Fault]) -> None:
    """Inject the scenario's fault `count` times."""
    for _ in range(scenario.count):
        fault = scenario.inject(fleet)
        if fault is not None:
            faults.append(fault)
