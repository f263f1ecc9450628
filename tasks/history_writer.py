"""Each worker's main process runs a history writer: Redis lifecycle records → PostgreSQL."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready, worker_shutdown

from agents.connections import redis_client
from agents.recorder import HistoryWriter, HistoryWriterThread

_thread: HistoryWriterThread | None = None


@worker_ready.connect
def _start_writer(sender: Any, **_: Any) -> None:
    global _thread
    _thread = HistoryWriterThread(HistoryWriter(redis_client(), writer_id=sender.hostname))
    _thread.start()


@worker_shutdown.connect
def _stop_writer(**_: Any) -> None:
    if _thread is not None:
        _thread.stop()
