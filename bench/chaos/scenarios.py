"""The faults of the chaos drills. Each runs in a thread while the load is sent, appends a
Fault per injection (with the requests its target held at that moment) and stops by `until`."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.chaos.fleet import Fleet
from bench.chaos.ledger import Fault

# How long a killed worker stays down before it is started again (at random in this range).
DOWN_SECONDS = (0.2, 3.0)
# How long a (re)started worker consumes before the next fault (at random in this range).
UP_SECONDS = (0.3, 3.0)


@dataclass
class Scenario:
    """A named fault injected `count` times at random moments."""

    name: str
    describe: str
    inject: Callable[[Fleet, Callable[[], bool]], Fault | None]
    count: int


def _kill(worker: str, sig: signal.Signals) -> Callable[[Fleet, Callable[[], bool]], Fault | None]:
    def inject(fleet: Fleet, stop: Callable[[], bool]) -> Fault | None:
        fleet.wait_consuming()
        time.sleep(random.uniform(*UP_SECONDS))
        if stop():
            return None
        at = time.time()
        fleet.kill(worker, sig)
        # Dead now (or shut down): its owned set is what it held, until a sweep claims it.
        fault = Fault(at, f"{sig.name} {worker}", fleet.held_by(worker))
        time.sleep(random.uniform(*DOWN_SECONDS))
        fleet.start(worker)
        return fault

    return inject


def _kill_pool_process(fleet: Fleet, stop: Callable[[], bool]) -> Fault | None:
    fleet.wait_consuming()
    time.sleep(random.uniform(*UP_SECONDS))
    children = fleet.pool_children("ledger")
    if stop() or not children:
        return None
    held = fleet.held_by("ledger")  # the worker lives: what it held when one process died
    at = time.time()
    os.kill(random.choice(children), signal.SIGKILL)
    return Fault(at, "SIGKILL ledger pool process", held)


SCENARIOS = {
    "engine-sigkill": Scenario(
        "engine-sigkill",
        "SIGKILL of the engine worker (main and pool processes)",
        _kill("ledger", signal.SIGKILL),
        30,
    ),
    "router-sigkill": Scenario(
        "router-sigkill", "SIGKILL of the router worker", _kill("intelligence", signal.SIGKILL), 20
    ),
    "pool-sigkill": Scenario("pool-sigkill", "SIGKILL of one engine pool process", _kill_pool_process, 10),
    "engine-sigterm": Scenario(
        "engine-sigterm", "SIGTERM (warm shutdown) of the engine worker", _kill("ledger", signal.SIGTERM), 5
    ),
}


def inject_all(scenario: Scenario, fleet: Fleet, faults: list[Fault], stop: Callable[[], bool]) -> None:
    """Inject the scenario's fault `count` times (fewer if the load ends first)."""
    for _ in range(scenario.count):
        if stop():
            return
        fault = scenario.inject(fleet, stop)
        if fault is not None:
            faults.append(fault)
