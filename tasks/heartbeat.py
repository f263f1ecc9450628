"""Worker heartbeats: a worker announces the engines whose queues it consumes.

Started on `worker_ready` in the worker's main process and withdrawn on shutdown, so
routing sees a worker from the moment it can take tasks until it stops. Each beat also reports
the requests running and the CPU and resident memory of the worker's process tree (the main
process and its pool children, agents/telemetry/process_tree.py) for the exporter and the monitor.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
import structlog
from celery.signals import worker_ready, worker_shutdown
from celery.worker import state as worker_state

from agents.catalog import engines
from agents.connections import registry
from agents.registry import EngineCard, engine_card
from agents.settings import get_settings
from agents.telemetry.process_tree import ProcessTree
from tasks.batching import requests_in_pool

log = structlog.get_logger("agents.heartbeat")


class Heartbeat(threading.Thread):
    """Background thread that re-announces this worker's engines every interval."""

    def __init__(self, host: str, cards: list[EngineCard], queues: list[str]) -> None:
        super().__init__(name="agents-heartbeat", daemon=True)
        self.host = host
        self.cards = cards
        self.queues = queues
        self.engines = [card.engine for card in cards]
        self.tree = ProcessTree()  # made in the worker's main process: the pool are its children
        self._stop_event = threading.Event()

    def run(self) -> None:
        settings = get_settings()
        while not self._stop_event.is_set():
            try:
                registry().announce(self.host, self.cards, settings.heartbeat_ttl_seconds)
                running = len(worker_state.active_requests) + requests_in_pool()
                usage = self.tree.sample()
                registry().report_active(
                    self.host, running, self.queues, self.engines, usage.cpu_percent, usage.memory_bytes
                )
            except redis.RedisError as exc:
                log.warning("heartbeat_failed", host=self.host, error=str(exc))
            self._stop_event.wait(settings.heartbeat_interval_seconds)

    def stop(self) -> None:
        """Stop beating and withdraw the heartbeats so routing stops at once."""
        self._stop_event.set()
        self.join(timeout=5)
        try:
            registry().withdraw(self.host, [card.engine for card in self.cards])
        except redis.RedisError as exc:
            log.warning("withdraw_failed", host=self.host, error=str(exc))


_heartbeat: Heartbeat | None = None


def cards_for_queues(queues: list[str], concurrency: int) -> list[EngineCard]:
    """Cards of the catalog engines whose queues are in `queues`: what any router, bridge or
    reaper needs to reach the engine by name (discovery without restarts)."""
    return [engine_card(engine, concurrency) for name, engine in engines().items() if name in queues]


@worker_ready.connect
def _start_heartbeat(sender: Any, **_: Any) -> None:
    global _heartbeat
    queues = list(sender.app.amqp.queues.consume_from)
    concurrency = int(getattr(sender.controller, "concurrency", 1) or 1)
    cards = cards_for_queues(queues, concurrency)
    if cards:
        _heartbeat = Heartbeat(sender.hostname, cards, queues)
        _heartbeat.start()
        log.info("heartbeat_started", host=sender.hostname, engines=[c.engine for c in cards])


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
