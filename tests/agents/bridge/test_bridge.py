"""The bridge end to end: real NATS, Redis, fleet worker and `agents bridge` processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from typing import Any

import nats
import pytest

from agents.bridge.events import Event, task_id_for
from agents.settings import get_settings
from agents.stack.servers import ServerProcess, free_port, restart
from tasks.app import app
from tests.agents.bridge.conftest import (
    BridgeRunner,
    Published,
    consumer_state,
    counts,
    dead_letters,
    drained,
    drop_consumer,
    prepare_streams,
    publish,
    wait_until,
)
from tests.conftest import ROOT, wait_for_history

pytestmark = pytest.mark.servers


def counter_event(n: int, msg_id: bool = True, subject: str = "events.counting.tally") -> Published:
    headers = {"Nats-Msg-Id": f"evt-{n}"} if msg_id else None
    return subject, json.dumps({"n": n}).encode(), headers


def ids_of(events: Sequence[Published]) -> set[str]:
    return {task_id_for(Event(s, d, h or {})) for s, d, h in events}


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_each_distinct_valid_event_runs_once_and_each_bad_one_is_dead_lettered(
    bridge: BridgeRunner, redis_client: Any
) -> None:
    # Given valid events (with and without Nats-Msg-Id), an engine's own subject, and duplicates
    valid = [counter_event(n, msg_id=n % 2 == 0) for n in range(60)]
    legacy = ("legacy.counter", b'{"from": "old system"}', None)
    duplicates = [counter_event(n, msg_id=n % 2 == 0) for n in range(0, 60, 7)]
    bad = {
        "bad_json": ("events.counting.tally", b"{nope", None),
        "invalid_request": ("events.counting.tally", b'{"n": 1}', {"Priority": "urgent"}),
        "unknown_capability": ("events.nosuch.thing", b"{}", None),
        "unmapped_subject": ("events.counting.a.b", b"{}", None),
        "no_live_engine": ("events.processing.x", b"{}", None),  # my_engine has no worker
    }
    publish([*valid[:30], *duplicates, legacy, *bad.values(), *valid[30:]])
    port = free_port()

    # When the bridge runs
    bridge.start("--metrics-port", str(port))
    expected = ids_of([*valid, legacy])
    wait_until(lambda: set(counts(redis_client)) == expected, what="every valid event executed")
    wait_until(lambda: len(dead_letters()) == len(bad), what="every bad event dead-lettered")

    # Then every distinct valid event ran exactly once, on the engine its subject maps to
    time.sleep(0.5)  # a late duplicate would show up here
    assert set(counts(redis_client).values()) == {1}
    legacy_id = task_id_for(Event(*legacy[:2]))
    assert app.AsyncResult(legacy_id).get(timeout=10)["task_type"] == "legacy.counter"
    # And each bad event has one dead letter saying why
    letters = dead_letters()
    assert sorted(letter["error"]["kind"] for letter in letters) == sorted(bad)
    no_engine = next(letter for letter in letters if letter["error"]["kind"] == "no_live_engine")
    assert no_engine["num_delivered"] == 3 and no_engine["subject"] == "events.processing.x"
    assert next(x for x in letters if x["error"]["kind"] == "bad_json")["data"] == "{nope"
    # And the stream is drained, the counts are exported
    wait_until(drained, what="stream drained")
    assert metric(port, "agents_bridge_published_total") == len(expected)
    assert metric(port, "agents_bridge_dead_lettered_total") == len(bad)
    assert redis_client.hget("agents:counters", "dead_letter:bad_json") == b"1"
    # And the durable history has one row per event: success for each task, rejected for each bad one
    wait_for_history(sorted(expected), {"success"})
    bad_ids = {kind: task_id_for(Event(s, d, h or {})) for kind, (s, d, h) in bad.items()}
    rows = wait_for_history(list(bad_ids.values()), {"rejected"})
    assert rows[bad_ids["bad_json"]]["error"].startswith("bad_json: ")
    assert rows[bad_ids["unknown_capability"]]["task_name"] == "agents.bridge"


def test_redelivered_and_repeated_events_do_not_publish_again(
    bridge: BridgeRunner, redis_client: Any
) -> None:
    # Given a stream whose JetStream dedup window is short, so a repeated Nats-Msg-Id is stored again
    prepare_streams(bridge_duplicate_window_seconds=0.5)
    events = [counter_event(n) for n in range(20)]
    publish(events)
    first = bridge.start()
    wait_until(lambda: len(counts(redis_client)) == 20, what="first pass executed")
    time.sleep(0.6)
    publish(events[:5])  # same ids, past JetStream's window: the bridge's markers must catch them
    wait_until(drained, what="stream drained")
    assert bridge.stop(first) == 0

    # When the consumer is recreated, so the whole stream is delivered again
    drop_consumer()
    bridge.start()
    wait_until(lambda: consumer_state().delivered.stream_seq == 25 and consumer_state().num_ack_pending == 0)

    # Then no event ran twice and nothing waits in the queue
    time.sleep(0.5)
    assert counts(redis_client) == dict.fromkeys(ids_of(events), 1)
    assert redis_client.llen("counter") == 0


def test_nats_restart_during_a_stream_of_events_loses_and_duplicates_nothing(
    bridge: BridgeRunner, redis_client: Any, nats_server: ServerProcess
) -> None:
    # Given a producer that keeps publishing (retrying through outages) and a bridge pulling small batches
    events = [counter_event(n, msg_id=n % 3 != 0) for n in range(600)]
    sent = 0

    def produce() -> None:
        nonlocal sent
        for start in range(0, len(events), 10):
            publish(events[start : start + 10])
            sent = start + 10
            time.sleep(0.05)  # slow enough that the restart below lands mid-stream

    producer = threading.Thread(target=produce)
    producer.start()
    bridge.start(BRIDGE_BATCH_SIZE="20")
    wait_until(lambda: len(counts(redis_client)) > 50, what="bridge started working")

    # When NATS restarts in the middle of the stream
    assert sent < len(events), "the producer finished before the restart"
    restarted = restart(nats_server)
    nats_server.process, nats_server.log_path = restarted.process, restarted.log_path
    producer.join(60)

    # Then the bridge reconnected and every event ran exactly once
    expected = ids_of(events)
    wait_until(lambda: set(counts(redis_client)) == expected, timeout=60, what="all events executed")
    wait_until(drained, timeout=30, what="stream drained")
    time.sleep(0.5)
    assert Counter(counts(redis_client).values()) == {1: len(expected)}
    assert "nats_reconnected" in bridge.log.read_text()


def test_backpressure_holds_events_in_the_stream_until_the_queue_drains(
    bridge: BridgeRunner, redis_client: Any, fleet: str
) -> None:
    # Given the flaky engine (queue_size 3) whose worker stopped consuming
    app.control.cancel_consumer("flaky", destination=[fleet], reply=True)
    try:
        events = [("events.flaky.default", json.dumps({"n": n}).encode(), None) for n in range(10)]
        publish(events)
        # When the bridge runs
        bridge.start(BRIDGE_MAX_DELIVERIES="1000")
        wait_until(lambda: sum(redis_client.llen(k) for k in _flaky_keys()) == 3, what="queue filled")
        time.sleep(1.0)
        # Then the queue holds no more than its queue_size; the rest waits in the stream
        assert sum(redis_client.llen(k) for k in _flaky_keys()) == 3
        assert consumer_state().num_ack_pending + consumer_state().num_pending == 7
    finally:
        app.control.add_consumer("flaky", destination=[fleet], reply=True)
    # And once the worker consumes again, every event runs
    for task_id in ids_of(events):
        assert app.AsyncResult(task_id).get(timeout=30)["ok"] is True
    assert dead_letters() == []


def _flaky_keys() -> list[str]:
    from agents.names import queue_keys

    return queue_keys("flaky")


def agents_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rollback_switch_stops_and_resumes_consuming_without_restart(
    bridge: BridgeRunner, redis_client: Any
) -> None:
    bridge.start()
    publish([counter_event(1)])
    wait_until(lambda: len(counts(redis_client)) == 1, what="first event executed")
    try:
        # When traffic goes back to the old system
        assert "traffic route: old_system" in agents_cli("traffic", "old_system")
        time.sleep(0.6)
        events = [counter_event(n) for n in range(2, 7)]
        publish(events)
        time.sleep(1.5)
        # Then the bridge leaves new events in the stream for the old system
        assert len(counts(redis_client)) == 1
        assert consumer_state().num_pending == 5
        # And switching back resumes consuming
        assert "traffic route: new_system" in agents_cli("traffic", "new_system")
        wait_until(lambda: len(counts(redis_client)) == 6, what="events after rollback executed")
    finally:
        agents_cli("traffic", "default")


def test_results_go_to_the_reply_to_header_and_engines_publish_to_nats(
    bridge: BridgeRunner, redis_client: Any
) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], list[bytes]]:
        nc = await nats.connect(get_settings().nats_url)
        replies = await nc.subscribe("test.replies")
        echoes = await nc.subscribe("test.echo")
        await nc.flush()
        js = nc.jetstream()
        body = json.dumps({"echo": "test.echo", "echo_stream": "events.counting.echoed"}).encode()
        await js.publish("events.counting.tally", body, headers={"Reply-To": "test.replies"})
        reply = await replies.next_msg(timeout=30)
        echo = await echoes.next_msg(timeout=10)
        await nc.close()
        return [json.loads(reply.data)], [echo.data]

    bridge.start()
    [reply], [echo] = asyncio.run(scenario())
    # Then the engine's result came back on the Reply-To subject, with its task id
    assert reply["status"] == "success"
    assert reply["result"]["payload"]["echo"] == "test.echo"
    assert json.loads(echo)["task_id"] == reply["task_id"]
    # And the engine's JetStream publish became a new event, which ran too
    wait_until(lambda: len(counts(redis_client)) == 2, what="the echoed stream event executed")


def test_a_batch_engine_replies_to_the_reply_to_header(bridge: BridgeRunner, redis_client: Any) -> None:
    """The built-in analysis engine runs as a batch task; its bridged requests get replies too."""

    async def scenario() -> list[dict[str, Any]]:
        nc = await nats.connect(get_settings().nats_url)
        replies = await nc.subscribe("test.analysis.replies")
        await nc.flush()
        js = nc.jetstream()
        good = json.dumps({"data": [1, 2, 3, 50]}).encode()
        bad = json.dumps({"data": "not a list"}).encode()
        await js.publish("events.analysis.summary", good, headers={"Reply-To": "test.analysis.replies"})
        await js.publish("events.analysis.summary", bad, headers={"Reply-To": "test.analysis.replies"})
        received = [json.loads((await replies.next_msg(timeout=30)).data) for _ in range(2)]
        await nc.close()
        return received

    bridge.start()
    replies = sorted(asyncio.run(scenario()), key=lambda r: r["status"])
    assert [r["status"] for r in replies] == ["failure", "success"]
    assert replies[1]["result"]["count"] == 4 and replies[1]["result"]["max"] == 50.0
    assert replies[0]["error"] == (
        "InvalidRequest: payload invalid for task_type 'summary' of engine 'analysis': "
        "data: Input should be a valid list"
    )
    rows = wait_for_history([r["task_id"] for r in replies])
    assert {row["engine"] for row in rows.values()} == {"analysis"}


def test_an_engine_the_bridge_has_no_code_for_is_reached_by_its_card(
    bridge: BridgeRunner, late_worker: None, redis_client: Any
) -> None:
    msg_id = f"late-{time.time_ns()}"
    bridge.start()
    publish([("events.late_arrival.hello", b'{"n": 3}', {"Nats-Msg-Id": msg_id})])
    task_id = task_id_for(Event("events.late_arrival.hello", b'{"n": 3}', {"Nats-Msg-Id": msg_id}))
    row = wait_for_history([task_id])[task_id]
    assert (row["status"], row["engine"], row["result"]["payload"]) == ("success", "late", {"n": 3})


def test_sigterm_mid_stream_finishes_the_batch_and_a_new_bridge_continues(
    bridge: BridgeRunner, redis_client: Any
) -> None:
    # Given a bridge busy with a long stream
    events = [counter_event(n) for n in range(1000)]
    publish(events)
    first = bridge.start(BRIDGE_BATCH_SIZE="2")  # many small batches: the stop lands mid-stream
    wait_until(lambda: redis_client.llen("counter") + len(counts(redis_client)) > 0, what="publishing began")

    # When it is asked to stop, it exits cleanly with nothing half-done
    assert bridge.stop(first) == 0
    assert "bridge_stopped" in bridge.log.read_text()
    # Then every event it took is settled (none waits for an ack) and the rest is still in the stream
    state = consumer_state()
    assert state.num_ack_pending == 0
    assert 0 < state.num_pending < len(events)

    # And a new bridge finishes the rest, each event exactly once
    bridge.start()
    expected = ids_of(events)
    wait_until(lambda: set(counts(redis_client)) == expected, timeout=60, what="all events executed")
    assert set(counts(redis_client).values()) == {1}
