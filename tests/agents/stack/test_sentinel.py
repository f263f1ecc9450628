"""Redis behind Sentinel, for real: a primary, a replica and three Sentinels (agents/stack/sentinel.py);
a worker and a `.delay()` client that know only the Sentinels serve routed requests through the
reliable fetch, the primary is SIGKILLed, the replica is promoted and both follow it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from agents.redis_clients import new_redis
from agents.settings import Settings
from agents.stack.sentinel import RedisHA, start_redis_ha
from tests.conftest import ROOT, spawn_worker, stop_worker

PASSWORD = "sentinel-s3cret"
pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def redis_ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisHA]:
    ha = start_redis_ha(tmp_path_factory.mktemp("redis-ha"), PASSWORD)
    try:
        yield ha
    finally:
        for server in reversed(ha.all()):
            server.stop()


def ha_env(ha: RedisHA) -> dict[str, str]:
    return {"REDIS_URL": ha.url, "REDIS_SENTINEL_PASSWORD": PASSWORD}


def test_clients_reach_the_master_through_the_sentinels(redis_ha: RedisHA) -> None:
    settings = Settings(_env_file=None, redis_url=redis_ha.url, redis_sentinel_password=PASSWORD)
    with new_redis(settings, socket_timeout=2) as client:
        client.set("agents:test:sentinel", "seen")
        assert client.info("replication")["role"] == "master"
        assert client.info("server")["tcp_port"] == redis_ha.master_port()


# Publishes with REDIS_PUBLISH_REPLICAS (WAIT): argv = how many replicas to wait for, how many
# messages; prints the seconds they took and what each Redis holds right after.
PUBLISH = """
import json, sys, time
from agents.connections import redis_client
from agents.telemetry import store
from tasks import app

replicas, count, batch = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "batch"
queue = "agents-test-replicated"  # no consumer: nothing runs
started = time.monotonic()
with app.producer_or_acquire() as producer:
    if batch:  # one pipeline, one WAIT at its flush (how the router forwards)
        with producer.batch(max_size=10_000):
            for _ in range(count):
                producer.publish({"n": 1}, routing_key=queue, exchange="", serializer="json")
    else:
        for _ in range(count):
            producer.publish({"n": 1}, routing_key=queue, exchange="", serializer="json")
seconds = time.monotonic() - started
unreplicated = store.read(redis_client()).counters.get("agent_publishes_unreplicated", {})
print(json.dumps({"seconds": round(seconds, 3), "unreplicated": sum(unreplicated.values())}))
"""


def publish(ha: RedisHA, replicas: int, count: int, batch: bool = False) -> dict[str, float]:
    env = ha_env(ha) | {"REDIS_PUBLISH_REPLICAS": str(replicas), "REDIS_PUBLISH_WAIT_MS": "100"}
    mode = "batch" if batch else "single"
    done = subprocess.run(
        [sys.executable, "-c", PUBLISH, str(replicas), str(count), mode], cwd=ROOT, env=os.environ | env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_a_publish_can_wait_for_the_replica(redis_ha: RedisHA) -> None:
    """REDIS_PUBLISH_REPLICAS=1: a publish returns once the replica has it; asking for more
    replicas than exist waits REDIS_PUBLISH_WAIT_MS, then goes on and is counted."""
    (replica,) = [s for s in redis_ha.servers if s.port != redis_ha.master_port()]
    settings = Settings(_env_file=None, redis_url=redis_ha.url, redis_sentinel_password=PASSWORD)
    with new_redis(settings) as master:
        master.delete("agents-test-replicated")
        before = publish(redis_ha, 1, 200)
        with redis.Redis(port=replica.port, password=PASSWORD) as copy:
            # WAIT returned only once the replica had every write, so it holds them all now.
            assert copy.llen("agents-test-replicated") == 200
        short = publish(redis_ha, 2, 3)  # one replica exists: each waits 100 ms, then counts
        assert short["unreplicated"] - before["unreplicated"] == 3
        assert short["seconds"] >= 0.3
        assert master.llen("agents-test-replicated") == 203  # nothing refused or lost
        # A batch waits once, at its flush: 50 messages, one shortfall counted.
        batched = publish(redis_ha, 2, 50, batch=True)
        assert batched["unreplicated"] - short["unreplicated"] == 1
        assert master.llen("agents-test-replicated") == 253
        plain = publish(redis_ha, 0, 200)
        master.delete("agents-test-replicated")
    print(f"200 publishes: {before['seconds']} s waiting for 1 replica, {plain['seconds']} s without")


# A client that routes through the Sentinels, in two rounds around the failover the test causes:
# it writes `phase1` when its first round is answered, and starts the second when `killed` exists.
ROUNDS = 20
CLIENT = """
import json, sys, time
from pathlib import Path
from agents.connections import registry
from tasks import app, route

signals, rounds = Path(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 45
while "intelligence" not in registry().live_workers():
    assert time.monotonic() < deadline, "the worker sent no heartbeat through Sentinel"
    time.sleep(0.2)
def one_round():
    request = {"capability": "routing", "payload": {"capability": "routing"}}
    sent = [route.delay(request) for _ in range(rounds)]
    return sorted({r.get(timeout=90)["decision"]["engine"] for r in sent})
before = one_round()
(signals / "phase1").touch()
while not (signals / "killed").exists():
    time.sleep(0.05)
started = time.monotonic()
after = one_round()
print(json.dumps({"before": before, "after": after, "after_seconds": round(time.monotonic() - started, 1),
                  "transport": app.conf.broker_transport, "backend": type(app.backend).__name__}))
"""


def test_a_worker_and_a_client_follow_a_failover(redis_ha: RedisHA, tmp_path: Path) -> None:
    env = ha_env(redis_ha)
    argv = [sys.executable, "-m", "agents.cli", "worker", "intelligence", "--concurrency", "1"]
    worker = spawn_worker(argv, "sentinel-intelligence", **env)
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(tmp_path), str(ROUNDS)], cwd=ROOT, env=os.environ | env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / "phase1").exists():
            assert client.poll() is None and time.monotonic() < deadline, client.communicate()[1][-3000:]
            time.sleep(0.1)
        old = redis_ha.master_port()
        (primary,) = [s for s in redis_ha.servers if s.port == old]
        primary.kill()
        (tmp_path / "killed").touch()
        out, err = client.communicate(timeout=150)
        assert client.returncode == 0, err[-3000:]
        seen = json.loads(out.splitlines()[-1])
        print(f"{ROUNDS} routed requests after the primary's SIGKILL in {seen.pop('after_seconds')} s")
        assert seen == {
            "before": ["intelligence"],
            "after": ["intelligence"],
            "transport": "tasks.transport:SentinelTransport",
            "backend": "SentinelBackend",
        }
        assert redis_ha.master_port() != old  # the replica was promoted
    finally:
        if client.poll() is None:
            client.kill()
        stop_worker(worker)
