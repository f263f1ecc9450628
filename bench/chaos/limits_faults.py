"""The time-limits drill: under load, a request that runs past its soft time limit, then one past
its hard time limit (the engine's handler sleeps on demand, bench/chaos/engine.py).

The soft limit fails the request it interrupts (the rest of its batch goes back to the queue);
the hard limit kills the pool process and fails every request of its batch (docs/next.md, known
gaps). Checked: each over-limit request failed with a reason naming its limit, the pool got a
new process in place of the killed one, and a request routed afterwards succeeds (the recovery,
from the hard limit's failure)."""

from __future__ import annotations

import random
import time
import uuid

from agents.limits import hard_limit, soft_limit
from agents.loadtest import collect, route_sender
from agents.statuses import SUCCESS
from bench.chaos.engine import LIMITS_CAPABILITY, LIMITS_HARD_SECONDS
from bench.chaos.fleet import Fleet
from bench.chaos.ledger import Fault

ENGINE = "chaos_limits"
UP_SECONDS = (1.0, 3.0)
# Past the soft limit but well before the hard one; past the hard limit by a wide margin. Billiard
# checks the limits once a second, so a limit fires up to a second late.
OVERRUN_SECONDS = {"soft": 2.5, "hard": 3.0}
# The reason recorded for each (tasks/pipeline/delivery.py describe_failure).
REASONS = {"soft": "SoftTimeLimitExceeded", "hard": "hard time limit"}
REPLACED_TIMEOUT_SECONDS = 30.0
FINAL_TIMEOUT_SECONDS = 60.0


def send(fault: Fault, payload: dict[str, object]) -> str:
    """Route one request of the limits engine; the ledger counts it with the load's."""
    task_id = str(uuid.uuid4())
    route_sender()([task_id], {"capability": LIMITS_CAPABILITY, "task_type": "limits", "payload": payload})
    fault.sent[task_id] = time.time()
    return task_id


def over_limit(fleet: Fleet, fault: Fault, kind: str) -> bool:
    """One request over the `kind` limit, waited for; False when it has no final row."""
    hard = hard_limit(LIMITS_HARD_SECONDS)
    limit = soft_limit(hard) if kind == "soft" else hard
    children = set(fleet.pool_children(ENGINE))
    task_id = send(fault, {"sleep": limit + OVERRUN_SECONDS[kind], "hard": kind == "hard"})
    fault.must_fail[task_id] = REASONS[kind]
    if not collect({task_id: time.time()}, hard + FINAL_TIMEOUT_SECONDS, lambda n: None):
        fault.problems.append(f"{task_id} over the {kind} limit has no final row")
        return False
    if kind == "hard" and not replaced(fleet, children):
        fault.problems.append(f"{ENGINE}: pool process not replaced {REPLACED_TIMEOUT_SECONDS:g} s after")
    return True


def over_limits(fleet: Fleet) -> Fault:
    """A request over the soft limit, then (once it failed) one over the hard limit."""
    fleet.wait_consuming(("intelligence", ENGINE))
    time.sleep(random.uniform(*UP_SECONDS))
    fault = Fault(time.time(), "a request over its soft, then one over its hard time limit")
    if not (over_limit(fleet, fault, "soft") and over_limit(fleet, fault, "hard")):
        return fault
    fault.at = time.time()  # the hard limit's failure is recorded: recovery from here
    deadline = time.monotonic() + FINAL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        probe = send(fault, {"sleep": 0.01})
        final = collect({probe: time.time()}, FINAL_TIMEOUT_SECONDS, lambda n: None)
        if final.get(probe, (None,))[0] == SUCCESS:
            fault.recovered_at = time.time()
            break
    return fault


def replaced(fleet: Fleet, before: set[int]) -> bool:
    """The pool is back to its size with a process that was not there before the fault."""
    deadline = time.monotonic() + REPLACED_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        now = set(fleet.pool_children(ENGINE))
        if len(now) >= len(before) and now - before:
            return True
        time.sleep(0.1)
    return False
