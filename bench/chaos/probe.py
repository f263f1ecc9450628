"""The probe after a fault of a server or a link: one request routed once it is over, waited for."""

from __future__ import annotations

import time
import uuid

from agents.loadtest import collect, route_sender
from agents.statuses import SUCCESS
from bench.chaos.engine import CAPABILITY
from bench.chaos.ledger import Fault

PROBE_TIMEOUT_SECONDS = 180.0


def probe(fault: Fault) -> Fault:
    """Route requests after the fault is over until one succeeds (a rejection, say NoLiveEngine
    while the engine's heartbeat is stale, does not count): the router and the engine worker
    consume again and history is written (a check by outcome, not a sleep)."""
    deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        task_id = str(uuid.uuid4())
        try:
            route_sender()([task_id], {"capability": CAPABILITY, "task_type": "probe", "payload": {}})
        except Exception:  # the broker is still coming back
            time.sleep(0.2)
            continue
        final = collect({task_id: time.time()}, max(1.0, deadline - time.monotonic()), lambda n: None)
        if final.get(task_id, (None,))[0] == SUCCESS:
            fault.recovered_at = time.time()
            return fault
        time.sleep(0.5)
    return fault
