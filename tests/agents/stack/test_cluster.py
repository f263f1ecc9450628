"""The HA halves for NATS and PostgreSQL (agents/stack/cluster.py), on their own servers in tmp_path.

A node of a 3-node JetStream cluster dies under publishing: no event lost or doubled, and the node
catches up when it is back. The PostgreSQL primary dies: the standby, promoted, takes the writes
of a client that was given both hosts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats.errors
import psycopg
import pytest
from nats.js import JetStreamContext
from sqlalchemy import create_engine, text

from agents.bridge.jetstream import ensure_bridge_streams, ensure_stream
from agents.nats_client import connect
from agents.settings import Settings, get_settings
from agents.stack.cluster import (
    cluster_url,
    database_url,
    in_recovery,
    monitor,
    promote,
    start_nats_cluster,
    start_postgres_standby,
)
from agents.stack.servers import ServerProcess, restart, start_postgres, stop_all

pytestmark = pytest.mark.servers

EVENTS = 300
STREAM = "HA_EVENTS"


@pytest.fixture()
def nats_nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """A 3-node cluster; a test that restarts a node puts the new process in the list."""
    nodes = start_nats_cluster(tmp_path / "nats")
    try:
        yield nodes
    finally:
        stop_all(nodes)


async def _publish(js: JetStreamContext, index: int) -> bool:
    """Publish one event until a node stores it; the same Nats-Msg-Id makes a retry harmless.

    Returns whether the stored ack said duplicate (an earlier try was stored, its ack lost)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            headers = {"Nats-Msg-Id": f"event-{index}"}
            ack = await js.publish("ha.event", str(index).encode(), headers=headers, timeout=1)
            return bool(ack.duplicate)
        except (nats.errors.Error, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _read_all(sub: JetStreamContext.PullSubscription) -> Counter[str]:
    """Every event the durable consumer hands out, counted by its id, acked."""
    deadline = time.monotonic() + 30
    seen: Counter[str] = Counter()
    while sum(seen.values()) < EVENTS and time.monotonic() < deadline:
        try:
            msgs = await sub.fetch(100, timeout=2)
        except nats.errors.TimeoutError:
            continue
        except nats.errors.Error:  # 503 while the consumer's leader died with the node: as the bridge
            await asyncio.sleep(0.2)
            continue
        for msg in msgs:
            seen[msg.data.decode()] += 1
            await msg.ack()
    with pytest.raises(nats.errors.TimeoutError):  # and nothing beyond them
        await sub.fetch(1, timeout=1)
    return seen


def _stored_on(node: ServerProcess) -> int:
    """Messages of the stream in this node's own replica."""
    details = monitor(node, "jsz", accounts="true", streams="true").get("account_details") or []
    for account in details:
        for stream in account.get("stream_detail") or []:
            if stream["name"] == STREAM:
                return int(stream["state"]["messages"])
    return 0


async def _kill_a_node_while_publishing(nodes: list[ServerProcess]) -> dict[str, Any]:
    settings = Settings(nats_stream_replicas=3, bridge_stream=STREAM, bridge_dlq_stream="")
    admin = await connect("ha-admin", nodes[0].url)  # the stream is made through one node
    try:
        await ensure_bridge_streams(admin.jetstream(), settings, ["ha.>"])
        # A stream made on a single server (R1) is scaled up once NATS_STREAM_REPLICAS says 3.
        await ensure_stream(admin.jetstream(), "HA_GROWN", ["grown.>"], 120.0, replicas=1)
        await ensure_stream(admin.jetstream(), "HA_GROWN", ["grown.>"], 120.0, replicas=3)
        grown = (await admin.jetstream().stream_info("HA_GROWN")).config.num_replicas
    finally:
        await admin.close()
    client = await connect("ha-publisher", cluster_url(nodes))
    js = client.jetstream()
    try:
        info = await js.stream_info(STREAM)
        # Made before the kill, as the bridge's consumer is: a replicated (R3) consumer.
        sub = await js.pull_subscribe("ha.>", durable="ha-reader", stream=STREAM)
        duplicates, victim = 0, None
        for index in range(EVENTS):
            if index == EVENTS // 2:  # the node this client is connected to dies
                assert client.connected_url is not None
                victim = next(n for n in nodes if n.port == client.connected_url.port)
                victim.kill()
            duplicates += await _publish(js, index)
        assert victim is not None and client.connected_url is not None
        return {
            "replicas": info.config.num_replicas,
            "grown": grown,
            "peers": len(info.cluster.replicas or []) if info.cluster else 0,
            "victim": victim,
            "moved_to": client.connected_url.port,
            "reconnects": client.stats["reconnects"],
            "duplicates": duplicates,
            "seen": await _read_all(sub),
            "stored": (await js.stream_info(STREAM)).state.messages,
        }
    finally:
        await client.close()


def test_a_dead_nats_node_loses_and_doubles_no_event(nats_nodes: list[ServerProcess]) -> None:
    result = asyncio.run(_kill_a_node_while_publishing(nats_nodes))

    assert (result["replicas"], result["peers"], result["grown"]) == (3, 2, 3)
    victim: ServerProcess = result["victim"]
    assert result["reconnects"] >= 1 and result["moved_to"] != victim.port
    assert result["stored"] == EVENTS
    assert result["seen"] == Counter({str(i): 1 for i in range(EVENTS)})

    index = nats_nodes.index(victim)
    nats_nodes[index] = restart(victim)  # rejoins the cluster with its old store
    deadline = time.monotonic() + 20
    while (stored := _stored_on(nats_nodes[index])) < EVENTS and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored == EVENTS


def _on(server: ServerProcess, query: str) -> list[Any]:
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=agents connect_timeout=2"
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [row[0] for row in conn.execute(query).fetchall()]


def _until(check: Any, timeout: float = 20.0) -> Any:
    """check()'s first truthy value; an error (a table not replayed yet) counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except psycopg.Error:
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_the_promoted_standby_takes_the_writes_of_a_multi_host_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.migrate import upgrade

    servers = [start_postgres(tmp_path / "pg-primary")]
    try:
        primary = servers[0]
        standby = start_postgres_standby(primary, tmp_path / "pg-standby")
        servers.append(standby)
        url = database_url([primary, standby])
        assert in_recovery(standby) and not in_recovery(primary)

        with monkeypatch.context() as env:  # Alembic through the pair finds the primary
            env.setenv("DATABASE_URL", url)
            get_settings.cache_clear()
            try:
                upgrade("head")
            finally:
                get_settings.cache_clear()
        assert _until(lambda: _on(standby, "SELECT version_num FROM alembic_version"))

        engine = create_engine(
            Settings(database_url=url).sqlalchemy_url, pool_pre_ping=True, connect_args={"connect_timeout": 2}
        )
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE ha_probe (id int PRIMARY KEY)"))
                conn.execute(text("INSERT INTO ha_probe VALUES (1)"))
                assert conn.connection.dbapi_connection.info.port == primary.port  # type: ignore[union-attr]
            assert _until(lambda: _on(standby, "SELECT id FROM ha_probe")) == [1]  # streamed

            primary.kill()
            promote(standby)
            with engine.begin() as conn:  # the pooled connection is dead: pre-ping, then host 2
                conn.execute(text("INSERT INTO ha_probe VALUES (2)"))
                assert conn.connection.dbapi_connection.info.port == standby.port  # type: ignore[union-attr]
        finally:
            engine.dispose()
        assert _on(standby, "SELECT id FROM ha_probe ORDER BY id") == [1, 2]
    finally:
        stop_all(servers)
