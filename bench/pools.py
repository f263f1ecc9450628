"""Engine worker pools under the same load: prefork -c 2, threads -c 4, two solo processes.

Starts its own Redis and PostgreSQL, a history writer, and the analysis engine's worker(s) for
each variant, then `agents loadtest --via direct --rate 700 --duration 10`.
Usage: python -m bench.pools
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from agents.names import queue_keys
from agents.stack.servers import start_postgres, start_redis, stop_all
from bench.compare import ROOT, spawn, stop

# None: two `-P solo` processes (one per core) instead of one worker with a pool.
VARIANTS: dict[str, list[str] | None] = {
    "prefork -c 2": ["--pool", "prefork", "--concurrency", "2"],
    "threads -c 4": ["--pool", "threads", "--concurrency", "4"],
    "2 x solo": None,
}


def start_workers(
    agents: str, extra: list[str] | None, env: dict[str, str], home: Path
) -> list[subprocess.Popen[bytes]]:
    """The analysis worker(s) of one variant, plus a history writer."""
    procs = [spawn([agents, "history-writer"], env, home / "history.log")]
    if extra is None:
        for i in range(2):
            argv = [agents, "worker", "analysis", "--pool", "solo", "--hostname", f"analysis{i}@%h"]
            procs.append(spawn([*argv, "--loglevel", "WARNING"], env, home / f"analysis{i}.log"))
    else:
        procs.append(
            spawn([agents, "worker", "analysis", *extra, "--loglevel", "WARNING"], env, home / "analysis.log")
        )
    return procs


def main() -> None:
    """Run every variant in turn and print its loadtest figures."""
    home = Path(tempfile.mkdtemp(prefix="agents-pools-"))
    servers = [start_redis(home / "redis"), start_postgres(home / "pg")]
    env = os.environ | {"REDIS_URL": servers[0].url, "DATABASE_URL": servers[1].url, "AGENTS_HOME": str(home)}
    agents = str(Path(sys.executable).parent / "agents")
    subprocess.run([agents, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    try:
        for name, extra in VARIANTS.items():
            procs = start_workers(agents, extra, env, home)
            time.sleep(7)
            command = [agents, "loadtest", "--rate", "700", "--duration", "10", "--via", "direct", "--json"]
            out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
            report = json.loads(out.stdout)
            figures = {
                k: report[k] for k in ("achieved_rate", "succeeded", "lost", "p50_ms", "p99_ms", "errors")
            }
            print(f"{name:<13} {figures}", flush=True)
            for process in procs:
                stop(process)
            redis.Redis.from_url(servers[0].url).delete(*queue_keys("analysis"))
    finally:
        stop_all(servers)


if __name__ == "__main__":
    main()
