"""The HA topology of `python -m bench.chaos --ha`: the servers `agents up --ha` starts (Redis
primary + replica + 3 Sentinels, a 3-node NATS JetStream cluster, PostgreSQL primary + streaming
standby), with what the failover drills need to fail each one over and bring it back."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from agents.stack.cluster import (
    cluster_url,
    database_url,
    promote,
    start_nats_cluster,
    start_postgres_standby,
)
from agents.stack.sentinel import RedisHA, start_redis_ha, wait_in_sync, wait_until
from agents.stack.servers import ServerProcess, start_postgres, start_redis, stop_all

NATS_NODES = 3


@dataclass
class HATopology:
    """The running servers and the settings that point the platform at them."""

    redis: RedisHA
    nats: list[ServerProcess]
    postgres: list[ServerProcess]  # the primary first, until a failover promotes the standby
    urls: dict[str, str]

    def servers(self) -> list[ServerProcess]:
        """Every server process, in start order."""
        return [*self.redis.all(), *self.nats, *self.postgres]

    def fail_redis_over(self) -> tuple[int, int]:
        """SIGKILL the Redis primary; returns (old port, new port) once the Sentinels named a new
        master. The old primary is not restarted here (see `rejoin_redis`)."""
        old = self.redis.master_port()
        (primary,) = [s for s in self.redis.servers if s.port == old]
        primary.kill()
        wait_until(lambda: self.redis.master_port() != old, "the Sentinels to promote the replica", 60)
        return old, self.redis.master_port()

    def rejoin_redis(self, old: int, master: int) -> None:
        """Start the killed primary again as a replica of the new master, and wait for its sync:
        the next failover then has a replica to promote."""
        index = [s.port for s in self.redis.servers].index(old)
        dead = self.redis.servers[index]
        lines = ("masterauth {password}",)
        revived = start_redis(dead.data_dir, old, self.redis.password, lines, replica_of=master)
        self.redis.servers[index] = revived
        wait_in_sync(revived, self.redis.password)

    def fail_postgres_over(self) -> None:
        """SIGKILL the PostgreSQL primary and promote the standby (what an operator, or CNPG, does)."""
        primary, standby = self.postgres
        primary.kill()
        promote(standby)
        self.postgres = [standby, primary]


def start_topology(home: Path, publish_replicas: int = 0) -> HATopology:
    """Start the topology under `home`; `publish_replicas` goes to REDIS_PUBLISH_REPLICAS."""
    password = secrets.token_urlsafe(16)
    started: list[ServerProcess] = []
    try:
        redis = start_redis_ha(home / "redis", password)
        started += redis.all()
        nats = start_nats_cluster(home / "nats", size=NATS_NODES)
        started += nats
        primary = start_postgres(home / "postgres-1")
        started.append(primary)
        standby = start_postgres_standby(primary, home / "postgres-2")
        started.append(standby)
    except BaseException:
        stop_all(started)
        raise
    urls = {
        "REDIS_URL": redis.url,
        "REDIS_SENTINEL_PASSWORD": password,
        "REDIS_PUBLISH_REPLICAS": str(publish_replicas),
        "NATS_URL": cluster_url(nats),
        "NATS_STREAM_REPLICAS": str(NATS_NODES),
        "DATABASE_URL": database_url([primary, standby]),
    }
    return HATopology(redis, nats, [primary, standby], urls)
