"""The routing task (`agents.route`): validates requests, picks each one's engine, and publishes
its engine task under the same task id, a batch at a time.

A batch task (tasks/batching.py) instead of one `Task.replace` per request: the prefork round
trip, the `Ignore` exception path and one Redis publish per request cost about 7 ms of CPU per
routed request; a batch decides with live figures read once and publishes in one pipeline.
The caller's AsyncResult still follows its one task id to the engine's result; what the message
asked to follow it (callbacks, errbacks, chain, chord membership, reply subject) goes with it.
A refused request's id gets the refusal (InvalidRequest, UnknownCapability, NoLiveEngine,
Backpressure) through the pipeline's hooks, as does a request whose message cannot be built.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import structlog

from agents.connections import redis_client
from agents.errors import REJECTION_ERRORS, AgentsError
from agents.execution import parse_request
from agents.names import ROUTE_FLUSH_EVERY, ROUTE_TASK, ROUTER_QUEUE
from agents.recorder import collecting, count
from agents.routing.batch import BatchRouting
from agents.statuses import FAILED, REJECTED
from agents.telemetry.catalog import ROUTING_LATENCY
from agents.telemetry.tally import Tally
from tasks.app import app
from tasks.batching import BatchTask
from tasks.outage import UNREACHABLE
from tasks.pipeline.delivery import Delivery, Outcome
from tasks.pipeline.guards import admit
from tasks.pipeline.registry import pipeline
from tasks.publisher import Outgoing, TaskPublisher

log = structlog.get_logger("agents.routing_task")


@lru_cache(maxsize=1)
def _publisher() -> TaskPublisher:
    return TaskPublisher(app, publish_ids=False)


def forwarded_options(delivery: Delivery) -> dict[str, Any]:
    """What the engine task's message keeps of the routed message (create_task_message keywords)."""
    celery = delivery.celery
    options = {
        "callbacks": celery.get("callbacks"),
        "errbacks": celery.get("errbacks"),
        "chain": celery.get("chain"),
        "chord": celery.get("chord"),
        "group_id": celery.get("group"),
        "group_index": celery.get("group_index"),
        "root_id": celery.get("root_id"),
        "parent_id": celery.get("parent_id"),
        "expires": celery.get("expires"),
    }
    return {k: v for k, v in options.items() if v is not None}


def route_batch(deliveries: Sequence[Delivery], publisher: TaskPublisher) -> list[str]:
    """Decide and publish every request; returns ids to requeue (all, if Redis was unreachable)."""
    steps = pipeline()
    admission = admit(deliveries, claims=False)
    steps.before_process(admission.run)
    outcomes: list[Outcome] = list(admission.refused)
    routing = BatchRouting()
    outgoing: list[Outgoing] = []
    by_id = {d.id: d for d in admission.run}
    latency = Tally()
    for delivery in admission.run:
        started = time.perf_counter()
        try:
            request = parse_request(delivery.request, task_id=delivery.id)
            decision = routing.decide(request.capability)
        except AgentsError as exc:
            status = REJECTED if isinstance(exc, REJECTION_ERRORS) else FAILED
            outcomes.append(Outcome(delivery, status, error=exc))
        else:
            options = forwarded_options(delivery)
            outgoing.append(Outgoing(request, decision, options=options, headers=dict(delivery.headers)))
        latency.observe(ROUTING_LATENCY, (), time.perf_counter() - started)
    # The queued records, the outcomes' records and every count: one Redis round trip.
    with collecting(redis_client()):
        count(redis_client(), latency)
        try:
            refused = publisher.publish(outgoing)
        except UNREACHABLE as exc:  # nothing was sent that a redelivery would not fix
            log.warning("route_publish_failed", count=len(outgoing), error=repr(exc))
            return [d.id for d in deliveries]
        for item, error in refused:
            log.error("route_publish_refused", task_id=item.request.task_id, error=repr(error))
            outcomes.append(Outcome(by_id[item.request.task_id], FAILED, error=error))
        steps.after_process(outcomes)
    return []


@app.task(
    base=BatchTask,
    name=ROUTE_TASK,
    queue=ROUTER_QUEUE,
    throws=REJECTION_ERRORS,
    flush_every=ROUTE_FLUSH_EVERY,
)
def route(deliveries: list[Delivery]) -> list[str]:
    """Route each request (`route.delay(request)`) to the best engine for its capability."""
    return route_batch(deliveries, _publisher())
