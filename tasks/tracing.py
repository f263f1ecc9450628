"""OpenTelemetry tracing through task message headers, on when OTEL_ENABLED (off by default).

Off, this module imports nothing of OpenTelemetry and connects nothing: `install()` reads one
setting and returns, `current_trace_id()` returns None.

On, every process that uses the Celery app (it imports this module through
tasks/pipeline/registry.py) is instrumented with `CeleryInstrumentor`: a publish opens a producer
span and injects its W3C `traceparent` into the message headers; Celery's tracer signals open a
consumer span, child of that context, for each request of a per-request task. Batch tasks skip
Celery's tracer: the pipeline's TraceHook (tasks/pipeline/tracing.py) opens their spans here.

The TracerProvider (its BatchSpanProcessor runs a thread) is made after the fork, as the
instrumentation's documentation asks: in each prefork pool child on `worker_process_init`, in the
main process of a worker with another pool on `worker_init`, and in any other process (CLI,
bridge, beat, clients) at import. The SDK reads its own standard variables:
OTEL_SERVICE_NAME (default here: `agents-<role>`, the worker's node name or the CLI command),
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_PROPAGATORS, OTEL_BSP_*, and the exporter's
OTEL_EXPORTER_OTLP_* variables. The exporter follows OTEL_TRACES_EXPORTER (see `_exporters`).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from celery import current_app
from celery.signals import (
    after_task_publish,
    before_task_publish,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)

from agents.settings import get_settings

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

log = structlog.get_logger("agents.tracing")

# Request spans of batch tasks running in this process, by task id (the hook opens and ends
# them; a publish for the same task id, the router's, continues its span). A request sent back
# to the queue mid-batch never ends here: the oldest spans are dropped beyond this many.
_RUNNING_KEPT = 10_000
# OTEL_TRACES_EXPORTER names for the OTLP exporter this project installs (protobuf over HTTP).
_OTLP_NAMES = ("otlp", "otlp_proto_http")
_SPAN_FLUSH_MILLIS = 5_000


@dataclass
class _State:
    enabled: bool = False
    provider: Any = None  # the TracerProvider spans go to, once made (or found)
    worker_main: bool = False  # a prefork worker's main process: its pool children trace


_state = _State()
_running: OrderedDict[str, Span] = OrderedDict()
_publish_tokens: dict[str, Token[Context]] = {}


def enabled() -> bool:
    """Tracing is on in this process."""
    return _state.enabled


def install() -> None:
    """Turn tracing on when OTEL_ENABLED (at import, below); otherwise do nothing."""
    if _state.enabled or not get_settings().otel_enabled:
        return
    enable()
    worker_init.connect(_on_worker_init, weak=False)
    worker_process_init.connect(_on_worker_process_init, weak=False)
    worker_process_shutdown.connect(_on_worker_process_shutdown, weak=False)
    if not _started_as_worker():
        _ensure_provider()  # a client, the CLI, the bridge, beat: spans from the start


def enable(*, role: str | None = None, exporter: SpanExporter | None = None) -> None:
    """Instrument Celery in this process; with `role` or `exporter`, make the provider now
    (`exporter` replaces the configured ones; tests pass an in-memory one)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    if not _state.enabled:
        # Ours first and last around the instrumentation's: the publish span it opens must see
        # the request's context, and the context it may leave attached must be restored.
        before_task_publish.connect(_enter_publish, weak=False)
        CeleryInstrumentor().instrument()
        after_task_publish.connect(_leave_publish, weak=False)
        _state.enabled = True
    if role is not None or exporter is not None:
        _ensure_provider(role, exporter)


def disable() -> None:
    """Undo `enable()` (tests): spans already made are flushed; the provider stays global."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    if not _state.enabled:
        return
    CeleryInstrumentor().uninstrument()
    before_task_publish.disconnect(_enter_publish)
    after_task_publish.disconnect(_leave_publish)
    _state.enabled = False
    _running.clear()
    if _state.provider is not None:
        _state.provider.force_flush(_SPAN_FLUSH_MILLIS)


def current_trace_id(task_id: str | None = None) -> str | None:
    """Hex trace id of the request `task_id`'s span (a batch task's request), else of the
    current span; None when tracing is off or there is no span."""
    if not _state.enabled:
        return None
    from opentelemetry import trace

    span = _running.get(task_id) if task_id is not None else None
    context = (span or trace.get_current_span()).get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def open_span(task_id: str, name: str, headers: Mapping[str, Any], attributes: Mapping[str, Any]) -> Span:
    """Start the consumer span of one request, child of the context in its message headers."""
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    _ensure_provider()
    stale = _running.pop(task_id, None)
    if stale is not None:  # it ran here before and was sent back to the queue
        stale.set_attribute("agents.outcome", "requeued")
        stale.end()
    tracer = trace.get_tracer("agents.tasks")
    span = tracer.start_span(
        name, context=extract(headers), kind=trace.SpanKind.CONSUMER, attributes=dict(attributes)
    )
    _running[task_id] = span
    while len(_running) > _RUNNING_KEPT:
        _, oldest = _running.popitem(last=False)
        oldest.end()
    return span


def close_span(task_id: str) -> Span | None:
    """The running span of request `task_id`, no longer running (the caller ends it)."""
    return _running.pop(task_id, None)


def _enter_publish(sender: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Before the instrumentation's publish span: make the context it continues current."""
    from opentelemetry import context, trace
    from opentelemetry.propagate import extract

    _ensure_provider()
    task_id = (headers or {}).get("id")
    if task_id is None:
        return
    current = context.get_current()
    if not trace.get_current_span(current).get_span_context().is_valid:
        # No span runs here (a batch task's request, a re-published message): continue the
        # request's own span (the router's, for the engine message under the same task id), else
        # the context the message already carries (a forwarded `traceparent`).
        running = _running.get(task_id)
        if running is not None:
            current = trace.set_span_in_context(running, current)
        elif headers and "traceparent" in headers:
            current = extract(headers, current)
    _publish_tokens[task_id] = context.attach(current)


