"""`/health`, `/health/live`, `/health/ready` and `/metrics` of a worker, on HEALTH_PORT (0: off).

A worker step starts a small HTTP server (stdlib, a daemon thread) in the worker's main process.
It binds 0.0.0.0: in a pod the kubelet probes and Prometheus scrapes the pod's IP, not loopback
(under `make run` the answers hold no secrets). The decisions are pure (agents/health.py); this
module observes the worker:

- event loop: a hub timer notes the time every second; a stale note means a hung main thread.
- broker: the consumer's broker connection (`consumer.connection`, set to None by Celery while it
  reconnects) and a PING every PING_INTERVAL seconds from a thread of its own over the platform's
  Redis client, never over the event loop's connection, which is not thread-safe.
- consuming: the consumer's blueprint has started every step (it runs its loop) and its task
  consumer consumes each `-Q` queue (`task_consumer.consuming_from`).

These are public attributes of Celery's Consumer and Blueprint and kombu's Consumer, checked with
celery 5.7.0 and kombu 5.7.0 (tests/tasks/test_health_server.py fails if they change).

A busy port (HEALTH_PORT) is logged as an error naming HEALTH_PORT and the port, and the worker
keeps running without these endpoints: it still does its work, while a pod's probes fail and
make the mistake visible, rather than a worker that refuses to start over an observability port.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from celery import bootsteps
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agents import health
from agents.connections import redis_client
from agents.settings import get_settings
from agents.telemetry.catalog import WORKER_READY
from tasks.heartbeat import cards_for_queues

log = structlog.get_logger("agents.health_server")

# Probes and scrapes reach a pod on its IP, not on loopback; it serves health and metrics only.
BIND_HOST = "0.0.0.0"  # nosec B104 # see above
TICK_SECONDS = 1.0  # how often the event loop notes that it turns
PING_INTERVAL = 2.0  # seconds between broker PINGs
METRICS_PATH = "/metrics"
_RUN = bootsteps.RUN


class BrokerPing(threading.Thread):
    """PINGs the broker every PING_INTERVAL seconds and remembers the last answer."""

    def __init__(self) -> None:
        super().__init__(name="agents-health-ping", daemon=True)
        self._stop_event = threading.Event()
        self.last_pong: float | None = None  # monotonic time of the last PONG
        self.error: str | None = None  # the last PING's error, None after a PONG

    def run(self) -> None:
        client = redis_client()  # its own pooled connections, with socket timeouts
        while not self._stop_event.is_set():
            try:
                client.ping()
            except Exception as exc:  # any failure is the answer to report
                self.error = f"{type(exc).__name__}: {exc}"
            else:
                self.last_pong, self.error = time.monotonic(), None
            self._stop_event.wait(PING_INTERVAL)

    def stop(self) -> None:
        """Stop pinging; a PING in flight ends on its socket timeout (the thread is a daemon)."""
        self._stop_event.set()


class WorkerProbe:
    """Observes the worker for the HTTP thread: plain attribute reads, no broker calls."""

    def __init__(self, consumer: Any, queues: list[str], has_loop: bool, ping: BrokerPing | None) -> None:
        self.consumer = consumer
        self.queues = tuple(queues)
        self.has_loop = has_loop
        self.ping = ping
        self.last_tick = time.monotonic()  # start-up counts as a turn: the loop is not running yet

    def tick(self) -> None:
        """Called by the event loop every TICK_SECONDS."""
        self.last_tick = time.monotonic()

    def consumer_state(self) -> health.ConsumerState:
        """Where Celery's consumer is: connecting, starting its steps, in its loop, or stopping."""
        blueprint = self.consumer.blueprint
        if blueprint.state is None:
            return "starting"
        if blueprint.state != _RUN:
            return "stopping"
        if self.consumer.connection is None:  # Celery clears it until a reconnect succeeded
            return "connecting"
        # The last step (the event loop) blocks in its start: all started means in the loop.
        if getattr(blueprint, "started", 0) < len(self.consumer.steps):
            return "starting"
        return "running"

    def observe(self) -> health.Observation:
        """One observation of the worker."""
        now = time.monotonic()
        connection = self.consumer.connection
        task_consumer = self.consumer.task_consumer
        consuming = frozenset(
            queue
            for queue in self.queues
            if task_consumer is not None and task_consumer.consuming_from(queue)
        )
        ping = self.ping
        return health.Observation(
            loop_age=now - self.last_tick if self.has_loop else None,
            consumer=self.consumer_state(),
            connected=connection is not None and bool(connection.connected),
            queues=self.queues,
            consuming=consuming,
            ping_age=None if ping is None or ping.last_pong is None else now - ping.last_pong,
            ping_error=None if ping is None else ping.error,
            pinged=ping is not None,
        )


