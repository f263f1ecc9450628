"""The NATS drills: events published to JetStream under load, turned into tasks by the bridge
(agents/bridge/), while nats-server restarts or the bridge is SIGKILLed.

Every event has a Nats-Msg-Id, so its task id is known here (the bridge derives it the same
way) and a publish that failed is repeated with the same id until the stream stored it (its
duplicate window drops a second copy). The ledger then wants each event's task id exactly once
in task_results, run once: a redelivery after a kill must be deduplicated by the bridge's
markers (agents/bridge/dedup.py) or the engine's admission, never run twice. Half the bridge
kills are aimed between its Celery publish and its NATS ack: the bridge is stopped (SIGSTOP) at
random moments until an event is published (its marker confirmed) but not acked, then killed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats

from agents.bridge.dedup import PUBLISHED
from agents.bridge.events import MSG_ID_HEADER, Event, task_id_for
from agents.loadtest import collect
from agents.names import bridge_marker_key
from agents.nats_client import connect
from agents.settings import get_settings
from bench.chaos.engine import CAPABILITY
from bench.chaos.fleet import BRIDGE_ACK_WAIT_SECONDS, Fleet
from bench.chaos.ledger import Fault
from bench.chaos.load import TICK_SECONDS, Sent

UP_SECONDS = (0.5, 3.0)
DOWN_SECONDS = (0.2, 3.0)  # the bridge stays dead this long
NATS_DOWN_SECONDS = (0.5, 4.0)
PUBLISH_GIVE_UP_SECONDS = 120.0  # a publish still failing after this long is refused
WINDOW_SEARCH_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 120.0
DATA = b'{"n": 1}'


def subject() -> str:
    return f"{get_settings().bridge_subject_prefix}.{CAPABILITY}.chaos"


async def publish_stored(js: Any, headers: dict[str, str], give_up: float) -> str | None:
    """Publish until JetStream acknowledges it (None) or `give_up` s passed (the error's name)."""
    deadline = time.monotonic() + give_up
    while True:
        try:
            await js.publish(subject(), DATA, headers=headers, timeout=2)
            return None
        except Exception as exc:  # NATS away: the same Nats-Msg-Id again, deduplicated if stored
            if time.monotonic() > deadline:
                return type(exc).__name__
            await asyncio.sleep(0.2)


async def _load(url: str, rate: float, stop: Callable[[], bool]) -> Sent:
    client = await connect("chaos-load", url)
    js = client.jetstream()
    sent = Sent()
    start, count = time.time(), 0
    try:
        while not stop():
            due = int((time.time() - start) * rate) + 1
            if due <= count:
                await asyncio.sleep(TICK_SECONDS)
                continue
            for index in range(count, due):
                headers = {MSG_ID_HEADER: uuid.uuid4().hex}
                task_id = task_id_for(Event(subject(), DATA, headers))
                refused = await publish_stored(js, headers, PUBLISH_GIVE_UP_SECONDS)
                if refused:
                    sent.refused[task_id] = refused
                else:
                    sent.accepted[task_id] = start + index / rate
            count = due
    finally:
        await client.close()
    return sent


def nats_load(url: str, rate: float, stop: Callable[[], bool]) -> Sent:
    """Publish `rate` events per second to JetStream until `stop()` is true."""
    return asyncio.run(_load(url, rate, stop))


@dataclass
class ConsumerState:
    """The bridge consumer's figures, and the dead-letter stream's message count."""

    delivered: int  # last stream sequence delivered
    ack_pending: int
    pending: int  # not yet delivered
    redelivered: int  # deliveries beyond the first of an event, since the consumer began
    dead: int


async def _consumer(url: str) -> ConsumerState:
    servers = [part for part in url.split(",") if part]
    client = await nats.connect(servers, name="chaos-check", allow_reconnect=False, connect_timeout=2)
    try:
        js = client.jetstream()
        settings = get_settings()
        info = await js.consumer_info(settings.bridge_stream, settings.bridge_consumer)
        dlq = await js.stream_info(settings.bridge_dlq_stream) if settings.bridge_dlq_stream else None
        delivered, deliveries = info.delivered.stream_seq or 0, info.delivered.consumer_seq or 0
        return ConsumerState(
            delivered, info.num_ack_pending or 0, info.num_pending or 0, deliveries - delivered,
            dlq.state.messages if dlq else 0,
        )  # fmt: skip
    finally:
        await client.close()


def consumer(fleet: Fleet) -> ConsumerState:
    return asyncio.run(_consumer(fleet.nats_url))


def published_markers(fleet: Fleet) -> int:
    """Events the bridge published to Celery (markers confirmed), since the stream began."""
    keys = list(fleet.redis.scan_iter(match=bridge_marker_key("*"), count=5000))
    values = fleet.redis.mget(keys) if keys else []
    return sum(1 for value in values if value == PUBLISHED)


def published_not_acked(fleet: Fleet) -> int:
    """Events published to Celery whose NATS ack the server has not seen (the bridge is stopped)."""
    state = consumer(fleet)
    return published_markers(fleet) - (state.delivered - state.ack_pending)


def probe(fleet: Fleet, fault: Fault) -> Fault:
    """An event published after the fault reaches task_results: NATS, bridge and engine work."""
    headers = {MSG_ID_HEADER: uuid.uuid4().hex}
    task_id = task_id_for(Event(subject(), DATA, headers))

    async def publish() -> str | None:
        client = await connect("chaos-probe", fleet.nats_url)
        try:
            return await publish_stored(client.jetstream(), headers, PROBE_TIMEOUT_SECONDS)
        finally:
            await client.close()

    if asyncio.run(publish()) is None:
        fault.sent[task_id] = time.time()
        if collect({task_id: time.time()}, PROBE_TIMEOUT_SECONDS, lambda n: None):
            fault.recovered_at = time.time()
    return fault


def restart_nats(fleet: Fleet) -> Fault:
    """SIGTERM nats-server, keep it down a moment, start it again on the same store dir."""
    fleet.wait_consuming(("bridge",))
    time.sleep(random.uniform(*UP_SECONDS))
    fault = Fault(time.time(), "nats-server SIGTERM, started again on its store")
    fleet.stop_server("nats")
    time.sleep(random.uniform(*NATS_DOWN_SECONDS))
    fleet.start_server("nats")
    return probe(fleet, fault)


def _stop_in_window(pid: int, fleet: Fleet) -> int:
    """Stop the bridge at random moments until it has published events it has not acked; returns
    how many (0: the search gave up; the bridge is left stopped either way)."""
    deadline = time.monotonic() + WINDOW_SEARCH_SECONDS
    while True:
        os.kill(pid, signal.SIGSTOP)
        try:
            found = published_not_acked(fleet)
        except Exception:  # NATS or Redis busy: look again at another moment
            found = 0
        if found > 0 or time.monotonic() > deadline:
            return max(found, 0)
        os.kill(pid, signal.SIGCONT)
        time.sleep(random.uniform(0.005, 0.1))


def kill_bridge(fleet: Fleet) -> Fault:
    """SIGKILL the bridge at a random moment, or (every other kill) between publish and ack."""
    fleet.wait_consuming(("bridge",))
    time.sleep(random.uniform(*UP_SECONDS))
    what = "SIGKILL bridge"
    if random.random() < 0.5:
        found = _stop_in_window(fleet.processes["bridge"].pid, fleet)
        what += " between its publish and its ack" if found else " (no publish-ack window found)"
    fault = Fault(time.time(), what)
    fleet.kill("bridge", signal.SIGKILL)
    time.sleep(random.uniform(*DOWN_SECONDS))
    fleet.start("bridge")
    return probe(fleet, fault)


def settled(fleet: Fleet) -> list[str]:
    """After the drain: the bridge consumer has nothing undelivered or unacked (a lost ack is
    redelivered after ack_wait and acked as a duplicate), nothing was dead-lettered."""
    deadline = time.monotonic() + 6 * BRIDGE_ACK_WAIT_SECONDS
    while True:
        state = consumer(fleet)
        if not (state.ack_pending or state.pending) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"  bridge consumer: {state.redelivered} redeliveries since it began", flush=True)
    problems = []
    if state.ack_pending or state.pending:
        problems.append(f"bridge consumer: {state.pending} undelivered, {state.ack_pending} unacked")
    if state.dead:
        problems.append(f"{state.dead} events dead-lettered")
    return problems