def _leave_publish(sender: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """After the instrumentation's: restore the context the publish started with."""
    from opentelemetry import context, trace

    token = _publish_tokens.pop((headers or {}).get("id", ""), None)
    if token is None:
        return
    if isinstance(sender, str) and sender not in current_app.tasks:
        # A task published by name that this process does not know: the instrumentation cannot
        # find its producer span again and leaves it open and current (0.66b2). End it here.
        span = trace.get_current_span()
        if span.is_recording() and getattr(span, "name", "") == f"apply_async/{sender}":
            span.end()
    context.detach(token)


def _ensure_provider(role: str | None = None, exporter: SpanExporter | None = None) -> Any:
    """This process's TracerProvider, made on first use (never in a prefork worker's main)."""
    if _state.provider is not None:
        if exporter is not None:
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor

            _state.provider.add_span_processor(SimpleSpanProcessor(exporter))
        return _state.provider
    if _state.worker_main and exporter is None:
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    existing = trace.get_tracer_provider()
    if not isinstance(existing, trace.ProxyTracerProvider):  # set up by the application itself
        _state.provider = existing
        return existing
    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        name = f"agents-{role or _process_role()}"
        resource = resource.merge(Resource({SERVICE_NAME: name}))
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for each, immediate in _exporters():
            provider.add_span_processor(SimpleSpanProcessor(each) if immediate else BatchSpanProcessor(each))
    trace.set_tracer_provider(provider)
    _state.provider = provider
    return provider


def _exporters() -> list[tuple[SpanExporter, bool]]:
    """The exporters OTEL_TRACES_EXPORTER names (comma-separated), each with whether it exports
    at once (console) rather than in batches: `console`, `otlp` / `otlp_proto_http` (OTLP over
    HTTP), `none`, any installed `opentelemetry_traces_exporter` entry point, or a
    `module:Class` path. Unset: OTLP when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set, else none
    (the context still propagates). A name that cannot be loaded is logged and skipped."""
    from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
    from opentelemetry.sdk.environment_variables import (
        OTEL_EXPORTER_OTLP_ENDPOINT,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    )

    # The SDK's own variables, read as its auto-configuration reads them (not project settings).
    names = [n.strip() for n in os.environ.get(OTEL_TRACES_EXPORTER, "").split(",") if n.strip()]
    endpoint_variables = (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT)
    if not names and any(os.environ.get(variable) for variable in endpoint_variables):
        names = ["otlp"]
    found: list[tuple[SpanExporter, bool]] = []
    for name in names:
        if name == "none":
            continue
        try:
            found.append((_exporter_class(name)(), name == "console"))
        except Exception as exc:  # a bad name must not stop the worker: no spans from it
            log.error("trace_exporter_unavailable", exporter=name, error=repr(exc))
    return found


def _exporter_class(name: str) -> type[SpanExporter]:
    if name in _OTLP_NAMES:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter
    if ":" in name:
        module, _, attribute = name.partition(":")
        found: type[SpanExporter] = getattr(importlib.import_module(module), attribute)
        return found
    (point,) = entry_points(group="opentelemetry_traces_exporter", name=name)
    loaded: type[SpanExporter] = point.load()
    return loaded


def _program() -> tuple[str, list[str]]:
    argv = sys.argv or [""]
    return Path(argv[0]).name, argv[1:]


def _started_as_worker() -> bool:
    """`celery ... worker` (as `agents worker` runs it): its provider is made after the fork.
    A worker started otherwise is recognised at `worker_init`, or its pool children inherit the
    provider made at import (the SDK restarts its export thread in a forked child)."""
    program, args = _program()
    return program in ("celery", "__main__.py") and "worker" in args


def _process_role() -> str:
    """`agents <command>`: the command (bridge, send, loadtest...); celery beat or flower; else client."""
    program, args = _program()
    if program in ("agents", "cli.py") and args:
        return args[0]
    if program in ("celery", "__main__.py"):
        return next((command for command in ("beat", "flower") if command in args), "client")
    return "client"


def _node_role(hostname: Any) -> str:
    """A worker's role: its node name before the @ (the engine's name under `agents worker`)."""
    return str(hostname or "worker").partition("@")[0] or "worker"


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool

    pool = get_implementation(getattr(sender, "pool_cls", None) or "prefork")
    if isinstance(pool, type) and issubclass(pool, TaskPool):
        _state.worker_main = True  # each pool child makes its own provider after the fork
    else:
        _ensure_provider(_node_role(getattr(sender, "hostname", None)))


def _on_worker_process_init(sender: Any = None, **_: Any) -> None:
    _state.worker_main = False
    _ensure_provider(_node_role(sender))


def _on_worker_process_shutdown(**_: Any) -> None:
    # A pool child leaves through os._exit: export what its processor still holds first.
    if _state.provider is not None:
        _state.provider.force_flush(_SPAN_FLUSH_MILLIS)


# Installed on import: the parent links of a routed request's spans depend on the order in which
# publish-signal receivers are connected; installing later, from tasks/app.py, broke them
# (tests/tasks/test_tracing.py).
install()
