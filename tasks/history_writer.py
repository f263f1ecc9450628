"""Optionally (HISTORY_WRITER_IN_WORKERS) each worker's main process runs a history writer.

By default `agents history-writer` runs as its own process: in a worker the writer thread
competes with the consumer loop for the GIL.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready, worker_shutdown

from agents.connections import redis_client
from agents.recorder import HistoryWriter, HistoryWriterThread
from agents.settings import get_settings

_thread: HistoryWriterThread | None = None


@worker_ready.connect
def _start_writer(sender: Any, **_: Any) -> None:
    global _thread
    if not get_settings().history_writer_in_workers:
        return
    _thread = HistoryWriterThread(HistoryWriter(redis_client(), writer_id=sender.hostname))
    _thread.start()


@worker_shutdown.connect
def _stop_writer(**_: Any) -> None:
    if _thread is not None:
        _thread.stop()
