"""Trace context through task headers (OTEL_ENABLED), with real workers: the worker's span of a
request has the trace id of the publisher's span, on a per-request engine and through the router
into a batch engine; with OTEL_ENABLED unset nothing is instrumented.

The workers here use Redis databases of their own on the session server, so their
`intelligence`, `analysis` and `flaky` queues never take the session fleet's work. They export
spans with `JsonLinesExporter` below (OTEL_TRACES_EXPORTER=module:Class), one JSON object a
line. Keep this module's top-level imports light: the workers' pool processes import it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

SPANS_FILE_VARIABLE = "AGENTS_TEST_SPANS_FILE"
EXPORTER = f"{__name__}:JsonLinesExporter"
TRACED_DB = 11  # the traced worker's broker, results and registry
UNTRACED_DB = 12
QUEUES = "intelligence,analysis,flaky"
FLAKY_TASK = "agents.engine.flaky"
ROUTE_TASK = "agents.route"


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


class JsonLinesExporter(SpanExporter):
    """Appends each finished span as one JSON line to the file AGENTS_TEST_SPANS_FILE names."""

    def __init__(self) -> None:
        self.path = Path(os.environ[SPANS_FILE_VARIABLE])

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(span)) + "\n" for span in spans)
        with self.path.open("a") as out:  # one write per batch: pool processes append whole lines
            out.write(lines)
        return SpanExportResult.SUCCESS


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """What the tests compare of a span."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "trace_id": _hex(context.trace_id, 32),
        "span_id": _hex(context.span_id, 16),
        "parent_id": _hex(span.parent.span_id, 16) if span.parent else None,
        "service": span.resource.attributes.get("service.name"),
        "attributes": {k: v for k, v in (span.attributes or {}).items() if isinstance(v, str | int)},
        "status": span.status.status_code.name,
    }


def private_url(db: int) -> str:
    """The session Redis, another database number."""
    return os.environ["REDIS_URL"].rsplit("/", 1)[0] + f"/{db}"


