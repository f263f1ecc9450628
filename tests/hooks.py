"""A pipeline hook registered through AGENT_HOOKS, exactly as a maintainer adds the next concern.

It records every call it gets, per task id, in Redis, so tests see which steps of a request's
life each execution path went through.
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.connections import redis_client
from agents.registry import text
from tasks.pipeline.delivery import Delivery, Outcome, Published
from tasks.pipeline.hook import Hook

PROBE_PREFIX = "agents:test:probe:"


def probe_key(task_id: str) -> str:
    """Redis list of the probe's records for one task id."""
    return PROBE_PREFIX + task_id


def probed(task_id: str) -> list[str]:
    """What the probe saw of one task id, in order: publish, before, outcome:<status>:<path>, skip."""
    return [text(raw) for raw in redis_client().lrange(probe_key(task_id), 0, -1)]


class ProbeHook(Hook):
    """Sees every step of every request on every path; writes one pipeline per call."""

    def _record(self, entries: list[tuple[str, str]]) -> None:
        pipe = redis_client().pipeline(transaction=False)
        for task_id, entry in entries:
            pipe.rpush(probe_key(task_id), entry)
        pipe.execute()

    def after_publish(self, published: Sequence[Published]) -> None:
        self._record([(p.task_id, f"publish:{p.task}") for p in published])

    def before_process(self, deliveries: Sequence[Delivery]) -> None:
        self._record([(d.id, f"before:{d.task}") for d in deliveries])

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        self._record([(o.delivery.id, f"outcome:{o.status}:{_path(o)}") for o in outcomes])

    def after_skip(self, deliveries: Sequence[Delivery], reason: str) -> None:
        self._record([(d.id, "skip") for d in deliveries])


def _path(outcome: Outcome) -> str:
    return "tracer" if outcome.by_tracer else "batch"
