"""`agents loadtest`: an open-loop load generator that judges the platform by its own history.

Requests are sent on a fixed schedule (not when the previous one finished), in batches through
one pipelined producer, so the generator keeps up with rates a `.delay()` loop cannot. Latency is
measured from each request's scheduled send time to the `finished_at` PostgreSQL recorded, so a
slow platform cannot hide behind a slow sender. A request with no final row after the drain
timeout is lost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import text

from agents.connections import redis_client
from agents.errors import AgentsError
from agents.loadstats import LoadReport, Outcome, summarise
from agents.names import ROUTE_TASK, ROUTER_QUEUE
from agents.recorder import collecting
from agents.statuses import FINAL_STATUSES, REJECTED, SUCCESS
from db.session import get_engine

Via = Literal["route", "direct", "nats"]
TICK_SECONDS = 0.005
LOOKUP_CHUNK = 5000


@dataclass
class LoadPlan:
    """What to send, how fast and for how long."""

    rate: float
    duration: float
    capability: str = "analysis"
    via: Via = "route"
    payload: dict[str, Any] = field(default_factory=lambda: {"data": [1, 2, 3]})
    drain_timeout: float = 60.0

    @property
    def total(self) -> int:
        """Requests in the whole run."""
        return int(self.rate * self.duration)


def _request(plan: LoadPlan) -> dict[str, Any]:
    return {"capability": plan.capability, "task_type": "loadtest", "payload": plan.payload}


def send(plan: LoadPlan, on_sent: Callable[[int], None], refused: dict[str, str]) -> dict[str, float]:
    """Send plan.total requests on schedule; returns task id → scheduled send time (epoch).

    With --via direct the decision is made here, a batch per tick (the same BatchRouting and
    TaskPublisher the router task uses), so a refusal (backpressure, no live engine) is counted
    in `refused` (task id → error kind) instead of being sent.
    """
    if plan.via == "nats":
        return asyncio.run(_send_nats(plan, on_sent))
    scheduled: dict[str, float] = {}
    send_batch = route_sender() if plan.via == "route" else _direct_sender(refused)
    body = _request(plan)
    start = time.time() + 0.05
    sent = 0
    while sent < plan.total:
        due = min(plan.total, int((time.time() - start) * plan.rate) + 1)
        if due <= sent:
            time.sleep(TICK_SECONDS)
            continue
        batch = {str(uuid.uuid4()): start + index / plan.rate for index in range(sent, due)}
        scheduled |= batch
        send_batch(list(batch), body)
        on_sent(due - sent)
        sent = due
    return scheduled


def route_sender() -> Callable[[list[str], dict[str, Any]], None]:
    """Messages for the router task, one pipeline per batch: what `route.delay()` sends."""
    from tasks import app

    def send_batch(task_ids: list[str], body: dict[str, Any]) -> None:
        with app.producer_or_acquire() as producer, producer.batch(max_size=2000), collecting(redis_client()):
            for task_id in task_ids:
                app.send_task(
                    ROUTE_TASK, args=(body,), task_id=task_id, queue=ROUTER_QUEUE, producer=producer
                )

    return send_batch


def _direct_sender(refused: dict[str, str]) -> Callable[[list[str], dict[str, Any]], None]:
    """Routing decided here, engine tasks published straight to their queues."""
    from agents.execution import parse_request
    from agents.routing.batch import BatchRouting
    from tasks import app
    from tasks.publisher import Outgoing, TaskPublisher

    publisher = TaskPublisher(app, publish_ids=False)

    def send_batch(task_ids: list[str], body: dict[str, Any]) -> None:
        routing = BatchRouting()
        outgoing = []
        for task_id in task_ids:
            try:
                request = parse_request(body, task_id=task_id)
                outgoing.append(Outgoing(request, routing.decide(request.capability)))
            except AgentsError as exc:
                refused[task_id] = type(exc).__name__
        for item, error in publisher.publish(outgoing):  # could not become a message
            refused[item.request.task_id] = type(error).__name__

    return send_batch


async def _send_nats(plan: LoadPlan, on_sent: Callable[[int], None]) -> dict[str, float]:
    """Publish events to JetStream on schedule; the bridge turns them into tasks.

    Each event has a Nats-Msg-Id, so its task id is known here (the bridge derives it the same
    way) and the history can be looked up afterwards.
    """
    import json

    from agents.bridge.events import MSG_ID_HEADER, Event, task_id_for
    from agents.nats_client import connect
    from agents.settings import get_settings

    subject = f"{get_settings().bridge_subject_prefix}.{plan.capability}.loadtest"
    data = json.dumps(plan.payload).encode()
    scheduled: dict[str, float] = {}
    client = await connect("loadtest")
    stream = client.jetstream()
    start = time.time() + 0.05
    sent = 0
    try:
        while sent < plan.total:
            due = min(plan.total, int((time.time() - start) * plan.rate) + 1)
            if due <= sent:
                await asyncio.sleep(TICK_SECONDS)
                continue
            for index in range(sent, due):
                headers = {MSG_ID_HEADER: uuid.uuid4().hex}
                try:
                    await stream.publish(subject, data, headers=headers, timeout=5)
                except Exception as exc:  # a clear word instead of a nats-py traceback
                    raise RuntimeError(
                        f"cannot publish to {subject!r} ({exc!r}); is `agents bridge` running?"
                    ) from exc
                scheduled[task_id_for(Event(subject, data, headers))] = start + index / plan.rate
            on_sent(due - sent)
            sent = due
    finally:
        await client.close()
    return scheduled


def collect(
    scheduled: dict[str, float], timeout: float, on_recorded: Callable[[int], None]
) -> dict[str, Any]:
    """Wait until every id has a final row (or the timeout); returns id → (status, finished, error)."""
    final: dict[str, Any] = {}
    waiting = list(scheduled)
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT task_id, status, extract(epoch FROM finished_at), error FROM task_results "
        "WHERE task_id = ANY(:ids) AND status = ANY(:final)"
    )
    while waiting and time.monotonic() < deadline:
        before = len(final)
        with get_engine().connect() as connection:
            for chunk_start in range(0, len(waiting), LOOKUP_CHUNK):
                chunk = waiting[chunk_start : chunk_start + LOOKUP_CHUNK]
                for task_id, status, finished, error in connection.execute(
                    query, {"ids": chunk, "final": list(FINAL_STATUSES)}
                ):
                    final[task_id] = (status, finished, error)
        waiting = [t for t in waiting if t not in final]
        on_recorded(len(final) - before)
        if waiting:
            time.sleep(0.5)
    return final


def outcomes(scheduled: dict[str, float], final: dict[str, Any]) -> tuple[list[Outcome], float]:
    """Per-request outcomes and the time the last success finished."""
    results, last = [], 0.0
    for task_id, sent_at in scheduled.items():
        if task_id not in final:
            results.append(Outcome(None, None, sent_at=sent_at))
            continue
        status, finished, error = final[task_id]
        latency = (float(finished) - sent_at) * 1000 if finished is not None else None
        if status == SUCCESS and finished is not None:
            last = max(last, float(finished))
        kind = str(error).split(":", 1)[0] if error else None
        at = float(finished) if finished is not None else None
        results.append(Outcome(status, latency, kind, sent_at=sent_at, finished_at=at))
    return results, last


def run(plan: LoadPlan, on_sent: Callable[[int], None], on_recorded: Callable[[int], None]) -> LoadReport:
    """Send, wait for the history, and report."""
    refused: dict[str, str] = {}
    scheduled = send(plan, on_sent, refused)
    waiting = {task_id: at for task_id, at in scheduled.items() if task_id not in refused}
    final = collect(waiting, plan.drain_timeout, on_recorded)
    final |= {task_id: (REJECTED, None, kind) for task_id, kind in refused.items()}
    results, last = outcomes(scheduled, final)
    first = min(scheduled.values()) if scheduled else time.time()
    return summarise(plan.rate, results, first, last or time.time())