class ReadyCollector(Collector):
    """agent_worker_ready{engine}: 1 while the worker is ready and consumes the engine's queue."""

    def __init__(self, probe: WorkerProbe, engine_queues: dict[str, str]) -> None:
        self.probe = probe
        self.engine_queues = engine_queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(WORKER_READY.name, WORKER_READY.help, labels=list(WORKER_READY.labels))
        obs = self.probe.observe()
        for engine, queue in sorted(self.engine_queues.items()):
            gauge.add_metric([engine], 1.0 if health.queue_ready(obs, queue) else 0.0)
        yield gauge


def metrics_registry(probe: WorkerProbe, engine_queues: dict[str, str]) -> CollectorRegistry:
    """A registry of its own (never the global one: no duplicate registrations): this process's
    process_* and python_* series and agent_worker_ready."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(ReadyCollector(probe, engine_queues))
    return registry


class HealthHTTPServer(ThreadingHTTPServer):
    """The HTTP server, holding what its handlers answer from."""

    daemon_threads = True  # a slow client never holds up the worker's exit

    def __init__(self, port: int, probe: WorkerProbe, registry: CollectorRegistry) -> None:
        self.probe = probe
        self.registry = registry
        super().__init__((BIND_HOST, port), HealthHandler)


class HealthHandler(BaseHTTPRequestHandler):
    """GET of the health paths and /metrics; 404 for anything else."""

    server: HealthHTTPServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == METRICS_PATH:
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(self.server.registry))
            return
        answer = health.answer(path, self.server.probe.observe())
        if answer is None:
            self._send(404, "application/json", b'{"status": "fail", "error": "not found"}')
            return
        code, body = answer
        self._send(code, "application/json", json.dumps(body).encode())

    def _send(self, code: int, content_type: str, payload: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: probes every few seconds would drown the worker's log."""


# Forked pool children inherit the listening socket; they close their copy, so the port is free
# as soon as the main process stops serving.
_listening: set[HealthHTTPServer] = set()


def _close_in_child() -> None:
    for server in list(_listening):
        server.socket.close()
    _listening.clear()


os.register_at_fork(after_in_child=_close_in_child)


def start_server(port: int, probe: WorkerProbe, engine_queues: dict[str, str]) -> HealthHTTPServer | None:
    """Serve on `port` in a daemon thread; None (and an error in the log) if it cannot bind."""
    try:
        server = HealthHTTPServer(port, probe, metrics_registry(probe, engine_queues))
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
        log.error(
            "health_server_not_started",
            port=port,
            error=f"HEALTH_PORT={port}: port {port} {reason}; this worker keeps running without "
            "/health and /metrics (set HEALTH_PORT to a free port, or 0 to turn them off)",
        )
        return None
    _listening.add(server)
    thread = threading.Thread(target=server.serve_forever, name="agents-health-http", daemon=True)
    thread.start()
    return server


class HealthServer(bootsteps.StartStopStep):
    """Worker step: serves the health endpoints and /metrics on HEALTH_PORT while the worker runs."""

    requires = ("celery.worker.components:Hub",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.server: HealthHTTPServer | None = None
        self.ping: BrokerPing | None = None
        self.timer_entry: Any = None

    def start(self, worker: Any) -> None:
        port = get_settings().health_port
        if not port:
            return
        queues = sorted(worker.app.amqp.queues.consume_from)
        concurrency = int(getattr(worker, "concurrency", 1) or 1)
        engine_queues = {card.engine: card.queue for card in cards_for_queues(queues, concurrency)}
        # The broker is the platform's Redis (celeryconfig); anything else is not pinged.
        redis_broker = str(worker.app.conf.broker_url or "").startswith(
            ("redis://", "rediss://", "sentinel://")
        )
        self.ping = BrokerPing() if redis_broker else None
        probe = WorkerProbe(worker.consumer, queues, has_loop=worker.hub is not None, ping=self.ping)
        self.server = start_server(port, probe, engine_queues)
        if self.server is None:
            self.ping = None
            return
        if self.ping is not None:
            self.ping.start()
        if worker.hub is not None:
            # Registered before the consumer starts: Celery keeps it across broker reconnects.
            self.timer_entry = worker.hub.call_repeatedly(TICK_SECONDS, probe.tick)
        log.info("health_server_started", port=port, host=BIND_HOST, engines=sorted(engine_queues))

    def stop(self, worker: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        if self.ping is not None:
            self.ping.stop()
            self.ping = None
        if self.server is not None:
            server, self.server = self.server, None
            server.shutdown()
            server.server_close()
            _listening.discard(server)
            log.info("health_server_stopped", port=server.server_address[1])

    def terminate(self, worker: Any) -> None:
        self.stop(worker)
