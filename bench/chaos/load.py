"""The drill's steady load: routed requests on a fixed schedule until told to stop. A batch whose
publish raised (the broker was down) is refused, with the exception's name: the caller was told,
so it is not accepted and cannot be lost. Every id is kept here, outside the servers faulted."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.loadtest import route_sender
from bench.chaos.engine import CAPABILITY

TICK_SECONDS = 0.005
PAUSE_AFTER_REFUSAL_SECONDS = 0.2


@dataclass
class Sent:
    """Ids sent (with their scheduled time) and ids whose publish raised (with the reason)."""

    accepted: dict[str, float] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def steady_load(rate: float, stop: Callable[[], bool], capability: str = CAPABILITY) -> Sent:
    """Send `rate` routed requests of `capability` per second until `stop()` is true."""
    send_batch = route_sender()
    body = {"capability": capability, "task_type": "chaos", "payload": {"n": 1}}
    sent = Sent()
    start, count = time.time(), 0
    while not stop():
        due = int((time.time() - start) * rate) + 1
        if due <= count:
            time.sleep(TICK_SECONDS)
            continue
        batch = {str(uuid.uuid4()): start + n / rate for n in range(count, due)}
        count = due
        try:
            send_batch(list(batch), body)
        except Exception as exc:  # any publish failure: the caller was told, the ledger says why
            sent.refused |= dict.fromkeys(batch, type(exc).__name__)
            time.sleep(PAUSE_AFTER_REFUSAL_SECONDS)
            continue
        sent.accepted |= batch
    return sent
