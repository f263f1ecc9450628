"""Lifecycle records on their way to PostgreSQL, buffered in Redis so none is lost.

Every process appends records to one Redis list (one RPUSH, no PostgreSQL on the task's path).
History writers (a thread in each worker's main process) move them to PostgreSQL in batches:
a Lua script moves a batch into the writer's own in-flight list, the batch is upserted, then
the in-flight list is deleted. If PostgreSQL is down the batch stays in flight and is retried;
if a writer dies, another writer hands its in-flight batch back. Upserts by task id make a
batch written twice harmless.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from sqlalchemy.exc import SQLAlchemyError

from agents.lifecycle import LifecycleEvent, merge
from agents.names import HISTORY_PENDING_KEY, HISTORY_WRITERS_KEY, history_inflight_key
from agents.settings import get_settings
from agents.telemetry.catalog import DB_QUERY_DURATION
from agents.telemetry.store import add_to
from agents.telemetry.tally import Tally

log = structlog.get_logger("agents.recorder")
WRITER_TTL_SECONDS = 30.0
HISTORY_UPSERT_QUERY = "history_upsert"  # the `query` label of agent_db_query_duration_seconds
MAX_BACKOFF_SECONDS = 10.0

_CLAIM = """
local inflight = redis.call('LRANGE', KEYS[2], 0, -1)
if #inflight > 0 then return inflight end
local batch = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #batch == 0 then return batch end
redis.call('LTRIM', KEYS[1], #batch, -1)
redis.call('RPUSH', KEYS[2], unpack(batch))
return batch
"""

_RESCUE = """
local t = redis.call('TIME')
local now = tonumber(t[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local moved = 0
for _, writer in ipairs(dead) do
  local key = ARGV[1] .. writer
  local items = redis.call('LRANGE', key, 0, -1)
  for i = #items, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
  moved = moved + #items
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], writer)
end
return moved
"""


@dataclass(slots=True)
class Held:
    """Writes held while `collecting()` is open: lifecycle events and metric increments."""

    events: list[LifecycleEvent] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)


_collector: ContextVar[Held | None] = ContextVar("lifecycle_collector", default=None)


def record(client: redis.Redis, events: Sequence[LifecycleEvent]) -> None:
    """Append lifecycle events in one round trip (or hold them while `collecting()` is open)."""
    if not events:
        return
    held = _collector.get()
    if held is not None:
        held.events.extend(events)
        return
    _write(client, events, None)


def count(client: redis.Redis, tally: Tally) -> None:
    """Add metric increments (agents/telemetry), with the held events when `collecting()` is open."""
    if not tally:
        return
    held = _collector.get()
    if held is not None:
        held.tally.merge(tally)
        return
    _write(client, (), tally)


@contextmanager
def collecting(client: redis.Redis) -> Iterator[Held]:
    """Hold the events and counts recorded inside the block and write them in one round trip at
    its end.

    Batch publishers (the router, the bridge, the load generator) and every step of the
    pipeline use it, so recording "queued" and counting it costs one round trip per batch
    instead of one per message. An exception inside the block records nothing: the batch was
    not published (or processed) either.
    """
    held = Held()
    token = _collector.set(held)
    try:
        yield held
    finally:
        _collector.reset(token)
    outer = _collector.get()
    if outer is not None:  # nested: the outer block writes everything once
        outer.events.extend(held.events)
        outer.tally.merge(held.tally)
        return
    _write(client, held.events, held.tally)


def _write(client: redis.Redis, events: Sequence[LifecycleEvent], tally: Tally | None) -> None:
    if not events and not tally:
        return
    if not tally:
        client.rpush(HISTORY_PENDING_KEY, *(_encode(e) for e in events))
        return
    # The record and its counts in one round trip; MULTI so that a record is never written
    # without its count (the exporter's counters must match task_results).
    pipe = client.pipeline(transaction=True)
    if events:
        pipe.rpush(HISTORY_PENDING_KEY, *(_encode(e) for e in events))
    add_to(pipe, tally)
    pipe.execute()


def _encode(event: LifecycleEvent) -> str:
    return json.dumps(event.as_record(), default=str, separators=(",", ":"))


def backlog(client: redis.Redis) -> int:
    """Records not yet written to PostgreSQL."""
    return int(client.llen(HISTORY_PENDING_KEY))


def written_through(client: redis.Redis) -> float:
    """The time (epoch seconds) before which every lifecycle record is in PostgreSQL: the oldest
    record still pending or in a writer's hands, or Redis's clock when none is. Records are
    appended about in time order, so the heads of the lists are the oldest."""
    heads = [client.lindex(HISTORY_PENDING_KEY, 0)]
    writers = client.zrange(HISTORY_WRITERS_KEY, 0, -1)
    heads += [client.lindex(history_inflight_key(_text(w)), 0) for w in writers]
    times = [float(record["at"]) for head in heads if head is not None and (record := _decode(head))]
    if times:
        return min(times)
    seconds, micros = client.time()
    return seconds + micros / 1e6


def _decode(item: bytes | str) -> dict[str, Any] | None:
    """A lifecycle record from the history list, or None if it is not one (no task id or time)."""
    try:
        record = json.loads(item)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("task_id"), str):
        return None
    at = record.get("at")
    return record if isinstance(at, int | float) and not isinstance(at, bool) else None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class HistoryWriter:
    """Moves lifecycle records from Redis to PostgreSQL in batches."""

    def __init__(self, client: redis.Redis, writer_id: str | None = None) -> None:
        self.client = client
        self.writer_id = writer_id or f"{socket.gethostname()}-{os.getpid()}"
        self.inflight = history_inflight_key(self.writer_id)
        self._claim = client.register_script(_CLAIM)
        self._rescue = client.register_script(_RESCUE)

    def flush_once(self, batch_size: int) -> int:
        """Write one batch; returns how many records it held (0: nothing pending)."""
        # Redis's clock, like the rescue script's: a host whose clock lags must not look dead.
        seconds, _ = self.client.time()
        self.client.zadd(HISTORY_WRITERS_KEY, {self.writer_id: seconds + WRITER_TTL_SECONDS})
        raw = self._claim(keys=[HISTORY_PENDING_KEY, self.inflight], args=[batch_size])
        if not raw:
            return 0
        from db.history import upsert

        decoded = [(item, _decode(item)) for item in raw]
        records = [record for _, record in decoded if record is not None]
        bad = [item for item, record in decoded if record is None]
        if bad:  # not ours: kept out, or the writer would retry the batch forever
            log.error("history_record_malformed", count=len(bad), first=str(bad[0])[:200])
        started = time.perf_counter()
        upsert(merge(records).values())
        took = Tally()
        took.observe(DB_QUERY_DURATION, (HISTORY_UPSERT_QUERY,), time.perf_counter() - started)
        # The batch is done and its duration counted in one round trip.
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.inflight)
        add_to(pipe, took)
        pipe.execute()
        return len(raw)

    def rescue_dead_writers(self) -> int:
        """Hand the in-flight batches of writers that stopped beating back to the queue."""
        prefix = history_inflight_key("")
        return int(self._rescue(keys=[HISTORY_WRITERS_KEY, HISTORY_PENDING_KEY], args=[prefix]))

    def drain(self, batch_size: int, deadline: float) -> int:
        """Write batches until nothing is pending or `deadline` (monotonic) passes."""
        written = 0
        while time.monotonic() < deadline:
            count = self.flush_once(batch_size)
            written += count
            if count == 0:
                break
        return written

    def retire(self) -> None:
        """Leave the writer set; any unfinished batch is rescued by another writer."""
        self.client.zadd(HISTORY_WRITERS_KEY, {self.writer_id: 0})


class HistoryWriterThread(threading.Thread):
    """Runs a HistoryWriter in the background of a worker's main process."""

    def __init__(self, writer: HistoryWriter) -> None:
        super().__init__(name="agents-history-writer", daemon=True)
        self.writer = writer
        self._stop_event = threading.Event()

    def run(self) -> None:
        settings = get_settings()
        backoff = settings.history_flush_interval_seconds
        while not self._stop_event.is_set():
            try:
                self.writer.rescue_dead_writers()
                while self.writer.flush_once(settings.history_batch_size) and not self._stop_event.is_set():
                    pass
                backoff = settings.history_flush_interval_seconds
            except (redis.RedisError, SQLAlchemyError) as exc:
                # PostgreSQL or Redis away: the batch stays in flight; try again, slower each time.
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                log.warning("history_write_failed", error=str(exc)[:200], retry_in=backoff)
            self._stop_event.wait(backoff)

    def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop after writing what is pending (bounded), then retire."""
        self._stop_event.set()
        self.join(timeout=10)
        try:
            self.writer.drain(get_settings().history_batch_size, time.monotonic() + drain_seconds)
        except (redis.RedisError, SQLAlchemyError) as exc:
            log.warning("history_drain_failed", error=str(exc)[:200])
        with contextlib.suppress(redis.RedisError):
            self.writer.retire()


def run_writer_process() -> None:
    """`agents history-writer`: write history until SIGTERM/SIGINT, then drain and retire."""
    import signal

    from agents.connections import redis_client

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread = HistoryWriterThread(HistoryWriter(redis_client()))
    thread.start()
    log.info("history_writer_started", writer=thread.writer.writer_id)
    stop.wait()
    thread.stop()
    log.info("history_writer_stopped", writer=thread.writer.writer_id)
