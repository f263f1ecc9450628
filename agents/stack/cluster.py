"""A NATS JetStream cluster and a PostgreSQL streaming standby on loopback (`agents up --ha`).

The same pip-shipped binaries as servers.py; these are what the HA stack and its failover drills
start, and what docs/ha.md tells an operator to run by hand.
"""

from __future__ import annotations

import json
import subprocess  # nosec B404 # only TimeoutExpired, nothing is run from here
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from agents.stack.servers import (
    HOST,
    START_TIMEOUT,
    ServerProcess,
    _spawn,
    _tail,
    free_port,
    nats_binary,
    pg_bin_dir,
    pg_system_user,
    popen_logged,
    start_postgres,
    stop_all,
)

NATS_CLUSTER_NAME = "agents"
NODE_FILE = "node.json"  # a node's argv and monitoring port, so it restarts as it was


def start_nats_cluster(data_dir: Path, ports: list[int] | None = None, size: int = 3) -> list[ServerProcess]:
    """`size` JetStream nodes routed to each other; returns once a meta leader is elected."""
    ports = ports or [free_port() for _ in range(size)]
    if len(ports) != size:
        raise ValueError(f"{size} nodes need {size} client ports, got {ports}")
    cluster_ports = [free_port() for _ in range(size)]
    # Every node names every route, itself included: the server skips its own.
    routes = ",".join(f"nats://{HOST}:{port}" for port in cluster_ports)
    nodes: list[ServerProcess] = []
    try:
        for index, (port, cluster_port) in enumerate(zip(ports, cluster_ports, strict=True), 1):
            node_dir = data_dir / f"nats-{index}"
            node_dir.mkdir(parents=True, exist_ok=True)
            monitor_port = free_port()
            argv = [
                nats_binary(), "-a", HOST, "-p", str(port), "-n", f"nats-{index}",
                "-js", "-sd", str(node_dir / "jetstream"), "-m", str(monitor_port),
                "--cluster_name", NATS_CLUSTER_NAME, "--cluster", f"nats://{HOST}:{cluster_port}",
                "--routes", routes,
            ]  # fmt: skip
            node = {"argv": argv, "monitor_port": monitor_port, "size": size}
            (node_dir / NODE_FILE).write_text(json.dumps(node))
            nodes.append(start_nats_node(node_dir, port))
        wait_for_cluster(nodes)
    except BaseException:
        stop_all(nodes)
        raise
    return nodes


def start_nats_node(node_dir: Path, port: int) -> ServerProcess:
    """One cluster node from its saved argv: ready when it accepts clients (not yet the cluster)."""
    argv = json.loads((node_dir / NODE_FILE).read_text())["argv"]
    log_path = node_dir / "nats.log"

    def ready(offset: int) -> bool:
        with open(log_path, "rb") as fh:  # only this run's lines: the log is appended to
            fh.seek(offset)
            return b"Server is ready" in fh.read()

    server = _spawn("nats", argv, node_dir, port, f"nats://{HOST}:{port}", ready)
    # servers.restart() brings a killed node back into the cluster, with its store.
    server.respawn = lambda: _rejoin(node_dir, port)
    return server


def _rejoin(node_dir: Path, port: int) -> ServerProcess:
    node = start_nats_node(node_dir, port)
    wait_for_cluster([node])
    return node


def cluster_url(nodes: Sequence[ServerProcess]) -> str:
    """NATS_URL for the cluster: every node, comma-separated, so a client survives any one."""
    return ",".join(node.url for node in nodes)


def _node_file(node: ServerProcess) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((node.data_dir / NODE_FILE).read_text())
    return result


def monitor(node: ServerProcess, endpoint: str = "jsz", **params: str) -> dict[str, Any]:
    """One monitoring endpoint of a node (`jsz`, `routez`, `varz`, ...) as JSON."""
    monitor_port = _node_file(node)["monitor_port"]
    query = "&".join(f"{key}={value}" for key, value in params.items())
    url = f"http://{HOST}:{monitor_port}/{endpoint}?{query}"
    with urllib.request.urlopen(url, timeout=2) as response:  # nosec B310 # http to loopback only
        result: dict[str, Any] = json.load(response)
    return result


