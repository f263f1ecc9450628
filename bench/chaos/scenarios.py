"""The faults of the chaos drills. Each injection returns a Fault (with the requests its target
held at that moment, or, for a server, when a probe routed after it came back had finished)."""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from agents.loadtest import collect, route_sender
from bench.chaos.engine import CAPABILITY
from bench.chaos.fleet import Fleet
from bench.chaos.ledger import Fault

# How long a killed worker stays down before it is started again (at random in this range).
DOWN_SECONDS = (0.2, 3.0)
# How long a (re)started worker consumes before the next fault (at random in this range).
UP_SECONDS = (0.3, 3.0)
# How long Redis stays down when it is restarted (at random in this range).
REDIS_DOWN_SECONDS = (0.5, 4.0)
PROBE_TIMEOUT_SECONDS = 180.0

Inject = Callable[[Fleet], Fault | None]


@dataclass
class Scenario:
    """A named fault injected `count` times at random moments."""

    name: str
    describe: str
    inject: Inject
    count: int


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


def probe(fault: Fault) -> Fault:
    """Route one request after the server is back and wait for its history row: both workers
    consume again and history is written (a check by outcome, not a sleep)."""
    task_id = str(uuid.uuid4())
    deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            route_sender()([task_id], {"capability": CAPABILITY, "task_type": "probe", "payload": {}})
            break
        except Exception:  # the broker is still coming back
            time.sleep(0.2)
    if collect({task_id: time.time()}, PROBE_TIMEOUT_SECONDS, lambda n: None):
        fault.recovered_at = time.time()
    return fault


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
    )
}


def inject_all(scenario: Scenario, fleet: Fleet, faults: list[Fault]) -> None:
    """Inject the scenario's fault `count` times."""
    for _ in range(scenario.count):
        fault = scenario.inject(fleet)
        if fault is not None:
            faults.append(fault)
