"""Follow-ups of a batch task's requests, as Celery's tracer runs them for the tasks it traces:
link callbacks and the next step of a chain after a success; errbacks, the failure of the rest
of a chain and a chord's failed part after a failure; a chord's part after any outcome.

Failures, revocations and chord parts go through the result backend's own `mark_as_*` calls,
so errbacks (new- and old-style) and chords behave exactly as Celery's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import group, signature
from celery.app.task import Context

from agents.statuses import FAILED, REJECTED, REVOKED, SUCCESS
from tasks.app import app
from tasks.pipeline.delivery import Delivery, Outcome
from tasks.pipeline.hook import Hook

# Message fields that mean "something follows this request".
_FOLLOW_UP_FIELDS = ("callbacks", "errbacks", "chain", "chord")


class FollowUpHook(Hook):
    """Runs what a request's message asked to follow it: callbacks, chains, errbacks, chords."""

    tracer_does_it = True

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            celery = outcome.delivery.celery
            if not any(celery.get(name) for name in _FOLLOW_UP_FIELDS):
                continue
            request = celery_request(outcome.delivery)
            backend = app.backend
            if outcome.status == SUCCESS:
                _dispatch_callbacks_and_chain(outcome.delivery, outcome.result)
                if request.chord:
                    backend.mark_as_done(
                        outcome.delivery.id, outcome.result, request=request, store_result=False
                    )
            elif outcome.status in (FAILED, REJECTED):
                backend.mark_as_failure(
                    outcome.delivery.id, outcome.error, request=request, store_result=False
                )
            elif outcome.status == REVOKED and request.chord:
                backend.mark_as_revoked(
                    outcome.delivery.id, outcome.reason or "", request=request, store_result=False
                )


def celery_request(delivery: Delivery) -> Context:
    """The Celery request context the backend's chord and errback code reads."""
    celery = delivery.celery
    return Context(
        {
            "id": delivery.id,
            "task": delivery.task,
            "args": list(delivery.args),
            "kwargs": delivery.kwargs,
            "retries": delivery.retries,
            "hostname": delivery.worker,
            "group": celery.get("group"),
            "group_index": celery.get("group_index"),
            "root_id": celery.get("root_id"),
            "parent_id": celery.get("parent_id"),
            "callbacks": celery.get("callbacks"),
            "errbacks": celery.get("errbacks"),
            "chain": celery.get("chain"),
            "chord": celery.get("chord"),
            "delivery_info": {"routing_key": delivery.queue, "priority": delivery.priority},
        }
    )


def _dispatch_callbacks_and_chain(delivery: Delivery, value: Any) -> None:
    # As Celery's tracer: link callbacks get the result (several together as a group), then the
    # chain's next step gets it with the rest of the chain.
    options = {
        "parent_id": delivery.id,
        "root_id": delivery.celery.get("root_id") or delivery.id,
        "priority": delivery.priority,
    }
    callbacks = [signature(c, app=app) for c in delivery.celery.get("callbacks") or ()]
    for grouped in [c for c in callbacks if isinstance(c, group)]:
        grouped.apply_async((value,), **options)
    plain = [c for c in callbacks if not isinstance(c, group)]
    if len(plain) == 1:
        plain[0].apply_async((value,), **options)
    elif plain:
        group(plain, app=app).apply_async((value,), **options)
    chain = delivery.celery.get("chain")
    if chain:
        signature(chain[-1], app=app).apply_async((value,), chain=chain[:-1], **options)