def private_app(url: str) -> Any:
    """A Celery app publishing to and reading results from `url` (not the session's current app)."""
    from celery import Celery

    app = Celery("agents-tracing-test", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.update(broker_url=url, result_backend=url)
    return app


def wait_for_private_engines(url: str, names: set[str], timeout: float = 30.0) -> None:
    """wait_for_engines, on a private database's registry."""
    import redis

    from agents.registry import Registry

    registry = Registry(redis.Redis.from_url(url))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if names <= set(registry.live_workers()):
            return
        time.sleep(0.2)
    raise TimeoutError(f"engines {sorted(names)} sent no heartbeat on {url} within {timeout}s")


@dataclass
class PrivateWorker:
    """A worker on a Redis database of its own, and where it writes its spans."""

    url: str
    app: Any
    spans_file: Path
    node: str

    def spans(self) -> list[dict[str, Any]]:
        if not self.spans_file.exists():
            return []
        return [json.loads(line) for line in self.spans_file.read_text().splitlines() if line]

    def span(self, name: str, task_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """The worker's span `name` of task `task_id`, once exported."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for span in self.spans():
                if span["name"] == name and span["attributes"].get("messaging.message.id") == task_id:
                    return span
            time.sleep(0.1)
        raise TimeoutError(f"no span {name} of {task_id} within {timeout}s: {self.spans()}")


def start_private_worker(db: int, log_name: str, spans_file: Path, **env: str) -> tuple[Any, PrivateWorker]:
    from tests.conftest import spawn_worker

    url = private_url(db)
    import redis

    redis.Redis.from_url(url).flushdb()
    node = f"{log_name}-{os.getpid()}@localhost"
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", QUEUES,
            "-n", node, "-c", "2", "-P", "prefork", "--loglevel", "INFO"]  # fmt: skip
    process = spawn_worker(
        argv,
        log_name,
        REDIS_URL=url,
        OTEL_TRACES_EXPORTER=EXPORTER,
        OTEL_BSP_SCHEDULE_DELAY="100",
        **{SPANS_FILE_VARIABLE: str(spans_file)},
        # Its lifecycle records reach PostgreSQL without a history writer on its database.
        HISTORY_WRITER_IN_WORKERS="true",
        **env,
    )
    try:
        wait_for_private_engines(url, {"intelligence", "analysis", "flaky"})
    except BaseException:
        stop_private_worker(process, url)
        raise
    return process, PrivateWorker(url, private_app(url), spans_file, node)


def stop_private_worker(process: Any, url: str) -> None:
    import redis

    from tests.conftest import stop_worker

    stop_worker(process)
    redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="module")
def traced_worker(redis_server: Any, postgres_server: Any, tmp_path_factory: Any) -> Iterator[PrivateWorker]:
    """A worker with OTEL_ENABLED=true on its own database."""
    spans_file = tmp_path_factory.mktemp("otel") / "spans.jsonl"
    process, worker = start_private_worker(TRACED_DB, "otel-traced", spans_file, OTEL_ENABLED="true")
    yield worker
    stop_private_worker(process, worker.url)


@pytest.fixture(scope="module")
def publisher_spans() -> Iterator[Any]:
    """Tracing on in this test process, its spans kept in memory; off again afterwards."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tasks import tracing
    from tasks.pipeline.registry import pipeline

    assert not tracing.enabled(), "OTEL_ENABLED must be unset for the test session"
    # This process's pipeline is built (and cached) as with tracing off: no TraceHook outlives us.
    pipeline()
    memory = InMemorySpanExporter()
    tracing.enable(role="test", exporter=memory)
    yield memory
    tracing.disable()


def published(memory: Any, name: str, task_id: str) -> dict[str, Any]:
    """This process's publish span `name` of task `task_id`."""
    found = [
        span_record(s)
        for s in memory.get_finished_spans()
        if s.name == name and (s.attributes or {}).get("messaging.message.id") == task_id
    ]
    assert len(found) == 1, [span_record(s) for s in memory.get_finished_spans()]
    return found[0]


@pytest.mark.servers
def test_with_otel_unset_nothing_is_instrumented(
    redis_server: Any, postgres_server: Any, tmp_path: Path
) -> None:
    # A process importing `tasks` (OTEL_ENABLED unset) instruments nothing and adds no header.
    queue = "flaky"  # no worker consumes this database yet: the message stays for us to read
    url = private_url(UNTRACED_DB)
    script = f"""
import json, sys
import tasks
from tasks import tracing
from tasks.pipeline.registry import builtin_hooks
prefixes = ("opentelemetry.instrumentation", "opentelemetry.sdk.trace")
loaded = sorted(m for m in sys.modules if m.startswith(prefixes))
from tests.tasks.test_tracing import private_app
private_app({url!r}).send_task({FLAKY_TASK!r}, args=({{"payload": {{}}}},), queue={queue!r})
print(json.dumps({{"enabled": tracing.enabled(), "loaded": loaded, "trace_id": tracing.current_trace_id(),
                  "hooks": [type(h).__name__ for h in builtin_hooks()]}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["enabled"] is False
    assert seen["loaded"] == []  # neither the instrumentation nor the trace SDK was imported
    assert seen["trace_id"] is None
    assert "TraceHook" not in seen["hooks"]
    import redis

    client = redis.Redis.from_url(url)
    try:
        (raw,) = client.lrange(queue, 0, -1)
        headers = json.loads(raw)["headers"]
        assert not {"traceparent", "tracestate", "baggage"} & set(headers)
    finally:
        client.flushdb()

    # A worker with OTEL_ENABLED unset exports nothing, even with an exporter configured.
    spans_file = tmp_path / "spans.jsonl"
    process, worker = start_private_worker(UNTRACED_DB, "otel-untraced", spans_file)
    try:
        direct = worker.app.send_task(FLAKY_TASK, args=({"payload": {}},), queue="flaky")
        routed = worker.app.send_task(
            ROUTE_TASK,
            args=({"capability": "analysis", "payload": {"data": [1, 2, 3]}},),
            queue="intelligence",
        )
        assert direct.get(timeout=30)["ok"] is True
        assert routed.get(timeout=30)["count"] == 3
        time.sleep(1)  # ten times the exporter's schedule delay, had there been a processor
        assert worker.spans() == []
    finally:
        stop_private_worker(process, worker.url)


@pytest.mark.servers
def test_a_per_request_engine_continues_the_publishers_trace(
    traced_worker: PrivateWorker, publisher_spans: Any
) -> None:
    result = traced_worker.app.send_task(FLAKY_TASK, args=({"payload": {}},), queue="flaky")
    assert result.get(timeout=30)["ok"] is True

    publish = published(publisher_spans, f"apply_async/{FLAKY_TASK}", result.id)
    run = traced_worker.span(f"run/{FLAKY_TASK}", result.id)
    assert run["trace_id"] == publish["trace_id"]
    assert run["parent_id"] == publish["span_id"]
    assert run["service"] == f"agents-{traced_worker.node.partition('@')[0]}"
    assert publish["service"] == "agents-test"


@pytest.mark.servers
def test_a_routed_request_keeps_its_trace_through_the_router_into_a_batch_engine(
    traced_worker: PrivateWorker, publisher_spans: Any
) -> None:
    request = {"capability": "analysis", "payload": {"data": [1, 2, 3, 50]}}
    result = traced_worker.app.send_task(ROUTE_TASK, args=(request,), queue="intelligence")
    assert result.get(timeout=30)["count"] == 4

    publish = published(publisher_spans, f"apply_async/{ROUTE_TASK}", result.id)
    # The router and the analysis engine are batch tasks: the pipeline's TraceHook made these.
    router = traced_worker.span(f"run/{ROUTE_TASK}", result.id)
    forward = traced_worker.span("apply_async/agents.engine.analysis", result.id)
    engine = traced_worker.span("run/agents.engine.analysis", result.id)
    assert {router["trace_id"], forward["trace_id"], engine["trace_id"]} == {publish["trace_id"]}
    assert router["parent_id"] == publish["span_id"]
    assert forward["parent_id"] == router["span_id"]
    assert engine["parent_id"] == forward["span_id"]
    assert router["attributes"]["agents.outcome"] == "published"  # handed on; the engine's outcome:
    assert engine["attributes"]["agents.outcome"] == "success"


@pytest.mark.servers
def test_a_failed_batch_request_is_an_error_span(traced_worker: PrivateWorker, publisher_spans: Any) -> None:
    request = {"capability": "analysis", "payload": {"data": "not a list"}}
    result = traced_worker.app.send_task(ROUTE_TASK, args=(request,), queue="intelligence")
    with pytest.raises(Exception, match="engine 'analysis': data: Input should be a valid list"):
        result.get(timeout=30)
    publish = published(publisher_spans, f"apply_async/{ROUTE_TASK}", result.id)
    engine = traced_worker.span("run/agents.engine.analysis", result.id)
    assert engine["trace_id"] == publish["trace_id"]
    assert (engine["status"], engine["attributes"]["agents.outcome"]) == ("ERROR", "failed")


def test_current_trace_id_names_the_current_span_or_a_requests_span(publisher_spans: Any) -> None:
    from opentelemetry import trace

    from tasks import tracing

    assert tracing.current_trace_id() is None  # no span here
    with trace.get_tracer("test").start_as_current_span("outer") as outer:
        assert tracing.current_trace_id() == _hex(outer.get_span_context().trace_id, 32)
    span = tracing.open_span("t-1", "run/x", {}, {})
    try:
        assert tracing.current_trace_id("t-1") == _hex(span.get_span_context().trace_id, 32)
    finally:
        assert tracing.close_span("t-1") is span
        span.end()
