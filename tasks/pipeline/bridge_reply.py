"""Replies to bridged requests: the result goes to the event's Reply-To (or BRIDGE_RESULTS_SUBJECT).

Only requests the bridge marked with a reply subject pay anything. A lost reply never changes
the request's own outcome: it is logged, and the result stays in the backend and the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from agents import aio
from agents.nats_client import publish_many
from agents.statuses import RETRYING, SUCCESS
from tasks.pipeline.delivery import Outcome
from tasks.pipeline.hook import Hook

log = structlog.get_logger("agents.bridge")


class BridgeReplyHook(Hook):
    """Publishes `{"task_id", "status", "result" | "error"}` for each finished bridged request."""

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        replies = [
            (subject, reply_body(o))
            for o in outcomes
            if (subject := o.delivery.reply_subject) and o.status != RETRYING
        ]
        if not replies:
            return
        try:
            aio.run(publish_many(replies))
        except Exception as exc:  # the outcomes stand; only the notifications are lost
            log.warning("bridge_reply_failed", count=len(replies), error=repr(exc))


def reply_body(outcome: Outcome) -> dict[str, Any]:
    """What the reply subject receives for one outcome."""
    if outcome.status == SUCCESS:
        return {"task_id": outcome.delivery.id, "status": "success", "result": outcome.result}
    return {"task_id": outcome.delivery.id, "status": "failure", "error": outcome.reason}
