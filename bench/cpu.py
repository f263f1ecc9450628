"""CPU per routed request: a steadier figure for hot-path changes than throughput on 2 busy cores.

Starts its own Redis and PostgreSQL, the intelligence (router) and analysis (batch engine)
workers and a history writer as `make run` starts them, sends RATE routed requests/s for
DURATION seconds (below capacity, so nothing queues up), and reads each worker's CPU seconds (main
process and pool children, from /proc via psutil) before and after. Prints CPU milliseconds per
request for each worker, and the run's loss count. Usage: python -m bench.cpu [RATE] [DURATION]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from agents.stack.servers import start_postgres, start_redis, stop_all
from bench.compare import ROOT, spawn, stop


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children, so far."""
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def main() -> None:
    """Run the fixed load once and print CPU per request for each worker."""
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 800.0
    duration = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    home = Path(tempfile.mkdtemp(prefix="agents-cpu-"))
    servers = [start_redis(home / "redis"), start_postgres(home / "postgres")]
    env = os.environ | {"REDIS_URL": servers[0].url, "DATABASE_URL": servers[1].url, "AGENTS_HOME": str(home)}
    agents = str(Path(sys.executable).parent / "agents")
    subprocess.run([agents, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    workers = {
        name: spawn([agents, "worker", name, "--loglevel", "WARNING"], env, home / f"{name}.log")
        for name in ("intelligence", "analysis")
    }
    writer = spawn([agents, "history-writer"], env, home / "history.log")
    try:
        time.sleep(8)
        before = {name: cpu_seconds(w.pid) for name, w in workers.items()}
        command = [agents, "loadtest", "--rate", str(rate), "--duration", str(duration), "--via", "route"]
        out = subprocess.run(
            [*command, "--json", "--drain-timeout", "120"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        after = {name: cpu_seconds(w.pid) for name, w in workers.items()}
        report = json.loads(out.stdout)
    finally:
        for process in [*workers.values(), writer]:
            stop(process)
        stop_all(servers)
    sent = report["sent"]
    print(f"routed {sent} requests at {rate:.0f}/s: {report['achieved_rate']} req/s, lost {report['lost']}")
    for name in workers:
        used = after[name] - before[name]
        print(f"{name:<13} worker CPU: {used:6.2f} s = {1000 * used / sent:.3f} ms per request")
    total = sum(after[n] - before[n] for n in workers)
    print(f"{'both':<13} workers   : {total:6.2f} s = {1000 * total / sent:.3f} ms per request")


if __name__ == "__main__":
    main()
