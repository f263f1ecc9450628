"""Side-by-side: vanilla Celery vs this platform's routed path, same machine, same run.

Starts its own Redis and PostgreSQL in a temporary folder, then:
1. vanilla: one `celery worker -P prefork` (default concurrency) and a `.delay()` client,
   N no-op tasks, end-to-end rate until the last result arrived;
2. platform: the intelligence and analysis workers as `make run` starts them, and
   `agents loadtest --via route` (then `--via direct`) for DURATION seconds per step, recorded in
   PostgreSQL, at an offered rate that starts at START and grows by STEP until the achieved rate
   stops growing (less than GROWTH more than the best step so far): the best step is the
   ceiling, so the ratio compares capacities, not the offered rate;
and prints both with their ratio. Usage: python -m bench.compare [N] [START] [DURATION] [STEP]
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


# A step must beat the best one so far by this fraction, or the ceiling is reached.
GROWTH = 0.03
# Offered rates stop here whatever happens (the load generator shares the 2 cores).
MAX_RATE = 6000.0


def ceiling(run: Callable[[float], dict[str, Any]], start: float, step: float) -> list[dict[str, Any]]:
    """Offer start, start + step, ... until the achieved rate stops growing; returns every step's
    report, in order (the best achieved rate among them is the ceiling)."""
    reports: list[dict[str, Any]] = []
    best = 0.0
    rate = start
    while rate <= MAX_RATE:
        report = run(rate)
        reports.append(report)
        if report["achieved_rate"] < best * (1 + GROWTH):
            break
        best = max(best, report["achieved_rate"])
        rate += step
    return reports


def platform_runs(
    redis_url: str, database_url: str, start: float, step: float, duration: float, logs: Path
) -> dict[str, list[dict[str, Any]]]:
    """The router and analysis workers and a history writer under `agents loadtest`, via the
    router task and via in-process routing (direct), each stepped up to its ceiling."""
    env = os.environ | {"REDIS_URL": redis_url, "DATABASE_URL": database_url, "AGENTS_HOME": str(logs)}
    agents = str(Path(sys.executable).parent / "agents")
    subprocess.run([agents, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    workers = [
        spawn([agents, "worker", name, "--loglevel", "WARNING"], env, logs / f"{name}.log")
        for name in ("intelligence", "analysis")
    ]
    workers.append(spawn([agents, "history-writer"], env, logs / "history.log"))
    reports = {}

    def loadtest(via: str, rate: float) -> dict[str, Any]:
        command = [agents, "loadtest", "--rate", str(rate), "--duration", str(duration), "--via", via]
        out = subprocess.run(
            [*command, "--json", "--drain-timeout", "300"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        report = dict(json.loads(out.stdout))
        print(
            f"  --via {via:<6} offered {rate:5.0f}/s: {report['achieved_rate']:6.0f} req/s "
            f"(p50 {report['p50_ms']:.0f} ms, p99 {report['p99_ms']:.0f} ms, lost {report['lost']}, "
            f"refused {report['errors']})",
            flush=True,
        )
        return report

    try:
        time.sleep(8)
        for via in ("route", "direct"):
            reports[via] = ceiling(functools.partial(loadtest, via), start, step)
    finally:
        for worker in workers:
            stop(worker)
    return reports


def main() -> None:
    """Run both and print the comparison table."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    start = float(sys.argv[2]) if len(sys.argv) > 2 else 1000.0
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    step = float(sys.argv[4]) if len(sys.argv) > 4 else 500.0
    home = Path(tempfile.mkdtemp(prefix="agents-bench-"))
    servers = [start_redis(home / "redis"), start_postgres(home / "postgres")]
    try:
        base = vanilla(servers[0].url, count, home)
        runs = platform_runs(servers[0].url.replace("/0", "/1"), servers[1].url, start, step, duration, home)
    finally:
        stop_all(servers)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"vanilla Celery .delay() publish         : {base['publish_rate']:8.0f} msg/s")
    print(f"vanilla Celery end to end (1 hop)       : {base['end_to_end_rate']:8.0f} tasks/s")
    best: dict[str, dict[str, Any]] = {}
    for via, steps in runs.items():
        best[via] = max(steps, key=lambda r: r["achieved_rate"])
        top = best[via]
        print(
            f"platform --via {via:<6} ceiling            : {top['achieved_rate']:8.0f} req/s "
            f"(offered {top['offered_rate']:.0f}/s, p50 {top['p50_ms']:.0f} ms, p99 {top['p99_ms']:.0f} ms, "
            f"lost {sum(r['lost'] for r in steps)} in {len(steps)} steps)"
        )
    ratio = best["route"]["achieved_rate"] / base["end_to_end_rate"]
    print(f"ratio routed ceiling / vanilla          : {ratio:8.2f}")


if __name__ == "__main__":
    main()
