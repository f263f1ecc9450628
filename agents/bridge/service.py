"""`agents bridge`: wires settings, engine subjects, Redis and the Celery app into a Bridge and runs it."""

from __future__ import annotations

import asyncio
import signal

import structlog

from agents.bridge.consumer import Bridge
from agents.bridge.dedup import Markers
from agents.bridge.dispatch import Dispatcher
from agents.bridge.mapping import SubjectMap
from agents.catalog import engines
from agents.connections import redis_client
from agents.logs import log_to_stderr
from agents.settings import Settings, get_settings

log = structlog.get_logger("agents.bridge")


async def subject_map(settings: Settings) -> SubjectMap:
    """The subject map of this process's catalog; `start()` collects each engine's subjects."""
    catalog = engines()
    for engine in catalog.values():
        await engine.start()
    return SubjectMap.build(settings.bridge_subject_prefix, settings.bridge_subject_map, catalog.values())


async def build_bridge(settings: Settings) -> Bridge:
    """A ready-to-run Bridge on the platform's Redis and Celery app."""
    from tasks.app import app
    from tasks.publisher import TaskPublisher

    subjects = await subject_map(settings)
    markers = Markers(redis_client(), settings.bridge_ack_wait_seconds, settings.bridge_dedup_ttl_seconds)
    dispatcher = Dispatcher(settings, subjects, markers, TaskPublisher(app, settings.bridge_sent_events))
    return Bridge(settings, dispatcher, subjects.stream_subjects())


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT; the batch in flight is published and settled first."""
    bridge = await build_bridge(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, bridge.stop.set)
    await bridge.run()


def run(metrics_port: int | None = None, metrics_host: str = "127.0.0.1") -> None:
    """Blocking entry point of `agents bridge`."""
    log_to_stderr(get_settings().log_level, get_settings().log_format)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
        log.info("bridge_metrics", port=metrics_port)
    asyncio.run(serve(get_settings()))
