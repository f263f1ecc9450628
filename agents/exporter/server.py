"""`agents exporter`: serves the platform's metrics over HTTP until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import structlog
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, start_http_server

from agents.exporter.collector import PlatformCollector as AgentsCollector
from agents.redis_clients import new_redis
from agents.settings import get_settings

log = structlog.get_logger("agents.exporter")

# A scrape must answer within Prometheus's default 10 s scrape timeout even when Redis hangs.
REDIS_TIMEOUT_SECONDS = 3.0


def build_registry(database: bool = True) -> CollectorRegistry:
    """The exporter's own registry: the platform's series plus this process's."""
    settings = get_settings()
    client = new_redis(
        settings, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )
    registry = CollectorRegistry()
    registry.register(AgentsCollector(client, settings.worker_offline_after_seconds, database=database))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def serve(host: str, port: int) -> None:
    """Serve /metrics on host:port; returns after SIGINT or SIGTERM."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    server, thread = start_http_server(port, addr=host, registry=build_registry())
    log.info("exporter_started", url=f"http://{host}:{port}/metrics")
    stop.wait()
    server.shutdown()
    thread.join(timeout=5)
    log.info("exporter_stopped")
