"""History writers on real Redis and PostgreSQL: a dead writer's batch is not lost."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from agents.lifecycle import LifecycleEvent
from agents.names import HISTORY_WRITERS_KEY
from agents.recorder import HistoryWriter, collecting, record, written_through
from agents.statuses import SUCCESS
from tests.conftest import wait_for_history

pytestmark = pytest.mark.servers


def test_batch_of_a_dead_writer_is_handed_back_and_written(postgres_server, redis_client) -> None:
    ids = [f"rec-{uuid.uuid4()}" for _ in range(5)]
    # Given writer A had claimed a batch (its in-flight list) and died before writing it
    dead = HistoryWriter(redis_client, writer_id=f"dead-{uuid.uuid4()}")
    events = [json.dumps({"task_id": t, "status": "success", "at": time.time()}) for t in ids]
    redis_client.rpush(dead.inflight, *events)
    redis_client.zadd(HISTORY_WRITERS_KEY, {dead.writer_id: 0})
    # When another writer runs, it hands the batch back (any writer may then write it)
    alive = HistoryWriter(redis_client, writer_id=f"alive-{uuid.uuid4()}")
    assert alive.rescue_dead_writers() == 5
    assert not redis_client.exists(dead.inflight)
    alive.drain(100, time.monotonic() + 10)
    # Then every record reached PostgreSQL
    wait_for_history(ids, {"success"})


def test_collecting_holds_events_until_the_block_ends(fleet: str, redis_client) -> None:
    from db import history

    ids = [f"col-{uuid.uuid4()}" for _ in range(2)]
    with collecting(redis_client) as held:
        for task_id in ids:
            record(redis_client, [LifecycleEvent(task_id, SUCCESS)])
        assert [e.task_id for e in held.events] == ids
        time.sleep(0.5)  # the session's history writer polls every 0.2 s: nothing to write yet
        assert all(history.get(t) is None for t in ids)
    wait_for_history(ids, {"success"})


def test_written_through_is_the_oldest_record_not_yet_in_postgresql(postgres_server, redis_client) -> None:
    # Given a live writer holding a batch whose oldest record is ten minutes old
    holder = HistoryWriter(redis_client, writer_id=f"holder-{uuid.uuid4()}")
    old = time.time() - 600
    records = [
        json.dumps({"task_id": f"w-{uuid.uuid4()}", "status": "success", "at": at}) for at in (old, old + 1)
    ]
    redis_client.rpush(holder.inflight, *records)
    redis_client.zadd(HISTORY_WRITERS_KEY, {holder.writer_id: time.time() + 60})
    try:
        # Then the history is written only up to that record
        assert written_through(redis_client) == pytest.approx(old)
    finally:
        redis_client.delete(holder.inflight)
        redis_client.zrem(HISTORY_WRITERS_KEY, holder.writer_id)
    # And once the batch is gone, it is written up to about now (or the next pending record)
    assert written_through(redis_client) > old + 1


def test_records_that_are_not_lifecycle_records_do_not_wedge_the_writer(
    postgres_server, redis_client
) -> None:
    # Given a batch mixing valid records with ones no process of ours writes
    ids = [f"mix-{uuid.uuid4()}" for _ in range(2)]
    valid = [json.dumps({"task_id": t, "status": "success", "at": time.time()}) for t in ids]
    junk = ["not json", json.dumps([1, 2]), json.dumps({"status": "success", "at": 1.0}),
            json.dumps({"task_id": "no-time", "status": "success"}), "[" * 5000 + "]" * 5000]  # fmt: skip
    writer = HistoryWriter(redis_client, writer_id=f"mixed-{uuid.uuid4()}")
    redis_client.rpush(writer.inflight, junk[0], valid[0], *junk[1:], valid[1])
    redis_client.zadd(HISTORY_WRITERS_KEY, {writer.writer_id: time.time() + 60})
    try:
        # When the writer takes that batch, it writes the valid ones and drops the batch
        assert writer.flush_once(100) == 7
        assert not redis_client.exists(writer.inflight)
    finally:
        writer.retire()
    wait_for_history(ids, {"success"})
