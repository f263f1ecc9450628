"""The servers and workers of a chaos drill: its own Redis and PostgreSQL, the router
(intelligence), the `ledger` engine and a history writer, each killable and restartable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from agents.names import BROKER_CONSUMERS_KEY, broker_owned_key
from agents.redis_clients import new_redis
from agents.settings import Settings
from agents.stack.servers import ServerProcess, restart, start_nats, start_postgres, start_redis, stop_all
from bench.chaos.engine import ENGINES
from bench.chaos.ha import HATopology, start_topology
from bench.compare import spawn

ROOT = Path(__file__).resolve().parents[2]
AGENTS = str(Path(sys.executable).parent / "agents")
WORKERS = ("intelligence", "ledger", "history")
Names = tuple[str, ...]
# A breaker opened by the breaker drill tries again after this long (default 30 s).
BREAKER_RESET_SECONDS = 5
SOFT_MARGIN_SECONDS = 4
# The bridge's ack_wait (default 30 s): how long a claim of a killed bridge blocks redelivery.
BRIDGE_ACK_WAIT_SECONDS = 5


class Fleet:
    """Servers started once per drill; workers by name (`intelligence`, `ledger`, `history`,
    another engine of bench/chaos/engine.py, or `bridge`)."""

    def __init__(
        self,
        dead_seconds: float,
        postgres_down: float = 30.0,
        nats: bool = False,
        phase_scale: float = 1.0,
        ha: bool = False,
        publish_replicas: int = 0,
    ) -> None:
        self.postgres_down = postgres_down
        self.phase_scale = phase_scale  # the breaker's phases, the partition's cut: shorter in CI
        self.home = Path(tempfile.mkdtemp(prefix="agents-chaos-"))
        self.topology: HATopology | None = None
        if ha:  # Redis with Sentinel, a NATS cluster, PostgreSQL with a standby (bench/chaos/ha.py)
            self.topology = start_topology(self.home, publish_replicas)
            self.servers, urls = self.topology.servers(), self.topology.urls
        else:
            self.servers = [start_redis(self.home / "redis"), start_postgres(self.home / "postgres")]
            urls = {"REDIS_URL": self.servers[0].url, "DATABASE_URL": self.servers[1].url}
            if nats:
                self.servers.append(start_nats(self.home / "nats"))
                urls["NATS_URL"] = self.servers[2].url
        self.env = (
            os.environ
            | urls
            | {
                "AGENTS_HOME": str(self.home),
                "AGENT_ENGINES": ENGINES,
                "PYTHONPATH": str(ROOT),
                "BROKER_CONSUMER_DEAD_SECONDS": f"{dead_seconds:g}",
                "LOG_FORMAT": "json",
                "HEALTH_PORT": "0",  # several workers on one machine: no /health ports to collide
                "BREAKER_RESET_TIMEOUT_SECONDS": str(BREAKER_RESET_SECONDS),
                "ROUTING_EXPLORE_SHARE": "0.05",  # a recovered engine is tried again within seconds
                "BRIDGE_ACK_WAIT_SECONDS": str(BRIDGE_ACK_WAIT_SECONDS),
                # The time-limits drill's engine: hard limit 6 s, soft 2 s (default margin 5 s).
                "SOFT_TIME_LIMIT_MARGIN_SECONDS": str(SOFT_MARGIN_SECONDS),
            }
        )
        # The drill's own settings object: the loadtest and ledger read the same servers.
        shared = ("AGENTS_HOME", "AGENT_ENGINES", *urls)
        os.environ.update({k: self.env[k] for k in shared if k in self.env})
        subprocess.run([AGENTS, "migrate"], cwd=ROOT, env=self.env, check=True, capture_output=True)
        self.redis = new_redis(Settings(_env_file=None))  # through the Sentinels in the HA topology
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log_offsets: dict[str, int] = {}
        self.reliable = self.env.get("BROKER_RELIABLE_FETCH", "true").lower() not in ("false", "0", "no")

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def server(self, name: str) -> ServerProcess:
        return next(s for s in self.servers if s.name == name)

    @property
    def nats_url(self) -> str:
        """NATS_URL of the drill: one server, or every node of the HA topology's cluster."""
        return self.env["NATS_URL"]

    def start(self, name: str, wrap: tuple[str, ...] = (), **env: str) -> None:
        """Start a worker (or the history writer, or the bridge); `wrap` prefixes its command line
        (`ip netns exec NS`), `env` overrides its environment."""
        argv = {"history": [AGENTS, "history-writer"], "bridge": [AGENTS, "bridge"]}.get(name)
        argv = [*wrap, *(argv or [AGENTS, "worker", name])]
        self.log_offsets[name] = self.log(name).stat().st_size if self.log(name).exists() else 0
        self.processes[name] = spawn(argv, self.env | env, self.log(name))

    def stop_worker(self, name: str) -> None:
        """Warm shutdown of a drill's extra worker, once its scenario is over."""
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def start_all(self) -> None:
        for name in WORKERS:
            self.start(name)
        self.wait_consuming()

    def ready(self, name: str) -> bool:
        """Celery logged "ready." since this process started, and (reliable fetch) its consumer
        heartbeats by pid: a check by name, not a sleep."""
        with open(self.log(name), "rb") as log:
            log.seek(self.log_offsets[name])
            text = log.read()
        if name == "bridge":
            return b"bridge_started" in text
        if b" ready." not in text:
            return False
        return not self.reliable or bool(self.consumers_of(name))

    def wait_consuming(self, names: Names = ("intelligence", "ledger"), timeout: float = 60) -> None:
        """Until the router and the engine worker (or the workers named) are ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.ready(name) for name in names):
                return
            time.sleep(0.2)
        raise TimeoutError(f"workers did not start consuming within {timeout:.0f} s; logs in {self.home}")

    def consumers_of(self, name: str) -> list[str]:
        """The broker consumer ids (host:pid:random) of a worker's main process."""
        pid = str(self.processes[name].pid)
        return [c for c in self.consumers() if c.split(":")[1] == pid]

    def consumers(self) -> list[str]:
        """Every broker consumer id with a heartbeat (host:pid:random)."""
        return [bytes(c).decode() for c in self.redis.zrange(BROKER_CONSUMERS_KEY, 0, -1)]  # type: ignore[arg-type]

    def held_by(self, name: str | None) -> set[str]:
        """Task ids a worker's consumers (every worker's, for None) hold unacked: all it had
        taken, once it is dead."""
        held: set[str] = set()
        consumers = self.consumers_of(name) if name else self.consumers()
        for consumer in consumers:
            tags = list(self.redis.smembers(broker_owned_key(consumer)))
            for entry in self.redis.hmget("unacked", tags) if tags else []:
                if entry:
                    payload = json.loads(entry)[0]
                    held.add(payload["headers"]["id"])
        return held

    def kill_connections(self) -> set[str]:
        """CLIENT KILL every other connection, in one MULTI with a read of what every consumer
        holds: the exact in-flight set at the cut. Returns its task ids."""
        consumers = self.consumers()
        pipe = self.redis.pipeline(transaction=True)
        for consumer in consumers:
            pipe.smembers(broker_owned_key(consumer))
        pipe.hgetall("unacked")
        pipe.execute_command("CLIENT", "KILL", "TYPE", "normal")
        pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        replies = pipe.execute()
        owned = set().union(*replies[: len(consumers)]) if consumers else set()
        unacked = replies[len(consumers)]
        return {json.loads(unacked[tag])[0]["headers"]["id"] for tag in owned if tag in unacked}

    def pool_children(self, name: str) -> list[int]:
        return [child.pid for child in psutil.Process(self.processes[name].pid).children()]

    def kill(self, name: str, sig: int) -> None:
        process = self.processes[name]
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)  # a crash takes the pool processes with it
        else:
            process.send_signal(sig)  # as Kubernetes stops a pod: the main process only
        process.wait(180)

    def restart_server(self, name: str, kill: bool, down: float) -> None:
        """Stop (SIGTERM, or SIGKILL as a crash) a server, keep it down `down` s, start it again."""
        index = [s.name for s in self.servers].index(name)
        server = self.servers[index]
        server.kill() if kill else server.stop()
        time.sleep(down)
        self.servers[index] = restart(server)

    def stop_server(self, name: str) -> None:
        self.server(name).stop()

    def start_server(self, name: str) -> None:
        """Start a stopped server again on its port and data dir."""
        index = [s.name for s in self.servers].index(name)
        self.servers[index] = restart(self.servers[index])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        stop_all(self.topology.servers() if self.topology else self.servers)
