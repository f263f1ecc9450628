"""Retries of batch tasks' requests: the message is published again, as Celery's `Task.retry`
does for the tasks it traces (same task id, retries + 1, after the policy's countdown, with its
headers, links and chain), so the retry may run on any worker of the engine.
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.statuses import RETRYING
from tasks.app import app
from tasks.pipeline.delivery import Outcome
from tasks.pipeline.hook import Hook


class RetryHook(Hook):
    """Publishes each retrying request again; the countdown comes from the retry policy."""

    tracer_does_it = True

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.status != RETRYING:
                continue
            d, celery = outcome.delivery, outcome.delivery.celery
            app.send_task(
                d.task,
                args=d.args,
                kwargs=d.kwargs,
                task_id=d.id,
                retries=d.retries + 1,
                countdown=outcome.countdown,
                queue=d.queue or None,
                priority=d.priority,
                headers=d.headers,
                link=celery.get("callbacks"),
                link_error=celery.get("errbacks"),
                chain=celery.get("chain"),
                chord=celery.get("chord"),
                group_id=celery.get("group"),
                group_index=celery.get("group_index"),
                root_id=celery.get("root_id"),
                parent_id=celery.get("parent_id"),
                expires=celery.get("expires"),
            )
