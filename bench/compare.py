"""Side-by-side: vanilla Celery vs this platform's routed path, same machine, same run.

Starts its own Redis and PostgreSQL in a temporary folder, then:
1. vanilla: one `celery worker -P prefork` (default concurrency) and a `.delay()` client,
   N no-op tasks, end-to-end rate until the last result arrived;
2. platform: the intelligence and analysis workers as `make run` starts them, and
   `agents loadtest --via route` (then `--via direct`) at RATE for DURATION seconds, recorded in
   PostgreSQL; RATE (default 2,000/s) is above what either side carries, so the ratio compares
   capacities, not the offered rate;
and prints both with their ratio. Usage: python -m bench.compare [N] [RATE] [DURATION]
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agents.stack.servers import start_postgres, start_redis, stop_all

ROOT = Path(__file__).resolve().parent.parent


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A worker process in its own session, output to a log file."""
    with open(log, "ab") as sink:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Warm shutdown, then wait."""
    process.terminate()
    process.wait(60)


def vanilla(redis_url: str, count: int, logs: Path) -> dict[str, float]:
    """Publish `count` no-op tasks with .delay() and wait for every result."""
    env = os.environ | {"BENCH_REDIS_URL": redis_url}
    worker = spawn(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.vanilla_app",
            "worker",
            "-P",
            "prefork",
            "--loglevel",
            "WARNING",
        ],
        env,
        logs / "vanilla.log",
    )
    code = f"""
import json
import time
from bench.vanilla_app import app, noop
while not app.control.ping(timeout=0.5):
    pass
start = time.perf_counter()
results = [noop.delay({{"payload": {{"data": [1, 2, 3]}}}}) for _ in range({count})]
published = time.perf_counter()
for r in results:
    r.get(timeout=300)
done = time.perf_counter()
rates = {{"publish_rate": {count} / (published - start), "end_to_end_rate": {count} / (done - start)}}
print(json.dumps(rates))
"""
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    finally:
        stop(worker)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def platform_runs(
    redis_url: str, database_url: str, rate: float, duration: float, logs: Path
) -> dict[str, dict[str, float]]:
    """The router and analysis workers and a history writer under `agents loadtest`, via the
    router task and via in-process routing (direct)."""
    env = os.environ | {"REDIS_URL": redis_url, "DATABASE_URL": database_url, "AGENTS_HOME": str(logs)}
    agents = str(Path(sys.executable).parent / "agents")
    subprocess.run([agents, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    workers = [
        spawn([agents, "worker", name, "--loglevel", "WARNING"], env, logs / f"{name}.log")
        for name in ("intelligence", "analysis")
    ]
    workers.append(spawn([agents, "history-writer"], env, logs / "history.log"))
    reports = {}
    try:
        time.sleep(8)
        for via in ("route", "direct"):
            command = [agents, "loadtest", "--rate", str(rate), "--duration", str(duration), "--via", via]
            out = subprocess.run(
                [*command, "--json", "--drain-timeout", "300"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            reports[via] = dict(json.loads(out.stdout))
    finally:
        for worker in workers:
            stop(worker)
    return reports


def main() -> None:
    """Run both and print the comparison table."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 2000.0
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    home = Path(tempfile.mkdtemp(prefix="agents-bench-"))
    servers = [start_redis(home / "redis"), start_postgres(home / "postgres")]
    try:
        base = vanilla(servers[0].url, count, home)
        runs = platform_runs(servers[0].url.replace("/0", "/1"), servers[1].url, rate, duration, home)
    finally:
        stop_all(servers)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"vanilla Celery .delay() publish         : {base['publish_rate']:8.0f} msg/s")
    print(f"vanilla Celery end to end (1 hop)       : {base['end_to_end_rate']:8.0f} tasks/s")
    for via, report in runs.items():
        print(
            f"platform --via {via:<6} offered {rate:.0f}/s : {report['achieved_rate']:8.0f} req/s "
            f"(p50 {report['p50_ms']:.0f} ms, p99 {report['p99_ms']:.0f} ms, lost {report['lost']}, "
            f"refused {report['errors']})"
        )
    ratio = runs["route"]["achieved_rate"] / base["end_to_end_rate"]
    print(f"ratio routed platform / vanilla         : {ratio:8.2f}")


if __name__ == "__main__":
    main()
