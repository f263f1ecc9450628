"""`agents up --ha` / `make run-ha`: the production topology's servers on loopback, from the same
pip-shipped binaries: Redis primary + replica + 3 Sentinels, a 3-node NATS JetStream cluster with
streams replicated 3 ways, and PostgreSQL primary + streaming standby (docs/ha.md)."""

from __future__ import annotations

from pathlib import Path

from agents.stack.cluster import cluster_url, database_url, start_nats_cluster, start_postgres_standby
from agents.stack.credentials import redis_password
from agents.stack.sentinel import start_redis_ha
from agents.stack.servers import ServerProcess, start_postgres, stop_all

NATS_NODES = 3


def start_ha_servers(home: Path) -> tuple[list[ServerProcess], dict[str, str]]:
    """Start every server of the topology under `home/ha`; returns them and the settings that
    point the platform at it (Sentinel URL, every NATS node, the multi-host database URL)."""
    password = redis_password(home)
    root = home / "ha"
    servers: list[ServerProcess] = []
    try:
        redis = start_redis_ha(root / "redis", password)
        servers += redis.all()
        nats = start_nats_cluster(root / "nats", size=NATS_NODES)
        servers += nats
        primary = start_postgres(root / "postgres-1")
        servers.append(primary)
        standby = start_postgres_standby(primary, root / "postgres-2")
        servers.append(standby)
    except BaseException:
        stop_all(servers)
        raise
    urls = {
        "REDIS_URL": redis.url,
        "REDIS_SENTINEL_PASSWORD": password,
        "NATS_URL": cluster_url(nats),
        "NATS_STREAM_REPLICAS": str(NATS_NODES),
        "DATABASE_URL": database_url([primary, standby]),
    }
    return servers, urls
