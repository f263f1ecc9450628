"""Trace spans for the requests of batch tasks (the router, engines with batch_size > 1).

Batch tasks skip Celery's tracer, so the Celery instrumentation never opens their spans: this
hook opens one consumer span per request in `before_process`, child of the W3C context its
message carried (`traceparent`, kept in Delivery.headers), and ends it in `after_process` with
the outcome. Registered only when tracing is on (tasks/pipeline/registry.py); per-request tasks
are left to the instrumentation (`tracer_does_it`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Status, StatusCode

from agents.statuses import FAILED, RETRYING, REVOKED
from tasks import tracing
from tasks.pipeline.delivery import Delivery, Outcome, Published
from tasks.pipeline.hook import Hook

if TYPE_CHECKING:
    from opentelemetry.trace import Span


class TraceHook(Hook):
    """One span per request of a batch task, continuing the trace its publisher started."""

    tracer_does_it = True  # the Celery instrumentation traces what Celery's tracer runs

    def after_publish(self, published: Sequence[Published]) -> None:
        # The router hands a request on under its own task id and records no outcome for it: its
        # span ends with that publish (the publish span, its child, carries the context onward).
        for message in published:
            span = tracing.close_span(message.task_id)
            if span is not None:
                span.set_attribute("agents.outcome", "published")
                span.set_attribute("agents.published_to", message.queue)
                span.end()

    def before_process(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            _open(delivery)

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            # No running span: it never started here (revoked, poison, a lost batch's outcome).
            span = tracing.close_span(outcome.delivery.id) or _open(outcome.delivery, running=False)
            _settle(span, outcome)
            span.end()

    def after_skip(self, deliveries: Sequence[Delivery], reason: str) -> None:
        for delivery in deliveries:
            span = tracing.close_span(delivery.id) or _open(delivery, running=False)
            span.set_attribute("agents.skipped", reason)
            span.end()


def _open(delivery: Delivery, *, running: bool = True) -> Span:
    attributes: dict[str, Any] = {
        "celery.action": "run",
        "celery.task_name": delivery.task,
        "messaging.message.id": delivery.id,
        "celery.hostname": delivery.worker,
        "messaging.destination": delivery.queue,
        "celery.retries": delivery.retries,
    }
    span = tracing.open_span(delivery.id, f"run/{delivery.task}", delivery.headers, attributes)
    if not running:
        tracing.close_span(delivery.id)
    return span


def _settle(span: Span, outcome: Outcome) -> None:
    span.set_attribute("agents.outcome", outcome.status)
    if outcome.runtime is not None:
        span.set_attribute("agents.runtime_seconds", outcome.runtime)
    if outcome.status == FAILED and outcome.error is not None:
        span.record_exception(outcome.error)
        span.set_status(Status(StatusCode.ERROR, outcome.reason))
    elif outcome.status == RETRYING:
        span.set_attribute("celery.retry.reason", outcome.reason or "")
    elif outcome.status == REVOKED:
        span.set_attribute("celery.revoked.reason", outcome.reason or "")
    # REJECTED is the caller's request refused (the router's `throws`): not an error of the span.