def _joined(node: ServerProcess) -> bool:
    size = _node_file(node)["size"]
    meta = monitor(node, "jsz").get("meta_cluster") or {}
    routes = monitor(node, "routez").get("num_routes", 0)
    return bool(meta.get("leader")) and meta.get("cluster_size") == size and routes >= size - 1


def wait_for_cluster(nodes: Sequence[ServerProcess]) -> None:
    """Until each of `nodes` is routed to the others and knows the JetStream meta leader."""
    deadline = time.monotonic() + START_TIMEOUT
    waiting = list(nodes)
    while waiting:
        for node in list(waiting):
            if not node.alive():
                raise RuntimeError(f"nats node {node.url} exited; {node.log_path}:\n{_tail(node.log_path)}")
            try:
                if _joined(node):
                    waiting.remove(node)
            except OSError:
                pass  # monitoring port not up yet
        if waiting and time.monotonic() > deadline:
            node = waiting[0]
            raise RuntimeError(
                f"nats cluster not formed in {START_TIMEOUT}s at {node.url}; "
                f"{node.log_path}:\n{_tail(node.log_path)}"
            )
        time.sleep(0.1)


def start_postgres_standby(primary: ServerProcess, data_dir: Path, port: int | None = None) -> ServerProcess:
    """A hot standby streaming from `primary`: pg_basebackup -R, then started like any postgres.

    initdb's defaults already fit a primary (wal_level=replica, max_wal_senders=10, and
    pg_hba.conf trusting replication from 127.0.0.1), so the primary needs no change.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata, log_path = data_dir / "pgdata", data_dir / "postgres.log"
    user = pg_system_user(data_dir, log_path)
    if not (pgdata / "PG_VERSION").exists():
        argv = [
            str(pg_bin_dir() / "pg_basebackup"), "-h", HOST, "-p", str(primary.port), "-U", "postgres",
            "-D", str(pgdata), "-R", "-X", "stream",
            # fast: do not wait for the primary's next spread checkpoint
            "--checkpoint=fast", "--no-password",
        ]  # fmt: skip
        backup = popen_logged(argv, log_path, user)
        try:
            code = backup.wait(timeout=START_TIMEOUT * 4)
        except subprocess.TimeoutExpired:
            backup.kill()
            code = backup.wait()
        if code:
            raise RuntimeError(f"pg_basebackup failed ({code}); {log_path}:\n{_tail(log_path)}")
    # standby.signal and primary_conninfo (from -R) make this postgres a standby.
    return start_postgres(data_dir, port, primary.url.rsplit("/", 1)[-1])


def in_recovery(server: ServerProcess) -> bool:
    """True while the server is a standby replaying WAL."""
    dsn = f"host={HOST} port={server.port} user=postgres dbname=postgres connect_timeout=2"
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def promote(standby: ServerProcess, timeout: float = START_TIMEOUT) -> None:
    """Make the standby a primary that takes writes (what an operator does once the primary is lost)."""
    dsn = f"host={HOST} port={standby.port} user=postgres dbname=postgres connect_timeout=2"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_promote(true, %s)", (int(timeout),))
    deadline = time.monotonic() + timeout
    while in_recovery(standby):
        if time.monotonic() > deadline:
            raise RuntimeError(f"standby on port {standby.port} still in recovery after {timeout}s")
        time.sleep(0.1)


def wait_for_replay(standby: ServerProcess, primary: ServerProcess, timeout: float = START_TIMEOUT) -> None:
    """Until the standby has replayed everything the primary had written when this was called."""
    dsn = "host={} port={} user=postgres dbname=postgres connect_timeout=2"
    with psycopg.connect(dsn.format(HOST, primary.port), autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert target is not None  # nosec B101 # narrows the type for mypy, not a check
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn.format(HOST, standby.port), autocommit=True) as conn:
        query = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
        while not (row := conn.execute(query, target).fetchone()) or not row[0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"standby on port {standby.port} did not reach {target[0]} in {timeout}s")
            time.sleep(0.05)


def database_url(servers: Sequence[ServerProcess]) -> str:
    """DATABASE_URL for a primary and its standbys: libpq multi-host, whichever takes writes."""
    database = servers[0].url.rsplit("/", 1)[-1]
    hosts = ",".join(f"{HOST}:{server.port}" for server in servers)
    return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"
