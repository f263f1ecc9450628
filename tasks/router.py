"""The router task: validates requests, picks each one's engine, and publishes its engine task
under the same task id, a batch at a time.

A batch task (tasks/batching.py) instead of one `Task.replace` per request: the prefork round
trip, the `Ignore` exception path and one Redis publish per request cost about 7 ms of CPU per
routed request; a batch decides with live figures read once and publishes in one pipeline.
The caller's AsyncResult still follows its one task id to the engine's result; a rejected
request's id gets the rejection (InvalidRequest, UnknownCapability, NoLiveEngine, Backpressure).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import structlog
from celery import states
from celery.exceptions import SoftTimeLimitExceeded

from agents.batch_routing import BatchRouting
from agents.connections import redis_client
from agents.errors import REJECTION_ERRORS, AgentsError
from agents.execution import parse_request
from agents.names import ROUTE_FLUSH_EVERY, ROUTE_TASK, ROUTER_QUEUE
from agents.publisher import Outgoing, TaskPublisher
from agents.recorder import record_many
from agents.router import count_rejections
from db.models import REJECTED
from tasks.app import app
from tasks.batching import BatchItem, BatchTask
from tasks.lifecycle import describe_failure
from tasks.results import store_results
from tasks.task_events import OutcomeEvents, publish_task_events

log = structlog.get_logger("agents.router")


@lru_cache(maxsize=1)
def _publisher() -> TaskPublisher:
    return TaskPublisher(app, publish_ids=False)


def route_batch(items: list[BatchItem], publisher: TaskPublisher) -> list[str]:
    """Decide and publish every item; returns ids to requeue (all of them if publishing failed)."""
    routing = BatchRouting()
    outgoing: list[Outgoing] = []
    rejected: list[tuple[BatchItem, AgentsError]] = []
    for item in items:
        try:
            request = parse_request(item.args[0] if item.args else None, task_id=item.id)
            decision = routing.decide(request.capability)
        except AgentsError as exc:
            rejected.append((item, exc))
        else:
            outgoing.append(Outgoing(request, decision, embed=item.embed or None))
    try:
        publisher.publish(outgoing)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # broker trouble: nothing was sent that a redelivery would not fix
        log.warning("route_publish_failed", count=len(outgoing), error=repr(exc))
        return [item.id for item in items]
    if rejected:
        reject(rejected)
    return []


def reject(rejected: Sequence[tuple[BatchItem, BaseException]]) -> None:
    """Fail each id with its rejection: counted, recorded in the history, stored for the caller."""
    now = time.time()
    kinds = Counter(getattr(exc, "kind", "internal") for _, exc in rejected)
    count_rejections(kinds)
    for item, exc in rejected:
        log.info("request_rejected", task_id=item.id, kind=getattr(exc, "kind", "internal"), error=str(exc))
    record_many(
        redis_client(),
        [
            {
                "task_id": item.id,
                "status": REJECTED,
                "finished_at": now,
                "error": describe_failure(exc),
                "at": now,
            }
            for item, exc in rejected
        ],
    )
    store_results(app, [(item.id, states.FAILURE, exc) for item, exc in rejected])
    events = OutcomeEvents(ROUTE_TASK)
    for item, exc in rejected:
        events.failed(item, exc)
    publish_task_events(events)


def _routing_batch_lost(items: list[BatchItem], exc: BaseException) -> None:
    reject([(item, exc) for item in items])


@app.task(
    base=BatchTask,
    name=ROUTE_TASK,
    queue=ROUTER_QUEUE,
    throws=REJECTION_ERRORS,
    flush_every=ROUTE_FLUSH_EVERY,
    on_batch_lost=staticmethod(_routing_batch_lost),
)
def route(items: list[BatchItem]) -> list[str]:
    """Route each request (`route.delay(request)`) to the best engine for its capability."""
    return route_batch(items, _publisher())
