"""The idle cost of the workers' broker polling: Redis commands per second and worker CPU with
no load. Starts its own Redis and PostgreSQL and the workers `make run` starts for the router
and the analysis engine, waits until they are ready, then measures for WINDOW seconds.
Compare transports in one tree: BROKER_RELIABLE_FETCH=false python -m bench.idle
Usage: python -m bench.idle [WINDOW]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from agents.stack.servers import start_postgres, start_redis, stop_all
from bench.compare import spawn
from bench.cpu import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
AGENTS = str(Path(sys.executable).parent / "agents")
WORKERS = ("intelligence", "analysis")


def redis_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def main() -> None:
    window = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    home = Path(tempfile.mkdtemp(prefix="agents-idle-"))
    servers = [start_redis(home / "redis"), start_postgres(home / "postgres")]
    env = os.environ | {
        "REDIS_URL": servers[0].url,
        "DATABASE_URL": servers[1].url,
        "AGENTS_HOME": str(home),
        "HEALTH_PORT": "0",
    }
    subprocess.run([AGENTS, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    processes = [spawn([AGENTS, "worker", name], env, home / f"{name}.log") for name in WORKERS]
    try:
        deadline = time.monotonic() + 60
        while not all(b" ready." in (home / f"{n}.log").read_bytes() for n in WORKERS):
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not ready; logs in {home}")
            time.sleep(0.5)
        time.sleep(5)  # past start-up work (first heartbeats, announcements)
        client = redis.Redis.from_url(servers[0].url)
        calls, cpu = redis_calls(client), sum(cpu_seconds(p.pid) for p in processes)
        time.sleep(window)
        after, cpu_after = redis_calls(client), sum(cpu_seconds(p.pid) for p in processes)
        delta = {k: after[k] - calls.get(k, 0) for k in after if after[k] - calls.get(k, 0) > 0}
        total = sum(delta.values()) - delta.get("info", 0)
        top = ", ".join(
            f"{k} {v / window:.1f}/s" for k, v in sorted(delta.items(), key=lambda kv: -kv[1])[:6]
        )
        fetch = "reliable fetch" if env.get("BROKER_RELIABLE_FETCH", "true") != "false" else "kombu BRPOP"
        print(f"idle, {len(WORKERS)} workers ({', '.join(WORKERS)}), {fetch}, {window:.0f} s:")
        print(f"  Redis commands: {total / window:.1f}/s ({top})")
        print(f"  worker CPU (all processes): {100 * (cpu_after - cpu) / window:.2f}% of one core")
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(60)
        stop_all(servers)


if __name__ == "__main__":
    main()
