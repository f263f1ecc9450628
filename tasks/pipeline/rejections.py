"""Counts of the requests routing refused, by kind (`agents status` shows them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import structlog

from agents.routing.rejections import count_rejections
from agents.statuses import REJECTED
from tasks.pipeline.delivery import Outcome
from tasks.pipeline.hook import Hook

log = structlog.get_logger("agents.routing_task")


class RejectionCountsHook(Hook):
    """Adds a batch's rejections to the counters in one round trip, and logs each."""

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        rejected = [o for o in outcomes if o.status == REJECTED]
        for o in rejected:
            log.info("request_rejected", task_id=o.delivery.id, kind=_kind(o), error=str(o.error))
        count_rejections(Counter(_kind(o) for o in rejected))


def _kind(outcome: Outcome) -> str:
    return str(getattr(outcome.error, "kind", "internal"))
